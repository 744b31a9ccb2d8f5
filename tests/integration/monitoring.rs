//! Batches nobody watches on a terminal: status lines in a log every `--progress-interval`, the
//! Prometheus metrics file of `batch --metrics` and `report --metrics` (checked by promtool, and
//! against the report), and `report --html` as a person sees it in a headless browser.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::common::{can_run, run_bounded, s, Run, World, SCHEDULER_ENV};

const LIMIT: Duration = Duration::from_secs(40);
const PREFIX: &str = "watchdog: progress:";

/// `watchdog ARGS` in the world's root directory, outside any scheduler.
fn watchdog_in(w: &World, args: &[&str]) -> Command {
    let mut cmd = w.marker.watchdog();
    cmd.args(args).current_dir(w.root.path());
    for var in SCHEDULER_ENV {
        cmd.env_remove(var);
    }
    cmd
}

fn run_in(w: &World, args: &[&str]) -> Run {
    run_bounded(&mut watchdog_in(w, args), LIMIT)
}

/// Runs `watchdog ARGS` with stderr going to a file, as under Slurm or cron; returns the exit code,
/// the file's text and the wall time.
fn run_logging_to_a_file(w: &World, args: &[&str]) -> (Option<i32>, String, Duration) {
    let log = w.path("batch.log");
    let started = Instant::now();
    let mut child = watchdog_in(w, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("create the log"))
        .spawn()
        .expect("start watchdog");
    let status = match child.wait_timeout(LIMIT).expect("wait for watchdog") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog did not return within {LIMIT:?}");
        }
    };
    let elapsed = started.elapsed();
    let text = std::fs::read_to_string(&log).expect("read the log");
    (status.code(), text, elapsed)
}

fn write_list(w: &World, name: &str, paths: &[&str]) -> String {
    let list: String = paths.iter().map(|p| w.url(p) + "\n").collect();
    let path = w.path(name);
    std::fs::write(&path, list).expect("write the list");
    s(&path).to_string()
}

/// A status line's `key=value` pairs, in order.
fn pairs(line: &str) -> Vec<(String, String)> {
    line.strip_prefix(PREFIX)
        .unwrap_or_else(|| panic!("not a status line: {line}"))
        .split_whitespace()
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("not key=value: {pair} in {line}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn a_batch_logging_to_a_file_writes_a_status_line_every_interval() {
    let w = World::new("status-lines");
    // Four items of at least a second each (20 bytes, one every 50 ms) on two workers, and a 404
    // that a worker takes only after the first two: the run takes two seconds at least, and the
    // failure shows in the lines of its second half.
    let list = write_list(
        &w,
        "list.txt",
        &[
            "/drip/50/20?a",
            "/drip/50/20?b",
            "/status/404",
            "/drip/50/20?c",
            "/drip/50/20?d",
            "/image.png",
        ],
    );
    let out = w.path("out");
    let (code, log, elapsed) = run_logging_to_a_file(
        &w,
        &[
            "batch",
            &list,
            "--out",
            s(&out),
            "-j",
            "2",
            "--retries",
            "0",
            "--progress-interval",
            "0.2s",
        ],
    );
    assert_eq!(code, Some(1), "{log}");
    let (status, rest): (Vec<&str>, Vec<&str>) = log.lines().partition(|l| l.starts_with(PREFIX));
    // One line per 0.2 s while it ran: the run lasted 1.9 s at least, and a line is never early.
    let most = (elapsed.as_secs_f64() / 0.2) as usize + 1;
    assert!(
        (3..=most).contains(&status.len()),
        "{} lines in {elapsed:?}:\n{log}",
        status.len()
    );
    let keys_in_order = [
        "elapsed",
        "ended",
        "ok",
        "skipped",
        "failed",
        "in_flight",
        "items_per_s",
        "mb_per_s",
        "eta",
    ];
    let mut last_ended = 0;
    let mut saw_the_failure = false;
    for line in &status {
        let pairs = pairs(line);
        let keys: Vec<&str> = pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| *k != "http_error")
            .collect();
        assert_eq!(keys, keys_in_order, "{line}");
        let value = |key: &str| -> &str {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        let (ended, total) = value("ended").split_once('/').expect("ended=N/TOTAL");
        let ended: u64 = ended.parse().expect("a count");
        assert_eq!(total, "6", "the list was counted up front: {line}");
        assert!(ended >= last_ended && ended <= 6, "{line}");
        last_ended = ended;
        let failed: u64 = value("failed").parse().expect("a count");
        let http_error: u64 = value("http_error").parse().unwrap_or(0);
        assert_eq!(failed, http_error, "failed by cause: {line}");
        saw_the_failure |= http_error == 1;
        let in_flight: u64 = value("in_flight").parse().expect("a count");
        assert!(in_flight <= 2, "{line}");
        let ok: u64 = value("ok").parse().expect("a count");
        assert_eq!(ok + failed, ended, "{line}");
        for rate in ["items_per_s", "mb_per_s"] {
            assert!(value(rate).parse::<f64>().is_ok(), "{rate}: {line}");
        }
        assert!(value("eta") == "?" || value("eta").ends_with('s'), "{line}");
    }
    assert!(
        saw_the_failure,
        "the 404 is counted while the rest run:\n{log}"
    );
    // Then the closing summary, as without the lines.
    assert!(
        rest.first().is_some_and(|l| l.starts_with("6 items in ")),
        "{log}"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn with_interval_0_or_quiet_a_log_gets_exactly_the_final_summary() {
    let w = World::new("status-lines-off");
    let list = write_list(&w, "list.txt", &["/drip/50/10?a", "/status/404"]);
    let out = w.path("out");
    let base = ["batch", &list, "--out", s(&out), "--retries", "0"];
    let (code, off, _) =
        run_logging_to_a_file(&w, &[&base[..], &["--progress-interval", "0"]].concat());
    assert_eq!(code, Some(1), "{off}");
    assert!(!off.contains(PREFIX), "{off}");
    assert!(off.starts_with("2 items in "), "{off}");
    // The same run again with lines every 0.1 s: all the difference is the status lines.
    std::fs::remove_dir_all(&out).expect("remove the output");
    let (_, on, _) =
        run_logging_to_a_file(&w, &[&base[..], &["--progress-interval", "0.1s"]].concat());
    assert!(on.contains(PREFIX), "{on}");
    let without: Vec<&str> = on.lines().filter(|l| !l.starts_with(PREFIX)).collect();
    let first_line = |text: &str| {
        text.lines()
            .next()
            .unwrap_or("")
            .split(" in ")
            .next()
            .map(str::to_string)
    };
    assert_eq!(first_line(&without.join("\n")), first_line(&off));
    assert_eq!(without.len(), off.lines().count(), "{on}\n--\n{off}");
    // -q: no lines either, only the summary of a run with failures.
    std::fs::remove_dir_all(&out).expect("remove the output");
    let (_, quiet, _) = run_logging_to_a_file(
        &w,
        &[&base[..], &["-q", "--progress-interval", "0.1s"]].concat(),
    );
    assert!(!quiet.contains(PREFIX), "{quiet}");
    assert!(quiet.starts_with("2 items in "), "{quiet}");
    w.marker.assert_no_survivors();
}

/// The samples of a metrics file: `name{labels}` to value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample? {l}"));
            (name.to_string(), value.parse().unwrap_or(f64::NAN))
        })
        .collect()
}

fn promtool_accepts(path: &Path) {
    let file = File::open(path).expect("open the metrics file");
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check metrics {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn promtool_here(test: &str) -> bool {
    can_run(
        test,
        Command::new("promtool")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "promtool (Debian package prometheus)",
    )
}

/// The report's lines as JSON values.
fn report_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read the report")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a report line"))
        .collect()
}

/// Asserts that `metrics` says what `report` (one line per item) says.
fn assert_metrics_match(metrics: &BTreeMap<String, f64>, report: &[serde_json::Value]) {
    let count = |status: &str| report.iter().filter(|l| l["status"] == status).count() as f64;
    for status in ["ok", "http_error", "skipped", "timeout"] {
        assert_eq!(
            metrics[&format!("watchdog_items_total{{status=\"{status}\"}}")],
            count(status),
            "{status}"
        );
    }
    let sum = |f: &dyn Fn(&serde_json::Value) -> u64| report.iter().map(f).sum::<u64>() as f64;
    let attempts = |l: &serde_json::Value| l["attempts"].as_u64().unwrap_or(0);
    assert_eq!(metrics["watchdog_attempts_total"], sum(&attempts));
    assert_eq!(
        metrics["watchdog_retries_total"],
        sum(&|l| attempts(l).saturating_sub(1))
    );
    assert_eq!(
        metrics["watchdog_downloaded_bytes_total"],
        sum(&|l| if l["status"] == "ok" {
            l["bytes"].as_u64().unwrap_or(0)
        } else {
            0
        })
    );
    let done = count("ok") + count("skipped");
    assert_eq!(
        metrics["watchdog_host_items_total{host=\"127.0.0.1\",result=\"done\"}"],
        done
    );
    assert_eq!(
        metrics["watchdog_host_items_total{host=\"127.0.0.1\",result=\"not_done\"}"],
        report.len() as f64 - done
    );
}

#[test]
fn the_metrics_file_passes_promtool_and_says_what_the_report_says() {
    if !promtool_here("the_metrics_file_passes_promtool_and_says_what_the_report_says") {
        return;
    }
    let w = World::new("metrics");
    // A 500 then ok (a retry), a 404 (not retried), ok items of known sizes.
    let list = write_list(
        &w,
        "list.txt",
        &[
            "/flaky/m/1",
            "/status/404",
            "/data/1000",
            "/data/2345",
            "/image.png",
        ],
    );
    let out = w.path("out");
    let prom_dir = w.path("textfile");
    std::fs::create_dir(&prom_dir).expect("mkdir");
    let prom = prom_dir.join("batch.prom");
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let run = run_in(
        &w,
        &[
            "batch",
            &list,
            "--out",
            s(&out),
            "--retries",
            "1",
            "--metrics",
            s(&prom),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    promtool_accepts(&prom);
    let metrics = samples(&std::fs::read_to_string(&prom).expect("read the metrics"));
    let report = report_lines(&out.join("report.jsonl"));
    assert_eq!(report.len(), 5);
    assert_metrics_match(&metrics, &report);
    assert_eq!(
        metrics["watchdog_retries_total"], 1.0,
        "the 500 was retried once"
    );
    assert_eq!(metrics["watchdog_items_listed"], 5.0);
    assert_eq!(metrics["watchdog_items_in_flight"], 0.0);
    let start = metrics["watchdog_start_time_seconds"];
    let end = metrics["watchdog_end_time_seconds"];
    assert!(start >= started.floor() && end >= start, "{start} {end}");
    assert!(
        !metrics.contains_key("watchdog_last_success_timestamp_seconds"),
        "exit 1"
    );
    let names: Vec<String> = std::fs::read_dir(&prom_dir)
        .expect("list the textfile directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["batch.prom"], "no temporary file left");

    // `watchdog report --metrics` over the same report says the same.
    let from_report = w.path("report.prom");
    let run = run_in(
        &w,
        &[
            "report",
            "--metrics",
            s(&from_report),
            s(&out.join("report.jsonl")),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    promtool_accepts(&from_report);
    let reported = samples(&std::fs::read_to_string(&from_report).expect("read"));
    assert_metrics_match(&reported, &report);

    // A run with every item done records its success; a failed run after it keeps that time.
    let good = write_list(&w, "good.txt", &["/data/10", "/image.jpg"]);
    let run = run_in(
        &w,
        &[
            "batch",
            &good,
            "--out",
            s(&w.path("good")),
            "--metrics",
            s(&prom),
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    promtool_accepts(&prom);
    let metrics = samples(&std::fs::read_to_string(&prom).expect("read"));
    let success = metrics["watchdog_last_success_timestamp_seconds"];
    assert_eq!(success, metrics["watchdog_end_time_seconds"]);
    let bad = write_list(&w, "bad.txt", &["/status/404"]);
    let run = run_in(
        &w,
        &[
            "batch",
            &bad,
            "--out",
            s(&w.path("bad")),
            "--metrics",
            s(&prom),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let metrics = samples(&std::fs::read_to_string(&prom).expect("read"));
    assert_eq!(metrics["watchdog_last_success_timestamp_seconds"], success);
    assert!(metrics["watchdog_end_time_seconds"] >= success);
    w.marker.assert_no_survivors();
}

#[test]
fn a_metrics_file_that_cannot_be_written_stops_the_batch_before_any_download() {
    let w = World::new("metrics-bad-path");
    let list = write_list(&w, "list.txt", &["/image.png"]);
    let out = w.path("out");
    let bad = w.path("no/such/dir/batch.prom");
    let run = run_in(
        &w,
        &["batch", &list, "--out", s(&out), "--metrics", s(&bad)],
    );
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("watchdog: batch: cannot write the metrics file '")
            && run.stderr.contains("no/such/dir/batch.prom"),
        "{}",
        run.stderr
    );
    assert!(w.server.requests().is_empty(), "nothing downloaded");
    w.marker.assert_no_survivors();
}

/// The DOM of `page` after its script ran, as headless Chromium sees it with no network (in a
/// network namespace of its own), and what Chromium logged of the page's console.
fn chromium_dom(w: &World, page: &str) -> (String, String) {
    let profile = w.path("chromium-profile");
    let mut cmd = Command::new("unshare");
    // Root makes a network namespace directly; anyone else needs a user namespace for it.
    cmd.arg(if crate::common::is_root() {
        "-n"
    } else {
        "-rn"
    });
    cmd.args([
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        &format!("--user-data-dir={}", s(&profile)),
        "--dump-dom",
        page,
    ]);
    let run = run_bounded(&mut cmd, Duration::from_secs(90));
    assert_eq!(run.code, Some(0), "chromium: {}", run.stderr);
    let console: String = run
        .stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .collect::<Vec<_>>()
        .join("\n");
    (run.stdout, console)
}

fn chromium_here(test: &str) -> bool {
    let works = Command::new("unshare")
        .arg(if crate::common::is_root() {
            "-n"
        } else {
            "-rn"
        })
        .args(["chromium", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    can_run(
        test,
        works,
        "chromium (Debian package chromium) and unshare (util-linux), with network namespaces",
    )
}

/// The text of the element with `id` in `dom` (its first text, tags removed up to the next `<`).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[at..];
    let start = rest.find('>').map_or(0, |i| i + 1);
    let end = rest[start..].find('<').map_or(rest.len(), |i| start + i);
    &rest[start..end]
}

#[test]
fn report_html_is_a_page_a_browser_without_network_shows_with_counts_bars_and_rows() {
    if !chromium_here(
        "report_html_is_a_page_a_browser_without_network_shows_with_counts_bars_and_rows",
    ) {
        return;
    }
    let w = World::new("report-html");
    let list = write_list(
        &w,
        "list.txt",
        &[
            "/data/1000",
            "/data/2000",
            "/image.png",
            "/status/404?a",
            "/status/404?b",
            "/silent",
        ],
    );
    let out = w.path("out");
    let run = run_in(
        &w,
        &[
            "batch",
            &list,
            "--out",
            s(&out),
            "--retries",
            "0",
            "-t",
            "1",
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let page = w.path("report.html");
    let run = run_in(
        &w,
        &["report", "--html", s(&page), s(&out.join("report.jsonl"))],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let html = std::fs::read_to_string(&page).expect("read the page");
    // Self-contained: nothing to fetch, and a policy that would refuse it.
    for outside in [" src=", " href=", "@import", "url("] {
        assert!(!html.contains(outside), "{outside} in the page");
    }
    assert!(html.contains("Content-Security-Policy"));

    let url = format!("file://{}", s(&page));
    let (dom, console) = chromium_dom(&w, &url);
    assert_eq!(console, "", "console messages");
    assert_eq!(text_of(&dom, "items"), "6");
    assert_eq!(text_of(&dom, "done"), "3");
    assert_eq!(text_of(&dom, "missing"), "3");
    // A bar per status that occurred, with its count.
    let by_status = dom
        .split("id=\"by-status\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("the bars per status");
    let bars: Vec<(String, String)> = by_status
        .split("<tr class=\"bar\" data-status=\"")
        .skip(1)
        .map(|row| {
            let status = row.split('"').next().unwrap_or_default().to_string();
            let n = row
                .split("<td class=\"n\">")
                .nth(1)
                .and_then(|t| t.split('<').next())
                .unwrap_or_default()
                .to_string();
            (status, n)
        })
        .collect();
    let expected = [("ok", "3"), ("timeout", "1"), ("http_error", "2")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(bars, expected);
    assert!(by_status.contains("class=\"seg ok\" style=\"width:100.00%\""));
    // The table: one row per item not done, all shown.
    assert_eq!(dom.matches("<tr data-status=").count(), 3);
    assert_eq!(text_of(&dom, "shown"), "3");
    for target in ["/status/404?a", "/status/404?b", "/silent"] {
        assert!(dom.contains(&w.url(target)), "{target} in the table");
    }
    assert!(!dom.contains(" hidden=\"\""));

    // The filter, set from the address: only the timeout is left in view.
    let (dom, console) = chromium_dom(&w, &format!("{url}#status=timeout"));
    assert_eq!(console, "", "console messages");
    assert_eq!(text_of(&dom, "shown"), "1");
    assert_eq!(
        dom.matches("<tr data-status=\"http_error\" hidden=\"\"")
            .count(),
        2,
        "{dom}"
    );
    assert_eq!(dom.matches("<tr data-status=\"timeout\">").count(), 1);
    w.marker.assert_no_survivors();
}

#[test]
fn the_metrics_count_the_hosts_the_circuit_breaker_tripped() {
    if !promtool_here("the_metrics_count_the_hosts_the_circuit_breaker_tripped") {
        return;
    }
    let w = World::new("metrics-breaker");
    // Nothing listens on port 9: every connection is refused at once.
    let list: String = (0..6)
        .map(|i| format!("http://127.0.0.1:9/down/{i}\n"))
        .chain(std::iter::once(w.url("/image.png") + "\n"))
        .collect();
    std::fs::write(w.path("list.txt"), list).expect("write the list");
    let prom = w.path("batch.prom");
    let run = run_in(
        &w,
        &[
            "batch",
            s(&w.path("list.txt")),
            "--out",
            s(&w.path("out")),
            "-j",
            "1",
            "--retries",
            "0",
            "--host-failures",
            "2",
            "--metrics",
            s(&prom),
        ],
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    promtool_accepts(&prom);
    let metrics = samples(&std::fs::read_to_string(&prom).expect("read"));
    assert_eq!(metrics["watchdog_hosts_tripped"], 1.0);
    assert_eq!(
        metrics["watchdog_items_not_tried_total"], 4.0,
        "all but the first two"
    );
    assert_eq!(
        metrics["watchdog_items_total{status=\"connect_error\"}"],
        6.0
    );
    assert_eq!(
        metrics["watchdog_attempts_total"], 3.0,
        "the two, and the image"
    );
    w.marker.assert_no_survivors();
}
