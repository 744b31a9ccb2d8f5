//! `watchdog report FILE...` over the reports of real batches: shards and reruns reconcile to one
//! outcome per item, duplicates and a malformed line change nothing but what they should, `--failed`
//! goes back into `watchdog batch` and the retry fixes exactly those items, at their first paths. And
//! the README's Kubernetes manifest is valid YAML with the fields a Job has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

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
        run.stdout.contains("http_error  404  ") && run.stdout.contains("/status/404"),
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
    // Only unreadable lines: nothing missing, but not clean either.
    std::fs::write(w.path("junk.jsonl"), "hello\n").expect("write");
    let run = w.run_watchdog(&["report", s(&w.path("junk.jsonl"))]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
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
