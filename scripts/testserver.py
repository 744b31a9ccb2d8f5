#!/usr/bin/env python3
"""The loopback test server of scripts/: the demo, the bench, the bad-network lab and the Slurm demo all
run this one program (standard library only). Every behaviour has a URL path of its own.

  testserver.py [--host HOST] [--port PORT] [--port-file FILE] [--log FILE]
      Serves HTTP on HOST (127.0.0.1; any 127.x.y.z) and PORT (a free one unless given) until killed.
      Prints the port on stdout (one line), and with --port-file also writes it to FILE (atomically:
      FILE appears whole). --log FILE appends one line per request ("GET /img/x.jpg").
  testserver.py --delay-proxy UPSTREAM_HOST:PORT --delay-ms MS [--host HOST] [--port PORT] ...
      Instead of HTTP, a TCP proxy to the upstream that delays every chunk by MS in each direction
      (a round trip costs 2 x MS; throughput is not capped, chunks are pipelined; a connection's first
      bytes wait one round trip more, for the handshake the proxy answers at once). The bench's
      bad-network lab uses it: that kernel has no sch_netem to add delay with tc.

Paths (anything else: 404):

  the demo (scripts/demo.sh)
    /photo.png         a valid PNG (about 770 KB), sent in 40 slices over about two seconds
    /stall.jpg         announces 1 MiB, sends 64 KiB of a JPEG, then silence until the client hangs up
    /drip.jpg          announces 1 MiB, sends 100 bytes every 200 ms until the client hangs up
    /login.jpg         a proxy's HTML login page with status 200 (refused by --expect image)
  the bench's misbehaving items (scripts/bench.py; SIZE is the Content-Length announced, NAME only
  names the download)
    /ok/SIZE/NAME      the whole body
    /stall/SIZE/NAME   headers, then silence until the client hangs up
    /drip/SIZE/NAME    headers, then one byte per second (never silent, never done)
    /close/SIZE/NAME   headers, half of the body, then the connection is closed
    /never/SIZE/NAME   reads the request and never answers, until the client hangs up
  the Slurm demo (scripts/slurm-demo.sh; the body of NAME is a JPEG header and 2-12 KB derived from
  NAME, so every file can be checked byte for byte: `testserver.py body NAME` prints it)
    /img/NAME          answers at once
    /slow/NAME         the same body in 10 slices 0.5 s apart (5 s)

A client that goes away at any moment (a killed worker resets its connection) ends that connection's
thread quietly: this server never prints a traceback for it. Every connection has its own thread.
"""
import argparse
import asyncio
import functools
import hashlib
import http.server
import os
import select
import socketserver
import struct
import sys
import threading
import time
import zlib

CHUNK = bytes(range(256)) * 256  # 64 KiB of filler for the bench's bodies
LOGIN_PAGE = b"<html><body><form>Please log in to the proxy</form></body></html>"
# Errors that mean "the client went away"; they end a connection quietly.
GONE = (ConnectionError, TimeoutError, OSError)


@functools.lru_cache(maxsize=None)
def photo(width=512, height=512):
    """The body of /photo.png: random pixels, made on the first request (the other users start faster)."""
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def named_body(name):
    """The body of /img/NAME and /slow/NAME: a JPEG header and 2-12 KB derived from NAME."""
    seed = hashlib.sha256(name.encode()).digest()
    length = 2000 + seed[0] * 40
    out = bytearray(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01")
    block = seed
    while len(out) < length:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:length])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_file = None
    log_lock = threading.Lock()

    def log_message(self, *args):
        pass

    def handle(self):
        # The base class's loop reads the next request; a client that resets the connection there (a
        # worker killed between two requests) raises from readline, outside do_GET.
        try:
            super().handle()
        except GONE:
            pass

    def finish(self):
        try:
            super().finish()
        except GONE:
            pass

    def do_GET(self):
        if Handler.log_file is not None:
            with Handler.log_lock:
                Handler.log_file.write(f"GET {self.path}\n")
                Handler.log_file.flush()
        try:
            self.route()
        except GONE:
            self.close_connection = True

    def head(self, status, length, kind="application/octet-stream"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def send(self, status, body, kind):
        self.head(status, len(body), kind)
        self.wfile.write(body)

    def filler(self, size):
        while size > 0:
            n = min(size, len(CHUNK))
            self.wfile.write(CHUNK[:n])
            size -= n

    def slices(self, body, count, pause):
        step = max(1, len(body) // count + (1 if len(body) % count else 0))
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            self.wfile.flush()
            time.sleep(pause)

    def wait_for_hangup(self):
        """Blocks until the client closes its end (anything it sends is read and ignored)."""
        self.close_connection = True
        while True:
            readable, _, _ = select.select([self.connection], [], [], 5.0)
            if readable and not self.connection.recv(4096):
                return

    def route(self):
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if self.path == "/photo.png":
            self.head(200, len(photo()), "image/png")
            self.slices(photo(), 40, 0.05)
        elif self.path == "/stall.jpg":
            self.head(200, 1 << 20, "image/jpeg")
            self.wfile.write(b"\xff\xd8\xff\xe0" + os.urandom(64 * 1024 - 4))
            self.wait_for_hangup()
        elif self.path == "/drip.jpg":
            self.head(200, 1 << 20, "image/jpeg")
            self.wfile.write(b"\xff\xd8\xff\xe0")
            while True:
                self.wfile.write(os.urandom(100))
                time.sleep(0.2)
        elif self.path == "/login.jpg":
            self.send(200, LOGIN_PAGE, "text/html")
        elif len(parts) == 2 and parts[0] in ("img", "slow"):
            body = named_body(parts[1])
            if parts[0] == "img":
                self.send(200, body, "image/jpeg")
            else:
                self.head(200, len(body), "image/jpeg")
                self.slices(body, 10, 0.5)
        elif len(parts) == 3 and parts[0] in ("ok", "stall", "drip", "close", "never") and parts[1].isdigit():
            self.misbehave(parts[0], int(parts[1]))
        else:
            self.send(404, b"not found", "text/plain")

    def misbehave(self, kind, size):
        if kind == "never":
            self.wait_for_hangup()
            return
        self.head(200, size)
        if kind == "ok":
            self.filler(size)
        elif kind == "stall":
            self.wait_for_hangup()
        elif kind == "drip":
            self.close_connection = True
            for _ in range(size):
                self.wfile.write(b"x")
                time.sleep(1.0)
        elif kind == "close":
            self.filler(size // 2)
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        # Not a reset (handle() took those): a fault of this server. One line, not a traceback.
        error = sys.exc_info()[1]
        print(f"testserver: request from {client_address[0]}:{client_address[1]}: {error!r}", file=sys.stderr)


async def delay_pipe(reader, writer, delay):
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


async def delay_proxy(host, port, upstream, delay, announce):
    up_host, up_port = upstream.rsplit(":", 1)

    async def handle(client_reader, client_writer):
        try:
            await asyncio.sleep(2 * delay)
            up_reader, up_writer = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(delay_pipe(client_reader, up_writer, delay),
                                 delay_pipe(up_reader, client_writer, delay))
        finally:
            for w in (up_writer, client_writer):
                try:
                    w.close()
                except OSError:
                    pass

    server = await asyncio.start_server(handle, host, port, backlog=1024)
    announce(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def loopback(host):
    if not host.startswith("127."):
        sys.exit(f"testserver: {host} is not a loopback address")
    return host


def main():
    if sys.argv[1:2] == ["body"]:
        sys.stdout.buffer.write(named_body(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", type=loopback)
    parser.add_argument("--port", default=0, type=int)
    parser.add_argument("--port-file")
    parser.add_argument("--log")
    parser.add_argument("--delay-proxy", metavar="UPSTREAM_HOST:PORT")
    parser.add_argument("--delay-ms", type=int, default=0)
    args = parser.parse_args()

    def announce(port):
        print(port, flush=True)
        if args.port_file:
            with open(args.port_file + ".tmp", "w", encoding="utf-8") as f:
                f.write(f"{port}\n")
            os.rename(args.port_file + ".tmp", args.port_file)

    if args.delay_proxy:
        loopback(args.delay_proxy.rsplit(":", 1)[0])
        asyncio.run(delay_proxy(args.host, args.port, args.delay_proxy, args.delay_ms / 1000, announce))
        return
    if args.log:
        Handler.log_file = open(args.log, "a", encoding="utf-8")
    server = Server((args.host, args.port), Handler)
    announce(server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
