//! Real proxies on loopback ports, started by the tests: Squid (Debian's `squid`) with a config each
//! test writes (the stock ACLs, Basic, Digest or NTLM authentication, or one that denies everything),
//! and Dante (`danted`) as a SOCKS5 server.
//!
//! Each runs from its own temp directory (config, logs, pid file, password files) in the foreground,
//! killed when the test drops it. A missing server fails the test with what to install:
//! `scripts/test.sh` and `.ci/run` install both.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::tempdir;

/// Squid's authentication helpers, as Debian installs them.
const SQUID_HELPERS: &str = "/usr/lib/squid";

/// How a test's Squid lets clients through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Debian's stock rules: any plain request from localhost, CONNECT only to the "SSL ports".
    Stock,
    /// Stock, and a user name and password checked with Basic (`basic_ncsa_auth`, an htpasswd file).
    Basic,
    /// Stock, and Digest (`digest_file_auth`).
    Digest,
    /// Stock, and NTLM (`ntlm_fake_auth`, which takes any user and password): watchdog's libcurl is
    /// built without NTLM, and says so.
    Ntlm,
    /// Every request refused with 403.
    DenyAll,
}

/// The user and password the authenticating proxies accept.
pub(crate) const PROXY_USER: &str = "alice";
pub(crate) const PROXY_PASSWORD: &str = "s3cret-proxy-pw";

/// A running Squid, killed on drop.
pub(crate) struct Squid {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Squid {
    /// Starts Squid with `access`, allowing CONNECT to `ssl_ports` (the TLS test server's port; the
    /// stock config's 443 otherwise). Fails the test when Squid is not installed.
    pub(crate) fn start(access: Access, ssl_ports: &[u16]) -> Squid {
        let binary = find("squid").unwrap_or_else(|| {
            panic!(
                "squid is not installed (looked on PATH and in /usr/sbin): install it \
                 (apt-get install squid apache2-utils) or run scripts/test.sh, which does"
            )
        });
        let dir = world_writable_tempdir();
        let root = dir.path();
        let port = free_port();
        let auth = match access {
            Access::Stock | Access::DenyAll => String::new(),
            Access::Basic => {
                let passwd = root.join("passwd");
                let made = Command::new(find("htpasswd").unwrap_or_else(|| {
                    panic!("htpasswd is not installed: apt-get install apache2-utils")
                }))
                .args(["-b", "-c"])
                .arg(&passwd)
                .args([PROXY_USER, PROXY_PASSWORD])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run htpasswd");
                assert!(made.success(), "htpasswd failed");
                make_readable(&passwd);
                format!(
                    "auth_param basic program {SQUID_HELPERS}/basic_ncsa_auth {}\n\
                     auth_param basic realm watchdog-test\n",
                    passwd.display()
                )
            }
            Access::Digest => {
                let passwd = root.join("digest_passwd");
                std::fs::write(&passwd, format!("{PROXY_USER}:{PROXY_PASSWORD}\n"))
                    .expect("write digest passwords");
                make_readable(&passwd);
                format!(
                    "auth_param digest program {SQUID_HELPERS}/digest_file_auth {}\n\
                     auth_param digest realm watchdog-test\n",
                    passwd.display()
                )
            }
            Access::Ntlm => format!(
                "auth_param ntlm program {SQUID_HELPERS}/ntlm_fake_auth\n\
                 auth_param ntlm children 2\n"
            ),
        };
        let ssl_ports: Vec<String> = if ssl_ports.is_empty() {
            vec!["443".to_string()]
        } else {
            ssl_ports.iter().map(u16::to_string).collect()
        };
        let rules = match access {
            Access::DenyAll => "http_access deny all\n".to_string(),
            Access::Stock => "http_access deny CONNECT !SSL_ports\n\
                              http_access allow localhost\n\
                              http_access deny all\n"
                .to_string(),
            _ => "acl authenticated proxy_auth REQUIRED\n\
                  http_access deny CONNECT !SSL_ports\n\
                  http_access allow localhost authenticated\n\
                  http_access deny all\n"
                .to_string(),
        };
        let r = root.display();
        let config = format!(
            "http_port 127.0.0.1:{port}\n\
             pid_filename {r}/squid.pid\n\
             cache_log {r}/cache.log\n\
             access_log stdio:{r}/access.log\n\
             coredump_dir {r}\n\
             cache deny all\n\
             cache_mem 4 MB\n\
             dns_nameservers 127.0.0.1\n\
             visible_hostname localhost\n\
             pinger_enable off\n\
             shutdown_lifetime 0 seconds\n\
             acl SSL_ports port {}\n\
             acl CONNECT method CONNECT\n\
             {auth}{rules}",
            ssl_ports.join(" ")
        );
        let conf = root.join("squid.conf");
        std::fs::write(&conf, config).expect("write squid.conf");
        make_readable(&conf);
        let child = Command::new(binary)
            .arg("-N")
            .arg("-f")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start squid");
        let mut squid = Squid { child, port, dir };
        wait_until_listening(
            &mut squid.child,
            port,
            "squid",
            &squid.dir.path().join("cache.log"),
        );
        squid
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`.
    pub(crate) fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// The access log so far: one line per request, with its method and URL.
    pub(crate) fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Squid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Dante SOCKS5 server without authentication, stopped on drop.
pub(crate) struct Dante {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Dante {
    pub(crate) fn start() -> Dante {
        let binary = find("danted").unwrap_or_else(|| {
            panic!(
                "danted is not installed (looked on PATH and in /usr/sbin): install it \
                 (apt-get install dante-server) or run scripts/test.sh, which does"
            )
        });
        let dir = world_writable_tempdir();
        let root = dir.path();
        let port = free_port();
        // SAFETY: geteuid has no preconditions.
        let as_root = unsafe { libc::geteuid() } == 0;
        let user = if as_root {
            "user.unprivileged: nobody\n"
        } else {
            ""
        };
        let config = format!(
            "logoutput: {}/danted.log\n\
             internal: 127.0.0.1 port = {port}\n\
             external: 127.0.0.1\n\
             socksmethod: none\n\
             clientmethod: none\n\
             {user}\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0\n log: error connect }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 127.0.0.0/8\n protocol: tcp\n log: error connect }}\n",
            root.display()
        );
        let conf = root.join("danted.conf");
        std::fs::write(&conf, config).expect("write danted.conf");
        make_readable(&conf);
        let child = Command::new(binary)
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(root.join("danted.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start danted");
        let mut dante = Dante { child, port, dir };
        let log = dante.dir.path().join("danted.log");
        wait_until_listening(&mut dante.child, port, "danted", &log);
        dante
    }

    /// `SCHEME://127.0.0.1:PORT`.
    pub(crate) fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for Dante {
    fn drop(&mut self) {
        // SIGTERM: its children leave with it.
        // SAFETY: kill(2) on the pid of a child this value owns and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until `port` accepts connections, failing the test with the server's log if it
/// exits first or never listens.
fn wait_until_listening(child: &mut Child, port: u16, name: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{name} exited with {status}: {log}");
        }
        assert!(Instant::now() < deadline, "{name} did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A temp dir the proxies' unprivileged users (Squid's `proxy`, Dante's `nobody`) can write in.
fn world_writable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
        .expect("chmod the proxy's directory");
    dir
}

fn make_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
