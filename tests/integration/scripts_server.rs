//! scripts/testserver.py, the loopback server of the demo, the bench and the Slurm demo: each path
//! does what its header promises, watchdog sees each as the demo and the bench say it does, and a
//! client that goes away at any moment (a killed worker resets its connection) never makes it print
//! a traceback, which every user of the demo would see.
//!
//! The tests' own server (server.rs) stays: it runs in the test process, counts and records requests
//! and serves each test a fresh state; this one is a separate program the scripts share.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{read, s, tempdir, watchdog, Marker};

/// scripts/testserver.py running on a loopback port, its stderr going to a file; stopped (SIGTERM)
/// by [`ScriptServer::stop`], or killed when dropped.
struct ScriptServer {
    child: Child,
    port: u16,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

impl ScriptServer {
    fn start(args: &[&str]) -> ScriptServer {
        let dir = tempdir();
        let stderr = dir.path().join("stderr");
        let mut child = Command::new("python3")
            .arg(script("testserver.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create the stderr file"))
            .spawn()
            .expect("run python3 scripts/testserver.py (apt-get install python3)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the port");
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "testserver printed {line:?}, not a port: {}",
                String::from_utf8_lossy(&read(&stderr))
            )
        });
        ScriptServer {
            child,
            port,
            stderr,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends `request` on a new connection, reads the first bytes of the answer when `read_first`,
    /// then closes with a reset (SO_LINGER 0), as the kernel does for a killed process that had
    /// unread data.
    fn reset_after(&self, request: &[u8], read_first: bool) {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        conn.write_all(request).expect("send");
        if read_first {
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
        }
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: setsockopt on a socket this test owns, with a linger struct of the right size.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&conn),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                std::ptr::addr_of!(linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }

    /// Stops the server with SIGTERM and returns what it printed on stderr.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on the child this test started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
        String::from_utf8_lossy(&read(&self.stderr)).into_owned()
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_paths_succeed_stall_drip_lie_and_404_as_the_demo_says() {
    let server = ScriptServer::start(&[]);
    let marker = Marker::new("script-server-demo");
    let dir = tempdir();
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

    let photo = out("photo.png");
    let run = watchdog(
        &marker,
        &[
            "-q",
            "--timeout",
            "20",
            "--",
            "fetch",
            "--expect",
            "image",
            &server.url("/photo.png"),
            "-o",
            &photo,
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(read(Path::new(&photo)).starts_with(b"\x89PNG\r\n\x1a\n"));

    let stall = out("stall.jpg");
    let run = watchdog(
        &marker,
        &[
            "--timeout",
            "20",
            "--stall",
            "1",
            "--",
            "fetch",
            &server.url("/stall.jpg"),
            "-o",
            &stall,
        ],
    );
    assert_eq!(
        run.code,
        Some(124),
        "a silent server is stopped by --stall: {}",
        run.stderr
    );
    let drip = out("drip.jpg");
    let run = watchdog(
        &marker,
        &[
            "--timeout",
            "1.5",
            "--stall",
            "1",
            "--",
            "fetch",
            &server.url("/drip.jpg"),
            "-o",
            &drip,
        ],
    );
    assert_eq!(
        run.code,
        Some(124),
        "a dripping server is stopped by the deadline: {}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("stall"),
        "never silent: {}",
        run.stderr
    );
    let run = watchdog(
        &marker,
        &[
            "--timeout",
            "20",
            "--",
            "fetch",
            "--expect",
            "image",
            &server.url("/login.jpg"),
            "-o",
            &out("l.jpg"),
        ],
    );
    assert_eq!(run.code, Some(16), "{}", run.stderr);
    let run = watchdog(
        &marker,
        &[
            "--timeout",
            "20",
            "--",
            "fetch",
            &server.url("/missing.jpg"),
            "-o",
            &out("m"),
        ],
    );
    assert_eq!(run.code, Some(14), "{}", run.stderr);
    for name in ["stall.jpg", "drip.jpg", "l.jpg", "m"] {
        assert!(
            !dir.path().join(name).exists(),
            "{name} must not be at its final path"
        );
    }
    marker.assert_no_survivors();
    let stderr = server.stop();
    assert!(stderr.is_empty(), "the server printed:\n{stderr}");
}

#[test]
fn the_bench_and_slurm_paths_serve_what_their_lists_expect() {
    let log_dir = tempdir();
    let log = log_dir.path().join("requests.log");
    let server = ScriptServer::start(&["--log", s(&log)]);
    let marker = Marker::new("script-server-bench");
    let dir = tempdir();
    let out = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let fetch = |path: &str, file: &str, extra: &[&str]| {
        let url = server.url(path);
        let mut args = if extra.is_empty() {
            vec!["--timeout", "20"]
        } else {
            extra.to_vec()
        };
        args.extend_from_slice(&["--", "fetch", &url, "-o", file]);
        watchdog(&marker, &args)
    };

    let run = fetch("/ok/70000/f1.bin", &out("ok"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(read(Path::new(&out("ok"))).len(), 70000);
    let run = fetch("/close/70000/f2.bin", &out("close"), &[]);
    assert_eq!(
        run.code,
        Some(15),
        "closed short of Content-Length is truncated: {}",
        run.stderr
    );
    for kind in ["stall", "never"] {
        let run = fetch(
            &format!("/{kind}/70000/f.bin"),
            &out(kind),
            &["--timeout", "20", "--stall", "1"],
        );
        assert_eq!(run.code, Some(124), "{kind}: {}", run.stderr);
    }
    let run = fetch(
        "/drip/70000/f.bin",
        &out("drip"),
        &["--stall", "3", "--timeout", "2"],
    );
    assert_eq!(run.code, Some(124), "drip: {}", run.stderr);

    let run = fetch("/img/a.jpg", &out("a.jpg"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let body = Command::new("python3")
        .arg(script("testserver.py"))
        .args(["body", "a.jpg"])
        .output()
        .expect("run testserver.py body");
    assert_eq!(
        read(Path::new(&out("a.jpg"))),
        body.stdout,
        "/img/NAME serves `testserver.py body NAME`"
    );
    assert!(body.stdout.starts_with(b"\xff\xd8\xff\xe0") && body.stdout.len() >= 2000);
    marker.assert_no_survivors();
    let stderr = server.stop();
    assert!(stderr.is_empty(), "the server printed:\n{stderr}");
    let logged = String::from_utf8_lossy(&read(&log)).into_owned();
    assert!(
        logged.contains("GET /img/a.jpg\n") && logged.contains("GET /close/70000/f2.bin\n"),
        "{logged}"
    );
}

#[test]
fn a_client_that_resets_its_connection_at_any_moment_prints_no_traceback() {
    let server = ScriptServer::start(&[]);
    // Before the request is whole, and on a kept-alive connection waiting for the next request: the
    // moments the HTTP server's own loop reads, outside any path's code.
    server.reset_after(b"GET /log", false);
    server.reset_after(b"GET /login.jpg HTTP/1.1\r\nHost: x\r\n\r\n", true);
    server.reset_after(b"GET /ok/100/x HTTP/1.1\r\nHost: x\r\n\r\n", true);
    // In the middle of a body, and while a path waits or drips.
    for path in [
        "/photo.png",
        "/stall.jpg",
        "/drip.jpg",
        "/ok/10000000/x",
        "/stall/9/x",
        "/never/9/x",
        "/slow/x",
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
        server.reset_after(request.as_bytes(), true);
    }
    // A batch whose workers are killed mid-download (the demo's batch, shortened).
    let marker = Marker::new("script-server-reset");
    let dir = tempdir();
    let list = dir.path().join("list.txt");
    let urls: Vec<String> = [
        "/stall.jpg",
        "/drip.jpg",
        "/login.jpg",
        "/never/9/x",
        "/slow/y.jpg",
    ]
    .iter()
    .map(|p| server.url(p))
    .collect();
    std::fs::write(&list, urls.join("\n") + "\n").expect("write the list");
    let run = watchdog(
        &marker,
        &[
            "batch",
            s(&list),
            "--out",
            &dir.path().join("o").to_string_lossy(),
            "-j",
            "5",
            "-t",
            "1",
            "--retries",
            "0",
            "-q",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    marker.assert_no_survivors();
    // The resets wake the threads blocked on those connections at once; give a loaded machine ample
    // time for them to run before the server is stopped (a slow thread can only hide a traceback).
    std::thread::sleep(Duration::from_millis(500));
    let stderr = server.stop();
    assert!(
        !stderr.contains("Traceback") && stderr.is_empty(),
        "a reset made the server print:\n{stderr}"
    );
}
