//! Downloads from a real nginx on a loopback port: a normal transfer with a checksum, Range requests
//! for `--resume`, and a `limit_rate` location whose slow transfers the deadline must cut short, both
//! for the built-in worker and for a real `curl` supervised as an ordinary command.
//!
//! nginx runs from a generated configuration in a temp directory (its pid file, logs and temp paths
//! too), in the foreground, as a single process that the test kills when done. A missing nginx (or, for
//! the curl test, a missing curl) fails the test with a note on what to install: a test that returns
//! early because its server is absent is a test that did not run. `scripts/test.sh` installs both.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{exists, s, sha256_hex, tempdir, watchdog, Marker};
use crate::server::data;

/// Size of `big.bin`: at the slow location's 20 KB/s it would take about 50 s.
const BIG: usize = 1 << 20;

/// A running nginx, killed on drop.
pub(crate) struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx; fails the test when nginx is not installed.
    pub(crate) fn start() -> Nginx {
        let Some(binary) = find_nginx() else {
            panic!(
                "nginx is not installed (looked on PATH, in /usr/sbin and /usr/local/sbin): \
                 install it (apt-get install nginx) or run scripts/test.sh, which does"
            );
        };
        let dir = tempdir();
        let root = dir.path();
        let www = root.join("www");
        std::fs::create_dir_all(&www).expect("create www");
        std::fs::create_dir_all(root.join("tmp")).expect("create tmp");
        std::fs::write(www.join("image.png"), data(5000)).expect("write image.png");
        std::fs::write(www.join("big.bin"), data(BIG)).expect("write big.bin");
        let port = free_port();
        let root_str = root.display();
        let config = format!(
            "daemon off;
master_process off;
worker_processes 1;
pid {root_str}/nginx.pid;
error_log {root_str}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {root_str}/access.log;
    client_body_temp_path {root_str}/tmp/client;
    proxy_temp_path {root_str}/tmp/proxy;
    fastcgi_temp_path {root_str}/tmp/fastcgi;
    uwsgi_temp_path {root_str}/tmp/uwsgi;
    scgi_temp_path {root_str}/tmp/scgi;
    types {{ image/png png; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root_str}/www;
        location /slow/ {{
            alias {root_str}/www/;
            limit_rate 20k;
        }}
    }}
}}
"
        );
        let conf = root.join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let child = Command::new(&binary)
            .arg("-p")
            .arg(root)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(root.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log =
                    std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
                panic!("nginx exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The document root: a file written here is served at `/NAME`.
    pub(crate) fn www(&self) -> PathBuf {
        self.dir.path().join("www")
    }

    fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_nginx() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn nginx_download_with_checksum() {
    let nginx = Nginx::start();
    let m = Marker::new("nginx-ok");
    let out = nginx.out("a.png");
    let digest = sha256_hex(&data(5000));
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "10",
            "--",
            "fetch",
            &nginx.url("/image.png"),
            "-o",
            s(&out),
            "--expect",
            "image",
            "--sha256",
            &digest,
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(std::fs::read(&out).expect("read"), data(5000));

    let wrong = "f".repeat(64);
    let other = nginx.out("b.png");
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "10",
            "--",
            "fetch",
            &nginx.url("/image.png"),
            "-o",
            s(&other),
            "--sha256",
            &wrong,
        ],
    );
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    assert!(!exists(&other));

    let run = watchdog(
        &m,
        &["--", "fetch", &nginx.url("/missing.png"), "-o", s(&other)],
    );
    assert_eq!(run.code, Some(14), "stderr: {}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn nginx_resume_uses_range_requests() {
    let nginx = Nginx::start();
    let m = Marker::new("nginx-resume");
    let out = nginx.out("big.bin");
    std::fs::write(watchdog::temp_path_for(&out), &data(BIG)[..300_000]).expect("write partial");
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "10",
            "--",
            "fetch",
            &nginx.url("/big.bin"),
            "-o",
            s(&out),
            "--resume",
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(std::fs::read(&out).expect("read") == data(BIG));
    let log = std::fs::read_to_string(nginx.dir.path().join("access.log")).unwrap_or_default();
    assert!(log.contains("\" 206 "), "nginx answered 206: {log}");
}

#[test]
fn nginx_slow_transfer_is_stopped_by_the_deadline() {
    let nginx = Nginx::start();
    let m = Marker::new("nginx-slow");
    let out = nginx.out("big.bin");
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "1",
            "--",
            "fetch",
            &nginx.url("/slow/big.bin"),
            "-o",
            s(&out),
        ],
    );
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    assert!(!exists(&out));
    assert!(!exists(&watchdog::temp_path_for(&out)));
    m.assert_no_survivors();
}

#[test]
fn nginx_slow_curl_is_stopped_and_leaves_no_process() {
    let nginx = Nginx::start();
    assert!(
        find_in_path("curl").is_some(),
        "curl is not installed: install it (apt-get install curl) or run scripts/test.sh, which does"
    );
    let m = Marker::new("nginx-curl");
    let out = nginx.out("curl.bin");
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "1",
            "--",
            "curl",
            "-s",
            "-o",
            s(&out),
            &nginx.url("/slow/big.bin"),
        ],
    );
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "took {:?}",
        run.elapsed
    );
    m.assert_no_survivors();
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
