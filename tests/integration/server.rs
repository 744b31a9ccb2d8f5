//! A loopback HTTP server that misbehaves on purpose, and a CONNECT proxy that records what went
//! through it. Both listen on 127.0.0.1 with a port of their own, serve each connection on a thread,
//! and stop when dropped; no connection thread lives longer than [`MAX_LIFETIME`], whatever a test
//! does.
//!
//! Routes (the path decides; numbers in the path are parameters):
//!
//! | path                      | answer |
//! |---------------------------|--------|
//! | `/image.png`, `/image.jpg`| a small image with Content-Length (keep-alive) |
//! | `/img/NAME`               | [`fixture`] NAME (tests/fixtures/images), honouring `Range: bytes=K-` |
//! | `/img-cut/K/NAME`         | its first K bytes with no Content-Length, then closes (HTTP cannot tell) |
//! | `/img-cut-once/K/NAME`    | as `/img-cut/` the first time this exact target is asked for, then as `/img/` |
//! | `/img-flip/AT/NAME`       | the fixture with byte AT changed (XOR 0x55), with Content-Length |
//! | `/data/N`                 | N bytes of [`data`], honouring `Range: bytes=K-` (206, or 416 past the end) |
//! | `/norange/N`              | N bytes of [`data`], ignoring Range (always 200) |
//! | `/lying-range/N`          | N bytes; answers a Range with 206 from byte 0 |
//! | `/html`                   | 200 with an HTML page |
//! | `/status/CODE`            | that status and a short body |
//! | `/loop`                   | 302 to itself |
//! | `/redirect/PATH`          | 302 to `/PATH` |
//! | `/redirect-file`          | 302 to `file:///etc/passwd` |
//! | `/stall`                  | headers (Content-Length 100000) and 1000 bytes, then silence |
//! | `/silent`                 | reads the request, never answers |
//! | `/drip/MS/N`              | N bytes with Content-Length, one every MS milliseconds |
//! | `/pieces/MS/K/N`          | N bytes of [`data`] with Content-Length, in K writes MS milliseconds apart |
//! | `/short`                  | Content-Length 10000, 1000 bytes, then closes |
//! | `/endless`                | a close-delimited body that never ends |
//! | `/chunked/MS/K`           | K chunks of 1000 bytes (PNG first), one every MS milliseconds |
//! | `/chunked-cut`            | two chunks, then closes without the last chunk |
//! | `/garbage`                | bytes that are not HTTP |
//! | `/empty-reply`            | closes without answering |
//! | `/file/ANYTHING`          | 200 with [`file_body`] of the request target (any path, any query) |
//! | `/flaky/ANYTHING`         | 500 the first time this exact target is asked for, then as `/file/` |
//! | `/busy/S/ANYTHING`        | 429 with `Retry-After: S` the first time this exact target is asked for, then as `/file/` |
//! | `/stall-once/ANYTHING`    | as `/stall` the first time this exact target is asked for, then 503 |
//! | `/silent-once/ANYTHING`   | as `/silent` the first time this exact target is asked for, then as `/file/` |

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// No connection is served for longer than this, so a test that forgets its server cannot hang.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30);

/// How often blocked connection threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The body of `/data/N` and friends: N bytes that make a whole PNG by structure (signature, IHDR,
/// one IDAT of a repeating pattern, IEND, every CRC right; the pixels are no zlib stream), so that
/// `--expect image` accepts it whole and finds any prefix of it truncated. Under 57 bytes, the start
/// of one.
pub fn data(len: usize) -> Vec<u8> {
    const FRAME: usize = 8 + 25 + 12 + 12;
    let pattern: Vec<u8> = (0..len.saturating_sub(FRAME))
        .map(|i| (i % 251) as u8)
        .collect();
    let mut body = b"\x89PNG\r\n\x1A\n".to_vec();
    png_chunk(&mut body, b"IHDR", b"\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0");
    png_chunk(&mut body, b"IDAT", &pattern);
    png_chunk(&mut body, b"IEND", b"");
    body.truncate(len);
    body
}

/// Appends a PNG chunk: length, type, data, CRC-32 of type and data.
fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    let crc = !kind.iter().chain(data).fold(!0u32, |crc, &b| {
        table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    });
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    out.extend(crc.to_be_bytes());
}

/// The body of `/image.png`.
pub fn png() -> Vec<u8> {
    data(2000)
}

/// The body of `/image.jpg`: a baseline JPEG by structure (segments, one scan with stuffed bytes and
/// restart markers, EOI), about 3 KB.
pub fn jpeg() -> Vec<u8> {
    let mut body = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec();
    body.extend(b"\xFF\xDB\0\x43\0");
    body.extend([1u8; 64]);
    body.extend(b"\xFF\xC0\0\x0B\x08\0\x10\0\x10\x01\x01\x11\0");
    body.extend(b"\xFF\xC4\0\x13\0");
    body.extend([0u8; 16]);
    body.extend(b"\xFF\xDA\0\x08\x01\x01\0\0\x3F\0");
    for i in 0..3000 {
        body.push((i % 199) as u8);
        if i % 500 == 499 {
            body.extend([0xFF, 0x00, 0xFF, 0xD0 + (i / 500 % 8) as u8]);
        }
    }
    body.extend(b"\xFF\xD9");
    body
}

/// An image file of tests/fixtures/images (real encoder outputs; see make.py there).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The body of `/file/...` and of `/flaky/...` once it recovers: a few hundred bytes that name the
/// request target (as sent, query included), so every URL has content of its own.
pub fn file_body(target: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..(8 + target.len() % 13) {
        body.extend_from_slice(format!("{i} {target}\n").as_bytes());
    }
    body
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server and the proxy share with their connection threads.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    requests: Mutex<Vec<Request>>,
    connections: AtomicUsize,
    /// Requests being answered now, and the most there ever were at once.
    answering: AtomicUsize,
    most_answering: AtomicUsize,
}

impl Shared {
    fn stopped(&self, since: Instant) -> bool {
        self.stop.load(Ordering::SeqCst) || since.elapsed() > MAX_LIFETIME
    }
}

/// Accepts connections on a thread until dropped.
struct Acceptor {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(handle: impl Fn(TcpStream, Arc<Shared>) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared::default());
        let handle = Arc::new(handle);
        let thread = {
            let shared = shared.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = shared.clone();
                    let handle = handle.clone();
                    thread::spawn(move || handle(stream, shared));
                }
            })
        };
        Acceptor {
            addr,
            shared,
            thread: Some(thread),
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The misbehaving HTTP(S) server.
pub struct TestServer {
    acceptor: Acceptor,
    scheme: &'static str,
}

impl TestServer {
    /// A plain HTTP server.
    pub fn start() -> TestServer {
        TestServer {
            acceptor: Acceptor::start(|stream, shared| {
                let _ = stream.set_read_timeout(Some(POLL));
                serve(stream, &shared);
            }),
            scheme: "http",
        }
    }

    /// An HTTPS server presenting the certificate in `config`.
    pub fn start_tls(config: Arc<rustls::ServerConfig>) -> TestServer {
        TestServer {
            acceptor: Acceptor::start(move |stream, shared| {
                let _ = stream.set_read_timeout(Some(POLL));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    return;
                };
                serve(rustls::StreamOwned::new(conn, stream), &shared);
            }),
            scheme: "https",
        }
    }

    pub fn port(&self) -> u16 {
        self.acceptor.addr.port()
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.port())
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.acceptor
            .shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// How many requests asked for exactly this target (path and query, as sent).
    pub fn requests_for(&self, target: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.target == target)
            .count()
    }

    /// The most requests answered at the same time so far.
    pub fn most_concurrent(&self) -> usize {
        self.acceptor.shared.most_answering.load(Ordering::SeqCst)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.acceptor.shared.connections.load(Ordering::SeqCst)
    }
}

/// Reads one request head. `None` when the peer closed, the server stops, or the bytes are not a
/// request (then a 400 has been sent, as nginx does for a TLS handshake on a plain port).
fn read_head<S: Read + Write>(stream: &mut S, shared: &Shared, since: Instant) -> Option<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if shared.stopped(since) || head.len() > 64 * 1024 {
            return None;
        }
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => {
                if head.is_empty() && !byte[0].is_ascii_uppercase() {
                    let _ = stream.write_all(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return None;
                }
                head.push(byte[0]);
            }
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return None,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Some(Request {
        method,
        target,
        headers,
    })
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Sleeps until the server stops (or its lifetime ends).
fn idle_until_stopped(shared: &Shared, since: Instant) {
    while !shared.stopped(since) {
        thread::sleep(POLL);
    }
}

/// Serves requests on one connection until the peer closes or a route closes it.
fn serve<S: Read + Write>(mut stream: S, shared: &Shared) {
    let since = Instant::now();
    while let Some(request) = read_head(&mut stream, shared, since) {
        if let Ok(mut requests) = shared.requests.lock() {
            requests.push(request.clone());
        }
        let now = shared.answering.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_answering.fetch_max(now, Ordering::SeqCst);
        let answered = respond(&mut stream, &request, shared, since);
        shared.answering.fetch_sub(1, Ordering::SeqCst);
        if answered.is_err() {
            return;
        }
        let _ = stream.flush();
        if request.header("connection") == Some("close") {
            return;
        }
    }
}

/// `Ok` to keep the connection for another request, `Err` to close it.
fn respond<S: Read + Write>(
    stream: &mut S,
    request: &Request,
    shared: &Shared,
    since: Instant,
) -> Result<(), ()> {
    let path = request.target.split('?').next().unwrap_or("");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
    let io = |r: io::Result<()>| r.map_err(|_| ());
    match parts.as_slice() {
        ["image.png"] => io(send(stream, 200, "image/png", &[], &png())),
        ["image.jpg"] => io(send(stream, 200, "image/jpeg", &[], &jpeg())),
        ["img", name] => io(send_ranged(stream, request, &fixture(name))),
        ["img-cut-once", _, name] if times_asked(shared, request) > 1 => {
            io(send_ranged(stream, request, &fixture(name)))
        }
        ["img-cut", k, name] | ["img-cut-once", k, name] => {
            let body = fixture(name);
            let cut = k.parse::<usize>().map_err(|_| ())?.min(body.len());
            let head = "HTTP/1.1 200 OK\r\nContent-Type: image/x\r\nConnection: close\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            io(stream.write_all(&body[..cut]))?;
            let _ = stream.flush();
            Err(())
        }
        ["img-flip", at, name] => {
            let mut body = fixture(name);
            let at = at.parse::<usize>().map_err(|_| ())?;
            if let Some(byte) = body.get_mut(at) {
                *byte ^= 0x55;
            }
            io(send(stream, 200, "image/x", &[], &body))
        }
        ["data", _] | ["norange", _] | ["lying-range", _] => {
            let body = data(num(1).ok_or(())?);
            let range_start = request
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|r| r.parse::<usize>().ok());
            match (parts[0], range_start) {
                ("data", Some(start)) if start >= body.len() => {
                    let range = format!("bytes */{}", body.len());
                    io(send(
                        stream,
                        416,
                        "text/plain",
                        &[("Content-Range", &range)],
                        b"",
                    ))
                }
                ("data", Some(start)) => {
                    let range = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
                    io(send(
                        stream,
                        206,
                        "application/octet-stream",
                        &[("Content-Range", &range)],
                        &body[start..],
                    ))
                }
                ("lying-range", Some(_)) => {
                    let range = format!("bytes 0-{}/{}", body.len() - 1, body.len());
                    io(send(
                        stream,
                        206,
                        "application/octet-stream",
                        &[("Content-Range", &range)],
                        &body,
                    ))
                }
                _ => io(send(stream, 200, "application/octet-stream", &[], &body)),
            }
        }
        ["html"] => io(send(
            stream,
            200,
            "text/html",
            &[],
            b"<!doctype html><html><body>Sorry, this is not an image.</body></html>",
        )),
        ["status", code] => {
            let code = code.parse().unwrap_or(500);
            io(send(stream, code, "text/plain", &[], b"no\n"))
        }
        ["loop"] => io(send(
            stream,
            302,
            "text/plain",
            &[("Location", "/loop")],
            b"",
        )),
        ["redirect", rest @ ..] => {
            let location = format!("/{}", rest.join("/"));
            io(send(
                stream,
                302,
                "text/plain",
                &[("Location", &location)],
                b"",
            ))
        }
        ["redirect-file"] => io(send(
            stream,
            302,
            "text/plain",
            &[("Location", "file:///etc/passwd")],
            b"",
        )),
        ["stall"] => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            io(stream.write_all(&data(1000)))?;
            io(stream.flush())?;
            idle_until_stopped(shared, since);
            Err(())
        }
        ["stall-after", sent, total] => {
            // The head and `sent` of `total` bytes, then nothing: a body that stops part-way.
            let (Ok(sent), Ok(total)) = (sent.parse::<usize>(), total.parse::<usize>()) else {
                return io(send(stream, 400, "text/plain", &[], b"bad numbers\n"));
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
            );
            io(stream.write_all(head.as_bytes()))?;
            io(stream.write_all(&data(sent.min(total))))?;
            io(stream.flush())?;
            idle_until_stopped(shared, since);
            Err(())
        }
        ["silent"] => {
            idle_until_stopped(shared, since);
            Err(())
        }
        ["drip", ms, n] => {
            let (ms, n) = (
                ms.parse::<u64>().map_err(|_| ())?,
                n.parse::<usize>().map_err(|_| ())?,
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {n}\r\n\r\n"
            );
            io(stream.write_all(head.as_bytes()))?;
            for byte in data(n) {
                if shared.stopped(since) {
                    return Err(());
                }
                io(stream.write_all(&[byte]))?;
                io(stream.flush())?;
                thread::sleep(Duration::from_millis(ms));
            }
            Ok(())
        }
        ["pieces", ms, k, n] => {
            let (ms, k, n) = (
                ms.parse::<u64>().map_err(|_| ())?,
                k.parse::<usize>().map_err(|_| ())?.max(1),
                n.parse::<usize>().map_err(|_| ())?,
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {n}\r\n\r\n"
            );
            io(stream.write_all(head.as_bytes()))?;
            let body = data(n);
            for (i, piece) in body.chunks(n.div_ceil(k).max(1)).enumerate() {
                if i > 0 {
                    thread::sleep(Duration::from_millis(ms));
                }
                if shared.stopped(since) {
                    return Err(());
                }
                io(stream.write_all(piece))?;
                io(stream.flush())?;
            }
            Ok(())
        }
        ["short"] => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 10000\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            io(stream.write_all(&data(1000)))?;
            let _ = stream.flush();
            Err(())
        }
        ["endless"] => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nConnection: close\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            let chunk = data(16 * 1024);
            while !shared.stopped(since) {
                io(stream.write_all(&chunk))?;
            }
            Err(())
        }
        ["chunked", ms, k] => {
            let (ms, k) = (
                ms.parse::<u64>().map_err(|_| ())?,
                k.parse::<usize>().map_err(|_| ())?,
            );
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            let body = data(1000 * k);
            for chunk in body.chunks(1000) {
                if shared.stopped(since) {
                    return Err(());
                }
                io(write_chunk(stream, chunk))?;
                thread::sleep(Duration::from_millis(ms));
            }
            io(stream.write_all(b"0\r\n\r\n"))
        }
        ["chunked-cut"] => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            let body = data(2000);
            io(write_chunk(stream, &body[..1000]))?;
            io(write_chunk(stream, &body[1000..]))?;
            Err(())
        }
        ["garbage"] => {
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2\r\nthis is not http at all\r\n\r\n");
            Err(())
        }
        ["empty-reply"] => Err(()),
        ["file", _, ..] => io(send_file(stream, request)),
        ["stall-once", _, ..] if times_asked(shared, request) > 1 => {
            io(send(stream, 503, "text/plain", &[], b"busy\n"))
        }
        ["stall-once", _, ..] => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n";
            io(stream.write_all(head.as_bytes()))?;
            io(stream.write_all(&data(1000)))?;
            io(stream.flush())?;
            idle_until_stopped(shared, since);
            Err(())
        }
        ["silent-once", _, ..] if times_asked(shared, request) <= 1 => {
            idle_until_stopped(shared, since);
            Err(())
        }
        ["silent-once", _, ..] => io(send_file(stream, request)),
        ["busy", seconds, _, ..] if times_asked(shared, request) <= 1 => io(send(
            stream,
            429,
            "text/plain",
            &[("Retry-After", seconds)],
            b"slow down\n",
        )),
        ["flaky", _, ..] if times_asked(shared, request) <= 1 => {
            io(send(stream, 500, "text/plain", &[], b"try again\n"))
        }
        ["busy", _, _, ..] | ["flaky", _, ..] => io(send_file(stream, request)),
        _ => io(send(stream, 404, "text/plain", &[], b"not found\n")),
    }
}

/// `body` whole (200), or from byte K on for `Range: bytes=K-` (206 with a Content-Range).
fn send_ranged<S: Write>(stream: &mut S, request: &Request, body: &[u8]) -> io::Result<()> {
    let start = request
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    match start {
        Some(start) if start < body.len() => {
            let range = format!("bytes {start}-{}/{}", body.len() - 1, body.len());
            send(
                stream,
                206,
                "image/x",
                &[("Content-Range", &range)],
                &body[start..],
            )
        }
        _ => send(stream, 200, "image/x", &[], body),
    }
}

/// The `/file/` answer: 200 with the [`file_body`] of the request target.
fn send_file<S: Write>(stream: &mut S, request: &Request) -> io::Result<()> {
    send(
        stream,
        200,
        "application/octet-stream",
        &[],
        &file_body(&request.target),
    )
}

/// How many times `request`'s exact target has been asked for, this request included (it is recorded
/// before it is answered).
fn times_asked(shared: &Shared, request: &Request) -> usize {
    shared
        .requests
        .lock()
        .map(|r| r.iter().filter(|r| r.target == request.target).count())
        .unwrap_or(1)
}

fn write_chunk<S: Write>(stream: &mut S, chunk: &[u8]) -> io::Result<()> {
    stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
    stream.write_all(chunk)?;
    stream.write_all(b"\r\n")?;
    stream.flush()
}

fn send<S: Write>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Whatever",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// An HTTP CONNECT proxy that records each tunnel's target (`host:port`).
pub struct TestProxy {
    acceptor: Acceptor,
}

impl TestProxy {
    pub fn start() -> TestProxy {
        TestProxy {
            acceptor: Acceptor::start(|mut client, shared| {
                let _ = client.set_read_timeout(Some(POLL));
                let since = Instant::now();
                let Some(request) = read_head(&mut client, &shared, since) else {
                    return;
                };
                if let Ok(mut requests) = shared.requests.lock() {
                    requests.push(request.clone());
                }
                if request.method != "CONNECT" {
                    let _ = send(&mut client, 405, "text/plain", &[], b"CONNECT only\n");
                    return;
                }
                let Ok(upstream) = TcpStream::connect(&request.target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let _ = upstream.set_read_timeout(Some(POLL));
                let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone())
                else {
                    return;
                };
                let shared2 = shared.clone();
                let back = thread::spawn(move || pipe(upstream2, client2, &shared2, since));
                pipe(client, upstream, &shared, since);
                let _ = back.join();
            }),
        }
    }

    /// `http://127.0.0.1:PORT`, for HTTP_PROXY.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.acceptor.addr.port())
    }

    /// The targets of the CONNECT requests received so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.acceptor
            .shared
            .requests
            .lock()
            .map(|r| r.iter().map(|r| r.target.clone()).collect())
            .unwrap_or_default()
    }
}

/// Copies `from` to `to` until either side closes or the proxy stops.
fn pipe(mut from: TcpStream, mut to: TcpStream, shared: &Shared, since: Instant) {
    let mut buf = [0u8; 16 * 1024];
    while !shared.stopped(since) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A CA and a certificate for 127.0.0.1 signed by it: the server's rustls config and the CA in PEM.
pub fn tls_config() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "watchdog test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");

    let leaf_key = KeyPair::generate().expect("server key");
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("server params");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca, &ca_key)
        .expect("server certificate");

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    (Arc::new(config), ca.pem())
}

/// A host that swallows SYNs: a listening socket with a backlog of 0 that is never accepted, whose
/// one-connection queue is filled first, so the kernel drops every further SYN and a connect hangs
/// (retransmitting) as it would to a firewalled or dead host. Loopback only; closed when dropped.
pub struct SynSink {
    fd: std::os::fd::OwnedFd,
    port: u16,
    /// The connections that fill the queue.
    _filler: Vec<TcpStream>,
}

impl SynSink {
    pub fn start() -> SynSink {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain socket calls on a descriptor this function owns; every result is checked.
        let fd = unsafe {
            let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(raw >= 0, "socket: {}", io::Error::last_os_error());
            std::os::fd::OwnedFd::from_raw_fd(raw)
        };
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `addr` is a valid sockaddr_in of `len` bytes.
        let bound = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &addr as *const libc::sockaddr_in as *const libc::sockaddr,
                len,
            )
        };
        assert_eq!(bound, 0, "bind: {}", io::Error::last_os_error());
        // SAFETY: a bound socket of ours.
        assert_eq!(unsafe { libc::listen(fd.as_raw_fd(), 0) }, 0, "listen");
        let mut local: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut local_len = len;
        // SAFETY: `local` has room for a sockaddr_in.
        let named = unsafe {
            libc::getsockname(
                fd.as_raw_fd(),
                &mut local as *mut libc::sockaddr_in as *mut libc::sockaddr,
                &mut local_len,
            )
        };
        assert_eq!(named, 0, "getsockname");
        let port = u16::from_be(local.sin_port);
        let target = SocketAddr::from(([127, 0, 0, 1], port));
        // Fill the accept queue until a connect no longer completes: from then on SYNs are dropped.
        let mut filler = Vec::new();
        loop {
            match TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
                Ok(stream) => filler.push(stream),
                Err(_) => break,
            }
            assert!(
                filler.len() < 64,
                "the backlog of the SYN sink never filled"
            );
        }
        SynSink {
            fd,
            port,
            _filler: filler,
        }
    }

    /// The URL of `path` on this host.
    pub fn url(&self, path: &str) -> String {
        let _ = &self.fd;
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}
