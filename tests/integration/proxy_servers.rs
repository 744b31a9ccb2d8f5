//! Real proxies on loopback ports, started by the tests: Squid (Debian's `squid-openssl`) with a config
//! each test writes (the stock ACLs, Basic, Digest or NTLM authentication, one that denies everything,
//! or one that intercepts TLS with a CA of its own, as corporate proxies do), Dante (`danted`) as a
//! SOCKS5 server, and OpenSSH's dynamic forwarding (`ssh -D` to an `sshd` of the test's own) as a
//! SOCKS4a server, which Dante is not.
//!
//! Each runs from its own temp directory (config, logs, pid file, password files, keys) in the
//! foreground, killed when the test drops it. A missing server fails the test with what to install:
//! `scripts/test.sh` and `.ci/run` install them all.

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
    /// Stock, and NTLM (`ntlm_fake_auth`, which takes any user and password and logs the user).
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
        let config = format!(
            "http_port 127.0.0.1:{port}\n\
             acl SSL_ports port {}\n\
             acl CONNECT method CONNECT\n\
             {auth}{rules}",
            ssl_ports.join(" ")
        );
        Squid::launch(binary, dir, port, &config)
    }

    /// Starts a Squid that intercepts TLS ("SSL bump"): it answers each CONNECT (only to
    /// `ssl_port`) with a certificate for the origin's name that it makes on the fly, signed by a CA
    /// of its own, and reaches the origin itself, trusting `origin_ca`. Returns it and the path of
    /// its CA's certificate, the corporate root a client must trust. Fails the test when Squid is
    /// not installed or is built without OpenSSL (Debian's `squid` rather than `squid-openssl`).
    pub(crate) fn start_intercepting(ssl_port: u16, origin_ca: &Path) -> (Squid, PathBuf) {
        let binary = find("squid").unwrap_or_else(|| {
            panic!("squid is not installed: apt-get install squid-openssl, or run scripts/test.sh")
        });
        let version = Command::new(&binary)
            .arg("-v")
            .output()
            .expect("run squid -v");
        assert!(
            String::from_utf8_lossy(&version.stdout).contains("--with-openssl"),
            "{} is built without OpenSSL and cannot intercept TLS: apt-get install squid-openssl \
             (it replaces squid), or run scripts/test.sh",
            binary.display()
        );
        let dir = world_writable_tempdir();
        let root = dir.path().to_path_buf();
        let port = free_port();
        let ca_path = root.join("intercepting-ca.pem");
        let ca = ca_path.clone();
        let key = root.join("intercepting-ca.key");
        let (ca_pem, key_pem) = intercepting_ca();
        std::fs::write(&ca, ca_pem).expect("write the proxy's CA");
        std::fs::write(&key, key_pem).expect("write the proxy's CA key");
        let trusted = root.join("origin-ca.pem");
        std::fs::copy(origin_ca, &trusted).expect("copy the origin's CA");
        let certgen = Path::new(SQUID_HELPERS).join("security_file_certgen");
        let db = root.join("ssl_db");
        let made = Command::new(&certgen)
            .args(["-c", "-s"])
            .arg(&db)
            .args(["-M", "4MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("{}: {e}: apt-get install squid-openssl", certgen.display())
            });
        assert!(made.success(), "{} -c failed", certgen.display());
        // Squid drops to its own user, which must read the keys and write the certificate database.
        let opened = Command::new("chmod")
            .arg("-R")
            .arg("a+rwX")
            .arg(&root)
            .status()
            .expect("run chmod");
        assert!(opened.success(), "chmod -R failed");
        let (ca, key, db, trusted) = (ca.display(), key.display(), db.display(), trusted.display());
        // `stare` at the first two steps and `bump` at the third: the certificate made for the client
        // mimics the origin's (its names and addresses), as a corporate proxy's does.
        let config = format!(
            "http_port 127.0.0.1:{port} ssl-bump generate-host-certificates=on \
             dynamic_cert_mem_cache_size=4MB tls-cert={ca} tls-key={key}\n\
             sslcrtd_program {certgen} -s {db} -M 4MB\n\
             sslcrtd_children 2 startup=1 idle=1\n\
             tls_outgoing_options cafile={trusted}\n\
             ssl_bump stare all\n\
             ssl_bump bump all\n\
             acl SSL_ports port {ssl_port}\n\
             acl CONNECT method CONNECT\n\
             http_access deny CONNECT !SSL_ports\n\
             http_access allow localhost\n\
             http_access deny all\n",
            certgen = certgen.display()
        );
        (Squid::launch(binary, dir, port, &config), ca_path)
    }

    /// Writes `squid.conf` (the common settings, then `specific`) into `dir` and runs `binary` on it
    /// in the foreground, until it listens on `port`.
    fn launch(binary: PathBuf, dir: tempfile::TempDir, port: u16, specific: &str) -> Squid {
        let root = dir.path();
        let r = root.display();
        let config = format!(
            "pid_filename {r}/squid.pid\n\
             cache_log {r}/cache.log\n\
             access_log stdio:{r}/access.log\n\
             coredump_dir {r}\n\
             cache deny all\n\
             cache_mem 4 MB\n\
             dns_nameservers 127.0.0.1\n\
             visible_hostname localhost\n\
             pinger_enable off\n\
             shutdown_lifetime 0 seconds\n\
             {specific}"
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

    /// The access log once `complete` says it is, or after 10 s: Squid logs a request when it has
    /// finished with it, which can be a moment after the client has its answer.
    pub(crate) fn access_log_when(&self, complete: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.access_log();
            if complete(&log) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// A CA certificate and its private key (both PEM), as a company's TLS-intercepting proxy holds them.
fn intercepting_ca() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
        .distinguished_name
        .push(DnType::CommonName, "watchdog test intercepting proxy CA");
    let ca = params.self_signed(&key).expect("CA certificate");
    (ca.pem(), key.serialize_pem())
}

/// A SOCKS4a (and 4 and 5) server: OpenSSH's dynamic forwarding, `ssh -D`, logged in to an `sshd`
/// of the test's own on a loopback port with keys made for it. The name of a SOCKS4a request is
/// resolved by this ssh, which logs every forwarded connection with the host it was asked for.
pub(crate) struct SshSocks {
    sshd: Child,
    ssh: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SshSocks {
    pub(crate) fn start() -> SshSocks {
        let missing = |name: &str| {
            panic!(
                "{name} is not installed (looked on PATH and in /usr/sbin): apt-get install \
                 openssh-server openssh-client, or run scripts/test.sh"
            )
        };
        let sshd_binary = find("sshd").unwrap_or_else(|| missing("sshd"));
        let ssh_binary = find("ssh").unwrap_or_else(|| missing("ssh"));
        let keygen = find("ssh-keygen").unwrap_or_else(|| missing("ssh-keygen"));
        let dir = tempdir();
        let root = dir.path();
        for name in ["host_key", "client_key"] {
            let made = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(root.join(name))
                .stdin(Stdio::null())
                .status()
                .expect("run ssh-keygen");
            assert!(made.success(), "ssh-keygen failed");
        }
        std::fs::copy(root.join("client_key.pub"), root.join("authorized_keys"))
            .expect("authorized_keys");
        if crate::common::is_root() {
            // sshd's privilege separation directory, which only the system's own sshd creates.
            std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        }
        let sshd_port = free_port();
        let r = root.display();
        let config = format!(
            "ListenAddress 127.0.0.1:{sshd_port}\n\
             HostKey {r}/host_key\n\
             AuthorizedKeysFile {r}/authorized_keys\n\
             PidFile {r}/sshd.pid\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\n"
        );
        std::fs::write(root.join("sshd_config"), config).expect("write sshd_config");
        let mut sshd = Command::new(&sshd_binary)
            .args(["-D", "-e", "-f"])
            .arg(root.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(root.join("sshd.log")).expect("create sshd.log"))
            .spawn()
            .expect("start sshd");
        wait_until_listening(&mut sshd, sshd_port, "sshd", &root.join("sshd.log"));
        let port = free_port();
        let user = whoami();
        let mut ssh = Command::new(&ssh_binary)
            .args(["-N", "-vv", "-F", "/dev/null", "-i"])
            .arg(root.join("client_key"))
            .arg("-E")
            .arg(root.join("ssh.log"))
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ExitOnForwardFailure=yes",
                "-p",
                &sshd_port.to_string(),
                "-D",
                &format!("127.0.0.1:{port}"),
                &format!("{user}@127.0.0.1"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh -D");
        if let Err(why) = wait_for_port(&mut ssh, port) {
            let _ = sshd.kill();
            let _ = sshd.wait();
            let sshd_log = std::fs::read_to_string(root.join("sshd.log")).unwrap_or_default();
            let ssh_log = std::fs::read_to_string(root.join("ssh.log")).unwrap_or_default();
            panic!("ssh -D {why}: {ssh_log}\nsshd: {sshd_log}");
        }
        SshSocks {
            sshd,
            ssh,
            port,
            dir,
        }
    }

    /// `SCHEME://127.0.0.1:PORT`.
    pub(crate) fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// ssh's log so far: with `-vv`, a line per SOCKS request naming the host asked for.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ssh.log")).unwrap_or_default()
    }
}

impl Drop for SshSocks {
    fn drop(&mut self) {
        for child in [&mut self.ssh, &mut self.sshd] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The name of the user running the tests, from `id -un`.
fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits (bounded) until `port` accepts connections, failing the test with the server's log if it
/// exits first or never listens.
fn wait_until_listening(child: &mut Child, port: u16, name: &str, log: &Path) {
    if let Err(why) = wait_for_port(child, port) {
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{name} {why}: {log}");
    }
}

/// Waits (bounded) until `port` accepts connections; says why not if `child` exits first or the
/// port never opens.
fn wait_for_port(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        if Instant::now() > deadline {
            return Err("did not start listening".to_string());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
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
