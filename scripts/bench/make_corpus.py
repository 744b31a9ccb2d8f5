#!/usr/bin/env python3
"""Files and lists for scripts/bench/bench.py (scripts/bench.sh), deterministic (fixed seed) so every
run sees the same sizes. The misbehaving items are scripts/testserver.py's /stall, /drip, /close and
/never paths.

  make_corpus.py big DIR BYTES
      DIR/www/big.bin of BYTES bytes.
  make_corpus.py batch DIR N NGINX_BASE FAULTY_BASE
      N files of 20-80 KB in DIR/www/b/ (served by nginx) and, for two batches, the same items as
      three kinds of list: NAME.urls (one URL a line), NAME.curl (a curl config of url/output pairs,
      outputs relative to the working directory) and NAME.sizes ("file size", the expected result):
        clean   every item from nginx
        faulty  the same, except every 10th item comes from the misbehaving server, its kind cycling
                through stall, drip, close and never (10% of the items, 2.5% of each kind)
  make_corpus.py images DIR N NGINX_BASE
      The clean batch as images, for `--expect image` (scripts/bench.sh image): N files of 20-80 KB
      in DIR/www/i/, every fourth a PNG, the others JPEGs, all whole by structure (the JPEGs'
      entropy-coded data is random bytes with every 0xFF stuffed and a restart marker every 4 KB, as
      an encoder writes them; the PNGs' IDAT is random, with right CRCs), and DIR/images.urls and
      DIR/images.sizes.
  make_corpus.py badnet DIR N
      The bad-network lab's list (scripts/bench.sh badnet) of N items, N <= the batch corpus already in
      DIR/www/b/: every 12th item is bad (in equal shares: a host that swallows SYNs, a name the
      resolver never answers, and the misbehaving server's stall, drip, close and never), the others
      come from three hosts in front of nginx: 127.0.0.2 (40 ms RTT), 127.0.0.3 (300 ms RTT, 3% loss,
      2 Mbit/s; one item in six) and 127.0.0.4 (40 ms RTT, 10% loss; one in four). Writes
      DIR/badnet.urls, .curl, .sizes and .expect ("URL STATUS|STATUS": the statuses that name the
      cause of a bad item).
  make_corpus.py memlist FILE N MODE
      A list of N lines for the supervisor-memory benchmark (scripts/bench.sh says what each
      exercises). MODE:
        invalid  ftp://127.0.0.1:9/m/NNNNNNN.bin, not an http(s) URL
        urls     http://127.0.0.1:9/m/NNNNNNN.bin
        named    http://127.0.0.1:9/m/NNNNNNN.bin<TAB>blocked/NNNNNNN.bin, for an output directory where
                 'blocked' is a plain file, so that creating the item's directory fails
  make_corpus.py memreport FILE N
      A report of N `ok` lines, one for each URL of `memlist FILE N urls` at the name watchdog gives it
      (NNNNNNN.bin), with a size and a SHA-256: what an earlier run of that list leaves for a rerun.
"""
import hashlib
import json
import os
import random
import struct
import sys
import zlib

SEED = 20240611
KINDS = ["stall", "drip", "close", "never"]


def big(dir_, size):
    www = os.path.join(dir_, "www")
    os.makedirs(www, exist_ok=True)
    rng = random.Random(SEED)
    block = rng.randbytes(1 << 20)
    with open(os.path.join(www, "big.bin"), "wb") as f:
        left = size
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def batch(dir_, n, nginx, faulty):
    rng = random.Random(SEED)
    www = os.path.join(dir_, "www", "b")
    os.makedirs(www, exist_ok=True)
    filler = rng.randbytes(80_000)
    sizes = [rng.randint(20_000, 80_000) for _ in range(n)]
    names = [f"f{i:05d}.bin" for i in range(n)]
    for name, size in zip(names, sizes):
        with open(os.path.join(www, name), "wb") as f:
            f.write(filler[:size])
    for list_name in ("clean", "faulty"):
        urls = []
        for i, (name, size) in enumerate(zip(names, sizes)):
            if list_name == "faulty" and i % 10 == 9:
                kind = KINDS[(i // 10) % len(KINDS)]
                urls.append(f"{faulty}/{kind}/{size}/{name}")
            else:
                urls.append(f"{nginx}/b/{name}")
        base = os.path.join(dir_, list_name)
        with open(base + ".urls", "w") as f:
            f.writelines(u + "\n" for u in urls)
        with open(base + ".curl", "w") as f:
            f.writelines(f'url = "{u}"\noutput = "{name}"\n' for u, name in zip(urls, names))
        with open(base + ".sizes", "w") as f:
            f.writelines(f"{name} {size}\n" for name, size in zip(names, sizes))


def jpeg_bytes(rng, size):
    """A JPEG of exactly `size` bytes by structure: SOI, APP0, DQT, SOF0, DHT, DRI, SOS, entropy-coded
    data, EOI."""
    head = bytearray(b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    head += b"\xFF\xDB\x00\x43\x00" + bytes(rng.randrange(1, 100) for _ in range(64))
    head += b"\xFF\xC0\x00\x11\x08\x01\x00\x01\x00\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    head += b"\xFF\xC4\x00\x13\x00" + bytes(16)
    head += b"\xFF\xDD\x00\x04\x00\x40"
    head += b"\xFF\xDA\x00\x0C\x03\x01\x00\x02\x11\x03\x11\x00\x3F\x00"
    body = bytearray()
    want = size - len(head) - 2
    restart = 0
    while len(body) < want:
        block = rng.randbytes(min(4096, want - len(body)))
        body += block.replace(b"\xFF", b"\xFF\x00")
        if len(body) + 2 < want:
            body += bytes([0xFF, 0xD0 + restart % 8])
            restart += 1
    body = body[:want]
    # A cut may leave an 0xFF whose second byte fell off: make it data.
    while body.endswith(b"\xFF"):
        body[-1] = 0x00
    return bytes(head + body + b"\xFF\xD9")


def png_bytes(rng, size):
    """A PNG of exactly `size` bytes by structure: signature, IHDR, one IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    head = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
    tail = chunk(b"IEND", b"")
    return head + chunk(b"IDAT", rng.randbytes(size - len(head) - len(tail) - 12)) + tail


def images(dir_, n, nginx):
    rng = random.Random(SEED)
    www = os.path.join(dir_, "www", "i")
    os.makedirs(www, exist_ok=True)
    urls, sizes = [], []
    for i in range(n):
        size = rng.randint(20_000, 80_000)
        name = f"i{i:05d}." + ("png" if i % 4 == 3 else "jpg")
        body = png_bytes(rng, size) if name.endswith("png") else jpeg_bytes(rng, size)
        # images.sizes promises this size to bench.py's count_files.
        assert len(body) == size, (name, len(body), size)
        with open(os.path.join(www, name), "wb") as f:
            f.write(body)
        urls.append(f"{nginx}/i/{name}")
        sizes.append(f"{name} {size}\n")
    with open(os.path.join(dir_, "images.urls"), "w") as f:
        f.writelines(u + "\n" for u in urls)
    with open(os.path.join(dir_, "images.sizes"), "w") as f:
        f.writelines(sizes)


BAD_KINDS = {
    "dead": ("http://127.0.0.5", "connect_error"),
    "dns": ("http://img.silent.test", "dns_error"),
    "stall": ("http://127.0.0.6/stall", "stalled"),
    "drip": ("http://127.0.0.6/drip", "stalled|timeout"),
    "close": ("http://127.0.0.6/close", "truncated"),
    "never": ("http://127.0.0.6/never", "stalled"),
}


def badnet(dir_, n):
    rng = random.Random(SEED)
    rng.randbytes(80_000)  # as batch() draws, so the sizes are those of its files
    sizes = [rng.randint(20_000, 80_000) for _ in range(n)]
    bad_slots = [i for i in range(n) if i % 12 == 11]
    kinds = [k for k in BAD_KINDS for _ in range(len(bad_slots) // len(BAD_KINDS))]
    random.Random(SEED + 1).shuffle(kinds)
    bad = dict(zip(bad_slots, kinds))
    urls, expect = [], []
    for i, size in enumerate(sizes):
        name = f"f{i:05d}.bin"
        if i in bad:
            base, status = BAD_KINDS[bad[i]]
            url = f"{base}/{size}/{name}" if base.startswith("http://127.0.0.6") else f"{base}/b/{name}"
            expect.append(f"{url} {status}\n")
        else:
            host = "127.0.0.3" if i % 6 == 1 else "127.0.0.4" if i % 4 == 2 else "127.0.0.2"
            url = f"http://{host}/b/{name}"
        urls.append(url)
    base = os.path.join(dir_, "badnet")
    with open(base + ".urls", "w") as f:
        f.writelines(u + "\n" for u in urls)
    with open(base + ".curl", "w") as f:
        f.writelines(f'url = "{u}"\noutput = "f{i:05d}.bin"\n' for i, u in enumerate(urls))
    with open(base + ".sizes", "w") as f:
        f.writelines(f"f{i:05d}.bin {size}\n" for i, size in enumerate(sizes))
    with open(base + ".expect", "w") as f:
        f.writelines(expect)


def memlist(path, n, mode):
    with open(path, "w", buffering=1 << 20) as f:
        for i in range(n):
            url = f"http://127.0.0.1:9/m/{i:07d}.bin"
            if mode == "invalid":
                f.write("ftp" + url[4:] + "\n")
            elif mode == "urls":
                f.write(url + "\n")
            elif mode == "named":
                f.write(f"{url}\tblocked/{i:07d}.bin\n")
            else:
                sys.exit(f"make_corpus: unknown memlist mode {mode}")


def memreport(path, n):
    with open(path, "w", buffering=1 << 20) as f:
        for i in range(n):
            entry = {
                "url": f"http://127.0.0.1:9/m/{i:07d}.bin",
                "path": f"{i:07d}.bin",
                "status": "ok",
                "http_status": 200,
                "bytes": 20_000 + i % 60_000,
                "sha256": hashlib.sha256(i.to_bytes(8, "little")).hexdigest(),
                "attempts": 1,
                "elapsed_ms": 12,
                "error": None,
            }
            f.write(json.dumps(entry, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "big":
        big(sys.argv[2], int(sys.argv[3]))
    elif what == "batch":
        batch(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif what == "images":
        images(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif what == "badnet":
        badnet(sys.argv[2], int(sys.argv[3]))
    elif what == "memlist":
        memlist(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif what == "memreport":
        memreport(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(f"make_corpus: unknown command {what}")
