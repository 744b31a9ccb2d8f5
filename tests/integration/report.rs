//! `watchdog report FILE...` over the reports of real batches: shards and reruns reconcile to one
//! outcome per item, duplicates and a malformed line change nothing but what they should, `--failed`
//! goes back into `watchdog batch` and the retry fixes exactly those items, at their first paths. And
//! the README's Kubernetes manifest is valid YAML with the fields a Job has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use std::process::Stdio;
use std::time::Instant;

use crate::common::{can_run, run_bounded, s, Run, World, SCHEDULER_ENV};
use crate::server::file_body;

const LIMIT: Duration = Duration::from_secs(40);

impl World {
    /// `watchdog ARGS` in the root directory, outside any scheduler.
    fn run_watchdog(&self, args: &[&str]) -> Run {
        let mut cmd: Command = self.marker.watchdog();
        cmd.args(args).current_dir(self.root.path());
        for var in SCHEDULER_ENV {
            cmd.env_remove(var);
        }
        run_bounded(&mut cmd, LIMIT)
    }

    /// `watchdog report --json ARGS`: the summary, parsed.
    fn report_json(&self, args: &[&str]) -> (serde_json::Value, Run) {
        let run = self.run_watchdog(&[&["report", "--json"], args].concat());
        let value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", run.stdout, run.stderr));
        (value, run)
    }
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn shards_reruns_duplicates_and_a_malformed_line_reconcile_to_one_outcome_per_item() {
    let w = World::new("report-shards");
    let mut list = String::new();
    for i in 0..12 {
        list.push_str(&w.server.url(&format!("/file/r/{i}.bin\n")));
    }
    // Fails the first time (500, and no retries), then succeeds: two lines, one outcome, ok.
    for i in 0..3 {
        list.push_str(&w.server.url(&format!("/flaky/r/{i}.bin\n")));
    }
    // Fails every time.
    list.push_str(&w.server.url("/status/404\n"));
    // A duplicate: a skipped line that must not count as a second item.
    list.push_str(&w.server.url("/file/r/0.bin\n"));
    std::fs::write(w.path("list.txt"), list).expect("write the list");

    let out = w.path("out");
    for _run in 0..2 {
        for k in 1..=3 {
            let shard = format!("{k}/3");
            let report = w.path(&format!("report-{k}.jsonl"));
            let run = w.run_watchdog(&[
                "batch",
                "list.txt",
                "--out",
                s(&out),
                "--shard",
                &shard,
                "--retries",
                "0",
                "--report",
                s(&report),
                "-q",
            ]);
            assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
        }
    }
    let reports: Vec<PathBuf> = (1..=3)
        .map(|k| w.path(&format!("report-{k}.jsonl")))
        .collect();
    let total_lines: usize = reports.iter().map(|r| lines(r).len()).sum();
    assert!(total_lines > 17, "two runs: {total_lines} lines");

    // In any order of the shards.
    let (forward, run) = w.report_json(&[s(&reports[0]), s(&reports[1]), s(&reports[2])]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let (backward, _) = w.report_json(&[s(&reports[2]), s(&reports[0]), s(&reports[1])]);
    assert_eq!(forward, backward);
    assert_eq!(forward["items"], 16, "{forward}");
    assert_eq!(forward["missing"], 1, "{forward}");
    assert_eq!(forward["statuses"]["http_error"], 1, "{forward}");
    assert_eq!(forward["done"], 15, "{forward}");
    assert_eq!(forward["hosts"][0]["host"], "127.0.0.1");
    assert_eq!(forward["hosts"][0]["items"], 16);
    assert_eq!(forward["unreadable_lines"], 0);

    // A malformed line is named with its line number and skipped; nothing else changes.
    let mut text = std::fs::read_to_string(&reports[1]).expect("read the report");
    let malformed_at = text.lines().count() + 1;
    text.push_str("{\"url\": \"https://h/x\", \"status\": 7}\n");
    text.push_str(&std::fs::read_to_string(&reports[2]).expect("read the report"));
    std::fs::write(w.path("joined.jsonl"), text).expect("write");
    let (joined, run) = w.report_json(&[s(&reports[0]), s(&w.path("joined.jsonl"))]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "joined.jsonl: line {malformed_at}: not a report line"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert_eq!(joined["unreadable_lines"], 1);
    assert_eq!(joined["items"], forward["items"]);
    assert_eq!(joined["statuses"], forward["statuses"]);

    // The text summary names what is missing.
    let run = w.run_watchdog(&["report", s(&reports[0]), s(&reports[1]), s(&reports[2])]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("16 items in 3 reports"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("done 15"), "{}", run.stdout);
    assert!(
        run.stdout.contains("  http_error 404  1\n") && run.stdout.contains("/status/404"),
        "{}",
        run.stdout
    );
    w.marker.assert_no_survivors();
}

#[test]
fn failed_goes_back_into_batch_and_the_retry_fixes_exactly_those_items() {
    let w = World::new("report-failed");
    let mut list = String::new();
    let mut good = Vec::new();
    for i in 0..6 {
        let target = format!("/file/good/{i}.jpg");
        list.push_str(&format!("{}\n", w.server.url(&target)));
        good.push(target);
    }
    // Named by the list, in subdirectories: a retry must land at the same paths.
    let mut flaky = Vec::new();
    for i in 0..4 {
        let target = format!("/flaky/bad/{i}.jpg");
        list.push_str(&format!("{}\tsub {i}/img.jpg\n", w.server.url(&target)));
        flaky.push((target, format!("sub {i}/img.jpg")));
    }
    std::fs::write(w.path("list.txt"), list).expect("write the list");
    let out = w.path("out");
    let first = w.path("first.jsonl");
    let run = w.run_watchdog(&[
        "batch",
        "list.txt",
        "--out",
        s(&out),
        "--retries",
        "0",
        "--report",
        s(&first),
        "-q",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    let run = w.run_watchdog(&["report", "--failed", s(&first)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("missing 4"), "{}", run.stderr);
    let listed: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let expected: BTreeSet<(String, String)> = flaky
        .iter()
        .map(|(t, p)| (w.server.url(t), p.clone()))
        .collect();
    let got: BTreeSet<(String, String)> = listed
        .iter()
        .map(|v| {
            (
                v["url"].as_str().unwrap_or("").to_string(),
                v["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    std::fs::write(w.path("retry.jsonl"), &run.stdout).expect("write the retry list");

    let retry = w.path("retry-report.jsonl");
    let run = w.run_watchdog(&[
        "batch",
        "retry.jsonl",
        "--out",
        s(&out),
        "--report",
        s(&retry),
        "-q",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let retried = lines(&retry);
    assert_eq!(retried.len(), 4);
    for line in &retried {
        assert_eq!(line["status"], "ok", "{line}");
    }
    for (target, path) in &flaky {
        assert_eq!(
            std::fs::read(out.join(path)).ok(),
            Some(file_body(target)),
            "{path}"
        );
        assert_eq!(w.server.requests_for(target), 2, "{target}");
    }
    // Nothing that was done was asked for again.
    for target in &good {
        assert_eq!(w.server.requests_for(target), 1, "{target}");
    }
    let (all, run) = w.report_json(&[s(&first), s(&retry)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(all["items"], 10);
    assert_eq!(all["done"], 10);
    let run = w.run_watchdog(&["report", "--failed", s(&first), s(&retry)]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), ""));
    w.marker.assert_no_survivors();
}

#[test]
fn bad_files_are_one_error_line_and_exit_125() {
    let w = World::new("report-bad-files");
    let run = w.run_watchdog(&["report", s(&w.path("nope.jsonl"))]);
    assert_eq!(run.code, Some(125));
    assert!(
        run.stderr.starts_with("watchdog: cannot read the report")
            && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
    let run = w.run_watchdog(&["report", s(w.root.path())]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let run = w.run_watchdog(&["report"]);
    assert_eq!(run.code, Some(125));
    // Not one report line: not a report at all (a list given by mistake), one line and 125.
    std::fs::write(w.path("junk.jsonl"), "hello\nhttps://h/a.jpg\n").expect("write");
    let run = w.run_watchdog(&["report", s(&w.path("junk.jsonl"))]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("junk.jsonl': not a batch report"),
        "{}",
        run.stderr
    );
    // --include-permanent only with --failed.
    let run = w.run_watchdog(&["report", "--include-permanent", s(&w.path("junk.jsonl"))]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
}

/// What a person or a pipeline does with a report: the URL list given by mistake is an error, not 20
/// warnings; `-` reads stdin; the text groups what is not done by cause, what a retry may fix apart
/// from what it will not (a 404), aligned; `--failed` lists only what a retry may fix unless told
/// `--include-permanent`; `--json` lists every item not done.
#[test]
fn report_separates_what_a_retry_may_fix_from_what_it_will_not() {
    let w = World::new("report-causes");
    let mut list = String::new();
    for target in [
        "/file/fine.bin",
        "/status/404?a",
        "/status/404?b",
        "/status/410",
        "/status/503",
        "/status/500?long-enough-to-shift-the-columns",
    ] {
        list.push_str(&format!("{}\n", w.server.url(target)));
    }
    list.push_str("ftp://h/x\n");
    std::fs::write(w.path("list.txt"), &list).expect("write the list");
    let out = w.path("out");
    let report = out.join("report.jsonl");
    let run = w.run_watchdog(&[
        "batch",
        "list.txt",
        "--out",
        s(&out),
        "--retries",
        "0",
        "-q",
    ]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("to retry the 2 items a retry may fix: watchdog report --failed")
            && run.stderr.contains("3 failed items a retry will not fix"),
        "{}",
        run.stderr
    );

    // The list instead of the report.
    let run = w.run_watchdog(&["report", "list.txt"]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        ["watchdog: report: 'list.txt': not a batch report: none of its 7 lines is a report line \
          (line 1: not a report line: expected value at column 1)"]
    );

    // The text: grouped by cause, retryable first, columns aligned.
    let run = w.run_watchdog(&["report", s(&report)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let text = run.stdout;
    assert!(
        text.contains("not done: 6 items, 2 a retry may fix, 4 it will not\n"),
        "{text}"
    );
    let may = text.find("a retry may fix (").expect(&text);
    let will_not = text.find("a retry will not fix").expect(&text);
    let at = |what: &str| {
        text.find(what)
            .unwrap_or_else(|| panic!("{what} in {text}"))
    };
    assert!(
        may < at("  http_error 503  1\n") && at("  http_error 500  1\n") < will_not,
        "{text}"
    );
    assert!(
        will_not < at("  http_error 404  2\n") && will_not < at("  invalid"),
        "{text}"
    );
    assert!(text.contains("the same --out"), "{text}");
    let item_lines: Vec<&str> = text.lines().filter(|l| l.starts_with("    ")).collect();
    assert_eq!(item_lines.len(), 6, "{text}");
    let url_columns: BTreeSet<usize> = item_lines
        .iter()
        .map(|l| l.find("http://").or_else(|| l.find("ftp://")).unwrap_or(0))
        .collect();
    assert_eq!(url_columns.len(), 1, "URLs in one column:\n{text}");
    // The URL is not repeated inside the error.
    for line in &item_lines {
        assert_eq!(line.matches("://").count(), 1, "{line}");
    }

    // `-` is stdin: the same summary as the file.
    let from_file = w.run_watchdog(&["report", "--json", s(&report)]);
    let mut cmd: Command = w.marker.watchdog();
    cmd.args(["report", "--json", "-"])
        .current_dir(w.root.path());
    let bytes = std::fs::read(&report).expect("read the report");
    let from_stdin = crate::common::run_bounded_with_input(&mut cmd, Some(&bytes), LIMIT);
    assert_eq!(from_stdin.code, Some(1), "{}", from_stdin.stderr);
    assert_eq!(from_stdin.stdout, from_file.stdout);

    // --json lists every item not done, with whether a retry may fix it.
    let json: serde_json::Value = serde_json::from_str(from_file.stdout.trim()).expect("JSON");
    let not_done = json["not_done"].as_array().expect("not_done");
    assert_eq!(not_done.len(), 6, "{json}");
    let retryable: BTreeSet<String> = not_done
        .iter()
        .filter(|i| i["retry_may_fix"] == true)
        .map(|i| i["http_status"].to_string())
        .collect();
    assert_eq!(
        retryable,
        BTreeSet::from(["500".to_string(), "503".to_string()])
    );

    // --failed: what a retry may fix; --include-permanent: the 404s and the 410 too, never the
    // invalid line.
    let run = w.run_watchdog(&["report", "--failed", s(&report)]);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(
        run.stdout.contains("/status/503") && run.stdout.contains("/status/500"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("3 items not listed: a retry will not fix them")
            && run.stderr.contains("--include-permanent"),
        "{}",
        run.stderr
    );
    let run = w.run_watchdog(&["report", "--failed", "--include-permanent", s(&report)]);
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    assert!(!run.stdout.contains("ftp://"), "{}", run.stdout);
    w.marker.assert_no_survivors();
}

/// Waits until the report at `path` has `n` lines, while `child` still runs.
fn wait_for_lines(path: &Path, n: usize, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lines(path).len() < n {
        assert!(
            child.try_wait().ok().flatten().is_none(),
            "the batch ended before the test could kill it"
        );
        assert!(Instant::now() < deadline, "{n} lines never came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_run_killed_after_10_of_100_items_has_90_missing_and_failed_completes_the_set() {
    let w = World::new("report-list-killed");
    // One worker; the eleventh item gets no answer the first time, so the run is killed with
    // exactly ten items reported.
    let mut list = String::new();
    for i in 0..100 {
        let route = if i == 10 { "silent-once" } else { "file" };
        if i % 2 == 0 {
            list.push_str(&format!(
                "{}\n",
                w.server.url(&format!("/{route}/k/{i}.jpg"))
            ));
        } else {
            list.push_str(&format!(
                "{{\"url\":\"{}\",\"path\":\"sub/{i}.jpg\",\"id\":{i}}}\n",
                w.server.url(&format!("/{route}/k/{i}.jpg"))
            ));
        }
    }
    std::fs::write(w.path("list.txt"), list).expect("write the list");
    let out = w.path("out");
    let report = out.join("report.jsonl");
    let mut cmd: Command = w.marker.watchdog();
    cmd.args(["batch", "list.txt", "--out", s(&out), "-j", "1", "-q"])
        .current_dir(w.root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in SCHEDULER_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().expect("start watchdog batch");
    wait_for_lines(&report, 10, &mut child);
    // And the eleventh item was asked for: the worker takes it after the tenth's report line, and
    // killed before that, the item would meet its silent answer in the retry instead.
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.server.requests_for("/silent-once/k/10.jpg") == 0 {
        assert!(
            Instant::now() < deadline,
            "the eleventh item was never asked for"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL watchdog");
    let _ = child.wait();
    w.marker.assert_no_survivors();
    assert_eq!(lines(&report).len(), 10);

    // Without the list, the reports look complete, and the summary says what it cannot see.
    let run = w.run_watchdog(&["report", s(&report)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains(
            "the reports mention 10 items; items never tried are not seen without --list LIST"
        ),
        "{}",
        run.stdout
    );

    let (json, run) = w.report_json(&["--list", "list.txt", s(&report)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(json["items"], 100, "{json}");
    assert_eq!(json["statuses"]["ok"], 10, "{json}");
    assert_eq!(json["statuses"]["missing"], 90, "{json}");
    assert_eq!(json["missing"], 90, "{json}");
    assert_eq!(json["list"]["missing"], 90, "{json}");
    assert_eq!(json["list"]["not_on_list"], 0, "{json}");
    let run = w.run_watchdog(&["report", "--list", "list.txt", s(&report)]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout
            .contains("100 items in 1 report (10 lines): 10 ok, 90 missing"),
        "{}",
        run.stdout
    );

    // --failed lists the 90 as list lines, each with its path and its extra keys.
    let run = w.run_watchdog(&["report", "--failed", "--list", "list.txt", s(&report)]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let retry: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(retry.len(), 90, "{}", run.stdout);
    for line in &retry {
        let url = line["url"].as_str().unwrap_or("");
        let i: u64 = url
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".jpg"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(i >= 10, "{line}");
        if i % 2 == 1 {
            assert_eq!(line["path"], format!("sub/{i}.jpg"), "{line}");
            assert_eq!(line["id"], i, "{line}");
        } else {
            assert_eq!(line["path"], format!("{i}.jpg"), "{line}");
        }
    }
    std::fs::write(w.path("retry.jsonl"), &run.stdout).expect("write the retry list");
    let run = w.run_watchdog(&["batch", "retry.jsonl", "--out", s(&out), "-q"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (json, run) = w.report_json(&["--list", "list.txt", s(&report)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(json["items"], 100, "{json}");
    assert_eq!(json["done"], 100, "{json}");
    assert_eq!(json["statuses"]["missing"], 0, "{json}");
    for i in 0..100 {
        let rel = if i % 2 == 1 {
            format!("sub/{i}.jpg")
        } else {
            format!("{i}.jpg")
        };
        assert!(out.join(&rel).is_file(), "{rel}");
    }
    // The extra keys travelled into the report lines, under `extra`.
    let with_id: Vec<serde_json::Value> = lines(&report)
        .into_iter()
        .filter(|l| !l["extra"].is_null())
        .collect();
    assert_eq!(with_id.len(), 50);
    assert!(with_id.iter().all(|l| l["extra"]["id"].is_u64()));
    w.marker.assert_no_survivors();
}

#[test]
fn fifteen_of_sixteen_shards_and_the_list_name_the_sixteenth_shards_items() {
    let w = World::new("report-list-shards");
    let mut list = String::new();
    for i in 0..160 {
        list.push_str(&format!("{}\n", w.server.url(&format!("/file/s/{i}.bin"))));
    }
    list.push_str("ftp://not/an/item\n");
    std::fs::write(w.path("list.txt"), list).expect("write the list");
    let out = w.path("out");
    let mut reports = Vec::new();
    for k in 1..=15 {
        let report = out.join(format!("report-{k}.jsonl"));
        let run = w.run_watchdog(&[
            "batch",
            "list.txt",
            "--out",
            s(&out),
            "--shard",
            &format!("{k}/16"),
            "--report",
            s(&report),
            "-q",
        ]);
        assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
        reports.push(report);
    }
    // What shard 16 would take: batch's own plan, from a run into another directory.
    let sixteenth = w.path("sixteenth");
    let run = w.run_watchdog(&[
        "batch",
        "list.txt",
        "--out",
        s(&sixteenth),
        "--shard",
        "16/16",
        "-q",
    ]);
    assert!(matches!(run.code, Some(0 | 1)), "{}", run.stderr);
    let expected: BTreeSet<String> = lines(&sixteenth.join("report.jsonl"))
        .iter()
        .filter(|l| l["status"] == "ok")
        .map(|l| l["url"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(!expected.is_empty());

    let files: Vec<&str> = reports.iter().map(|r| s(r)).collect();
    let run = w.run_watchdog(&[&["report", "--failed", "--list", "list.txt"], &files[..]].concat());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let named: BTreeSet<String> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["url"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(named, expected);
    assert!(
        run.stderr
            .contains(&format!("{} never tried (missing)", expected.len())),
        "{}",
        run.stderr
    );
    // The invalid line was reported by one of the fifteen (or is counted as invalid if by the 16th).
    let (json, _) = w.report_json(&[&["--list", "list.txt"], &files[..]].concat());
    assert_eq!(json["items"], 161, "{json}");
    assert_eq!(json["list"]["not_on_list"], 0, "{json}");
    assert_eq!(json["statuses"]["invalid"], 1, "{json}");

    // One shard's report against its share of the list: complete.
    let (json, run) = w.report_json(&["--list", "list.txt", "--shard", "3/16", s(&reports[2])]);
    let expected_code = if json["statuses"]["invalid"] == 1 {
        1
    } else {
        0
    };
    assert_eq!(run.code, Some(expected_code), "{json}");
    assert_eq!(json["statuses"]["missing"], 0, "{json}");
    assert_eq!(json["list"]["shard"], "3/16", "{json}");
    assert_eq!(json["list"]["not_on_list"], 0, "{json}");
    // Another shard's report against shard 3's share: none of its items are in that share.
    let (json, _) = w.report_json(&["--list", "list.txt", "--shard", "3/16", s(&reports[3])]);
    assert!(json["list"]["not_on_list"].as_u64() > Some(0), "{json}");
    assert_eq!(json["list"]["not_on_list"], json["reported"], "{json}");
    // --shard without --list is a usage error.
    let run = w.run_watchdog(&["report", "--shard", "1/2", s(&reports[0])]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    w.marker.assert_no_survivors();
}

/// The README's Kubernetes Indexed Job is YAML with the fields a Job has (a hand-written schema of
/// the fields it uses), and its shard options agree with its completions. Needs PyYAML.
#[test]
fn the_readme_kubernetes_manifest_is_a_valid_indexed_job() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let has_yaml = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !can_run(
        "the_readme_kubernetes_manifest_is_a_valid_indexed_job",
        has_yaml,
        "python3 with PyYAML (apt-get install python3-yaml; scripts/test.sh installs it)",
    ) {
        return;
    }
    let output = Command::new("python3")
        .arg(root.join("scripts/check-k8s-manifest.py"))
        .arg(root.join("README.md"))
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
