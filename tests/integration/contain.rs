//! `--contain`: a SIGKILLed watchdog leaves nothing under a PID namespace; the process group shows
//! its documented limit; `auto` falls back silently for an unprivileged user; exit codes, signals,
//! `--foreground`, `--stall` and the progress channel work the same under the namespace.
//!
//! The namespace tests need what watchdog needs for one (CAP_SYS_ADMIN); whether the system grants it
//! is asked of util-linux's `unshare`, not of watchdog, so that a broken watchdog cannot skip them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const SECOND: Duration = Duration::from_secs(1);

/// Whether this system lets root create a PID namespace; when not, the test fails (see [`can_run`]).
fn pidns_available(test: &str) -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    can_run(
        test,
        ok,
        "a PID namespace (root, or CAP_SYS_ADMIN, and util-linux's unshare)",
    )
}

/// The tree of the issue: a `setsid` grandchild, a double-forked daemon that ignores TERM, and a
/// hundred sleepers; `ready` once all are forked. With sh and watchdog that is 104 processes.
const TREE: &str = "setsid sleep 300 & (setsid sh -c 'trap \"\" TERM; sleep 300' &) ; \
    i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); done; echo ready; wait";
const TREE_PROCESSES: usize = 103;

/// Starts watchdog with `contain` on [`TREE`], waits until the whole tree runs, SIGKILLs watchdog and
/// reaps it. Returns the start event.
fn sigkill_watchdog_over_the_tree(m: &Marker, contain: &str) -> serde_json::Value {
    let dir = tempdir();
    let events = dir.path().join("events.jsonl");
    let mut child = m
        .watchdog()
        .args(["--contain", contain, "--events", s(&events), "-t", "120"])
        .args(["--", "sh", "-c", TREE])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watchdog");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("read the command's first line");
    assert_eq!(ready, "ready\n");
    let found = m.wait_for_processes(TREE_PROCESSES, 30 * SECOND);
    assert!(
        found.len() >= TREE_PROCESSES,
        "only {} running",
        found.len()
    );
    child.kill().expect("SIGKILL watchdog");
    child.wait().expect("reap watchdog");
    start_event(&events)
}

fn start_event(events: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(events).expect("read the events file");
    let first = text.lines().next().expect("a start event");
    let start: serde_json::Value = serde_json::from_str(first).expect("a JSON line");
    assert_eq!(start["event"], "start", "{first}");
    start
}

#[test]
fn contain_auto_a_sigkilled_watchdog_leaves_nothing() {
    if !pidns_available("contain_auto_a_sigkilled_watchdog_leaves_nothing") {
        return;
    }
    let m = Marker::new("contain-auto-kill");
    let start = sigkill_watchdog_over_the_tree(&m, "auto");
    assert_eq!(start["contain"], "pidns");
    // The kernel kills the namespace with its init, which PR_SET_PDEATHSIG kills with watchdog.
    m.assert_no_survivors();
}

#[test]
fn contain_group_a_sigkilled_watchdog_takes_its_command_and_leaves_the_grandchildren() {
    // The documented limit of a process group: only the direct child dies with watchdog
    // (PR_SET_PDEATHSIG), the rest of the tree outlives it.
    let m = Marker::new("contain-group-kill");
    let start = sigkill_watchdog_over_the_tree(&m, "group");
    assert_eq!(start["contain"], "group");
    let command = start["pid"].as_u64().expect("the command's pid") as u32;
    let deadline = std::time::Instant::now() + 10 * SECOND;
    while m.survivors().contains(&command) {
        assert!(
            std::time::Instant::now() < deadline,
            "the command ({command}) outlived a SIGKILLed watchdog under --contain group"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The deliberate leftovers: killed here, so the marker does not count them against the test.
    let left = m.kill_survivors();
    assert!(
        left >= TREE_PROCESSES - 2,
        "expected the grandchildren to outlive a SIGKILLed watchdog under group, {left} did"
    );
}

#[test]
fn contain_auto_falls_back_to_group_silently_for_an_unprivileged_user() {
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_run(
        "contain_auto_falls_back_to_group_silently_for_an_unprivileged_user",
        is_root() && setpriv,
        "root and util-linux's setpriv, to become nobody",
    ) {
        return;
    }
    // A copy that nobody can run, in a directory nobody can write the events file in.
    let dir = tempdir();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod the temp dir");
    let bin_copy = dir.path().join("watchdog");
    std::fs::copy(bin(), &bin_copy).expect("copy watchdog");
    let events = dir.path().join("events.jsonl");
    let m = Marker::new("contain-nobody");
    let nobody = |args: &[&str]| {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin_copy)
            .args(args)
            .env(MARKER_ENV, m.value());
        run_bounded(&mut setpriv, 30 * SECOND)
    };

    let run = nobody(&["--events", s(&events), "--", "sh", "-c", "exit 3"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(run.stderr, "", "the fallback must be silent");
    assert_eq!(start_event(&events)["contain"], "group");

    let run = nobody(&["--contain", "pidns", "--", "true"]);
    assert_eq!(run.code, Some(125));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with("watchdog: --contain pidns: "),
        "{}",
        run.stderr
    );
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_a_process_sees_its_own_pid_in_proc() {
    if !pidns_available("contain_pidns_a_process_sees_its_own_pid_in_proc") {
        return;
    }
    let m = Marker::new("contain-proc");
    // The shell opens /proc/self/stat itself: its first field is the shell's own pid.
    let run = watchdog(
        &m,
        &[
            "--contain",
            "pidns",
            "--",
            "sh",
            "-c",
            "read pid rest < /proc/self/stat; echo $$ $pid",
        ],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "2 2\n", "the command is PID 2, after its init");
}

#[test]
fn contain_pidns_keeps_exit_codes_signals_and_errors() {
    if !pidns_available("contain_pidns_keeps_exit_codes_signals_and_errors") {
        return;
    }
    let m = Marker::new("contain-codes");
    let pidns = |args: &[&str]| {
        let mut all = vec!["--contain", "pidns"];
        all.extend_from_slice(args);
        watchdog(&m, &all)
    };
    assert_eq!(pidns(&["--", "sh", "-c", "exit 3"]).code, Some(3));
    assert_eq!(pidns(&["--", "sh", "-c", "kill -KILL $$"]).code, Some(137));
    assert_eq!(pidns(&["--", "sh", "-c", "kill -40 $$"]).code, Some(168));
    assert_eq!(pidns(&["-t", "0.2", "--", "sleep", "100"]).code, Some(124));
    let run = pidns(&["-t", "0.2", "--preserve-status", "--", "sleep", "100"]);
    assert_eq!(
        run.code,
        Some(143),
        "TERM reached the command: {}",
        run.stderr
    );
    let run = pidns(&["--", "/nonexistent/command"]);
    assert_eq!(run.code, Some(127));
    assert!(run.stderr.contains("command not found"), "{}", run.stderr);
    let run = pidns(&["--", "/dev/null"]);
    assert_eq!(run.code, Some(126), "{}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_a_forwarded_signal_tears_down_the_namespace() {
    if !pidns_available("contain_pidns_a_forwarded_signal_tears_down_the_namespace") {
        return;
    }
    let m = Marker::new("contain-forward");
    let mut child = m
        .watchdog()
        .args(["--contain", "pidns", "-t", "60", "--", "sh", "-c"])
        .arg("sleep 100 & setsid sleep 100 & (setsid sleep 100 &); echo ready; wait")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start watchdog");
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("read ready");
    assert_eq!(ready, "ready\n");
    let status = signal_and_wait(&mut child, libc::SIGTERM, 30 * SECOND);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_foreground_and_a_daemon_left_behind() {
    if !pidns_available("contain_pidns_foreground_and_a_daemon_left_behind") {
        return;
    }
    let m = Marker::new("contain-fg");
    let run = watchdog(
        &m,
        &[
            "--contain",
            "pidns",
            "--foreground",
            "-t",
            "0.3",
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "sleep 100 & setsid sleep 100 & sleep 100",
        ],
    );
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    m.assert_no_survivors();
    // The command exits at once, leaving a daemon that ignores TERM: it is swept, the status kept.
    let run = watchdog(
        &m,
        &[
            "--contain",
            "pidns",
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "(setsid sh -c 'trap \"\" TERM; sleep 100' &) ; exit 4",
        ],
    );
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_stall_relays_output_and_reads_the_progress_channel() {
    if !pidns_available("contain_pidns_stall_relays_output_and_reads_the_progress_channel") {
        return;
    }
    let m = Marker::new("contain-stall");
    // Output is relayed unchanged and counts as life; so do progress lines. Each runs for 3.2 s,
    // more than three stall windows, printing every 0.2 s.
    let ticks =
        |body: &str| format!("i=0; while [ $i -lt 16 ]; do {body}; sleep 0.2; i=$((i+1)); done");
    for (body, out, err) in [
        ("echo out", "out\n".repeat(16), String::new()),
        ("echo err >&2", String::new(), "err\n".repeat(16)),
        (
            "echo '{\"event\":\"progress\"}' >&$WATCHDOG_PROGRESS_FD",
            String::new(),
            String::new(),
        ),
    ] {
        let script = ticks(body);
        let run = watchdog(
            &m,
            &[
                "--contain",
                "pidns",
                "--stall",
                "1",
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_eq!(run.code, Some(0), "{body}: {}", run.stderr);
        assert!(run.elapsed >= 3 * SECOND, "{body}: ran {:?}", run.elapsed);
        assert_eq!(run.stdout, out, "{body}");
        assert_eq!(run.stderr, err, "{body}");
    }
    // Silence is a stall.
    let run = watchdog(
        &m,
        &["--contain", "pidns", "--stall", "0.3", "--", "sleep", "100"],
    );
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_events_record_the_mechanism_and_verbose_names_it() {
    if !pidns_available("contain_pidns_events_record_the_mechanism_and_verbose_names_it") {
        return;
    }
    let m = Marker::new("contain-events");
    let dir = tempdir();
    let events = dir.path().join("events.jsonl");
    let run = watchdog(
        &m,
        &["-vv", "--events", s(&events), "--", "sh", "-c", "exit 0"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(start_event(&events)["contain"], "pidns");
    assert!(
        run.stderr.contains("new PID namespace (--contain pidns)"),
        "{}",
        run.stderr
    );
}

#[test]
fn contain_auto_a_watchdog_sigkilled_while_starting_leaves_nothing() {
    if !pidns_available("contain_auto_a_watchdog_sigkilled_while_starting_leaves_nothing") {
        return;
    }
    // SIGKILL lands anywhere in the start-up: before the init's PR_SET_PDEATHSIG, between it and
    // exec, while the command starts. The delays only spread the kills; nothing waits on them.
    let m = Marker::new("contain-early-kill");
    for trial in 0..40u64 {
        let mut child = m
            .watchdog()
            .args(["-t", "60", "--", "sh", "-c"])
            .arg("setsid sleep 300 & (setsid sleep 300 &); sleep 300 & wait")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start watchdog");
        std::thread::sleep(Duration::from_micros((trial % 10) * 1000));
        child.kill().expect("SIGKILL watchdog");
        child.wait().expect("reap watchdog");
        m.assert_no_survivors();
    }
}
