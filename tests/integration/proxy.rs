//! Downloads behind a corporate proxy, as curl makes them: a real Squid started by the test (stock
//! rules, Basic, Digest, NTLM, one that denies everything, one that intercepts TLS with its own CA), a
//! real Dante SOCKS5 server and OpenSSH's SOCKS4a. `http://`
//! goes as a forward-proxy request, `https://` through CONNECT; what the proxy does wrong is a
//! `proxy_error` (exit 19), never a `connect_error`; its credentials appear in no output. Every test
//! ends by checking that no process survived.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{exists, read, run_bounded, s, tempdir, Marker, Run, World, SCHEDULER_ENV};
use crate::proxy_servers::{Access, Dante, Squid, SshSocks, PROXY_PASSWORD, PROXY_USER};
use crate::server::{png, tls_config, SynSink, TestServer};

/// Bound for one watchdog run; far above what any run here needs.
const LIMIT: Duration = Duration::from_secs(60);

/// `watchdog --timeout 30 -- fetch URL -o OUT ARGS...` under `marker`, with `env` set.
fn fetch(marker: &Marker, url: &str, out: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = marker.watchdog();
    cmd.args(["--timeout", "30", "--", "fetch", url, "-o", s(out)])
        .args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    run_bounded(&mut cmd, LIMIT)
}

/// `watchdog batch LIST --out DIR ARGS...` with the list written to the root; returns the run and
/// the report's lines.
fn batch(
    w: &World,
    urls: &[String],
    args: &[&str],
    env: &[(&str, &str)],
) -> (Run, Vec<serde_json::Value>) {
    let list = w.path("list.txt");
    std::fs::write(&list, urls.join("\n") + "\n").expect("write list");
    let out = w.path("out");
    let mut cmd = w.marker.watchdog();
    cmd.args(["batch", s(&list), "--out", s(&out)])
        .args(args)
        .current_dir(w.root.path());
    for var in SCHEDULER_ENV {
        cmd.env_remove(var);
    }
    for (name, value) in env {
        cmd.env(name, value);
    }
    let run = run_bounded(&mut cmd, LIMIT);
    let report = std::fs::read_to_string(out.join("report.jsonl")).unwrap_or_default();
    let lines = report
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("report line {l}: {e}")))
        .collect();
    (run, lines)
}

fn field<'a>(line: &'a serde_json::Value, name: &str) -> &'a str {
    line[name].as_str().unwrap_or_default()
}

/// A TLS origin and the PEM of the CA that signed its certificate, written to `dir`.
fn tls_origin(dir: &Path) -> (TestServer, String) {
    let (config, ca_pem) = tls_config();
    let server = TestServer::start_tls(config);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    (server, s(&ca).to_string())
}

/// The one-line error of a failed fetch: exactly one line, naming the proxy, without credentials.
fn assert_one_proxy_line(run: &Run) {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {}", run.stderr);
    assert!(lines[0].starts_with("watchdog: "), "{}", run.stderr);
    assert!(lines[0].contains("proxy"), "{}", run.stderr);
    assert!(!run.stderr.contains(PROXY_PASSWORD), "{}", run.stderr);
}

#[test]
fn http_goes_to_stock_squid_as_a_forward_request_and_https_through_connect() {
    let w = World::new("proxy-stock");
    let (tls, ca) = tls_origin(w.root.path());
    let squid = Squid::start(Access::Stock, &[tls.port()]);

    let out = w.path("a.png");
    let run = fetch(
        &w.marker,
        &w.url("/image.png"),
        &out,
        &["-x", &squid.url()],
        &[],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    let log = squid.access_log();
    assert!(
        log.contains(&format!("GET {}", w.url("/image.png"))),
        "an absolute-form forward request: {log}"
    );
    assert!(!log.contains("CONNECT"), "no tunnel for http://: {log}");

    let secure = w.path("b.png");
    let run = fetch(
        &w.marker,
        &tls.url("/image.png"),
        &secure,
        &["--cacert", &ca],
        &[("HTTPS_PROXY", &squid.url())],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&secure), png());
    assert!(
        squid
            .access_log()
            .contains(&format!("CONNECT 127.0.0.1:{}", tls.port())),
        "{}",
        squid.access_log()
    );
    w.marker.assert_no_survivors();
}

#[test]
fn batch_through_stock_squid_delivers_every_item_curl_delivers() {
    let w = World::new("proxy-batch");
    let (tls, ca) = tls_origin(w.root.path());
    let squid = Squid::start(Access::Stock, &[tls.port()]);
    let mut urls = Vec::new();
    for i in 0..6 {
        urls.push(w.url(&format!("/image.png?plain={i}")));
        urls.push(tls.url(&format!("/image.png?tls={i}")));
    }
    // What curl gets through the same proxy.
    let curl_dir = tempdir();
    for (i, url) in urls.iter().enumerate() {
        let status = Command::new("curl")
            .args(["-sS", "--fail", "-x", &squid.url(), "--cacert", &ca, "-o"])
            .arg(curl_dir.path().join(i.to_string()))
            .arg(url)
            .status()
            .expect("run curl (apt-get install curl, or scripts/test.sh)");
        assert!(status.success(), "curl -x failed on {url}");
    }

    let (run, report) = batch(
        &w,
        &urls,
        &["-x", &squid.url(), "--cacert", &ca, "--jobs", "3"],
        &[],
    );
    assert_eq!(
        run.code,
        Some(0),
        "stderr: {}\n{report:#?}\n{}",
        run.stderr,
        squid.access_log()
    );
    assert_eq!(report.len(), urls.len());
    for line in &report {
        assert_eq!(field(line, "status"), "ok", "{line} {}", squid.access_log());
        let path = w.path("out").join(field(line, "path"));
        assert_eq!(read(&path), png(), "{line}");
    }
    for i in 0..urls.len() {
        assert_eq!(read(&curl_dir.path().join(i.to_string())), png());
    }
    let forwarded = |log: &str| log.lines().filter(|l| l.contains(" GET http://")).count();
    let log = squid.access_log_when(|log| forwarded(log) >= 2 * 6);
    assert_eq!(
        forwarded(&log),
        2 * 6,
        "curl's and watchdog's plain items, as forward requests: {log}"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_proxy_that_refuses_is_a_proxy_error_and_is_not_retried() {
    let w = World::new("proxy-deny");
    let (tls, ca) = tls_origin(w.root.path());
    let squid = Squid::start(Access::DenyAll, &[tls.port()]);
    for url in [w.url("/image.png"), tls.url("/image.png")] {
        let out = w.path("a.png");
        let run = fetch(
            &w.marker,
            &url,
            &out,
            &["-x", &squid.url(), "--cacert", &ca],
            &[],
        );
        assert_eq!(run.code, Some(19), "{url}: {}", run.stderr);
        assert_one_proxy_line(&run);
        assert!(run.stderr.contains("403"), "{}", run.stderr);
        assert!(!exists(&out));
    }

    let urls = [w.url("/image.png"), tls.url("/image.png")];
    let (run, report) = batch(
        &w,
        &urls,
        &["-x", &squid.url(), "--cacert", &ca, "--retries", "2"],
        &[],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    for line in &report {
        assert_eq!(field(line, "status"), "proxy_error", "{line}");
        assert_eq!(line["attempts"], 1, "a 403 is not retried: {line}");
        assert_eq!(line["http_status"], 403, "{line}");
    }
    assert!(!w.path("out").join("image.png").exists());
    w.marker.assert_no_survivors();
}

#[test]
fn a_proxy_that_cannot_reach_the_origin_is_a_retried_proxy_error() {
    let w = World::new("proxy-503");
    let squid = Squid::start(Access::Stock, &[]);
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{dead}/a.png");
    let (run, report) = batch(
        &w,
        &[url],
        &["-x", &squid.url(), "--retries", "2", "--host-failures", "0"],
        &[],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "proxy_error", "{}", report[0]);
    assert_eq!(
        report[0]["attempts"], 3,
        "a 503 from the proxy is retried: {}",
        report[0]
    );
    assert!(
        field(&report[0], "error").contains("could not reach"),
        "{}",
        report[0]
    );
    w.marker.assert_no_survivors();
}

#[test]
fn basic_digest_and_ntlm_proxy_authentication_fetch_http_and_https() {
    let w = World::new("proxy-auth");
    let (tls, ca) = tls_origin(w.root.path());
    // The NTLM proxy offers nothing else, so --proxy-anyauth succeeds there only by choosing NTLM.
    for (access, flag) in [
        (Access::Basic, None),
        (Access::Basic, Some("--proxy-anyauth")),
        (Access::Digest, Some("--proxy-digest")),
        (Access::Digest, Some("--proxy-anyauth")),
        (Access::Ntlm, Some("--proxy-ntlm")),
        (Access::Ntlm, Some("--proxy-anyauth")),
    ] {
        let squid = Squid::start(access, &[tls.port()]);
        let proxy = squid.url_with(PROXY_USER, PROXY_PASSWORD);
        for url in [w.url("/image.png"), tls.url("/image.png")] {
            let out = w.path("a.png");
            let mut args = vec!["-x", proxy.as_str(), "--cacert", ca.as_str()];
            args.extend(flag);
            let run = fetch(&w.marker, &url, &out, &args, &[]);
            assert_eq!(
                run.code,
                Some(0),
                "{access:?} {flag:?} {url}: {}",
                run.stderr
            );
            assert_eq!(read(&out), png());
            std::fs::remove_file(&out).expect("remove");
        }
        // And a batch through it, which keeps its connection to the proxy across items.
        let urls: Vec<String> = (0..4).map(|i| w.url(&format!("/image.png?{i}"))).collect();
        let mut args = vec!["-x", proxy.as_str(), "--jobs", "1"];
        args.extend(flag);
        let (run, report) = batch(&w, &urls, &args, &[]);
        assert_eq!(run.code, Some(0), "{access:?} {flag:?}: {}", run.stderr);
        assert!(
            report.iter().all(|l| field(l, "status") == "ok"),
            "{report:?}"
        );
        for line in &report {
            assert_eq!(read(&w.path("out").join(field(line, "path"))), png());
        }
        // The proxy let each request through as the user it authenticated.
        let through = |log: &str| log.lines().filter(|l| l.contains("/200 ")).count();
        let log = squid.access_log_when(|log| through(log) >= 2 + urls.len());
        assert_eq!(through(&log), 2 + urls.len(), "{access:?} {flag:?}: {log}");
        assert!(
            log.lines()
                .filter(|l| l.contains("/200 "))
                .all(|l| l.contains(PROXY_USER)),
            "{access:?} {flag:?}: {log}"
        );
        let _ = std::fs::remove_dir_all(w.path("out"));
    }
    w.marker.assert_no_survivors();
}

#[test]
fn a_407_names_the_schemes_the_proxy_offered_and_what_was_tried() {
    let w = World::new("proxy-407");
    let (tls, ca) = tls_origin(w.root.path());
    let squid = Squid::start(Access::Digest, &[tls.port()]);
    let out = w.path("a.png");
    let with_password = squid.url_with(PROXY_USER, PROXY_PASSWORD);
    let wrong = squid.url_with(PROXY_USER, "wrong-password");
    let cases: [(&str, &[&str], &str); 4] = [
        (&squid.url(), &[], "sent no credentials"),
        (&with_password, &[], "tried Basic, which it does not offer"),
        (&wrong, &["--proxy-digest"], "tried Digest and was refused"),
        (&wrong, &["--proxy-anyauth"], "--proxy-anyauth"),
    ];
    for url in [w.url("/image.png"), tls.url("/image.png")] {
        for (proxy, flags, tried) in cases {
            let mut args = vec!["-x", proxy, "--cacert", ca.as_str()];
            args.extend_from_slice(flags);
            let run = fetch(&w.marker, &url, &out, &args, &[]);
            assert_eq!(run.code, Some(19), "{url} {flags:?}: {}", run.stderr);
            assert_one_proxy_line(&run);
            assert!(run.stderr.contains("407"), "{}", run.stderr);
            assert!(run.stderr.contains("offers Digest"), "{}", run.stderr);
            assert!(run.stderr.contains(tried), "{tried}: {}", run.stderr);
            assert!(!run.stderr.contains("wrong-password"), "{}", run.stderr);
            assert!(!exists(&out));
        }
    }
    // A proxy that offers only NTLM, asked with Basic (the default): named, with the way out.
    let ntlm = Squid::start(Access::Ntlm, &[]);
    let run = fetch(
        &w.marker,
        &w.url("/image.png"),
        &out,
        &["-x", &ntlm.url_with(PROXY_USER, PROXY_PASSWORD)],
        &[],
    );
    assert_eq!(run.code, Some(19), "{}", run.stderr);
    assert_one_proxy_line(&run);
    for says in [
        "offers NTLM",
        "tried Basic, which it does not offer",
        "--proxy-ntlm",
    ] {
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
    }
    assert!(!exists(&out));
    let (_, report) = batch(
        &w,
        &[w.url("/image.png")],
        &["-x", &wrong, "--proxy-digest"],
        &[],
    );
    assert_eq!(field(&report[0], "status"), "proxy_error", "{}", report[0]);
    assert_eq!(
        report[0]["attempts"], 1,
        "a 407 is not retried: {}",
        report[0]
    );
    w.marker.assert_no_survivors();
}

#[test]
fn proxy_credentials_never_reach_any_output() {
    let w = World::new("proxy-redact");
    let squid = Squid::start(Access::DenyAll, &[]);
    let port = squid
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let events = w.path("events.jsonl");
    for proxy in [
        squid.url_with(PROXY_USER, PROXY_PASSWORD),
        format!("{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{port}"),
        format!("socks5h://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1"),
    ] {
        let out = w.path("a.png");
        let mut cmd = w.marker.watchdog();
        cmd.args([
            "--events",
            s(&events),
            "-vv",
            "--timeout",
            "30",
            "--",
            "fetch",
        ])
        .args([&w.url("/image.png"), "-o", s(&out), "-x", &proxy]);
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.code, Some(19), "{proxy}: {}", run.stderr);
        let log = std::fs::read_to_string(&events).expect("events");
        for text in [&run.stdout, &run.stderr, &log] {
            assert!(!text.contains(PROXY_PASSWORD), "{text}");
        }

        let (run, _) = batch(
            &w,
            &[w.url("/image.png")],
            &["-x", &proxy, "--retries", "0"],
            &[("HTTPS_PROXY", &proxy)],
        );
        let report = std::fs::read_to_string(w.path("out").join("report.jsonl")).expect("report");
        assert!(report.contains("proxy_error"), "{report}");
        for text in [&run.stdout, &run.stderr, &report] {
            assert!(!text.contains(PROXY_PASSWORD), "{text}");
        }
    }
    w.marker.assert_no_survivors();
}

#[test]
fn bad_proxy_settings_are_one_clear_line_and_leave_nothing() {
    let w = World::new("proxy-bad");
    let out = w.path("a.png");
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    // A proxy that answers half a head and hangs up.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let half = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Le");
        }
    });
    let cases: [(String, i32, &str); 4] = [
        (
            format!("ftp://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:21"),
            125,
            "'ftp' proxies are not supported",
        ),
        (
            format!("http://127.0.0.1:{dead}"),
            19,
            "cannot connect to proxy",
        ),
        (
            format!("http://{PROXY_USER}:{PROXY_PASSWORD}@no-such-proxy.invalid:3128"),
            19,
            "cannot resolve the proxy's host",
        ),
        (
            format!("http://127.0.0.1:{half}"),
            19,
            "closed the connection",
        ),
    ];
    for (proxy, code, says) in cases {
        let run = fetch(&w.marker, &w.url("/image.png"), &out, &["-x", &proxy], &[]);
        assert_eq!(run.code, Some(code), "{proxy}: {}", run.stderr);
        assert_one_proxy_line(&run);
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
        assert!(!exists(&out));
        assert!(!run.stderr.contains("connect_error"));
    }
    // The same from the environment, in batch mode: the item is reported, nothing is written.
    let (run, report) = batch(
        &w,
        &[w.url("/image.png")],
        &["--retries", "0"],
        &[("HTTP_PROXY", &format!("http://127.0.0.1:{dead}"))],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "proxy_error", "{}", report[0]);
    assert!(
        field(&report[0], "error").contains("(from HTTP_PROXY)"),
        "{}",
        report[0]
    );
    w.marker.assert_no_survivors();
}

#[test]
fn the_command_line_wins_over_the_environment_as_in_curl() {
    let w = World::new("proxy-precedence");
    let squid = Squid::start(Access::Stock, &[]);
    let dead = format!("http://127.0.0.1:{}", {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    });
    let out = w.path("a.png");
    let requests = |squid: &Squid| {
        squid
            .access_log()
            .lines()
            .filter(|l| l.contains(" GET "))
            .count()
    };

    // -x over HTTP_PROXY (and over the lowercase one, which wins over the uppercase).
    let run = fetch(
        &w.marker,
        &w.url("/image.png"),
        &out,
        &["-x", &squid.url()],
        &[("http_proxy", &dead), ("HTTP_PROXY", &dead)],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(requests(&squid), 1);
    std::fs::remove_file(&out).expect("remove");
    let run = fetch(
        &w.marker,
        &w.url("/image.png"),
        &out,
        &[],
        &[("http_proxy", &squid.url()), ("HTTP_PROXY", &dead)],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(requests(&squid), 2);
    std::fs::remove_file(&out).expect("remove");

    // -x "" turns proxies off; --noproxy and NO_PROXY bypass them.
    for (args, env) in [
        (vec!["-x", ""], vec![("HTTP_PROXY", squid.url())]),
        (
            vec!["--noproxy", "127.0.0.1"],
            vec![("HTTP_PROXY", squid.url())],
        ),
        (
            vec!["-x", squid.url().as_str()],
            vec![("NO_PROXY", "localhost,127.0.0.0/8".to_string())],
        ),
        (
            vec![],
            vec![("HTTP_PROXY", squid.url()), ("NO_PROXY", "*".to_string())],
        ),
    ] {
        let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let run = fetch(&w.marker, &w.url("/image.png"), &out, &args, &env);
        assert_eq!(run.code, Some(0), "{args:?} {env:?}: {}", run.stderr);
        std::fs::remove_file(&out).expect("remove");
    }
    assert_eq!(requests(&squid), 2, "bypassed: {}", squid.access_log());
    // --noproxy replaces NO_PROXY rather than adding to it.
    let run = fetch(
        &w.marker,
        &w.url("/image.png"),
        &out,
        &["--noproxy", "other.example"],
        &[("HTTP_PROXY", &squid.url()), ("NO_PROXY", "*")],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(requests(&squid), 3);
    w.marker.assert_no_survivors();
}

#[test]
fn socks5h_lets_the_proxy_resolve_the_name_and_socks4_and_socks5_work() {
    let w = World::new("proxy-socks");
    let dante = Dante::start();
    let port = w.server.port();
    let by_name = format!("http://localhost:{port}/image.png");
    for scheme in ["socks5h", "socks5", "socks4"] {
        let out = w.path(&format!("{scheme}.png"));
        let run = fetch(&w.marker, &by_name, &out, &["-x", &dante.url(scheme)], &[]);
        assert_eq!(run.code, Some(0), "{scheme}: {}", run.stderr);
        assert_eq!(read(&out), png());
    }
    // With our own resolver silent for the name, only socks5h (the proxy resolves it) gets through.
    let silent = [(watchdog_silent_hosts_env(), "localhost")];
    let (run, report) = batch(
        &w,
        std::slice::from_ref(&by_name),
        &[
            "-x",
            &dante.url("socks5h"),
            "--timeout",
            "5",
            "--retries",
            "0",
        ],
        &silent,
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "ok", "{}", report[0]);
    let _ = std::fs::remove_dir_all(w.path("out"));
    let (_, report) = batch(
        &w,
        &[by_name],
        &[
            "-x",
            &dante.url("socks5"),
            "--timeout",
            "3",
            "--retries",
            "0",
        ],
        &silent,
    );
    assert_eq!(field(&report[0], "status"), "dns_error", "{}", report[0]);
    w.marker.assert_no_survivors();
}

/// The test-only variable that makes a batch worker's resolver silent for some names.
fn watchdog_silent_hosts_env() -> &'static str {
    "WATCHDOG_TEST_SILENT_HOSTS"
}

#[test]
fn a_deadline_while_reaching_the_proxy_is_a_proxy_error_naming_it() {
    let w = World::new("proxy-syn");
    let sink = SynSink::start();
    let proxy = sink.url("");
    let (run, report) = batch(
        &w,
        &[w.url("/image.png")],
        &["-x", &proxy, "--timeout", "2", "--retries", "0"],
        &[],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "proxy_error", "{}", report[0]);
    let error = field(&report[0], "error");
    assert!(error.contains("no connection to the proxy"), "{error}");
    assert!(
        error.contains(proxy.trim_start_matches("http://")),
        "{error}"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_tls_intercepting_proxy_works_with_its_ca_in_cacert_or_ssl_cert_file() {
    let w = World::new("proxy-intercept");
    let (tls, origin_ca) = tls_origin(w.root.path());
    let (squid, proxy_ca) = Squid::start_intercepting(tls.port(), Path::new(&origin_ca));
    let proxy_ca = s(&proxy_ca).to_string();
    // By name, as a corporate proxy sees most origins: the certificate Squid 5 makes for an origin
    // named by its IP address does not carry that address ("no alternative certificate subject
    // name matches target IPv4 address").
    let url = format!("https://localhost:{}/image.png", tls.port());

    let out = w.path("a.png");
    let run = fetch(
        &w.marker,
        &url,
        &out,
        &["-x", &squid.url(), "--cacert", &proxy_ca],
        &[],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    std::fs::remove_file(&out).expect("remove");
    let run = fetch(
        &w.marker,
        &url,
        &out,
        &[],
        &[("HTTPS_PROXY", &squid.url()), ("SSL_CERT_FILE", &proxy_ca)],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    // The proxy saw inside the tunnel: it logs the decrypted requests, not only the CONNECT.
    let inside = |log: &str| log.matches(&format!(" GET {url} ")).count();
    let log = squid.access_log_when(|log| inside(log) >= 2);
    assert_eq!(inside(&log), 2, "both requests were intercepted: {log}");

    let urls: Vec<String> = (0..6).map(|i| format!("{url}?{i}")).collect();
    let (run, report) = batch(
        &w,
        &urls,
        &["-x", &squid.url(), "--cacert", &proxy_ca, "--jobs", "2"],
        &[],
    );
    assert_eq!(run.code, Some(0), "stderr: {}\n{report:?}", run.stderr);
    assert_eq!(report.len(), urls.len());
    for line in &report {
        assert_eq!(field(line, "status"), "ok", "{line}");
        assert_eq!(read(&w.path("out").join(field(line, "path"))), png());
    }
    let _ = std::fs::remove_dir_all(w.path("out"));

    // Trusting only the origin's CA, the proxy's certificate is refused: a tls_error, one line.
    let refused = w.path("refused.png");
    let run = fetch(
        &w.marker,
        &url,
        &refused,
        &["-x", &squid.url(), "--cacert", &origin_ca],
        &[],
    );
    assert_eq!(run.code, Some(13), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("watchdog: "), "{}", run.stderr);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(run.stderr.contains("intercepts TLS"), "{}", run.stderr);
    assert!(run.stderr.contains("--cacert"), "{}", run.stderr);
    assert!(!exists(&refused));
    let (run, report) = batch(
        &w,
        &urls[..1],
        &["-x", &squid.url(), "--cacert", &origin_ca, "--retries", "2"],
        &[],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "tls_error", "{}", report[0]);
    assert!(
        field(&report[0], "error").contains("certificate"),
        "{}",
        report[0]
    );
    assert!(!w.path("out").join("image.png").exists());
    w.marker.assert_no_survivors();
}

#[test]
fn socks4a_lets_the_proxy_resolve_the_name() {
    let w = World::new("proxy-socks4a");
    let socks = SshSocks::start();
    let port = w.server.port();
    let by_name = format!("http://localhost:{port}/image.png");
    let out = w.path("a.png");
    let run = fetch(
        &w.marker,
        &by_name,
        &out,
        &["-x", &socks.url("socks4a")],
        &[],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    // The request named the host; ssh, the proxy, resolved it.
    let asked = format!("dynamic request: socks4 host localhost port {port} ");
    assert!(socks.log().contains(&asked), "{asked}: {}", socks.log());

    // With our own resolver silent for the name, socks4a still gets through; socks4, which needs
    // the address from us, does not.
    let silent = [(watchdog_silent_hosts_env(), "localhost")];
    let args = |scheme: &str| {
        vec![
            "-x".to_string(),
            socks.url(scheme),
            "--timeout".to_string(),
            "5".to_string(),
            "--retries".to_string(),
            "0".to_string(),
        ]
    };
    let socks4a = args("socks4a");
    let socks4a: Vec<&str> = socks4a.iter().map(String::as_str).collect();
    let (run, report) = batch(&w, std::slice::from_ref(&by_name), &socks4a, &silent);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(field(&report[0], "status"), "ok", "{}", report[0]);
    assert_eq!(read(&w.path("out").join(field(&report[0], "path"))), png());
    let _ = std::fs::remove_dir_all(w.path("out"));
    let socks4 = args("socks4");
    let socks4: Vec<&str> = socks4.iter().map(String::as_str).collect();
    let (_, report) = batch(&w, &[by_name], &socks4, &silent);
    assert_eq!(field(&report[0], "status"), "dns_error", "{}", report[0]);
    w.marker.assert_no_survivors();
}
