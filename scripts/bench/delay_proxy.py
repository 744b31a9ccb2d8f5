#!/usr/bin/env python3
"""A TCP proxy that delays every chunk by a fixed time in each direction, for scripts/bench.sh's
bad-network lab (this kernel has no sch_netem to add delay with tc):

  delay_proxy.py LISTEN_HOST LISTEN_PORT UPSTREAM_HOST UPSTREAM_PORT ONE_WAY_MS

Each connection is forwarded to the upstream; bytes are read as they come and written out ONE_WAY_MS
later, so a round trip costs twice that and the throughput is not capped (chunks are pipelined). The
connection's first bytes wait one round trip more, for the handshake the proxy answers at once.
Loopback only: both hosts must be 127.x.y.z.
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def read():
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                data = b""
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    async def write():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
            except OSError:
                return

    await asyncio.gather(read(), write())


async def main():
    host, port, up_host, up_port, one_way_ms = sys.argv[1:6]
    for h in (host, up_host):
        if not h.startswith("127."):
            sys.exit(f"delay_proxy: {h} is not a loopback address")
    delay = int(one_way_ms) / 1000

    async def handle(client_reader, client_writer):
        try:
            await asyncio.sleep(2 * delay)
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(
                pipe(client_reader, up_writer, delay), pipe(up_reader, client_writer, delay)
            )
        finally:
            for w in (up_writer, client_writer):
                try:
                    w.close()
                except OSError:
                    pass

    server = await asyncio.start_server(handle, host, int(port), backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
