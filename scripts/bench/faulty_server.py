#!/usr/bin/env python3
"""A misbehaving HTTP server on 127.0.0.1 for scripts/bench.sh's faulty batch.

Prints the port it listens on, then serves until killed. A URL is /KIND/SIZE/NAME; SIZE is the
Content-Length announced, NAME only names the download. KIND is how the answer goes wrong:

  stall   status line and headers, then silence until the client hangs up
  drip    headers, then one byte per second (never silent, never done: only a deadline stops it)
  close   headers, half of the body, then the connection is closed (short of Content-Length)
  never   reads the request and never answers, until the client hangs up
  ok      the whole body (for checking the server itself)

Every connection gets its own thread; a thread ends when its client goes away.
"""
import http.server
import select
import socketserver
import sys
import time

CHUNK = bytes(range(256)) * 256  # 64 KiB of filler


class Faulty(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, size):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        self.wfile.flush()

    def body(self, size):
        while size > 0:
            n = min(size, len(CHUNK))
            self.wfile.write(CHUNK[:n])
            size -= n
        self.wfile.flush()

    def wait_for_hangup(self):
        """Blocks until the client closes its end (or sends anything: a new request is not served)."""
        sock = self.connection
        while True:
            readable, _, _ = select.select([sock], [], [], 5.0)
            if readable:
                try:
                    if not sock.recv(4096):
                        return
                except OSError:
                    return

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        self.close_connection = True

    def route(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or not parts[1].isdigit():
            self.send_error(404)
            return
        kind, size = parts[0], int(parts[1])
        if kind == "ok":
            self.head(size)
            self.body(size)
        elif kind == "stall":
            self.head(size)
            self.wait_for_hangup()
        elif kind == "drip":
            self.head(size)
            for _ in range(size):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1.0)
        elif kind == "close":
            self.head(size)
            self.body(size // 2)
        elif kind == "never":
            self.wait_for_hangup()
        else:
            self.send_error(404)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


if __name__ == "__main__":
    # faulty_server.py [PORT [HOST]]: HOST (a loopback address) for the bad-network lab's own host.
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if not host.startswith("127."):
        sys.exit(f"faulty_server: {host} is not a loopback address")
    server = Server((host, int(sys.argv[1]) if len(sys.argv) > 1 else 0), Faulty)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
