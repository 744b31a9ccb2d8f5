//! `watchdog batch LIST --out DIR` as a user runs it, against the misbehaving loopback server: every
//! list line ends as exactly one report line with the right status, a file is complete at its final
//! path or absent, nothing is written outside DIR, one stuck item does not hold up the others, a
//! killed batch resumes without downloading again what it finished, shards split a list exactly, and
//! bad input is one line on stderr and exit 125. Every test ends by checking that no process survived.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::common::{
    can_run, exists, run_bounded, run_bounded_with_input, s, sha256_hex, signal_and_wait, tempdir,
    Marker, Run, World, SCHEDULER_ENV,
};
use crate::nginx::Nginx;
use crate::server::{data, file_body, fixture, jpeg, png, SynSink};

/// Bound for one batch run; far above what any run here needs.
const LIMIT: Duration = Duration::from_secs(40);

/// One report line. `deny_unknown_fields` and the absence of defaults pin the documented key set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    url: String,
    path: Option<String>,
    status: String,
    http_status: Option<u16>,
    bytes: Option<u64>,
    sha256: Option<String>,
    attempts: u32,
    elapsed_ms: u64,
    error: Option<String>,
    finished_at: Option<String>,
    run: Option<String>,
    extra: Option<serde_json::Value>,
}

impl World {
    /// DIR of the tests that use one output directory.
    fn out(&self) -> PathBuf {
        self.path("out")
    }

    /// What the server sends for `url` (one of its own).
    fn body_of(&self, url: &str) -> Vec<u8> {
        let target = url
            .strip_prefix(&self.url(""))
            .unwrap_or_else(|| panic!("{url} is not on the test server"));
        let path = target.split('?').next().unwrap_or(target);
        match path {
            "/image.png" => png(),
            "/image.jpg" => jpeg(),
            _ if path.starts_with("/img") => fixture(path.rsplit('/').next().unwrap_or_default()),
            _ if path.starts_with("/drip/") => {
                let n = path.rsplit('/').next().and_then(|n| n.parse().ok());
                data(n.unwrap_or_else(|| panic!("no length in {path}")))
            }
            _ => file_body(target),
        }
    }

    /// `watchdog batch ARGS`, under the marker, outside any scheduler.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.marker.watchdog();
        cmd.arg("batch").args(args).current_dir(self.root.path());
        for var in SCHEDULER_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Writes `list` to `list.txt` and runs `watchdog batch list.txt --out DIR ARGS`.
    fn batch(&self, list: &str, args: &[&str]) -> Run {
        let list_path = self.write_list("list.txt", list);
        self.run(&[&[s(&list_path), "--out", s(&self.out())], args].concat())
    }

    /// `watchdog batch ARGS` started in the background, its standard streams closed.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start watchdog batch")
    }

    fn run(&self, args: &[&str]) -> Run {
        run_bounded(&mut self.command(args), LIMIT)
    }

    fn write_list(&self, name: &str, list: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, list).expect("write the list");
        path
    }

    /// The default report, DIR/report.jsonl.
    fn report(&self) -> Vec<Line> {
        read_report(&self.out().join("report.jsonl"))
    }

    /// Asserts that every `ok` line's file holds exactly what the server sent, with the reported size
    /// and SHA-256.
    fn assert_ok_files_are_intact(&self, dir: &Path, lines: &[Line]) {
        for line in lines.iter().filter(|l| l.status == "ok") {
            let rel = line.path.as_deref().expect("an ok line has a path");
            let got = std::fs::read(dir.join(rel))
                .unwrap_or_else(|e| panic!("{rel} of {}: {e}", line.url));
            let expected = self.body_of(&line.url);
            assert!(
                got == expected,
                "{rel} differs from what {} served",
                line.url
            );
            assert_eq!(line.bytes, Some(expected.len() as u64), "{line:?}");
            assert_eq!(line.sha256.as_deref(), Some(sha256_hex(&got).as_str()));
        }
    }
}

/// Waits (bounded) until the report of a running batch has an `ok` line; the batch must still be
/// running then, for the test to interrupt it.
fn wait_for_an_ok_line(report: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(report)
        .unwrap_or_default()
        .contains("\"status\":\"ok\"")
    {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the batch ended before the test could interrupt it"
        );
        assert!(Instant::now() < deadline, "no item was reported ok");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_report(path: &Path) -> Vec<Line> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the report {}: {e}", path.display()));
    parse_report(&text)
}

fn parse_report(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("report line {l:?}: {e}")))
        .collect()
}

/// The single line for `url`; fails when there is none or more than one.
fn line_for<'a>(lines: &'a [Line], url: &str) -> &'a Line {
    let found: Vec<&Line> = lines.iter().filter(|l| l.url == url).collect();
    assert_eq!(found.len(), 1, "{url} has {} report lines", found.len());
    found[0]
}

/// Every regular file and directory under `dir`, relative, with `/` separators; directories end in `/`.
fn tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, found: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.insert(format!("{rel}/"));
                walk(base, &path, found);
            } else {
                found.insert(rel);
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(dir, dir, &mut found);
    found
}

/// The files (not directories) under `dir`.
fn files(dir: &Path) -> BTreeSet<String> {
    tree(dir)
        .into_iter()
        .filter(|p| !p.ends_with('/'))
        .collect()
}

fn assert_one_error_line(run: &Run, expected: &str) {
    assert_eq!(run.code, Some(125), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {:?}", run.stderr);
    assert!(
        lines[0].starts_with("watchdog: batch: ") && lines[0].contains(expected),
        "{:?} should be `watchdog: batch: ...{expected}...`",
        lines[0]
    );
}

// ---- one run over a faulty list ----------------------------------------------------------------

#[test]
fn with_expect_image_a_cut_short_image_is_truncated_retried_with_range_and_never_ok() {
    let w = World::new("batch-image-check");
    // Each route, the status its item must end with, and its attempts.
    let items = [
        ("/img/baseline.jpg", "ok", 1),
        ("/img-cut/400/progressive.jpg", "truncated", 2),
        ("/img-cut/600/plain.png", "truncated", 2),
        ("/img-cut/500/animated.gif", "truncated", 2),
        ("/img-cut/200/lossy.webp", "truncated", 2),
        ("/img-cut-once/400/plain.gif", "ok", 2),
        ("/img-flip/2/baseline.jpg", "rejected", 1),
    ];
    let list: String = items.iter().map(|(p, ..)| w.url(p) + "\n").collect();
    let run = w.batch(
        &list,
        &["-j", "4", "-t", "10", "--retries", "1", "--expect", "image"],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), items.len(), "{report:#?}");
    for (route, status, attempts) in items {
        let line = line_for(&report, &w.url(route));
        assert_eq!(
            (line.status.as_str(), line.attempts),
            (status, attempts),
            "{route}: {line:?}"
        );
    }
    // The second attempt at the image cut once asked for the rest only.
    let ranges: Vec<Option<String>> = w
        .server
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/img-cut-once/"))
        .map(|r| r.header("range").map(String::from))
        .collect();
    assert_eq!(ranges, [None, Some("bytes=400-".to_string())]);
    w.assert_ok_files_are_intact(&w.out(), &report);
    assert_eq!(
        files(&w.out()),
        BTreeSet::from(["report.jsonl", "baseline.jpg", "plain.gif"].map(String::from)),
        "nothing cut short or broken is kept"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_faulty_list_gets_one_report_line_per_item_and_only_complete_files() {
    let w = World::new("batch-mixed");
    // Each route and the status its item must end with.
    let items = [
        ("/image.png", "ok"),
        ("/image.jpg", "ok"),
        ("/stall", "stalled"),
        ("/silent", "stalled"),
        ("/drip/100/1000", "timeout"),
        ("/short", "truncated"),
        ("/html", "rejected"),
        ("/status/404", "http_error"),
        ("/status/500", "http_error"),
        ("/loop", "http_error"),
        ("/endless", "rejected"),
    ];
    let list: String = items.iter().map(|(p, _)| w.url(p) + "\n").collect();
    let (jobs, deadline, attempts) = (4, 1.5, 2);
    let run = w.batch(
        &list,
        &[
            "-j",
            "4",
            "-t",
            "1.5",
            "--stall",
            "0.6",
            "--retries",
            "1",
            "--expect",
            "image",
            "--max-size",
            "100K",
        ],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("11 items in") && run.stderr.contains("2 ok"),
        "summary: {}",
        run.stderr
    );
    let bound = (items.len() as f64 / jobs as f64).ceil() * deadline * attempts as f64 + 5.0;
    assert!(
        run.elapsed < Duration::from_secs_f64(bound),
        "took {:?}, bound {bound} s",
        run.elapsed
    );

    let report = w.report();
    assert_eq!(report.len(), items.len(), "{report:#?}");
    for (route, status) in items {
        let line = line_for(&report, &w.url(route));
        assert_eq!(line.status, status, "{route}: {line:?}");
        let retriable =
            matches!(status, "stalled" | "timeout" | "truncated") || route.ends_with("500");
        assert_eq!(
            line.attempts,
            if retriable { 2 } else { 1 },
            "{route}: {line:?}"
        );
        if matches!(status, "ok" | "truncated") {
            // Failed or not, the answer's status is kept, even for an item too quick to send a
            // start line.
            assert_eq!(line.http_status, Some(200), "{route}: {line:?}");
        }
        if status != "ok" {
            assert!(line.error.is_some(), "{route}: a failure says why");
            assert!(line.bytes.is_none() && line.sha256.is_none(), "{line:?}");
        }
    }
    assert_eq!(
        line_for(&report, &w.url("/status/404")).http_status,
        Some(404)
    );
    assert_eq!(
        line_for(&report, &w.url("/status/500")).http_status,
        Some(500)
    );
    // Retried items were asked for again; the others once.
    assert_eq!(w.server.requests_for("/status/500"), 2);
    assert_eq!(w.server.requests_for("/status/404"), 1);

    w.assert_ok_files_are_intact(&w.out(), &report);
    // Complete files and the report, nothing else: no partial file, no temp file.
    assert_eq!(
        tree(w.root.path()),
        BTreeSet::from(
            [
                "list.txt",
                "out/",
                "out/report.jsonl",
                "out/image.png",
                "out/image.jpg"
            ]
            .map(String::from)
        )
    );
    w.marker.assert_no_survivors();
}

#[test]
fn bodies_that_arrive_in_pieces_share_one_connection_without_slowing_the_next_item() {
    // A body that reaches the worker in pieces: after the first, the worker asks the kernel to wake
    // it only once the rest is in, and must undo that before the next request on the same
    // connection, whose answer, shorter than the mark, would otherwise wait out a whole round (a
    // second) per item.
    let w = World::new("batch-low-water");
    let mut urls = Vec::new();
    for i in 0..6 {
        urls.push((
            w.url(&format!("/pieces/10/10/{}", 300_000 + i)),
            300_000 + i,
        ));
        urls.push((w.url(&format!("/data/{}", 10 + i)), 10 + i));
    }
    let list: String = urls.iter().map(|(url, _)| format!("{url}\n")).collect();
    let run = w.batch(&list, &["-j", "1", "-t", "60"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    for (_, n) in &urls {
        let got = std::fs::read(w.out().join(n.to_string())).expect("downloaded");
        assert!(
            got == data(*n),
            "{n}: {} bytes, not the server's",
            got.len()
        );
    }
    assert_eq!(w.server.connections(), 1, "one keep-alive connection");
    assert!(
        run.elapsed < Duration::from_secs(5),
        "took {:?} for 12 items",
        run.elapsed
    );
    w.marker.assert_no_survivors();
}

#[test]
fn one_hanging_item_does_not_hold_up_the_others() {
    let w = World::new("batch-isolation");
    let good: Vec<String> = (0..12)
        .map(|i| w.url(&format!("/file/iso/{i}.bin")))
        .collect();
    let list = format!("{}\n{}\n", w.url("/silent"), good.join("\n"));
    let run = w.batch(&list, &["-j", "4", "-t", "2", "--retries", "0"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        run.elapsed < Duration::from_secs(7),
        "took {:?}",
        run.elapsed
    );

    let report = w.report();
    assert_eq!(report.len(), 13);
    let hung = report
        .iter()
        .position(|l| l.url == w.url("/silent"))
        .expect("the hanging item is reported");
    assert_eq!(report[hung].status, "timeout");
    assert!(report[hung].elapsed_ms >= 2000, "{:?}", report[hung]);
    // The twelve others finished while the fourth worker was stuck, each in well under its deadline.
    assert_eq!(hung, 12, "the hanging item finishes last: {report:#?}");
    for url in &good {
        let line = line_for(&report, url);
        assert_eq!(line.status, "ok", "{line:?}");
        assert!(line.elapsed_ms < 1000, "{line:?}");
    }
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

// ---- kill and resume ---------------------------------------------------------------------------

#[test]
fn a_killed_batch_resumes_without_downloading_finished_items_again() {
    let w = World::new("batch-resume");
    // Slow items (1.2 s each) around quick ones, two at a time: when the first item is reported, a
    // slow one is still in flight.
    let slow = |i: u32| w.url(&format!("/drip/20/60?s={i}"));
    let quick = |i: u32| w.url(&format!("/file/quick/{i}.bin"));
    let items = [slow(1), quick(1), quick(2), quick(3), slow(2), slow(3)];
    let list = format!(
        "{}\tslow/1.bin\n{}\n{}\n{}\n{}\tslow/2.bin\n{}\tslow/3.bin\n",
        items[0], items[1], items[2], items[3], items[4], items[5]
    );
    let list_path = w.write_list("list.txt", &list);
    let out = w.out();
    let report_path = out.join("report.jsonl");
    let args = [s(&list_path), "--out", s(&out), "-j", "2", "-t", "10"];

    let mut child = w.spawn(&args);
    wait_for_an_ok_line(&report_path, &mut child);
    child.kill().expect("SIGKILL watchdog");
    let _ = child.wait();
    // The workers die with it (PR_SET_PDEATHSIG).
    w.marker.assert_no_survivors();

    let first = read_report(&report_path);
    assert!(!first.is_empty() && first.len() < items.len(), "{first:#?}");
    // Whatever is at a final path is complete; a partial download is at most a temp file.
    let final_path = |i: usize| match i {
        0 => "slow/1.bin".to_string(),
        4 => "slow/2.bin".to_string(),
        5 => "slow/3.bin".to_string(),
        _ => format!("{}.bin", i),
    };
    for (i, url) in items.iter().enumerate() {
        let path = w.out().join(final_path(i));
        if exists(&path) {
            assert!(
                std::fs::read(&path).ok() == Some(w.body_of(url)),
                "{} is not complete",
                path.display()
            );
        }
    }
    for file in files(&w.out()) {
        let name = file.rsplit('/').next().unwrap_or(&file);
        let known = file == "report.jsonl"
            || (0..items.len()).any(|i| final_path(i) == file)
            || (name.starts_with('.') && name.ends_with(".watchdog-part"));
        assert!(known, "unexpected file {file} after the kill");
    }
    let finished: Vec<&Line> = first.iter().filter(|l| l.status == "ok").collect();
    let requests_before: Vec<usize> = finished
        .iter()
        .map(|l| w.server.requests_for(&l.url[w.url("").len()..]))
        .collect();

    // The same command again.
    let run = w.run(&args);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let all = read_report(&report_path);
    let second = &all[first.len()..];
    assert_eq!(second.len(), items.len(), "{second:#?}");
    for url in &items {
        let line = line_for(second, url);
        let done_before = finished.iter().any(|l| &l.url == url);
        let expected = if done_before { "skipped" } else { "ok" };
        assert_eq!(line.status, expected, "{line:?}");
    }
    for (line, before) in finished.iter().zip(requests_before) {
        let target = &line.url[w.url("").len()..];
        assert_eq!(
            w.server.requests_for(target),
            before,
            "{target} was downloaded again"
        );
    }
    w.assert_ok_files_are_intact(&w.out(), second);
    let mut expected: BTreeSet<String> = (0..items.len()).map(final_path).collect();
    expected.insert("report.jsonl".into());
    assert_eq!(files(&w.out()), expected, "no temp file is left");
    for (i, url) in items.iter().enumerate() {
        assert!(std::fs::read(w.out().join(final_path(i))).ok() == Some(w.body_of(url)));
    }
    w.marker.assert_no_survivors();
}

#[test]
fn sigterm_stops_the_batch_with_128_plus_15_and_a_rerun_finishes_it() {
    let w = World::new("batch-sigterm");
    let slow = |i: u32| w.url(&format!("/drip/10/100?t={i}"));
    let quick = |i: u32| w.url(&format!("/file/term/{i}.bin"));
    let items = [slow(1), quick(1), quick(2), slow(2), slow(3)];
    let list = format!(
        "{}\ta.bin\n{}\n{}\n{}\tb.bin\n{}\tc.bin\n",
        items[0], items[1], items[2], items[3], items[4]
    );
    let list_path = w.write_list("list.txt", &list);
    let out = w.out();
    let report_path = out.join("report.jsonl");
    let args = [s(&list_path), "--out", s(&out), "-j", "2", "-t", "10"];
    let mut child = w.spawn(&args);
    wait_for_an_ok_line(&report_path, &mut child);
    let sent = Instant::now();
    let status = signal_and_wait(&mut child, libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(status.code(), Some(143));
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    w.marker.assert_no_survivors();

    // The report holds what finished, and what it says is on disk; nothing partial is at a final path.
    let first = read_report(&report_path);
    assert!(first.len() < items.len(), "{first:#?}");
    assert!(first.iter().all(|l| l.status == "ok"), "{first:#?}");
    w.assert_ok_files_are_intact(&out, &first);
    for (name, url) in ["a.bin", "b.bin", "c.bin"]
        .iter()
        .zip([&items[0], &items[3], &items[4]])
    {
        let path = out.join(name);
        assert!(
            !exists(&path) || std::fs::read(&path).ok() == Some(w.body_of(url)),
            "{name} is not complete"
        );
    }

    // An interrupted item starts afresh next time: its partial file is not kept either.
    let temps: Vec<String> = files(&out)
        .into_iter()
        .filter(|f| f.ends_with(".watchdog-part"))
        .collect();
    assert!(temps.is_empty(), "partial files left: {temps:?}");

    let run = w.run(&args);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let second = &read_report(&report_path)[first.len()..];
    assert_eq!(second.len(), items.len());
    w.assert_ok_files_are_intact(&out, second);
    assert_eq!(
        files(&out),
        ["1.bin", "2.bin", "a.bin", "b.bin", "c.bin", "report.jsonl"]
            .map(String::from)
            .into(),
    );
    w.marker.assert_no_survivors();
}

#[test]
fn sigterm_while_an_item_waits_for_its_retry_leaves_no_partial_file() {
    // Every attempt stalls after 1000 bytes; between attempts the partial file waits for the retry.
    let w = World::new("batch-sigterm-retry");
    let out = w.out();
    let list_path = w.write_list("list.txt", &format!("{}\n", w.url("/stall")));
    let args = [
        s(&list_path),
        "--out",
        s(&out),
        "-j",
        "1",
        "--stall",
        "0.3",
        "--retries",
        "10",
    ];
    let mut child = w.spawn(&args);
    // From the fourth attempt on, backoffs run to 1.6 s and more: wait for one, when only watchdog
    // itself is left (the stalled worker killed, the next one not started).
    let deadline = Instant::now() + Duration::from_secs(15);
    while w.server.requests_for("/stall") < 4 || w.marker.survivors().len() > 1 {
        assert!(Instant::now() < deadline, "no retry was pending");
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = signal_and_wait(&mut child, libc::SIGTERM, Duration::from_secs(10));
    assert_eq!(status.code(), Some(143));
    assert_eq!(files(&out), BTreeSet::from(["report.jsonl".to_string()]));
    w.marker.assert_no_survivors();
}

// ---- shards ------------------------------------------------------------------------------------

/// The URLs reported `ok` in a report.
fn ok_urls(report: &Path) -> BTreeSet<String> {
    read_report(report)
        .into_iter()
        .filter(|l| l.status == "ok")
        .map(|l| l.url)
        .collect()
}

#[test]
fn shards_split_a_list_exactly_and_auto_reads_the_scheduler() {
    let w = World::new("batch-shards");
    let urls: Vec<String> = (0..30)
        .map(|i| w.url(&format!("/file/shard/{i}.bin")))
        .collect();
    let list = w.write_list("list.txt", &(urls.join("\n") + "\n"));
    let everything: BTreeSet<String> = urls.iter().cloned().collect();

    // Three machines, one shared directory, a report each.
    let mut explicit = Vec::new();
    for k in 1..=3 {
        let report = w.path(&format!("shard-{k}.jsonl"));
        let shard = format!("{k}/3");
        let run = w.run(&[
            s(&list),
            "--out",
            s(&w.out()),
            "--report",
            s(&report),
            "--shard",
            &shard,
        ]);
        assert_eq!(run.code, Some(0), "shard {shard}: {}", run.stderr);
        let lines = read_report(&report);
        assert!(lines.iter().all(|l| l.status == "ok"), "{lines:#?}");
        w.assert_ok_files_are_intact(&w.out(), &lines);
        explicit.push(ok_urls(&report));
    }
    let mut union = BTreeSet::new();
    for part in &explicit {
        assert!(part.is_disjoint(&union), "shards overlap");
        union.extend(part.iter().cloned());
    }
    assert_eq!(union, everything);
    assert_eq!(files(&w.out()).len(), urls.len());
    for url in &urls {
        assert_eq!(w.server.requests_for(&url[w.url("").len()..]), 1, "{url}");
    }

    // `--shard auto` picks the same parts from a Slurm job array and a Kubernetes Indexed Job.
    for k in 1..=3u32 {
        let index = (k - 1).to_string();
        let slurm_out = w.path(&format!("slurm-{k}"));
        let mut cmd = w.command(&[s(&list), "--out", s(&slurm_out), "--shard", "auto"]);
        cmd.env("SLURM_ARRAY_TASK_ID", &index)
            .env("SLURM_ARRAY_TASK_COUNT", "3");
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        assert_eq!(
            ok_urls(&slurm_out.join("report.jsonl")),
            explicit[k as usize - 1]
        );

        let k8s_out = w.path(&format!("k8s-{k}"));
        let mut cmd = w.command(&[
            s(&list),
            "--out",
            s(&k8s_out),
            "--shard",
            "auto",
            "--shard-count",
            "3",
        ]);
        cmd.env("JOB_COMPLETION_INDEX", &index);
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        assert_eq!(
            ok_urls(&k8s_out.join("report.jsonl")),
            explicit[k as usize - 1]
        );
    }
    w.marker.assert_no_survivors();
}

/// The 0-based shard of `url` among `count`, as documented: the first 8 bytes of its SHA-256,
/// big-endian, modulo the count.
fn shard_of(url: &str, count: u64) -> u64 {
    let digest = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % count
}

#[test]
fn shards_sharing_one_directory_do_not_overwrite_each_others_files() {
    // Two URLs that both want `same.bin`, owned by different shards: neither shard's allocator sees
    // the other's name.
    let w = World::new("batch-shards-one-dir");
    let candidates: Vec<String> = (0..50)
        .map(|i| w.url(&format!("/file/d{i}/same.bin")))
        .collect();
    let first = &candidates[0];
    let second = candidates
        .iter()
        .find(|u| shard_of(u, 2) != shard_of(first, 2))
        .expect("two URLs in different shards");
    let list = w.write_list("list.txt", &format!("{first}\n{second}\n"));
    for k in ["1/2", "2/2"] {
        let report = w.path(&format!("shard-{}.jsonl", &k[..1]));
        let run = w.run(&[
            s(&list),
            "--out",
            s(&w.out()),
            "--report",
            s(&report),
            "--shard",
            k,
        ]);
        assert_eq!(run.code, Some(0), "shard {k}: {}", run.stderr);
    }
    let mut lines = read_report(&w.path("shard-1.jsonl"));
    lines.extend(read_report(&w.path("shard-2.jsonl")));
    assert_eq!(lines.len(), 2, "{lines:#?}");
    // The names an unsharded run gives: the first line keeps the name, the second gets a suffix.
    assert_eq!(line_for(&lines, first).path.as_deref(), Some("same.bin"));
    let other = line_for(&lines, second).path.clone().unwrap_or_default();
    assert!(
        other.starts_with("same-") && other.ends_with(".bin"),
        "{other}"
    );
    w.assert_ok_files_are_intact(&w.out(), &lines);
    w.marker.assert_no_survivors();
}

#[test]
fn a_bad_shard_is_one_error_line_and_nothing_is_written() {
    let w = World::new("batch-bad-shard");
    let list = w.write_list("list.txt", &(w.url("/file/x.bin") + "\n"));
    let refused = |args: &[&str], env: &[(&str, &str)], says: &str| {
        let mut cmd = w.command(&[&[s(&list), "--out", s(&w.out())], args].concat());
        for (name, value) in env {
            cmd.env(name, value);
        }
        let run = run_bounded(&mut cmd, LIMIT);
        assert_one_error_line(&run, says);
        assert!(run.stderr.contains("--shard"), "{}", run.stderr);
        assert!(!exists(&w.out()), "{args:?} created DIR");
    };
    refused(&["--shard", "0/3"], &[], "invalid shard '0/3'");
    refused(&["--shard", "4/3"], &[], "invalid shard '4/3'");
    refused(&["--shard", "x"], &[], "expected K/N");
    refused(&["--shard", "auto"], &[], "neither SLURM_ARRAY_TASK_ID");
    let k8s = [("JOB_COMPLETION_INDEX", "2")];
    refused(&["--shard", "auto"], &k8s, "add --shard-count");
    let count = ["--shard", "auto", "--shard-count", "2"];
    refused(&count, &k8s, "not below --shard-count 2");
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    refused(&["--shard", "auto"], &slurm, "Slurm array task 5");
    assert!(w.server.requests().is_empty());
    w.marker.assert_no_survivors();
}

// ---- what the list may hold --------------------------------------------------------------------

#[test]
fn hostile_names_stay_inside_dir() {
    let w = World::new("batch-names");
    // DIR two levels down, so that an escape by `../..` would still land in the test's own root.
    let out = w.path("a/b/out");
    let u = |p: &str| w.url(p);
    let json =
        |url: String, path: &str| serde_json::json!({ "url": url, "path": path }).to_string();
    let absolute = w.path("absolute.bin");
    let lines = [
        format!("{}\t../../etc/x", u("/file/up")),
        format!("{}\t{}", u("/file/abs"), s(&absolute)),
        json(u("/file/json-up"), "x\u{0}/../../../y"),
        u("/file/%2F..%2F..%2Fescaped.bin"),
        format!("{}\tsub%2F..%2F..%2Fpct.bin", u("/file/pct")),
        json(u("/file/ctl"), "ctl/a\u{0}b\u{1b}[1m.bin"),
        json(u("/file/nl"), "new\nline.bin"),
        u("/file/dots/.."),
        format!("{}\tCON", u("/file/w1")),
        format!("{}\tnul.txt", u("/file/w2")),
        format!("{}\tlpt1/x.bin", u("/file/w3")),
        u("/file/AUX.png"),
        u("/file/a/same.bin"),
        u("/file/b/same.bin"),
        u("/file/dup.bin"),
        u("/file/dup.bin"),
        u("/file/report.jsonl"),
    ];
    let list = w.write_list("list.txt", &(lines.join("\n") + "\n"));
    let run = w.run(&[s(&list), "--out", s(&out)]);
    assert_eq!(
        run.code,
        Some(1),
        "invalid lines fail the run: {}",
        run.stderr
    );

    let report = read_report(&out.join("report.jsonl"));
    assert_eq!(report.len(), lines.len(), "{report:#?}");
    // A refused line is reported with its own text in place of the URL, and the reason.
    for (n, refused, reason) in [
        (1, "/file/up", "leaves the output directory"),
        (2, "/file/abs", "absolute path"),
        (3, "/file/json-up", "leaves the output directory"),
    ] {
        let found: Vec<&Line> = report
            .iter()
            .filter(|l| l.url.contains(&u(refused)))
            .collect();
        assert_eq!(found.len(), 1, "{refused}: {report:#?}");
        let line = found[0];
        assert_eq!(line.status, "invalid", "{line:?}");
        let error = line.error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with(&format!("line {n}: ")) && error.contains(reason),
            "{line:?}"
        );
        assert_eq!((line.attempts, line.path.as_deref()), (0, None));
    }
    let path_of = |url: &str| -> String {
        let line = line_for(&report, url);
        assert_eq!(line.status, "ok", "{line:?}");
        line.path.clone().expect("path")
    };
    assert_eq!(
        path_of(&u("/file/%2F..%2F..%2Fescaped.bin")),
        "_.._.._escaped.bin"
    );
    assert_eq!(path_of(&u("/file/pct")), "sub%2F..%2F..%2Fpct.bin");
    assert_eq!(path_of(&u("/file/ctl")), "ctl/a_b_[1m.bin");
    assert_eq!(path_of(&u("/file/nl")), "new_line.bin");
    assert!(path_of(&u("/file/dots/..")).starts_with("127.0.0.1-"));
    assert_eq!(path_of(&u("/file/w1")), "_CON");
    assert_eq!(path_of(&u("/file/w2")), "_nul.txt");
    assert_eq!(path_of(&u("/file/w3")), "_lpt1/x.bin");
    assert_eq!(path_of(&u("/file/AUX.png")), "_AUX.png");
    // Two URLs with one name: the second gets a suffix from its own URL.
    assert_eq!(path_of(&u("/file/a/same.bin")), "same.bin");
    let other = path_of(&u("/file/b/same.bin"));
    assert!(
        other.starts_with("same-")
            && other.ends_with(".bin")
            && other.len() == "same-12345678.bin".len(),
        "{other}"
    );
    // The report keeps its name.
    assert_ne!(path_of(&u("/file/report.jsonl")), "report.jsonl");
    // A URL listed twice is fetched once.
    let dups: Vec<&Line> = report
        .iter()
        .filter(|l| l.url == u("/file/dup.bin"))
        .collect();
    // (The duplicate is reported when its line is read, possibly before the first one finishes.)
    let mut dup_statuses: Vec<&str> = dups.iter().map(|l| l.status.as_str()).collect();
    dup_statuses.sort_unstable();
    assert_eq!(dup_statuses, ["ok", "skipped"]);
    assert!(dups.iter().all(|l| l.path.as_deref() == Some("dup.bin")));
    assert_eq!(w.server.requests_for("/file/dup.bin"), 1);

    w.assert_ok_files_are_intact(&out, &report);
    // Nothing outside DIR: the root holds the list and the way down to DIR, and DIR holds the report
    // and one file per ok line (plus their directories).
    let mut expected: BTreeSet<String> =
        ["list.txt", "a/", "a/b/", "a/b/out/", "a/b/out/report.jsonl"]
            .map(String::from)
            .into();
    for line in report.iter().filter(|l| l.status == "ok") {
        let rel = line.path.as_deref().unwrap_or_default();
        expected.insert(format!("a/b/out/{rel}"));
        if let Some((dir, _)) = rel.rsplit_once('/') {
            expected.insert(format!("a/b/out/{dir}/"));
        }
    }
    assert_eq!(tree(w.root.path()), expected);
    for name in tree(&out) {
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
    w.marker.assert_no_survivors();
}

#[test]
fn bad_lines_are_reported_invalid_with_their_line_number_and_the_run_goes_on() {
    let w = World::new("batch-bad-lines");
    let long = w.url(&format!("/file/{}", "x".repeat(9000)));
    let list = format!(
        "\u{FEFF}{}\r\n\
         ftp://127.0.0.1/x.bin\r\n\
         garbage\r\n\
         # a comment\r\n\
         \r\n\
         {long}\r\n\
         {{\"url\": broken\r\n\
         {}\tsub/two.bin\r\n\
         {{\"url\":\"{}\",\"path\":\"three.bin\"}}\r\n",
        w.url("/file/one.bin"),
        w.url("/file/two"),
        w.url("/file/three"),
    );
    let run = w.batch(&list, &[]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(
        report.len(),
        7,
        "blank and comment lines are not items: {report:#?}"
    );
    let invalid: BTreeMap<u32, &Line> = report
        .iter()
        .filter(|l| l.status == "invalid")
        .map(|l| {
            let error = l.error.as_deref().unwrap_or_default();
            let number = error
                .strip_prefix("line ")
                .and_then(|e| e.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no line number in {error:?}"));
            (number, l)
        })
        .collect();
    assert_eq!(invalid.keys().copied().collect::<Vec<_>>(), [2, 3, 6, 7]);
    assert_eq!(invalid[&2].url, "ftp://127.0.0.1/x.bin");
    assert!(invalid[&6]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("longer than 8192")));
    assert!(
        invalid[&6].url.len() <= 200,
        "an invalid line is shown cut short"
    );
    assert!(invalid[&7]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("invalid JSON")));
    for line in invalid.values() {
        assert_eq!((line.attempts, line.path.as_deref()), (0, None), "{line:?}");
    }
    // The BOM and the CRs are not part of URLs or names.
    assert_eq!(
        line_for(&report, &w.url("/file/one.bin")).path.as_deref(),
        Some("one.bin")
    );
    assert_eq!(
        line_for(&report, &w.url("/file/two")).path.as_deref(),
        Some("sub/two.bin")
    );
    assert_eq!(
        line_for(&report, &w.url("/file/three")).path.as_deref(),
        Some("three.bin")
    );
    w.assert_ok_files_are_intact(&w.out(), &report);
    assert_eq!(report.iter().filter(|l| l.status == "ok").count(), 3);
    w.marker.assert_no_survivors();
}

#[test]
fn the_list_can_come_from_stdin() {
    let w = World::new("batch-stdin");
    let urls: Vec<String> = (0..5)
        .map(|i| w.url(&format!("/file/stdin/{i}.bin")))
        .collect();
    let list = urls.join("\n") + "\n";
    let mut cmd = w.command(&["-", "--out", s(&w.out()), "-j", "2"]);
    let run = run_bounded_with_input(&mut cmd, Some(list.as_bytes()), LIMIT);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 5);
    for url in &urls {
        assert_eq!(line_for(&report, url).status, "ok");
    }
    w.assert_ok_files_are_intact(&w.out(), &report);
    assert!(!exists(&w.path("-")) && !exists(&w.out().join("-")));
    w.marker.assert_no_survivors();
}

/// More items than the name index keeps in memory (32,768), so that it moves to its file in DIR
/// before the end: names stay unique and repeated URLs are still duplicates of their first line. No
/// download starts: every name is under `blocked/`, a plain file, so each item ends `io_error` with its
/// name in the report. The index file leaves nothing behind in DIR.
#[test]
fn a_list_longer_than_the_memory_index_is_named_and_deduplicated() {
    let w = World::new("batch-long-list");
    let out = w.out();
    std::fs::create_dir_all(&out).expect("create DIR");
    std::fs::write(out.join("blocked"), "").expect("create DIR/blocked");
    let n = 34_000;
    let url = |i: usize| format!("http://127.0.0.1:9/m/{i}.bin");
    let mut list = String::new();
    for i in 0..n {
        // A thousand names for 34,000 URLs: most items take a suffixed name.
        list.push_str(&format!("{}\tblocked/x{}.bin\n", url(i), i % 1000));
    }
    for i in (0..n).step_by(10) {
        list.push_str(&format!("{}\tblocked/x{}.bin\n", url(i), i % 1000));
    }
    let run = w.batch(&list, &["-q"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), n + n / 10);
    let mut path_of = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for line in &report[..n] {
        assert_eq!(line.status, "io_error", "{line:?}");
        let path = line.path.clone().expect("an io_error line has its path");
        assert!(taken.insert(path.to_lowercase()), "{path} given twice");
        path_of.insert(line.url.clone(), path);
    }
    for line in &report[n..] {
        assert_eq!(line.status, "skipped", "{line:?}");
        assert_eq!(line.path.as_ref(), path_of.get(&line.url), "{line:?}");
    }
    assert_eq!(path_of.len(), n);
    assert_eq!(
        files(&out),
        BTreeSet::from(["blocked".to_string(), "report.jsonl".to_string()])
    );
    w.marker.assert_no_survivors();
}

// ---- retries -----------------------------------------------------------------------------------

#[test]
fn transient_failures_are_retried_and_permanent_ones_are_not() {
    let w = World::new("batch-retries");
    let list = format!(
        "{}\n{}\n{}\n",
        w.url("/flaky/a.bin"),
        w.url("/status/404"),
        w.url("/status/503")
    );
    let run = w.batch(&list, &["--retries", "2", "-t", "5"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 3);

    let flaky = line_for(&report, &w.url("/flaky/a.bin"));
    assert_eq!(
        (flaky.status.as_str(), flaky.attempts),
        ("ok", 2),
        "{flaky:?}"
    );
    assert_eq!(w.server.requests_for("/flaky/a.bin"), 2);
    let missing = line_for(&report, &w.url("/status/404"));
    assert_eq!(
        (missing.status.as_str(), missing.attempts),
        ("http_error", 1)
    );
    assert_eq!(w.server.requests_for("/status/404"), 1);
    let down = line_for(&report, &w.url("/status/503"));
    assert_eq!((down.status.as_str(), down.attempts), ("http_error", 3));
    assert_eq!(down.http_status, Some(503));
    assert_eq!(w.server.requests_for("/status/503"), 3);
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

#[test]
fn a_retry_waits_as_long_as_the_server_asks_within_reason() {
    let w = World::new("batch-retry-after");
    let (soon, later) = (w.url("/busy/1/a.bin"), w.url("/busy/3600/b.bin"));
    let run = w.batch(
        &format!("{soon}\n{later}\n"),
        &["--retries", "2", "-t", "5"],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();

    // Retry-After: 1 is honoured; the usual first backoff is at most 200 ms.
    let waited = line_for(&report, &soon);
    assert_eq!(
        (waited.status.as_str(), waited.attempts),
        ("ok", 2),
        "{waited:?}"
    );
    assert!(waited.elapsed_ms >= 1000, "retried too soon: {waited:?}");
    // An hour is more than a batch waits: reported at once, asked for once.
    let gave_up = line_for(&report, &later);
    assert_eq!(
        (
            gave_up.status.as_str(),
            gave_up.attempts,
            gave_up.http_status
        ),
        ("http_error", 1, Some(429)),
        "{gave_up:?}"
    );
    let error = gave_up.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("3600 s") && error.contains("run it again later"),
        "{error}"
    );
    assert_eq!(w.server.requests_for("/busy/3600/b.bin"), 1);
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

#[test]
fn a_partial_download_kept_for_a_retry_is_removed_when_the_retry_fails() {
    // The first attempt stalls mid-body: its partial file is kept so that the retry can continue it.
    // The retry gets a 503 before any body, and that is the item's last attempt.
    let w = World::new("batch-retry-cleanup");
    let url = w.url("/stall-once/part.bin");
    let run = w.batch(&format!("{url}\n"), &["--retries", "1", "--stall", "0.5"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    let line = line_for(&report, &url);
    assert_eq!(
        (line.status.as_str(), line.attempts, line.http_status),
        ("http_error", 2, Some(503)),
        "{line:?}"
    );
    assert_eq!(
        files(&w.out()),
        BTreeSet::from(["report.jsonl".to_string()]),
        "neither the file nor its partial download is left"
    );
    w.marker.assert_no_survivors();
}

// ---- watchdog's own failures -------------------------------------------------------------------

#[test]
fn bad_input_is_one_error_line_and_exit_125() {
    let w = World::new("batch-bad-input");
    let list = w.write_list("list.txt", &(w.url("/file/x.bin") + "\n"));
    let out = s(&w.out()).to_string();

    let missing = w.path("no-such-list.txt");
    let run = w.run(&[s(&missing), "--out", &out]);
    assert_one_error_line(&run, "cannot open the list");

    // A directory opens but cannot be read.
    let run = w.run(&[s(w.root.path()), "--out", &out]);
    assert_one_error_line(&run, "cannot read the list");

    let run = w.run(&[s(&list), "--out", &out, "--jobs", "0"]);
    assert_one_error_line(&run, "--jobs must be at least 1");

    let nowhere = w.path("missing-dir/report.jsonl");
    let run = w.run(&[s(&list), "--out", &out, "--report", s(&nowhere)]);
    assert_one_error_line(&run, "cannot open the report");

    let run = w.run(&[s(&list), "--out", &out, "--report", s(w.root.path())]);
    assert_one_error_line(&run, "report");

    // A file where DIR should be.
    let run = w.run(&[s(&list), "--out", s(&list)]);
    assert_one_error_line(&run, "not a directory");

    assert!(w.server.requests().is_empty(), "nothing was downloaded");
    w.marker.assert_no_survivors();
}

// ---- a real web server -------------------------------------------------------------------------

#[test]
fn nginx_batch_of_fifty_files() {
    let nginx = Nginx::start();
    let m = Marker::new("batch-nginx");
    let dir = tempdir();
    let www = nginx.www().join("batch");
    std::fs::create_dir_all(&www).expect("create www/batch");
    let body = |i: usize| {
        let mut bytes = data(100 + i * 97);
        bytes.extend_from_slice(format!("file {i}").as_bytes());
        bytes
    };
    let mut list = String::new();
    for i in 0..50 {
        std::fs::write(www.join(format!("{i:03}.bin")), body(i)).expect("write a file");
        list.push_str(&nginx.url(&format!("/batch/{i:03}.bin")));
        list.push('\n');
    }
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).expect("write the list");
    let out = dir.path().join("out");
    let mut cmd = m.watchdog();
    cmd.args([
        "batch",
        s(&list_path),
        "--out",
        s(&out),
        "-j",
        "8",
        "-t",
        "10",
    ]);
    let run = run_bounded(&mut cmd, LIMIT);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("50 items in"), "{}", run.stderr);

    let report = read_report(&out.join("report.jsonl"));
    assert_eq!(report.len(), 50);
    for i in 0..50 {
        let url = nginx.url(&format!("/batch/{i:03}.bin"));
        let line = line_for(&report, &url);
        assert_eq!(line.status, "ok", "{line:?}");
        assert_eq!(line.http_status, Some(200));
        let name = format!("{i:03}.bin");
        assert_eq!(line.path.as_deref(), Some(name.as_str()));
        let got = std::fs::read(out.join(&name)).expect("read a download");
        assert!(got == body(i), "{name} differs");
        assert_eq!(line.sha256.as_deref(), Some(sha256_hex(&got).as_str()));
    }
    assert_eq!(files(&out).len(), 51, "50 files and the report");
    m.assert_no_survivors();
}

/// CPU seconds (user + system) a live process has used so far, from /proc.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf with a constant argument.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / per_second)
}

#[test]
fn a_due_retry_waiting_for_a_busy_worker_costs_no_cpu() {
    let w = World::new("batch-idle-retry");
    // One worker: the 503 fails at once and its retry falls due while /silent holds the worker until
    // its 1 s deadline (twice: a timeout is retried too). The supervisor must sleep meanwhile.
    let list = format!("{}\n{}\n", w.url("/status/503"), w.url("/silent"));
    let list_path = w.write_list("list.txt", &list);
    let mut child = w
        .command(&[
            s(&list_path),
            "--out",
            s(&w.out()),
            "-j",
            "1",
            "-t",
            "1",
            "--retries",
            "1",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start watchdog");
    let started = Instant::now();
    let mut used = 0.0;
    while child.try_wait().expect("poll watchdog").is_none() {
        assert!(started.elapsed() < LIMIT, "the batch did not finish");
        if let Some(seconds) = cpu_seconds(child.id()) {
            used = seconds;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(2),
        "both attempts at /silent should have run out: {elapsed:?}"
    );
    // A spinning loop would burn about as much CPU as the wall time; a sleeping one, next to none.
    assert!(
        used < 0.5,
        "the supervisor used {used:.2} s of CPU in {elapsed:?}"
    );
    let report = w.report();
    assert_eq!(line_for(&report, &w.url("/status/503")).attempts, 2);
    assert_eq!(line_for(&report, &w.url("/silent")).status, "timeout");
    w.marker.assert_no_survivors();
}

#[test]
fn a_rerun_fetches_again_only_the_files_that_no_longer_match_the_report() {
    let w = World::new("batch-rerun-verify");
    let urls: Vec<String> = (0..4)
        .map(|i| w.url(&format!("/file/verify/{i}.bin")))
        .collect();
    let list = urls.join("\n") + "\n";
    assert_eq!(w.batch(&list, &["-j", "2"]).code, Some(0));
    let first = w.report();
    let file = |i: usize| {
        w.out()
            .join(line_for(&first, &urls[i]).path.clone().unwrap_or_default())
    };
    // Same size, other bytes; and cut short: neither is what the report says was finished.
    let mut altered = std::fs::read(file(1)).expect("read a finished file");
    altered[0] ^= 0xff;
    std::fs::write(file(1), altered).expect("alter a finished file");
    let len = std::fs::metadata(file(2))
        .expect("stat a finished file")
        .len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(file(2))
        .and_then(|f| f.set_len(len / 2))
        .expect("truncate a finished file");

    let run = w.batch(&list, &["-j", "2"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let second = &w.report()[first.len()..];
    assert_eq!(
        second.len(),
        4,
        "one line per item in the second run: {second:?}"
    );
    let status = |i: usize| line_for(second, &urls[i]).status.clone();
    assert_eq!(
        (status(0), status(3)),
        ("skipped".to_string(), "skipped".to_string())
    );
    assert_eq!((status(1), status(2)), ("ok".to_string(), "ok".to_string()));
    for (i, url) in urls.iter().enumerate() {
        let expected = if i == 1 || i == 2 { 2 } else { 1 };
        assert_eq!(
            w.server.requests_for(&url[w.url("").len()..]),
            expected,
            "{url}"
        );
    }
    w.assert_ok_files_are_intact(&w.out(), second);
    w.marker.assert_no_survivors();
}

#[test]
fn no_sha256_leaves_the_digest_out_but_still_checks_one_the_list_gives() {
    let w = World::new("batch-no-sha256");
    let urls: Vec<String> = (0..4)
        .map(|i| w.url(&format!("/file/nosha/{i}.bin")))
        .collect();
    let good = sha256_hex(&w.body_of(&urls[2]));
    let list = format!(
        "{}\n{}\n{{\"url\":\"{}\",\"sha256\":\"{good}\"}}\n{{\"url\":\"{}\",\"sha256\":\"{}\"}}\n",
        urls[0],
        urls[1],
        urls[2],
        urls[3],
        "0".repeat(64)
    );
    let run = w.batch(&list, &["-j", "2", "--no-sha256"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 4, "{report:#?}");
    for url in &urls[..2] {
        let line = line_for(&report, url);
        assert_eq!(line.status, "ok", "{line:?}");
        assert_eq!(line.sha256, None, "{line:?}");
        assert_eq!(line.bytes, Some(w.body_of(url).len() as u64));
    }
    assert_eq!(
        line_for(&report, &urls[2]).sha256.as_deref(),
        Some(good.as_str())
    );
    assert_eq!(line_for(&report, &urls[3]).status, "rejected");
    for url in &urls[..3] {
        let rel = line_for(&report, url).path.clone().unwrap_or_default();
        let got = std::fs::read(w.out().join(&rel)).expect("read a download");
        assert!(
            got == w.body_of(url),
            "{rel} differs from what {url} served"
        );
    }

    // Without a digest in the report, a rerun goes by size: the finished files are skipped.
    let run = w.batch(&list, &["-j", "2", "--no-sha256", "--retries", "0"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let second = &w.report()[report.len()..];
    for url in &urls[..3] {
        assert_eq!(line_for(second, url).status, "skipped", "{second:?}");
    }
    w.marker.assert_no_survivors();
}

/// Open descriptors of `pid`; `None` once it is gone.
#[cfg(target_os = "linux")]
fn open_fds(pid: u32) -> Option<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|dir| dir.count())
}

#[test]
#[cfg(target_os = "linux")]
fn workers_stay_at_jobs_and_descriptors_stay_bounded_while_workers_are_replaced() {
    let w = World::new("batch-bounded");
    // Every item hangs: each round of three ends with three workers killed and replaced.
    let list: String = (0..12)
        .map(|i| w.url(&format!("/silent?{i}")) + "\n")
        .collect();
    let list = w.write_list("list.txt", &list);
    let mut child = w.spawn(&[
        s(&list),
        "--out",
        s(&w.out()),
        "-j",
        "3",
        "-t",
        "0.4",
        "--retries",
        "0",
    ]);
    let supervisor = child.id();
    // The reference: the supervisor's descriptors once its three workers run.
    w.marker.wait_for_processes(4, Duration::from_secs(10));
    let (mut most_processes, mut fds) = (0, Vec::new());
    // Observe the whole run, whatever its pace; it ends by itself (4 rounds of 0.4 s).
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the batch") {
            break status;
        }
        most_processes = most_processes.max(w.marker.survivors().len());
        fds.extend(open_fds(supervisor));
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let report = w.report();
    assert_eq!(report.len(), 12);
    assert!(report.iter().all(|l| l.status == "timeout"), "{report:#?}");
    // The supervisor and at most --jobs workers, ever.
    assert!(most_processes <= 4, "{most_processes} processes at once");
    // Twelve workers were started and nine killed; their pipes were all closed. The first sample was
    // taken with three workers running; a moment of spawning holds a few more (the new worker's pipes
    // before they are handed over), but a leak of two per replaced worker would add 18.
    assert!(fds.len() >= 8, "observed too little of the run: {fds:?}");
    let most = fds.iter().copied().max().unwrap_or(0);
    assert!(
        most <= fds[0] + 6,
        "descriptors grow as workers are replaced: {fds:?}"
    );
    w.marker.assert_no_survivors();
}

// ---- a worker that dies mid-item ---------------------------------------------------------------

/// Runs a batch of the one item `target` with one worker and `--retries retries`, SIGKILLs the worker
/// (as the OOM killer would) once the server has the item's first request, and returns how the batch
/// exited.
#[cfg(target_os = "linux")]
fn kill_the_worker_mid_item(w: &World, target: &str, retries: &str) -> std::process::ExitStatus {
    let url = w.url(target);
    let list = w.write_list("list.txt", &format!("{url}\n"));
    let mut child = w
        .command(&[
            s(&list),
            "--out",
            s(&w.out()),
            "-j",
            "1",
            "-t",
            "20",
            "--retries",
            retries,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watchdog batch");
    // The worker has the item in hand once the server has its request.
    let deadline = Instant::now() + Duration::from_secs(15);
    while w.server.requests_for(target) == 0 {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the batch ended before its worker could be killed"
        );
        assert!(
            Instant::now() < deadline,
            "the worker never asked for {url}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let workers: Vec<u32> = w
        .marker
        .survivors()
        .into_iter()
        .filter(|pid| *pid != child.id())
        .collect();
    assert_eq!(workers.len(), 1, "one worker: {workers:?}");
    // SAFETY: kill(2) on a live process that carries this test's marker.
    unsafe {
        libc::kill(workers[0] as i32, libc::SIGKILL);
    }
    use wait_timeout::ChildExt;
    match child.wait_timeout(LIMIT).expect("wait for the batch") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the batch did not finish");
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_worker_killed_mid_item_is_retried_like_a_timeout() {
    let w = World::new("batch-worker-death");
    // One item that takes a second to serve (50 bytes, 20 ms apart), one worker to serve it.
    let target = "/drip/20/50";
    let status = kill_the_worker_mid_item(&w, target, "1");
    let url = w.url(target);
    let report = w.report();
    let line = line_for(&report, &url);
    assert_eq!(status.code(), Some(0), "{line:?}");
    assert_eq!((line.status.as_str(), line.attempts), ("ok", 2), "{line:?}");
    assert_eq!(w.server.requests_for(target), 2);
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

#[test]
#[cfg(target_os = "linux")]
fn a_worker_killed_on_its_last_attempt_says_so_in_the_report() {
    let w = World::new("batch-worker-death-final");
    let target = "/drip/20/200";
    let status = kill_the_worker_mid_item(&w, target, "0");
    assert_eq!(status.code(), Some(1));
    let url = w.url(target);
    let report = w.report();
    let line = line_for(&report, &url);
    assert_eq!(
        (line.status.as_str(), line.attempts),
        ("io_error", 1),
        "{line:?}"
    );
    let error = line.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("worker process was killed by signal 9 (SIGKILL)"),
        "{error}"
    );
    w.marker.assert_no_survivors();
}

// ---- help ----------------------------------------------------------------------------------------

/// The help's hand-laid lines (tables, JSON samples, example commands) fit in 80 columns and are
/// printed as written; only the paragraphs, single long lines, are wrapped by clap (see
/// `man::every_help_reads_at_80_and_120_columns`).
#[test]
fn help_blocks_are_printed_as_written() {
    for (args, blocks) in [
        (
            &["batch", "--help"][..],
            [watchdog::BATCH_HELP, watchdog::BATCH_EXIT_STATUS_HELP, ""],
        ),
        (
            &["--help"][..],
            [
                watchdog::SUPERVISE_EXAMPLES,
                watchdog::EXIT_STATUS_HELP,
                watchdog::PROTOCOL_HELP,
            ],
        ),
    ] {
        let m = Marker::new("batch-help");
        let mut cmd = m.watchdog();
        // Not a terminal, no COLUMNS: clap wraps at its default width, 100.
        cmd.args(args).env_remove("COLUMNS");
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
        let printed: BTreeSet<&str> = run.stdout.lines().map(str::trim_end).collect();
        for line in blocks.iter().flat_map(|b| b.lines()) {
            if line.chars().count() > 80 {
                continue; // a paragraph, wrapped by clap
            }
            assert!(
                printed.contains(line.trim_end()),
                "`watchdog {}` re-wrapped {line:?}",
                args.join(" ")
            );
        }
    }
}

#[test]
fn credentials_never_reach_the_report_or_the_terminal() {
    let w = World::new("batch-credentials");
    let good = w
        .url("/file/creds.bin")
        .replace("http://", "http://user:s3cretpw@");
    let refused = w
        .url("/status/404")
        .replace("http://", "http://user:s3cretpw@");
    let list = format!(
        "{good}\n{refused}\nftp://user:s3cretpw@127.0.0.1/x.bin\n{{\"url\":\"http:\\/\\/user:s3cretpw@h\\/a b\"}}\n"
    );
    let run = w.batch(&list, &["-q"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = std::fs::read_to_string(w.out().join("report.jsonl")).expect("read the report");
    for (what, text) in [
        ("report", &report),
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
    ] {
        assert!(!text.contains("s3cretpw"), "credentials in {what}: {text}");
    }
    let lines = w.report();
    assert_eq!(lines.len(), 4, "{report}");
    assert!(lines.iter().any(|l| l.status == "ok"), "{report}");
    assert!(lines.iter().all(|l| !l.url.contains("s3cretpw")));
}

/// A name the workers' resolver never answers for (a test-only hook of batch workers), at a
/// reserved top-level domain: nothing is ever looked up.
const SILENT_NAME: &str = "silent-resolver.invalid";

impl World {
    /// `watchdog batch` with the test-only silent resolver for [`SILENT_NAME`].
    fn batch_with_silent_dns(&self, list: &str, args: &[&str]) -> Run {
        let list_path = self.write_list("list.txt", list);
        let mut cmd = self.command(&[&[s(&list_path), "--out", s(&self.out())], args].concat());
        cmd.env("WATCHDOG_TEST_SILENT_HOSTS", SILENT_NAME);
        run_bounded(&mut cmd, LIMIT)
    }
}

#[test]
fn an_attempt_stopped_before_the_server_answered_is_named_for_its_phase() {
    if !can_run(
        "an_attempt_stopped_before_the_server_answered_is_named_for_its_phase",
        cfg!(feature = "test-hooks"),
        "a build with the test hooks (cargo test --features test-hooks, as scripts/test.sh runs it)",
    ) {
        return;
    }
    let w = World::new("batch-phases");
    let dead = SynSink::start();
    let dead_url = dead.url("/a.jpg");
    let silent_url = format!("http://{SILENT_NAME}/b.jpg");
    let mute_url = w.url("/silent");
    let stall_url = w.url("/stall");
    let list = format!("{dead_url}\n{silent_url}\n{mute_url}\n{stall_url}\n");
    let run = w.batch_with_silent_dns(
        &list,
        &["--stall", "1", "-t", "30", "--retries", "0", "-j", "4"],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 4, "{report:?}");
    let dead_line = line_for(&report, &dead_url);
    assert_eq!(dead_line.status, "connect_error", "{dead_line:?}");
    let error = dead_line.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("no connection to 127.0.0.1:") && error.contains("--stall"),
        "{error}"
    );
    let silent_line = line_for(&report, &silent_url);
    assert_eq!(silent_line.status, "dns_error", "{silent_line:?}");
    let error = silent_line.error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&format!("no DNS answer for {SILENT_NAME}:80 in 1 s")),
        "{error}"
    );
    // The server accepted these: they are stalls, before and after the response head.
    let mute_line = line_for(&report, &mute_url);
    assert_eq!(mute_line.status, "stalled", "{mute_line:?}");
    assert_eq!(mute_line.http_status, None, "{mute_line:?}");
    assert!(
        mute_line
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no answer from 127.0.0.1:")
                && e.ends_with("for 1 s after the request was sent (--stall)")),
        "{mute_line:?}"
    );
    // Its head and first 1000 bytes come at once, within the tenth of a second a worker holds back
    // its start line: the worker sends both when the body pauses, so the status and bytes are known.
    let stall_line = line_for(&report, &stall_url);
    assert_eq!(stall_line.status, "stalled", "{stall_line:?}");
    assert_eq!(stall_line.http_status, Some(200), "{stall_line:?}");
    assert!(
        stall_line
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no data from 127.0.0.1:")
                && e.ends_with("for 1 s after 1000 B of 97.7 KiB of the body (--stall)")),
        "{stall_line:?}"
    );
    assert!(tree(&w.out()).iter().all(|f| !f.contains("watchdog-part")));
    w.marker.assert_no_survivors();
}

/// A body that stops part-way is named by what had arrived, under --stall and under --timeout, and
/// keeps its HTTP status (it was `"http_status":null` and "after the request was sent").
#[test]
fn a_body_that_stops_part_way_is_named_by_what_had_arrived() {
    let w = World::new("batch-part-way");
    let url = w.url("/stall-after/102400/249856");
    for (args, status, words) in [
        (
            ["--stall", "1", "-t", "30"],
            "stalled",
            "for 1 s after 100.0 KiB of 244.0 KiB of the body (--stall)",
        ),
        (
            ["--stall", "0", "-t", "1"],
            "timeout",
            "deadline of 1 s passed after 100.0 KiB of 244.0 KiB of the body from 127.0.0.1:",
        ),
    ] {
        let run = w.batch(
            &format!("{url}\n"),
            &[&args[..], &["--retries", "0"]].concat(),
        );
        assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
        let report = w.report();
        let line = line_for(&report, &url);
        assert_eq!(line.status, status, "{line:?}");
        assert_eq!(line.http_status, Some(200), "{line:?}");
        let error = line.error.as_deref().unwrap_or_default();
        assert!(error.contains(words), "{args:?}: {error}");
        std::fs::remove_dir_all(w.out()).expect("clear the output directory");
    }
    w.marker.assert_no_survivors();
}

#[test]
fn the_deadline_in_the_connect_phase_is_a_connect_error() {
    let w = World::new("batch-phase-deadline");
    let dead = SynSink::start();
    let url = dead.url("/a.jpg");
    let run = w.batch(
        &format!("{url}\n"),
        &["--stall", "0", "-t", "1", "--retries", "0"],
    );
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report[0].status, "connect_error", "{report:?}");
    assert!(
        report[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("in 1 s (--timeout)")),
        "{report:?}"
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_symlink_under_dir_is_not_followed() {
    let w = World::new("batch-symlink");
    let outside = w.path("outside");
    std::fs::create_dir_all(&outside).expect("mkdir outside");
    std::fs::create_dir_all(w.out().join("real")).expect("mkdir out/real");
    std::os::unix::fs::symlink(&outside, w.out().join("link")).expect("symlink");
    // A link deeper down, and one that points inside DIR: neither is followed.
    std::os::unix::fs::symlink(&outside, w.out().join("real/deep")).expect("symlink");
    std::os::unix::fs::symlink(w.out().join("real"), w.out().join("inner")).expect("symlink");
    let urls = [
        w.url("/file/a"),
        w.url("/file/b"),
        w.url("/file/c"),
        w.url("/file/d"),
    ];
    let list = format!(
        "{}\tlink/x.jpg\n{}\treal/deep/y.jpg\n{}\tinner/z.jpg\n{}\treal/ok.jpg\n",
        urls[0], urls[1], urls[2], urls[3]
    );
    let run = w.batch(&list, &["--retries", "0"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        std::fs::read_dir(&outside)
            .expect("read outside")
            .next()
            .is_none(),
        "written outside DIR: {:?}",
        tree(&outside)
    );
    assert!(
        !exists(&w.out().join("real/z.jpg")),
        "followed a link inside DIR"
    );
    let report = w.report();
    for url in &urls[..3] {
        let line = line_for(&report, url);
        assert_eq!(line.status, "io_error", "{line:?}");
        assert!(
            line.error
                .as_deref()
                .is_some_and(|e| e.contains("symbolic link")),
            "{line:?}"
        );
    }
    assert_eq!(line_for(&report, &urls[3]).status, "ok");
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

#[test]
fn a_dead_host_trips_the_circuit_breaker_and_its_items_are_reported_at_once() {
    let w = World::new("batch-breaker");
    let dead = SynSink::start();
    let dead_urls: Vec<String> = (0..6).map(|i| dead.url(&format!("/{i}.jpg"))).collect();
    let good = w.url("/file/good");
    let list = format!("{}\n{good}\n", dead_urls.join("\n"));
    let args = ["--stall", "1", "-t", "30", "--retries", "1", "-j", "1"];
    let run = w.batch(&list, &[&args[..], &["--host-failures", "2"]].concat());
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 7, "{report:?}");
    assert_eq!(line_for(&report, &good).status, "ok");
    let host = dead.url("").trim_start_matches("http://").to_string();
    let mut held_back = 0;
    for url in &dead_urls {
        let line = line_for(&report, url);
        assert_eq!(line.status, "connect_error", "{line:?}");
        let error = line.error.as_deref().unwrap_or_default();
        if error.contains("not tried") {
            assert!(
                error.contains(&format!("host {host} failed at connect")),
                "{error}"
            );
            held_back += 1;
        }
    }
    // Two attempts trip it: at most the first two items were tried (once each), the rest at once.
    assert!(held_back >= 4, "{report:?}");
    assert!(
        run.stderr
            .contains(&format!("({held_back} not tried: host down")),
        "{}",
        run.stderr
    );
    w.marker.assert_no_survivors();
}

#[test]
fn host_failures_0_disables_the_circuit_breaker() {
    let w = World::new("batch-breaker-off");
    let dead = SynSink::start();
    let urls: Vec<String> = (0..4).map(|i| dead.url(&format!("/{i}.jpg"))).collect();
    let list = format!("{}\n", urls.join("\n"));
    let args = [
        "--stall",
        "1",
        "--retries",
        "0",
        "-j",
        "4",
        "--host-failures",
        "0",
    ];
    let run = w.batch(&list, &args);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 4);
    for line in &report {
        assert_eq!(line.status, "connect_error", "{line:?}");
        assert!(
            line.error
                .as_deref()
                .is_some_and(|e| e.starts_with("no connection to")),
            "{line:?}"
        );
    }
    assert!(!run.stderr.contains("not tried"), "{}", run.stderr);
    w.marker.assert_no_survivors();
}

#[test]
fn a_dripping_server_below_min_speed_is_stopped_as_stalled_and_retried() {
    let w = World::new("batch-min-speed");
    // 20 bytes a second for 50 s: the stall watch never fires.
    let drip = w.url("/drip/50/1000");
    let fast = w.url("/data/200000");
    let list = format!("{drip}\n{fast}\n");
    let args = [
        "--min-speed",
        "200",
        "--min-speed-window",
        "1",
        "--stall",
        "3",
        "-t",
        "30",
        "--retries",
        "1",
    ];
    let started = Instant::now();
    let run = w.batch(&list, &args);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the drip ran to its end"
    );
    let report = w.report();
    let line = line_for(&report, &drip);
    assert_eq!(
        (line.status.as_str(), line.attempts),
        ("stalled", 2),
        "{line:?}"
    );
    let error = line.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("slower than --min-speed 200 B/s: "),
        "{error}"
    );
    assert!(error.contains("B/s over the last"), "{error}");
    assert_eq!(line_for(&report, &fast).status, "ok");
    assert!(tree(&w.out()).iter().all(|f| !f.contains("watchdog-part")));
    w.marker.assert_no_survivors();
}

#[test]
fn per_host_caps_the_items_of_one_host_in_flight() {
    let w = World::new("batch-per-host");
    // Items that take a while each (20 bytes every 10 ms), so that without the cap they overlap.
    let urls: Vec<String> = (0..6)
        .map(|i| w.url(&format!("/drip/10/{}", 30 + i)))
        .collect();
    let list = format!("{}\n", urls.join("\n"));
    let run = w.batch(&list, &["-j", "4", "--per-host", "2", "--retries", "0"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 6);
    assert!(report.iter().all(|l| l.status == "ok"), "{report:?}");
    assert!(
        w.server.most_concurrent() <= 2,
        "{} at once",
        w.server.most_concurrent()
    );
    w.assert_ok_files_are_intact(&w.out(), &report);
    w.marker.assert_no_survivors();
}

#[test]
fn without_per_host_one_host_gets_every_job() {
    let w = World::new("batch-per-host-off");
    let urls: Vec<String> = (0..4)
        .map(|i| w.url(&format!("/drip/10/{}", 100 + i)))
        .collect();
    let run = w.batch(&format!("{}\n", urls.join("\n")), &["-j", "4"]);
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    // Each takes a second: all four overlap unless something holds them back.
    assert!(
        w.server.most_concurrent() >= 2,
        "{}",
        w.server.most_concurrent()
    );
    w.marker.assert_no_survivors();
}

#[test]
fn a_tls_handshake_that_never_finishes_is_a_tls_error() {
    let w = World::new("batch-phase-tls");
    // Accepts connections (kept open in the backlog's queue) and never says a word: the client's
    // ClientHello is never answered.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!(
        "https://127.0.0.1:{}/a.jpg",
        mute.local_addr().expect("local address").port()
    );
    let run = w.batch(&format!("{url}\n"), &["--stall", "1", "--retries", "0"]);
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let report = w.report();
    assert_eq!(report[0].status, "tls_error", "{report:?}");
    assert!(
        report[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("TLS handshake with 127.0.0.1:")),
        "{report:?}"
    );
    drop(mute);
    w.marker.assert_no_survivors();
}

// ---- where the report goes ---------------------------------------------------------------------

#[test]
fn report_lines_say_when_they_finished_and_which_run_wrote_them() {
    let w = World::new("batch-finished-at");
    let list = format!(
        "{}\n{{\"url\":\"{}\",\"id\":12345678901234567890,\"caption\":\"a \\\"cat\\\"\",\"tags\":[1,2]}}\n",
        w.url("/file/t/a"),
        w.url("/file/t/b")
    );
    let run = w.batch(&list, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = w.batch(&list, &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let report = w.report();
    assert_eq!(report.len(), 4);
    let runs: BTreeSet<&str> = report.iter().filter_map(|l| l.run.as_deref()).collect();
    assert_eq!(runs.len(), 2, "one id per invocation: {report:#?}");
    assert_eq!(report[0].run, report[1].run);
    for line in &report {
        let at = line.finished_at.as_deref().unwrap_or("");
        // 2026-12-02T02:33:12.123Z
        assert_eq!(at.len(), 24, "{line:?}");
        assert!(
            at.ends_with('Z') && at.as_bytes()[10] == b'T' && at.as_bytes()[19] == b'.',
            "{at}"
        );
    }
    let mut times: Vec<&str> = report
        .iter()
        .filter_map(|l| l.finished_at.as_deref())
        .collect();
    let written = times.clone();
    times.sort_unstable();
    assert_eq!(times, written, "lines are written in the order they finish");
    // The extra keys, unchanged (all 20 digits of the id), under `extra`.
    let text = std::fs::read_to_string(w.out().join("report.jsonl")).expect("read the report");
    assert!(
        text.contains(
            "\"extra\":{\"id\":12345678901234567890,\"caption\":\"a \\\"cat\\\"\",\"tags\":[1,2]}"
        ),
        "{text}"
    );
    // The first run's lines, one per item, in the order they finished.
    assert!(line_for(&report[..2], &w.url("/file/t/a")).extra.is_none());
    assert!(line_for(&report[..2], &w.url("/file/t/b")).extra.is_some());
    w.marker.assert_no_survivors();
}

#[test]
fn report_dash_streams_each_line_to_stdout_as_the_item_finishes() {
    use std::io::{BufRead, BufReader};
    let w = World::new("batch-report-stdout");
    let mut list = String::new();
    for i in 0..5 {
        list.push_str(&format!("{}\n", w.url(&format!("/file/q/{i}.jpg"))));
    }
    // Holds the batch open for seconds after the quick items are done.
    list.push_str(&format!("{}\n", w.url("/silent")));
    let list_path = w.write_list("list.txt", &list);
    let mut child = w
        .command(&[
            s(&list_path),
            "--out",
            s(&w.out()),
            "--report",
            "-",
            "-j",
            "1",
            "--stall",
            "4",
            "--retries",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watchdog batch");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a report line");
        seen.push(line);
    }
    // Five lines arrived while the sixth item still hangs: streamed, not written at the end.
    assert!(child.try_wait().expect("try_wait").is_none());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).expect("read the rest");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    seen.extend(rest.lines().map(str::to_string));
    assert_eq!(seen.len(), 6, "{seen:?}");
    let parsed: Vec<Line> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(parsed[..5].iter().all(|l| l.status == "ok"));
    assert_eq!(parsed[5].status, "stalled");
    // Nothing but report lines on stdout, and no file named `-`.
    assert!(!exists(&w.root.path().join("-")));
    assert!(!exists(&w.out().join("report.jsonl")));
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
    }
    assert!(stderr.contains("is a stream"), "{stderr}");
    w.marker.assert_no_survivors();
}

#[test]
fn a_pipe_or_fifo_report_is_written_and_never_read_back() {
    let w = World::new("batch-report-fifo");
    let list = format!("{}\n{}\n", w.url("/file/f/a"), w.url("/file/f/b"));
    // /dev/stdout on a pipe: the run used to block reading it back.
    let list_path = w.write_list("list.txt", &list);
    let run = w.run(&[
        s(&list_path),
        "--out",
        s(&w.out()),
        "--report",
        "/dev/stdout",
        "-q",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    // A FIFO, with a reader on the other end.
    let fifo = w.path("report.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap_or_default())
    };
    let run = w.run(&[
        s(&list_path),
        "--out",
        s(&w.path("out2")),
        "--report",
        s(&fifo),
        "-q",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let got = reader.join().unwrap_or_default();
    assert_eq!(got.lines().count(), 2, "{got}");
    w.marker.assert_no_survivors();
}

#[test]
fn a_report_that_is_a_directory_or_cannot_be_opened_is_one_error_before_any_download() {
    let w = World::new("batch-report-bad");
    let list = format!("{}\n", w.url("/file/r/a"));
    let dir = w.path("a-dir");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for report in [
        s(&dir).to_string(),
        s(&w.path("missing/r.jsonl")).to_string(),
    ] {
        let run = w.batch(&list, &["--report", &report]);
        assert_eq!(run.code, Some(125), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr
                .starts_with("watchdog: batch: cannot open the report"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(w.server.requests_for("/file/r/a"), 0);
    w.marker.assert_no_survivors();
}

#[test]
fn the_default_report_is_not_written_through_a_symlink() {
    let w = World::new("batch-report-symlink");
    let target = w.path("elsewhere.jsonl");
    std::fs::write(&target, "precious\n").expect("write the target");
    std::fs::create_dir_all(w.out()).expect("mkdir out");
    std::os::unix::fs::symlink(&target, w.out().join("report.jsonl")).expect("symlink");
    let run = w.batch(&format!("{}\n", w.url("/file/l/a")), &[]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("symbolic link"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&target).ok().as_deref(),
        Some("precious\n")
    );
    assert_eq!(w.server.requests_for("/file/l/a"), 0);
    // Given explicitly, the same link is the user's choice, and is followed.
    let run = w.batch(
        &format!("{}\n", w.url("/file/l/a")),
        &["--report", s(&w.out().join("report.jsonl"))],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = std::fs::read_to_string(&target).expect("read the target");
    assert!(
        text.starts_with("precious\n") && text.lines().count() == 2,
        "{text}"
    );
    w.marker.assert_no_survivors();
}

// ---- the closing summary -----------------------------------------------------------------------

#[test]
fn a_failing_batch_names_its_failures_the_report_and_the_retry_command_even_with_q() {
    let w = World::new("batch-summary-failures");
    let list = format!(
        "{}\n{}\n{}\n{}\n{}\nftp://host/x\n",
        w.url("/file/ok.bin"),
        w.url("/nothing/here/1"),
        w.url("/nothing/here/2"),
        w.url("/status/503"),
        w.url("/status/500"),
    );
    let run = w.batch(&list, &["-q", "--retries", "0"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let out = s(&w.out()).to_string();
    for expected in [
        "6 items in",
        "4 http_error:",
        "1 invalid:",
        &format!("report: {out}/report.jsonl"),
        &format!(
            "to retry the 2 items a retry may fix: watchdog report --failed {out}/report.jsonl > \
             retry.txt && watchdog batch retry.txt --out {out}"
        ),
        "2 failed items a retry will not fix (a 404, a body refused, a local error)",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected:?} in:\n{}",
            run.stderr
        );
    }
    // Three of the four HTTP errors are named, in the order they ended, so at least one of the two
    // 404s is among them.
    let named_404s = ["/nothing/here/1", "/nothing/here/2"]
        .iter()
        .filter(|path| {
            run.stderr
                .contains(&format!("  {}: the server answered 404", w.url(path)))
        })
        .count();
    assert!(named_404s >= 1, "no 404 named in:\n{}", run.stderr);
    // The command does what it says: the retry list holds the 503 and the 500, not the 404s, the ok
    // or the invalid item.
    let retry = run_bounded(
        w.marker
            .watchdog()
            .args(["report", "--failed", &format!("{out}/report.jsonl")]),
        LIMIT,
    );
    assert_eq!(retry.stdout.lines().count(), 2, "{}", retry.stdout);
    assert!(retry.stdout.contains("/status/503"), "{}", retry.stdout);
    assert!(retry.stdout.contains("/status/500"), "{}", retry.stdout);
    // A quiet run that succeeds says nothing.
    let quiet = w.batch(&format!("{}\n", w.url("/file/ok.bin")), &["-q"]);
    assert_eq!(quiet.code, Some(0), "{}", quiet.stderr);
    assert_eq!(quiet.stderr, "");
    w.marker.assert_no_survivors();
}

#[test]
fn an_interrupted_batch_says_so_counts_what_was_not_done_and_says_how_to_resume() {
    let w = World::new("batch-summary-interrupted");
    let mut list = format!("{}\n", w.url("/file/quick.bin"));
    for i in 0..6 {
        list.push_str(&format!(
            "{}\tslow/{i}.bin\n",
            w.url(&format!("/drip/20/60?s={i}"))
        ));
    }
    let list_path = w.write_list("list.txt", &list);
    let out = w.out();
    let report_path = out.join("report.jsonl");
    let mut child = w
        .command(&[s(&list_path), "--out", s(&out), "-j", "1", "-t", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start watchdog batch");
    wait_for_an_ok_line(&report_path, &mut child);
    let status = signal_and_wait(&mut child, libc::SIGTERM, LIMIT);
    assert_eq!(status.code(), Some(143));
    let mut stderr = String::new();
    use std::io::Read;
    let _ = child
        .stderr
        .take()
        .map(|mut e| e.read_to_string(&mut stderr));
    assert!(
        stderr.contains("batch interrupted by SIGTERM after")
            && stderr.contains("1 item ended (1 ok), 6 of 7 not done"),
        "{stderr}"
    );
    assert!(!stderr.contains("nothing to do"), "{stderr}");
    assert!(
        stderr.contains("to resume, run the same command again"),
        "{stderr}"
    );
    assert!(!stderr.contains("to retry the"), "{stderr}");
    w.marker.assert_no_survivors();
}

/// Every `--option` a hint names exists in the subcommand that printed it: the option names in a
/// batch's messages and report errors (a truncated body, a 404, a stall, a bad line) are checked
/// against `watchdog batch --help`, and those of `fetch`'s against `watchdog -- fetch --help`.
#[test]
fn hints_name_only_options_of_the_subcommand_that_prints_them() {
    fn options(text: &str) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        for (at, _) in text.match_indices("--") {
            let name: String = text[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name.len() > 1 && name.starts_with(|c: char| c.is_ascii_lowercase()) {
                found.insert(format!("--{name}"));
            }
        }
        found
    }
    let w = World::new("batch-hints");
    let list = format!(
        "{}\n{}\n{}\nftp://host/x\n",
        w.url("/short"),
        w.url("/status/404"),
        w.url("/stall")
    );
    let run = w.batch(&list, &["--stall", "1", "--retries", "0", "-t", "20"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let report = std::fs::read_to_string(w.out().join("report.jsonl")).unwrap_or_default();
    assert!(report.contains("\"truncated\""), "{report}");
    let help = w.run(&["--help"]).stdout;
    // The retry command names report's option, after `watchdog report`.
    let report_help = run_bounded(w.marker.watchdog().args(["report", "--help"]), LIMIT).stdout;
    assert!(
        run.stderr.contains("watchdog report --failed"),
        "{}",
        run.stderr
    );
    assert!(report_help.contains("--failed"));
    let stderr = run.stderr.replace("watchdog report --failed", "");
    let named = options(&format!("{stderr}\n{report}"));
    assert!(named.contains("--out"), "{named:?}");
    for option in &named {
        assert!(
            help.contains(option.as_str()),
            "batch names {option}, which it has not:\n{}\n{report}",
            run.stderr
        );
    }
    // The worker's own hint names fetch's --resume, which fetch has.
    let fetched = run_bounded(
        w.marker
            .watchdog()
            .args(["--", "fetch", &w.url("/short"), "-o", s(&w.path("a"))]),
        LIMIT,
    );
    let fetch_help = run_bounded(w.marker.watchdog().args(["--", "fetch", "--help"]), LIMIT).stdout;
    for option in options(&fetched.stderr) {
        assert!(
            fetch_help.contains(option.as_str()),
            "fetch names {option}: {}",
            fetched.stderr
        );
    }
    w.marker.assert_no_survivors();
}

#[test]
fn a_negative_count_and_a_file_given_as_out_get_messages_that_name_the_problem() {
    let w = World::new("batch-bad-counts");
    let list = w.write_list("list.txt", &format!("{}\n", w.url("/file/a.bin")));
    for option in ["--retries", "--jobs", "--per-host", "--host-failures"] {
        let run = w.run(&[s(&list), "--out", s(&w.out()), option, "-1"]);
        assert_eq!(run.code, Some(125), "{}", run.stderr);
        assert_eq!(
            run.stderr,
            format!(
                "watchdog: invalid value '-1' for '{option} <N>': a count cannot be negative: \
                 expected a whole number, 0 or more (see --help)\n"
            )
        );
    }
    let run = w.run(&[s(&list), "--out", s(&list)]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(
        run.stderr,
        format!(
            "watchdog: batch: --out '{}': not a directory (give the directory the files go into)\n",
            s(&list)
        )
    );
    assert!(!exists(&w.out()), "nothing was fetched");
    w.marker.assert_no_survivors();
}

/// An --out no file can be created in fails before any request, with the report elsewhere too (the
/// default report inside it fails on its own): every download would have been lost after it arrived.
/// /proc/1 is a directory even root cannot create files in.
#[cfg(target_os = "linux")]
#[test]
fn an_out_directory_that_cannot_be_written_fails_before_any_request() {
    let w = World::new("batch-out-unwritable");
    let list = w.write_list("list.txt", &format!("{}\n", w.url("/file/a.bin")));
    let report = w.path("report.jsonl");
    let run = w.run(&[s(&list), "--out", "/proc/1", "--report", s(&report)]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("watchdog: batch: --out '/proc/1': cannot create files there: "),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(w.server.requests_for("/file/a.bin"), 0);
    w.marker.assert_no_survivors();
}

#[test]
fn jobs_beyond_the_cap_are_clamped_with_a_note() {
    let w = World::new("batch-jobs-cap");
    let run = w.batch(
        &format!("{}\n", w.url("/file/a.bin")),
        &["--jobs", "100000"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "watchdog: batch: --jobs 100000 is more than a batch runs at once: using 1024\n"
        ),
        "{}",
        run.stderr
    );
    w.marker.assert_no_survivors();
}
