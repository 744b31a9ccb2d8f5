#!/usr/bin/env python3
"""A deliberately flaky HTTP server on 127.0.0.1 for watchdog's demo.

Prints the port it listens on, then serves until killed:
  /photo.png    a valid PNG, sent in small slices over about two seconds (a progress bar to watch)
  /stall.jpg    announces 1 MiB, sends 64 KiB, then goes silent forever (killed by --stall)
  /drip.jpg     announces 1 MiB and sends 100 bytes every 200 ms: never silent, never done (deadline)
  /login.jpg    a proxy's HTML login page with status 200 (refused by --expect image)
  /missing.jpg  404
"""
import http.server
import os
import socketserver
import struct
import sys
import time
import zlib


def png(width=512, height=512):
    raw = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


PHOTO = png()


class Flaky(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def head(self, status, length, kind="image/jpeg"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def do_GET(self):
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self):
        if self.path == "/photo.png":
            self.head(200, len(PHOTO), "image/png")
            step = max(1, len(PHOTO) // 40)
            for i in range(0, len(PHOTO), step):
                self.wfile.write(PHOTO[i:i + step])
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path == "/stall.jpg":
            self.head(200, 1 << 20)
            self.wfile.write(b"\xff\xd8\xff\xe0" + os.urandom(64 * 1024 - 4))
            self.wfile.flush()
            time.sleep(3600)
        elif self.path == "/drip.jpg":
            self.head(200, 1 << 20)
            self.wfile.write(b"\xff\xd8\xff\xe0")
            while True:
                self.wfile.write(os.urandom(100))
                self.wfile.flush()
                time.sleep(0.2)
        elif self.path == "/login.jpg":
            body = b"<html><body><form>Please log in to the proxy</form></body></html>"
            self.head(200, len(body), "text/html")
            self.wfile.write(body)
        else:
            body = b"not found"
            self.head(404, len(body), "text/plain")
            self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Flaky)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
