//! The built-in download worker against the misbehaving loopback server: every failure has its own exit
//! code and leaves nothing at the final path; slow and stuck transfers are stopped by the supervisor.
//!
//! Most tests run `watchdog [OPTIONS] -- fetch URL -o PATH` as a user would. A few run the worker
//! directly (`watchdog-fetch __fetch-worker@VERSION ...`) for behaviour that is the worker's alone.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{exists, read, run_bounded, s, tempdir, Marker, Run, World};
use crate::server::{data, fixture, jpeg, png, tls_config, TestProxy, TestServer};

/// Generous bound for anything that should be quick.
const QUICK: Duration = Duration::from_secs(10);

impl World {
    /// `watchdog-fetch __fetch-worker@VERSION ARGS`: the worker alone, no supervisor.
    fn worker(&self, args: &[&str]) -> Run {
        let mut cmd = self.marker.fetch_worker();
        cmd.current_dir(self.root.path()).args(args);
        run_bounded(&mut cmd, Duration::from_secs(30))
    }

    /// `watchdog SUPERVISOR_ARGS -- fetch FETCH_ARGS`.
    fn supervised(&self, supervisor: &[&str], fetch: &[&str]) -> Run {
        let mut cmd = self.marker.watchdog();
        cmd.current_dir(self.root.path())
            .args(supervisor)
            .args(["--", "fetch"])
            .args(fetch);
        run_bounded(&mut cmd, Duration::from_secs(30))
    }

    /// Asserts that neither the final path nor its temp file exists.
    fn assert_nothing_at(&self, path: &Path) {
        assert!(!exists(path), "{} exists", path.display());
        let temp = watchdog::temp_path_for(path);
        assert!(!exists(&temp), "temp file {} was left", temp.display());
    }
}

// ---- through the supervisor ---------------------------------------------------------------------

#[test]
fn an_image_is_downloaded_and_reported_on_the_progress_channel() {
    let w = World::new("fetch-ok");
    let out = w.path("a.png");
    let events = w.path("events.jsonl");
    let run = w.supervised(
        &["--timeout", "5", "--events", s(&events)],
        &[&w.url("/image.png"), "-o", s(&out), "--expect", "image"],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    assert!(!exists(&watchdog::temp_path_for(&out)));
    let events = String::from_utf8_lossy(&read(&events)).into_owned();
    assert!(events.contains(r#""event":"start""#), "{events}");
    assert!(
        events.contains("watchdog-part"),
        "start names the temp file: {events}"
    );
    assert!(events.contains(r#""event":"done""#), "{events}");
    w.marker.assert_no_survivors();
}

/// `-o DIR` puts the file in DIR under the URL's name, as `curl --output-dir` and `wget -P` do (it used
/// to download the whole body and then fail to rename it onto the directory); a DIR that does not
/// exist fails before any request is sent.
#[test]
fn o_with_a_directory_saves_into_it_or_fails_before_the_download() {
    let w = World::new("fetch-o-dir");
    let dir = w.path("imgs");
    std::fs::create_dir_all(&dir).expect("make the directory");
    for given in [
        s(&dir).to_string(),
        format!("{}/", s(&dir)),
        ".".to_string(),
    ] {
        let run = w.supervised(
            &["--timeout", "5"],
            &[&w.url("/file/cats/a.bin"), "-o", &given],
        );
        assert_eq!(run.code, Some(0), "-o {given}: {}", run.stderr);
    }
    let body = crate::server::file_body("/file/cats/a.bin");
    assert_eq!(read(&dir.join("a.bin")), body);
    assert_eq!(read(&w.path("a.bin")), body);
    let asked = w.server.requests_for("/file/cats/b.bin");
    let missing = format!("{}/", s(&w.path("nope")));
    let run = w.supervised(
        &["--timeout", "5"],
        &[&w.url("/file/cats/b.bin"), "-o", &missing],
    );
    assert_eq!(run.code, Some(17), "{}", run.stderr);
    assert!(run.stderr.contains("no such directory"), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(
        w.server.requests_for("/file/cats/b.bin"),
        asked,
        "no request sent"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn headers_then_silence_is_stopped_by_the_deadline() {
    let w = World::new("fetch-stall-deadline");
    let out = w.path("a.png");
    let run = w.supervised(&["--timeout", "1"], &[&w.url("/stall"), "-o", s(&out)]);
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    w.assert_nothing_at(&out);
    w.marker.assert_no_survivors();
}

#[test]
fn headers_then_silence_is_stopped_by_the_stall_watch() {
    let w = World::new("fetch-stall");
    let out = w.path("a.png");
    let run = w.supervised(
        &["--timeout", "20", "--stall", "0.5"],
        &[&w.url("/stall"), "-o", s(&out)],
    );
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    w.assert_nothing_at(&out);
    w.marker.assert_no_survivors();
}

/// A download watchdog stops says why in one line, named by what had arrived (curl says `(28)
/// Operation too slow`); the bytes that came just before the pause are on the progress channel. Other
/// commands keep GNU timeout's silence.
#[test]
fn a_fetch_stopped_by_watchdog_says_in_one_line_how_far_it_got() {
    let w = World::new("fetch-stopped-why");
    let out = w.path("a.bin");
    let events = w.path("events.jsonl");
    let run = w.supervised(
        &["--timeout", "20", "--stall", "1", "--events", s(&events)],
        &[&w.url("/stall-after/102400/249856"), "-o", s(&out)],
    );
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "watchdog: fetch stopped: no data for 1 s after 100.0 KiB of 244.0 KiB of the body (--stall)"
    );
    let events = String::from_utf8_lossy(&read(&events)).into_owned();
    assert!(
        events.contains(r#""bytes":102400,"total":249856"#),
        "the last bytes before the pause are reported: {events}"
    );
    w.assert_nothing_at(&out);

    let run = w.supervised(
        &["--timeout", "1"],
        &[&w.url("/stall-after/0/5000"), "-o", s(&out)],
    );
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "watchdog: fetch stopped: the deadline of 1 s passed after the response head (HTTP 200), before any of the body (--timeout)"
    );
    let run = w.supervised(&["--stall", "1"], &[&w.url("/silent"), "-o", s(&out)]);
    assert_eq!(run.code, Some(124), "stderr: {}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "watchdog: fetch stopped: no answer for 1 s (--stall)"
    );
    let run = w.supervised(&["--timeout", "1"], &[&w.url("/silent"), "-o", s(&out)]);
    assert_eq!(
        run.stderr.trim_end(),
        "watchdog: fetch stopped: the deadline of 1 s passed before any answer (--timeout)"
    );

    let mut cmd = w.marker.watchdog();
    cmd.args(["--stall", "0.5", "--", "sleep", "10"]);
    let run = run_bounded(&mut cmd, Duration::from_secs(30));
    assert_eq!(run.code, Some(124));
    assert_eq!(
        run.stderr, "",
        "other commands stay silent, as in GNU timeout"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_server_that_never_answers_is_stopped_by_the_deadline() {
    let w = World::new("fetch-silent");
    let out = w.path("a.png");
    let run = w.supervised(&["--timeout", "1"], &[&w.url("/silent"), "-o", s(&out)]);
    assert_eq!(run.code, Some(124));
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    w.assert_nothing_at(&out);
    w.marker.assert_no_survivors();
}

#[test]
fn an_endless_body_is_stopped_by_the_deadline() {
    let w = World::new("fetch-endless");
    let out = w.path("a.png");
    let run = w.supervised(&["--timeout", "1"], &[&w.url("/endless"), "-o", s(&out)]);
    assert_eq!(run.code, Some(124));
    assert!(run.elapsed < QUICK, "took {:?}", run.elapsed);
    w.assert_nothing_at(&out);
    w.marker.assert_no_survivors();
}

#[test]
fn a_slow_but_steady_drip_is_not_a_stall() {
    // One byte every 150 ms for 1.5 s, under a 0.6 s stall watch: every byte is a sign of life.
    let w = World::new("fetch-drip");
    let out = w.path("a.png");
    let run = w.supervised(
        &["--timeout", "20", "--stall", "0.6"],
        &[&w.url("/drip/150/10"), "-o", s(&out)],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(10));
    w.marker.assert_no_survivors();
}

#[test]
fn a_drip_slower_than_the_deadline_is_stopped() {
    let w = World::new("fetch-drip-slow");
    let out = w.path("a.png");
    let run = w.supervised(
        &["--timeout", "1"],
        &[&w.url("/drip/100/1000"), "-o", s(&out)],
    );
    assert_eq!(run.code, Some(124));
    w.assert_nothing_at(&out);
    w.marker.assert_no_survivors();
}

#[test]
fn a_slow_chunked_body_completes_within_the_deadline() {
    let w = World::new("fetch-chunked");
    let out = w.path("a.png");
    let run = w.supervised(
        &["--timeout", "10"],
        &[&w.url("/chunked/50/8"), "-o", s(&out), "--expect", "image"],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(8000));
}

#[test]
fn resume_keeps_the_partial_file_after_a_deadline() {
    let w = World::new("fetch-resume-kept");
    let out = w.path("a.png");
    let run = w.supervised(
        &["--timeout", "1"],
        &[&w.url("/stall"), "-o", s(&out), "--resume"],
    );
    assert_eq!(run.code, Some(124));
    assert!(!exists(&out));
    let temp = watchdog::temp_path_for(&out);
    assert_eq!(
        read(&temp),
        data(1000),
        "the partial file holds what arrived"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn worker_exit_codes_pass_through_the_supervisor() {
    let w = World::new("fetch-404-supervised");
    let out = w.path("a.png");
    let run = w.supervised(&["--timeout", "5"], &[&w.url("/status/404"), "-o", s(&out)]);
    assert_eq!(run.code, Some(14), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("404"), "{}", run.stderr);
    w.assert_nothing_at(&out);
}

// ---- HTTP failures, one exit code each ----------------------------------------------------------

#[test]
fn http_error_statuses_exit_14_and_leave_nothing() {
    let w = World::new("fetch-status");
    for code in ["404", "500"] {
        let out = w.path("a.png");
        let run = w.worker(&[&w.url(&format!("/status/{code}")), "-o", s(&out)]);
        assert_eq!(run.code, Some(14), "stderr: {}", run.stderr);
        assert!(
            run.stderr.starts_with("watchdog: fetch: http://127.0.0.1:"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(code), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        w.assert_nothing_at(&out);
    }
}

#[test]
fn html_instead_of_an_image_is_rejected() {
    let w = World::new("fetch-html");
    let out = w.path("a.png");
    let run = w.worker(&[&w.url("/html"), "-o", s(&out), "--expect", "image"]);
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("HTML"), "{}", run.stderr);
    w.assert_nothing_at(&out);
    // Without --expect, the same page is a fine download.
    let run = w.worker(&[&w.url("/html"), "-o", s(&out)]);
    assert_eq!(run.code, Some(0));
}

#[test]
fn jpeg_passes_the_image_check() {
    let w = World::new("fetch-jpeg");
    let run = w.worker(&[&w.url("/image.jpg"), "--expect", "image"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&w.path("image.jpg")), jpeg(), "named after the URL");
}

/// One image of each format the check knows, as encoders write them.
const IMAGES: [&str; 8] = [
    "baseline.jpg",
    "progressive.jpg",
    "plain.png",
    "animated.gif",
    "lossy.webp",
    "lossless.webp",
    "rgb24.bmp",
    "plain.tif",
];

#[test]
fn whole_images_of_every_format_pass_the_image_check() {
    let w = World::new("fetch-image-whole");
    for name in IMAGES {
        let out = w.path(name);
        let run = w.worker(&[
            &w.url(&format!("/img/{name}")),
            "-o",
            s(&out),
            "--expect",
            "image",
        ]);
        assert_eq!(run.code, Some(0), "{name}: {}", run.stderr);
        assert_eq!(read(&out), fixture(name), "{name}");
    }
}

#[test]
fn an_image_cut_short_without_content_length_is_truncated_and_not_kept() {
    let w = World::new("fetch-image-cut");
    for name in IMAGES {
        let len = fixture(name).len();
        for cut in [len / 2, len - 1] {
            let out = w.path(name);
            let url = w.url(&format!("/img-cut/{cut}/{name}"));
            // HTTP alone cannot tell: the server closed a body that had no announced length.
            let run = w.worker(&[&url, "-o", s(&out)]);
            assert_eq!(run.code, Some(0), "{name} without --expect: {}", run.stderr);
            assert_eq!(read(&out), &fixture(name)[..cut]);
            std::fs::remove_file(&out).expect("remove the cut file");

            let run = w.worker(&[&url, "-o", s(&out), "--expect", "image"]);
            assert_eq!(run.code, Some(15), "{name} cut at {cut}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("ends after {cut} bytes")),
                "{}",
                run.stderr
            );
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
            w.assert_nothing_at(&out);
        }
    }
}

#[test]
fn a_malformed_image_is_rejected_and_not_kept() {
    let w = World::new("fetch-image-malformed");
    // A byte of PNG pixel data (its chunk's CRC no longer matches), GIF's first block introducer,
    // and the marker that should follow a JPEG's APP0 segment.
    for (name, at, why) in [
        ("plain.png", 200, "CRC"),
        ("plain.gif", 13 + 768, "block"),
        ("baseline.jpg", 20, "marker"),
    ] {
        let out = w.path(name);
        let url = w.url(&format!("/img-flip/{at}/{name}"));
        let run = w.worker(&[&url, "-o", s(&out), "--expect", "image", "--resume"]);
        assert_eq!(run.code, Some(16), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("malformed") && run.stderr.contains(why),
            "{}",
            run.stderr
        );
        w.assert_nothing_at(&out);
    }
}

#[test]
fn a_cut_image_is_resumed_with_range_and_checked_from_its_first_byte() {
    let w = World::new("fetch-image-resume");
    let name = "progressive.jpg";
    let out = w.path("a.jpg");
    let target = format!("/img-cut-once/300/{name}");
    let args = [
        &w.url(&target),
        "-o",
        s(&out),
        "--expect",
        "image",
        "--resume",
    ];
    let run = w.worker(&args);
    assert_eq!(run.code, Some(15), "stderr: {}", run.stderr);
    assert!(!exists(&out));
    assert_eq!(read(&watchdog::temp_path_for(&out)), &fixture(name)[..300]);

    let run = w.worker(&args);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), fixture(name));
    let ranges: Vec<Option<String>> = w
        .server
        .requests()
        .iter()
        .map(|r| r.header("range").map(String::from))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=300-".to_string())]);
    assert!(!exists(&watchdog::temp_path_for(&out)));
}

#[test]
fn a_damaged_partial_file_fails_the_check_of_the_resumed_image() {
    let w = World::new("fetch-image-resume-damaged");
    let out = w.path("a.gif");
    // The bytes on disk are checked too: a damaged block introducer among them is found, however
    // whole the rest the server sends.
    let mut on_disk = fixture("plain.gif")[..1000].to_vec();
    on_disk[13 + 768] = 0x99;
    partial(&out, &on_disk);
    let run = w.worker(&[
        &w.url("/img/plain.gif"),
        "-o",
        s(&out),
        "--expect",
        "image",
        "--resume",
    ]);
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    w.assert_nothing_at(&out);
    assert_eq!(
        w.server.requests().first().and_then(|r| r.header("range")),
        Some("bytes=1000-")
    );
}

#[test]
fn a_url_without_a_file_name_needs_dash_o() {
    let w = World::new("fetch-noname");
    let run = w.worker(&[&w.url("/")]);
    assert_eq!(run.code, Some(125));
    assert!(run.stderr.contains("-o PATH"), "{}", run.stderr);
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let w = World::new("fetch-redirect");
    let out = w.path("a.png");
    let run = w.worker(&[&w.url("/redirect/redirect/image.png"), "-o", s(&out)]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());

    let run = w.worker(&[&w.url("/loop"), "-o", s(&out), "--max-redirects", "3"]);
    assert_eq!(run.code, Some(14), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("too many redirects"), "{}", run.stderr);
    let loops = w
        .server
        .requests()
        .iter()
        .filter(|r| r.target == "/loop")
        .count();
    assert_eq!(loops, 4, "the first request and three redirects");
}

#[test]
fn a_redirect_to_a_file_url_is_refused() {
    let w = World::new("fetch-redirect-file");
    let out = w.path("a.png");
    let run = w.worker(&[&w.url("/redirect-file"), "-o", s(&out)]);
    assert_eq!(run.code, Some(10), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("file:"), "{}", run.stderr);
    w.assert_nothing_at(&out);
}

#[test]
fn a_body_shorter_than_content_length_is_truncated() {
    let w = World::new("fetch-short");
    let out = w.path("a.png");
    for route in ["/short", "/chunked-cut"] {
        let run = w.worker(&[&w.url(route), "-o", s(&out)]);
        assert_eq!(run.code, Some(15), "{route}: {}", run.stderr);
        assert!(run.stderr.contains("--resume"), "{}", run.stderr);
        w.assert_nothing_at(&out);
    }
    // With --resume the partial file stays for the next attempt.
    let run = w.worker(&[&w.url("/short"), "-o", s(&out), "--resume"]);
    assert_eq!(run.code, Some(15));
    assert!(!exists(&out));
    assert_eq!(read(&watchdog::temp_path_for(&out)), data(1000));
}

#[test]
fn max_size_refuses_announced_and_endless_bodies() {
    let w = World::new("fetch-max-size");
    let out = w.path("a.png");
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out), "--max-size", "1K"]);
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("--max-size"), "{}", run.stderr);
    w.assert_nothing_at(&out);
    let run = w.worker(&[&w.url("/endless"), "-o", s(&out), "--max-size", "100K"]);
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    assert!(run.elapsed < QUICK);
    w.assert_nothing_at(&out);
}

#[test]
fn sha256_is_checked_in_either_case() {
    use sha2::{Digest, Sha256};
    let w = World::new("fetch-sha");
    let out = w.path("a.png");
    let digest: String = Sha256::digest(png())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out), "--sha256", &digest]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    std::fs::remove_file(&out).expect("remove");
    let wrong = "0".repeat(64);
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out), "--sha256", &wrong]);
    assert_eq!(run.code, Some(16), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("SHA-256 mismatch"), "{}", run.stderr);
    w.assert_nothing_at(&out);
}

#[test]
fn answers_that_are_not_http_exit_18() {
    let w = World::new("fetch-garbage");
    let out = w.path("a.png");
    for route in ["/garbage", "/empty-reply"] {
        let run = w.worker(&[&w.url(route), "-o", s(&out)]);
        assert_eq!(run.code, Some(18), "{route}: {}", run.stderr);
        w.assert_nothing_at(&out);
    }
}

#[test]
fn refused_connections_exit_12_and_bad_names_11() {
    let w = World::new("fetch-connect");
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let out = w.path("a.png");
    let run = w.worker(&[&format!("http://127.0.0.1:{port}/a.png"), "-o", s(&out)]);
    assert_eq!(run.code, Some(12), "stderr: {}", run.stderr);
    w.assert_nothing_at(&out);
    let run = w.worker(&[
        "http://no-such-host.invalid/a.png",
        "-o",
        s(&out),
        "--connect-timeout",
        "3",
    ]);
    assert_eq!(run.code, Some(11), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("no-such-host.invalid"),
        "{}",
        run.stderr
    );
}

#[test]
fn only_http_and_https_urls_are_accepted() {
    let w = World::new("fetch-scheme");
    for url in ["ftp://127.0.0.1/a.png", "file:///etc/passwd", "not a url"] {
        let run = w.worker(&[url, "-o", s(&w.path("a"))]);
        assert_eq!(run.code, Some(10), "{url}: {}", run.stderr);
    }
}

#[test]
fn credentials_never_appear_in_output_but_are_sent() {
    let w = World::new("fetch-creds");
    let url = w.url("/status/404").replace("://", "://alice:s3cret@");
    let events = w.path("events.jsonl");
    let run = w.supervised(&["--events", s(&events)], &[&url, "-o", s(&w.path("a"))]);
    assert_eq!(run.code, Some(14));
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    assert!(run.stderr.contains("***@127.0.0.1"), "{}", run.stderr);
    let events = String::from_utf8_lossy(&read(&events)).into_owned();
    assert!(!events.contains("s3cret"), "{events}");
    let sent = w.server.requests();
    let auth = sent.first().and_then(|r| r.header("authorization"));
    assert_eq!(auth, Some("Basic YWxpY2U6czNjcmV0"));
}

#[test]
fn headers_are_sent_and_validated() {
    let w = World::new("fetch-headers");
    let out = w.path("a.png");
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out), "-H", "X-Test: yes"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let sent = w.server.requests();
    assert_eq!(sent.first().and_then(|r| r.header("x-test")), Some("yes"));
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out), "-H", "no colon here"]);
    assert_eq!(run.code, Some(125));
    assert!(run.stderr.contains("invalid header"), "{}", run.stderr);
}

#[test]
fn an_unwritable_destination_exits_17() {
    let w = World::new("fetch-local-io");
    let out = w.path("missing-dir/a.png");
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out)]);
    assert_eq!(run.code, Some(17), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("missing-dir"), "{}", run.stderr);
    w.assert_nothing_at(&out);
}

#[test]
fn a_symlink_at_the_temp_path_is_not_followed() {
    let w = World::new("fetch-symlink");
    let out = w.path("a.png");
    let victim = w.path("victim");
    std::fs::write(&victim, "keep me").expect("write");
    std::os::unix::fs::symlink(&victim, watchdog::temp_path_for(&out)).expect("symlink");
    let run = w.worker(&[&w.url("/image.png"), "-o", s(&out)]);
    assert_eq!(run.code, Some(17), "stderr: {}", run.stderr);
    assert_eq!(read(&victim), b"keep me");
}

#[test]
fn stdout_gets_the_body() {
    let w = World::new("fetch-stdout");
    let run = w.worker(&[&w.url("/html"), "-o", "-"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stdout.starts_with("<!doctype html>"), "{}", run.stdout);
}

// ---- --resume -----------------------------------------------------------------------------------

/// Puts the first `len` bytes of `body` where a resumed download of `out` looks for them.
fn partial(out: &Path, body: &[u8]) {
    std::fs::write(watchdog::temp_path_for(out), body).expect("write the partial file");
}

#[test]
fn resume_continues_with_a_range_request() {
    let w = World::new("fetch-resume");
    let out = w.path("a.bin");
    partial(&out, &data(50_000)[..20_000]);
    let run = w.worker(&[
        &w.url("/data/50000"),
        "-o",
        s(&out),
        "--resume",
        "--expect",
        "image",
    ]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(50_000));
    let sent = w.server.requests();
    assert_eq!(
        sent.first().and_then(|r| r.header("range")),
        Some("bytes=20000-")
    );
    assert!(!exists(&watchdog::temp_path_for(&out)));
}

#[test]
fn resume_starts_over_when_the_server_ignores_range() {
    let w = World::new("fetch-resume-norange");
    let out = w.path("a.bin");
    partial(&out, b"stale bytes that must not survive");
    let run = w.worker(&[&w.url("/norange/30000"), "-o", s(&out), "--resume"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(30_000));
}

#[test]
fn resume_of_a_complete_partial_file_finishes_it() {
    let w = World::new("fetch-resume-416");
    let out = w.path("a.bin");
    partial(&out, &data(5000));
    let run = w.worker(&[&w.url("/data/5000"), "-o", s(&out), "--resume"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(5000));
    assert!(!exists(&watchdog::temp_path_for(&out)));
}

#[test]
fn resume_starts_over_when_the_partial_file_is_longer_than_the_resource() {
    let w = World::new("fetch-resume-long");
    let out = w.path("a.bin");
    partial(&out, &[b'x'; 6000]);
    let run = w.worker(&[&w.url("/data/5000"), "-o", s(&out), "--resume"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), data(5000));
}

#[test]
fn resume_refuses_a_range_that_starts_elsewhere() {
    let w = World::new("fetch-resume-lying");
    let out = w.path("a.bin");
    partial(&out, &data(3000)[..1000]);
    let run = w.worker(&[&w.url("/lying-range/3000"), "-o", s(&out), "--resume"]);
    assert_eq!(run.code, Some(18), "stderr: {}", run.stderr);
    w.assert_nothing_at(&out);
}

// ---- TLS ----------------------------------------------------------------------------------------

#[test]
fn https_with_a_private_ca_needs_cacert() {
    let marker = Marker::new("fetch-tls");
    let dir = tempdir();
    let (config, ca_pem) = tls_config();
    let server = TestServer::start_tls(config);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    let out = dir.path().join("a.png");
    let run = |args: &[&str]| {
        let mut cmd = marker.fetch_worker();
        cmd.args([&server.url("/image.png"), "-o", s(&out)])
            .args(args);
        run_bounded(&mut cmd, Duration::from_secs(30))
    };
    let unverified = run(&[]);
    assert_eq!(unverified.code, Some(13), "stderr: {}", unverified.stderr);
    assert!(
        unverified.stderr.contains("--cacert"),
        "{}",
        unverified.stderr
    );
    assert!(!exists(&out));

    let trusted = run(&["--cacert", s(&ca)]);
    assert_eq!(trusted.code, Some(0), "stderr: {}", trusted.stderr);
    assert_eq!(read(&out), png());
    std::fs::remove_file(&out).expect("remove");

    let insecure = run(&["--insecure"]);
    assert_eq!(insecure.code, Some(0), "stderr: {}", insecure.stderr);
}

#[test]
fn ssl_cert_file_names_a_corporate_root_ca_as_it_does_for_curl() {
    let marker = Marker::new("fetch-ssl-cert-file");
    let dir = tempdir();
    let (config, ca_pem) = tls_config();
    let server = TestServer::start_tls(config);
    let ca = dir.path().join("corporate-root.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    let out = dir.path().join("a.png");
    let mut cmd = marker.fetch_worker();
    cmd.args([&server.url("/image.png"), "-o", s(&out)])
        .env("SSL_CERT_FILE", &ca);
    let run = run_bounded(&mut cmd, Duration::from_secs(30));
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
}

#[test]
fn https_to_a_plain_http_port_exits_13() {
    let w = World::new("fetch-tls-plain");
    let url = w.url("/image.png").replace("http://", "https://");
    let run = w.worker(&[&url, "-o", s(&w.path("a.png"))]);
    assert_eq!(run.code, Some(13), "stderr: {}", run.stderr);
}

#[test]
fn a_bad_cacert_file_is_a_clear_error() {
    let w = World::new("fetch-bad-cacert");
    let bogus = w.path("bogus.pem");
    std::fs::write(&bogus, "not a certificate\n").expect("write");
    for file in [s(&bogus), "/nonexistent/ca.pem"] {
        let run = w.worker(&[
            &w.url("/image.png"),
            "-o",
            s(&w.path("a")),
            "--cacert",
            file,
        ]);
        assert_eq!(run.code, Some(125), "stderr: {}", run.stderr);
        assert!(run.stderr.contains("--cacert"), "{}", run.stderr);
    }
}

// ---- proxies ------------------------------------------------------------------------------------

fn with_env(cmd: &mut Command, vars: &[(&str, &str)]) -> Run {
    for (name, value) in vars {
        cmd.env(name, value);
    }
    run_bounded(cmd, Duration::from_secs(30))
}

#[test]
fn https_goes_through_https_proxy() {
    let marker = Marker::new("fetch-tls-proxy");
    let dir = tempdir();
    let (config, ca_pem) = tls_config();
    let server = TestServer::start_tls(config);
    let proxy = TestProxy::start();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).expect("write CA");
    let out = dir.path().join("a.png");
    let mut cmd = marker.fetch_worker();
    cmd.args([&server.url("/image.png"), "-o", s(&out), "--cacert", s(&ca)]);
    // HTTP_PROXY is for http:// URLs only; the https one must come from HTTPS_PROXY.
    let run = with_env(
        &mut cmd,
        &[
            ("HTTPS_PROXY", &proxy.url()),
            ("HTTP_PROXY", "http://127.0.0.1:9"),
        ],
    );
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    assert_eq!(
        proxy.tunnels(),
        vec![format!("127.0.0.1:{}", server.port())]
    );
}

// ---- one worker, many downloads, as batch mode runs them ----------------------------------------

#[test]
fn one_batch_worker_reuses_its_connection() {
    let w = World::new("fetch-keep-alive");
    let image = w.url("/image.png");
    let list = format!(
        "{image}\ta.png\n{image}\tb.png\n{image}\tc.png\n{}\td.png\n",
        w.url("/html")
    );
    std::fs::write(w.path("list.txt"), list).expect("write the list");
    let mut cmd = w.marker.watchdog();
    cmd.current_dir(w.root.path()).args([
        "batch",
        "list.txt",
        "--out",
        "out",
        "--jobs",
        "1",
        "--retries",
        "0",
        "--expect",
        "image",
    ]);
    let run = run_bounded(&mut cmd, Duration::from_secs(30));
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = read(&w.path("out/report.jsonl"));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&report)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON report line"))
        .collect();
    let with_status = |status: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["status"] == status).collect()
    };
    let ok: Vec<&str> = with_status("ok")
        .iter()
        .filter_map(|l| l["path"].as_str())
        .collect();
    assert_eq!(ok, ["a.png", "b.png", "c.png"], "{lines:?}");
    for name in ok {
        assert_eq!(read(&w.path(&format!("out/{name}"))), png());
    }
    let rejected = with_status("rejected");
    assert_eq!(rejected.len(), 1, "{lines:?}");
    assert_eq!(rejected[0]["url"], w.url("/html").as_str());
    assert!(!exists(&w.path("out/d.png")));
    assert_eq!(
        w.server.connections(),
        1,
        "keep-alive reused one connection"
    );
}

// ---- the worker binary --------------------------------------------------------------------------

#[test]
fn a_watchdog_without_watchdog_fetch_beside_it_says_so_before_anything_starts() {
    let w = World::new("fetch-worker-missing");
    let alone = w.path("bin");
    std::fs::create_dir(&alone).expect("mkdir");
    let copy = alone.join("watchdog");
    std::fs::copy(crate::common::bin(), &copy).expect("copy watchdog alone");
    let looked_at = alone.join(watchdog::WORKER_BINARY);
    std::fs::write(w.path("list.txt"), w.url("/image.png") + "\n").expect("write the list");
    let (url, out) = (w.url("/image.png"), w.path("a.png"));
    let fetch = ["--", "fetch", &url, "-o", s(&out)];
    let batch = ["batch", "list.txt", "--out", "out"];
    for args in [&fetch[..], &batch[..]] {
        let mut cmd = Command::new(&copy);
        cmd.current_dir(w.root.path())
            .env(crate::common::MARKER_ENV, w.marker.value())
            .args(args);
        let run = run_bounded(&mut cmd, QUICK);
        assert_eq!(run.code, Some(125), "{args:?}: stderr: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.starts_with("watchdog: ")
                && run.stderr.contains(&format!("'{}'", looked_at.display()))
                && run.stderr.contains("beside watchdog"),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(w.server.connections(), 0, "nothing was downloaded");
    assert!(!exists(&w.path("a.png")));
    assert!(!exists(&w.path("out")), "batch created nothing");
}

/// What a `watchdog-fetch` says when the watchdog that started it is of another version: one line
/// naming the worker, both versions and the fix.
fn assert_other_version_line(run: &Run, theirs: &str) {
    let ours = env!("CARGO_PKG_VERSION");
    assert_eq!(run.code, Some(125), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("watchdog: the download worker '")
            && run
                .stderr
                .contains(&format!("{}' is version {ours}", watchdog::WORKER_BINARY))
            && run.stderr.contains(&format!("watchdog is {theirs}"))
            && run.stderr.contains("same build"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_watchdog_fetch_of_another_version_says_so_and_nothing_starts() {
    let w = World::new("fetch-worker-version");
    let (url, out) = (w.url("/image.png"), w.path("a.png"));
    // The worker started by a watchdog of another version, or by one from before the check (which
    // gave no version), with the download's arguments or a batch worker's.
    for (mode, theirs) in [
        ("__fetch-worker@0.0.0-other", "version 0.0.0-other"),
        ("__fetch-worker", "of another version"),
        ("__batch-worker@0.0.0-other", "version 0.0.0-other"),
    ] {
        let mut cmd = Command::new(crate::common::fetch_bin());
        cmd.current_dir(w.root.path())
            .env(crate::common::MARKER_ENV, w.marker.value())
            .args([mode, &url, "-o", s(&out)]);
        assert_other_version_line(&run_bounded(&mut cmd, QUICK), theirs);
    }
    // Through the supervisor: a watchdog-fetch beside watchdog that another version's watchdog
    // would start (a wrapper that changes the version the hidden argument carries).
    let dir = w.path("bin");
    std::fs::create_dir(&dir).expect("mkdir");
    let copy = dir.join("watchdog");
    std::fs::copy(crate::common::bin(), &copy).expect("copy watchdog");
    let wrapper = dir.join(watchdog::WORKER_BINARY);
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nshift\nexec '{}' __fetch-worker@0.0.0-other \"$@\"\n",
            crate::common::fetch_bin().display()
        ),
    )
    .expect("write the wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let mut cmd = Command::new(&copy);
    cmd.current_dir(w.root.path())
        .env(crate::common::MARKER_ENV, w.marker.value())
        .args(["--", "fetch", &url, "-o", s(&out)]);
    assert_other_version_line(&run_bounded(&mut cmd, QUICK), "version 0.0.0-other");
    // batch asks the worker its version before anything is created.
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n[ \"$1\" = --version ] && echo 'watchdog-fetch 0.0.0-other' && exit 0\nexit 3\n",
    )
    .expect("write the other worker");
    std::fs::write(w.path("list.txt"), url.clone() + "\n").expect("write the list");
    let mut cmd = Command::new(&copy);
    cmd.current_dir(w.root.path())
        .env(crate::common::MARKER_ENV, w.marker.value())
        .args(["batch", "list.txt", "--out", "out"]);
    let run = run_bounded(&mut cmd, QUICK);
    assert_eq!(run.code, Some(125), "stderr: {}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("watchdog: batch: the download worker '")
            && run
                .stderr
                .contains(&format!("'{}' is version 0.0.0-other", wrapper.display()))
            && run.stderr.contains(&format!(
                "watchdog is version {}",
                env!("CARGO_PKG_VERSION")
            )),
        "{}",
        run.stderr
    );
    assert_eq!(w.server.connections(), 0, "nothing was downloaded");
    assert!(!exists(&out));
    assert!(!exists(&w.path("out")), "batch created nothing");
}

#[test]
fn watchdog_fetch_run_directly_names_itself_in_its_help() {
    let help = |cmd: &mut Command| {
        let run = run_bounded(cmd.arg("--help"), QUICK);
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        run.stdout
    };
    let direct = help(&mut Command::new(crate::common::fetch_bin()));
    assert!(
        direct.contains("Usage: watchdog-fetch [OPTIONS] <URL>"),
        "{direct}"
    );
    assert!(!direct.contains("Usage: watchdog -- fetch"), "{direct}");
    let supervised = help(Command::new(crate::common::bin()).args(["--", "fetch"]));
    assert!(
        supervised.contains("Usage: watchdog -- fetch [OPTIONS] <URL>"),
        "{supervised}"
    );
}

#[test]
fn watchdog_fetch_alone_is_a_plain_download() {
    let w = World::new("fetch-plain");
    let out = w.path("a.png");
    let mut cmd = Command::new(crate::common::fetch_bin());
    cmd.current_dir(w.root.path())
        .env(crate::common::MARKER_ENV, w.marker.value())
        .args([&w.url("/image.png"), "-o", s(&out)]);
    let run = run_bounded(&mut cmd, QUICK);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(read(&out), png());
    let mut cmd = Command::new(crate::common::fetch_bin());
    cmd.current_dir(w.root.path())
        .env(crate::common::MARKER_ENV, w.marker.value())
        .args([&w.url("/status/404"), "-o", s(&w.path("b.png"))]);
    let run = run_bounded(&mut cmd, QUICK);
    assert_eq!(run.code, Some(14), "stderr: {}", run.stderr);
    assert!(!exists(&w.path("b.png")));
    assert!(run.stderr.contains("404"), "{}", run.stderr);
}
