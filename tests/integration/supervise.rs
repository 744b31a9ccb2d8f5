//! The supervisor, exercised the way the man page describes it: exit codes, deadlines, stalls, and the
//! promise that no process it started outlives it.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{run_bounded, signal_and_wait, tempdir, watchdog, Marker};

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn command_that_finishes_in_time_keeps_its_status_and_output() {
    let m = Marker::new("finish");
    let run = watchdog(
        &m,
        &["--timeout", "30", "--", "sh", "-c", "echo hello; exit 3"],
    );
    assert_eq!(run.code, Some(3));
    assert_eq!(run.stdout, "hello\n");
    assert_eq!(run.stderr, "");
    m.assert_no_survivors();
}

#[test]
fn deadline_exits_124() {
    let m = Marker::new("deadline");
    let run = watchdog(&m, &["--timeout", "0.3", "--", "sleep", "100"]);
    assert_eq!(run.code, Some(124));
    assert!(run.elapsed < 20 * SECOND, "took {:?}", run.elapsed);
    m.assert_no_survivors();
}

#[test]
fn zero_timeout_disables_the_deadline() {
    let m = Marker::new("zero");
    let run = watchdog(
        &m,
        &["--timeout", "0", "--", "sh", "-c", "sleep 0.2; exit 7"],
    );
    assert_eq!(run.code, Some(7));
}

#[test]
fn preserve_status_reports_the_signal_that_stopped_the_command() {
    let m = Marker::new("preserve");
    let run = watchdog(
        &m,
        &[
            "--timeout",
            "0.2",
            "--preserve-status",
            "--",
            "sleep",
            "100",
        ],
    );
    assert_eq!(run.code, Some(128 + 15));
    let run = watchdog(
        &m,
        &[
            "-t",
            "0.2",
            "-s",
            "INT",
            "--preserve-status",
            "--",
            "sleep",
            "100",
        ],
    );
    assert_eq!(run.code, Some(128 + 2));
    m.assert_no_survivors();
}

#[test]
fn command_killed_by_a_signal_kills_watchdog_with_it() {
    let m = Marker::new("signalled");
    let run = watchdog(&m, &["--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!((run.code, run.signal), (None, Some(9)));
}

#[test]
fn missing_and_unrunnable_commands() {
    let m = Marker::new("missing");
    let run = watchdog(&m, &["--", "no-such-command-anywhere"]);
    assert_eq!(run.code, Some(127));
    assert!(
        run.stderr.contains("no-such-command-anywhere"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);

    let dir = tempdir();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let run = watchdog(&m, &["--", script.to_str().unwrap()]);
    assert_eq!(run.code, Some(126));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
}

#[test]
fn bad_durations_and_options_exit_125_with_one_line_naming_the_value() {
    let m = Marker::new("baddur");
    for bad in ["5x", "-1", "abc", "nan", "42D", ""] {
        let run = watchdog(&m, &["--timeout", bad, "--", "true"]);
        assert_eq!(run.code, Some(125), "{bad}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{bad}: {}", run.stderr);
        assert!(run.stderr.starts_with("watchdog: "), "{}", run.stderr);
        assert!(run.stderr.contains(&format!("'{bad}'")), "{}", run.stderr);
    }
    for args in [
        ["--stall", "soon"],
        ["--kill-after", "1y"],
        ["--signal", "NOPE"],
    ] {
        let run = watchdog(&m, &[args[0], args[1], "--", "true"]);
        assert_eq!(run.code, Some(125), "{args:?}");
        assert!(run.stderr.contains(args[1]), "{}", run.stderr);
    }
    let run = watchdog(&m, &["--no-such-option", "--", "true"]);
    assert_eq!(run.code, Some(125));
    let run = watchdog(&m, &[]);
    assert_eq!(run.code, Some(125));
}

#[test]
fn a_command_ignoring_term_is_killed_after_the_grace() {
    let m = Marker::new("ignoreterm");
    // The deadline leaves the shell 1.5 s to set its trap: on a loaded machine 0.2 s was not always
    // enough, and the SIGTERM then killed the shell before it ignored anything.
    let run = watchdog(
        &m,
        &[
            "-t",
            "1.5",
            "-k",
            "0.5",
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 100 & wait; sleep 100",
        ],
    );
    // Killed by watchdog's SIGKILL: 137, as GNU timeout (it was 124 before).
    assert_eq!(run.code, Some(137), "{}", run.stderr);
    assert!(
        run.elapsed >= Duration::from_millis(1950),
        "SIGKILL came before the grace: {:?}",
        run.elapsed
    );
    m.assert_no_survivors();
}

/// No busy waiting while the grace runs: watchdog sleeps until the SIGKILL is due (and looks at the
/// tree now and then), so three seconds of `-k 3` cost it a few milliseconds of CPU, not seconds.
#[test]
// Reaped by wait4, which also gives its resource usage; clippy sees no `wait()`.
#[allow(clippy::zombie_processes)]
fn waiting_out_the_grace_costs_almost_no_cpu() {
    let m = Marker::new("gracecpu");
    let child = m
        .watchdog()
        // SIGCONT stops nothing, so the grace runs out with no race against a shell setting a trap
        // (under load, `trap '' TERM` could come after the deadline's SIGTERM).
        .args(["-t", "0.2", "-s", "CONT", "-k", "3", "--", "sleep", "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to live locals; watchdog ends by itself
    // (`-t 0.2 -k 3`).
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 137,
        "status {status:#x}"
    );
    let cpu = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let used = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    // A loaded machine lends a spinning watchdog less than this, an idle one all 3 s; a sleeping
    // one uses some 35 ms (a debug build), on any machine.
    assert!(
        used < Duration::from_millis(250),
        "watchdog used {used:?} of CPU in a 3 s grace"
    );
    m.assert_no_survivors();
}

/// No busy waiting while the command runs: watchdog sleeps in one poll until something happens
/// (the command ends, a signal, the deadline), so two seconds of `sleep 2` wake it a few times, not
/// once a millisecond. Counted as voluntary context switches (each sleep is one), which a loaded
/// machine does not change, rather than as CPU time.
#[test]
// Reaped by wait4, which also gives its resource usage; clippy sees no `wait()`.
#[allow(clippy::zombie_processes)]
fn waiting_for_the_command_wakes_watchdog_only_when_something_happens() {
    let m = Marker::new("waitwakes");
    let child = m
        .watchdog()
        .args(["-t", "30", "--", "sleep", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("watchdog starts");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to live locals; watchdog ends with `sleep 2`.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    // watchdog and the `sleep` it reaped: some 10-30 sleeps in all; polling every millisecond: 2000.
    assert!(
        usage.ru_nvcsw < 300,
        "watchdog went to sleep {} times in 2 s",
        usage.ru_nvcsw
    );
    m.assert_no_survivors();
}

/// `-k 0` means no escalation, as in GNU timeout (it used to mean SIGKILL at once): a command that
/// ignores the signal finishes in its own time, and --preserve-status then gives its own status.
#[test]
fn kill_after_zero_means_no_escalation() {
    let m = Marker::new("killzero");
    let run = watchdog(
        &m,
        &[
            "-t",
            "0.2",
            "-k",
            "0",
            "-v",
            "-p",
            "--",
            "sh",
            "-c",
            "trap '' TERM; sleep 1.5; exit 5",
        ],
    );
    assert_eq!(run.code, Some(5), "{}", run.stderr);
    assert_eq!(
        run.stderr, "watchdog: sending signal TERM to command 'sh'\n",
        "no SIGKILL follows"
    );
    assert!(
        run.elapsed >= Duration::from_millis(1400),
        "{:?}",
        run.elapsed
    );
    m.assert_no_survivors();
}

#[test]
fn grandchildren_die_with_the_command() {
    let m = Marker::new("grandchildren");
    let run = watchdog(
        &m,
        &[
            "-t",
            "0.3",
            "--",
            "sh",
            "-c",
            "sleep 100 & sh -c 'sleep 100 & wait' & wait",
        ],
    );
    assert_eq!(run.code, Some(124));
    m.assert_no_survivors();
}

#[test]
fn a_setsid_escapee_is_swept() {
    let m = Marker::new("setsid");
    let run = watchdog(
        &m,
        &[
            "-t",
            "0.3",
            "--",
            "sh",
            "-c",
            "setsid sleep 100 & sleep 100",
        ],
    );
    assert_eq!(run.code, Some(124));
    m.assert_no_survivors();
}

#[test]
fn a_double_forked_daemon_is_swept_when_the_command_exits() {
    let m = Marker::new("daemon");
    // The command exits 0 at once, leaving a daemon that ignores SIGTERM in its own session.
    let run = watchdog(
        &m,
        &[
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "(setsid sh -c 'trap \"\" TERM; sleep 100' &) ; exit 0",
        ],
    );
    assert_eq!(
        run.code,
        Some(0),
        "the command's own status is kept: {}",
        run.stderr
    );
    m.assert_no_survivors();
}

#[test]
fn a_stopped_command_still_dies_on_term() {
    let m = Marker::new("stopped");
    // With a 30 s grace, finishing well before it proves SIGTERM (with SIGCONT) worked, not SIGKILL.
    let run = watchdog(
        &m,
        &[
            "-t",
            "0.3",
            "-k",
            "30",
            "--",
            "sh",
            "-c",
            "kill -STOP $$; sleep 100",
        ],
    );
    assert_eq!(run.code, Some(124));
    assert!(run.elapsed < 20 * SECOND, "took {:?}", run.elapsed);
    m.assert_no_survivors();
}

#[test]
fn a_hundred_and_fifty_children_are_all_killed() {
    let m = Marker::new("many");
    let script = "i=0; while [ $i -lt 150 ]; do sleep 100 & i=$((i+1)); done; echo started; wait";
    let run = watchdog(&m, &["-t", "2", "--", "sh", "-c", script]);
    assert_eq!(run.code, Some(124));
    assert_eq!(
        run.stdout, "started\n",
        "all children should have started before the deadline"
    );
    m.assert_no_survivors();
}

#[test]
fn a_grandchild_holding_stdout_does_not_keep_the_pipeline_open() {
    let m = Marker::new("pipeholder");
    // The reader below is `watchdog ... | cat`: it sees end of file only when every holder of the pipe is
    // gone, including the escaped grandchild.
    let started = Instant::now();
    let mut child = m
        .watchdog()
        .args([
            "-t",
            "0.3",
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "setsid sh -c 'trap \"\" TERM; sleep 100' & echo up; sleep 100",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let eof_after = started.elapsed();
    let status = child.wait().unwrap();
    assert_eq!(out, "up\n");
    assert_eq!(status.code(), Some(124));
    assert!(
        eof_after < 20 * SECOND,
        "pipe stayed open for {eof_after:?}"
    );
    m.assert_no_survivors();
}

fn forwarded_signal_tears_down_the_tree(signal: i32) {
    let m = Marker::new("forward");
    let mut child = m
        .watchdog()
        .args([
            "-t",
            "60",
            "--",
            "sh",
            "-c",
            "sleep 100 & setsid sleep 100 & echo ready; wait",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready, "ready\n");
    let status = signal_and_wait(&mut child, signal, Duration::from_secs(30));
    // The shell died of the signal, and so does watchdog, as GNU timeout does.
    assert_eq!(status.signal(), Some(signal), "{status:?}");
    m.assert_no_survivors();
}

#[test]
fn sigint_is_forwarded() {
    forwarded_signal_tears_down_the_tree(libc::SIGINT);
}

#[test]
fn sigterm_is_forwarded() {
    forwarded_signal_tears_down_the_tree(libc::SIGTERM);
}

#[test]
fn sighup_is_forwarded() {
    forwarded_signal_tears_down_the_tree(libc::SIGHUP);
}

#[test]
fn a_sigkilled_watchdog_takes_its_command_along() {
    let m = Marker::new("pdeathsig");
    let mut child = m
        .watchdog()
        .args(["-t", "60", "--", "sleep", "100"])
        .spawn()
        .unwrap();
    // Under a PID namespace, the namespace's init runs between them.
    let found = m.wait_for_processes(2, 10 * SECOND);
    assert!(
        found.len() >= 2,
        "watchdog and sleep should be running: {found:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    m.assert_no_survivors();
}

#[test]
fn stall_on_silence_exits_124() {
    let m = Marker::new("stall");
    let run = watchdog(&m, &["--stall", "0.3", "--", "sleep", "100"]);
    assert_eq!(run.code, Some(124));
    m.assert_no_survivors();
}

/// A command that prints every 0.2 s for 3.2 s: more than three stall windows of 1 s, so only its
/// output can keep it alive.
const TICKS: usize = 16;

#[test]
fn output_keeps_a_command_alive_and_is_relayed_unchanged() {
    let m = Marker::new("aliveout");
    let script = format!(
        "i=1; while [ $i -le {TICKS} ]; do echo tick $i; echo err $i >&2; sleep 0.2; i=$((i+1)); done"
    );
    let run = watchdog(&m, &["--stall", "1", "--", "sh", "-c", &script]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.elapsed >= 3 * SECOND, "ran {:?}", run.elapsed);
    assert_eq!(run.stdout.lines().count(), TICKS);
    assert!(run.stdout.starts_with("tick 1\n") && run.stdout.ends_with(&format!("tick {TICKS}\n")));
    assert_eq!(
        run.stderr.lines().filter(|l| l.starts_with("err ")).count(),
        TICKS
    );
}

/// A reader downstream that is slow to start still gets all the output: watchdog waits for it
/// (up to a second) after the command exited, instead of dropping what it still held.
#[test]
fn with_stall_a_slow_reader_still_gets_everything_after_the_command_exited() {
    let m = Marker::new("relayslow");
    // 100 kB fits in the pipes on both sides of watchdog: the command exits at once.
    let mut child = m
        .watchdog()
        .args(["--stall", "5", "--", "head", "-c", "100000", "/dev/zero"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start watchdog");
    std::thread::sleep(Duration::from_millis(200));
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read");
    let status = child.wait().expect("reap watchdog");
    assert_eq!(status.code(), Some(0));
    assert_eq!(out.len(), 100_000);
    m.assert_no_survivors();
}

#[test]
fn output_on_stderr_alone_keeps_a_command_alive() {
    let m = Marker::new("aliveerr");
    let script =
        format!("i=1; while [ $i -le {TICKS} ]; do echo err $i >&2; sleep 0.2; i=$((i+1)); done");
    let run = watchdog(&m, &["--stall", "1", "--", "sh", "-c", &script]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.elapsed >= 3 * SECOND, "ran {:?}", run.elapsed);
    assert_eq!(run.stderr.lines().count(), TICKS, "{}", run.stderr);
}

#[test]
fn heartbeats_keep_a_silent_command_alive() {
    let m = Marker::new("aliveheartbeat");
    let script = format!(
        r#"i=1; while [ $i -le {TICKS} ]; do echo '{{"event":"progress","bytes":1}}' >&$WATCHDOG_PROGRESS_FD; sleep 0.2; i=$((i+1)); done"#
    );
    let run = watchdog(&m, &["--stall", "1", "--", "sh", "-c", &script]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.elapsed >= 3 * SECOND, "ran {:?}", run.elapsed);
    assert_eq!(run.stdout, "");
}

#[test]
fn garbage_on_the_progress_channel_is_no_heartbeat_and_no_crash() {
    let m = Marker::new("garbage");
    // 8 MiB without a newline, then lines that are not JSON objects: none of it counts as a sign of life.
    let script = r#"head -c 8388608 /dev/zero >&$WATCHDOG_PROGRESS_FD; while true; do echo '[1,2]' >&$WATCHDOG_PROGRESS_FD; echo 'nope' >&$WATCHDOG_PROGRESS_FD; sleep 0.05; done"#;
    let run = watchdog(&m, &["--stall", "1", "-t", "30", "--", "sh", "-c", script]);
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    assert!(run.elapsed < 20 * SECOND);
    m.assert_no_survivors();
}

/// `-v` prints GNU timeout's line, word for word; the reason is in `--events`.
#[test]
fn verbose_prints_gnu_timeouts_line() {
    let m = Marker::new("verbose");
    let run = watchdog(&m, &["-v", "-t", "0.2", "--", "sleep", "100"]);
    assert_eq!(run.code, Some(124));
    assert_eq!(
        run.stderr,
        "watchdog: sending signal TERM to command 'sleep'\n"
    );
}

#[test]
fn foreground_still_sweeps_every_descendant() {
    let m = Marker::new("foreground");
    let run = watchdog(
        &m,
        &[
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
    assert_eq!(run.code, Some(124));
    m.assert_no_survivors();
}

#[test]
fn events_file_records_start_progress_signal_and_exit() {
    let m = Marker::new("events");
    let dir = tempdir();
    let events = dir.path().join("events.jsonl");
    let script =
        r#"echo '{"event":"progress","bytes":5,"total":10}' >&$WATCHDOG_PROGRESS_FD; sleep 100"#;
    let run = watchdog(
        &m,
        &[
            "--events",
            events.to_str().unwrap(),
            "-t",
            "0.5",
            "--",
            "sh",
            "-c",
            script,
            "https://user:secret@example.invalid/x",
        ],
    );
    assert_eq!(run.code, Some(124));
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        !text.contains("secret"),
        "credentials leaked into events: {text}"
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert!(kinds.contains(&"progress"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"exit"));
    let progress = lines.iter().find(|l| l["event"] == "progress").unwrap();
    assert_eq!(progress["data"]["bytes"], 5);
    let signal = lines.iter().find(|l| l["event"] == "signal").unwrap();
    assert_eq!(signal["signal"], "TERM");
    assert_eq!(signal["reason"], "deadline");
    let exit = lines.last().unwrap();
    assert_eq!(exit["reason"], "deadline");
    assert_eq!(exit["exit_code"], 124);
    assert_eq!(exit["status"]["signal"], 15);
    assert!(exit["elapsed_ms"].as_u64().unwrap() >= 500);
}

#[test]
fn an_events_file_that_cannot_be_created_is_a_clear_error() {
    let m = Marker::new("eventsbad");
    let run = watchdog(&m, &["--events", "/nonexistent-dir/e.jsonl", "--", "true"]);
    assert_eq!(run.code, Some(125));
    assert!(
        run.stderr.contains("/nonexistent-dir/e.jsonl"),
        "{}",
        run.stderr
    );
}

#[test]
fn fetch_help_is_the_builtin_worker() {
    let m = Marker::new("fetchhelp");
    let run = run_bounded(m.watchdog().args(["--", "fetch", "--help"]), 10 * SECOND);
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("--output"), "{}", run.stdout);
}

#[test]
fn a_command_killed_by_a_real_time_signal_dies_of_it_too() {
    let m = Marker::new("rtsignal");
    let limit = 30 * SECOND;
    let run = run_bounded(m.watchdog().args(["--", "sh", "-c", "kill -40 $$"]), limit);
    assert_eq!(run.signal, Some(40), "{}", run.stderr);
    // The deadline's signal may be a real-time one too.
    let run = run_bounded(
        m.watchdog()
            .args(["-t", "0.2", "-k", "5", "-s", "40", "--", "sleep", "30"]),
        limit,
    );
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn the_first_signal_is_sent_once_so_the_command_can_clean_up() {
    // The command's TERM trap takes 1.5 s and the grace is 2.5 s: a second TERM would run the trap
    // again and push it past the grace, into SIGKILL (137). Several at once, since a duplicate came
    // in about half the runs.
    let m = Marker::new("onesignal");
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let mut cmd = m.watchdog();
            cmd.args([
                "--timeout",
                "0.5",
                "-k",
                "2.5",
                "--preserve-status",
                "--",
                "sh",
                "-c",
                "trap 'sleep 1.5; exit 23' TERM; sleep 100",
            ]);
            std::thread::spawn(move || run_bounded(&mut cmd, 60 * SECOND))
        })
        .collect();
    for run in runs {
        let run = run.join().expect("run thread");
        assert_eq!(run.code, Some(23), "{}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn a_flood_on_the_progress_channel_keeps_memory_bounded_and_the_deadline_on_time() {
    use std::os::unix::process::CommandExt;
    let m = Marker::new("flood");
    let mut cmd = m.watchdog();
    cmd.args([
        "--timeout",
        "1",
        "--",
        "sh",
        "-c",
        r#"exec yes '{"event":"progress","bytes":1}' >&$WATCHDOG_PROGRESS_FD"#,
    ]);
    // A watchdog that keeps what arrives runs out of this address space within a second or two, and
    // aborts instead of exiting 124.
    // SAFETY: setrlimit is async-signal-safe and takes plain integers.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 128 << 20,
                rlim_max: 128 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = run_bounded(&mut cmd, 30 * SECOND);
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    m.assert_no_survivors();
}

#[test]
fn a_closed_stderr_does_not_change_the_exit_status() {
    use std::os::fd::{FromRawFd, OwnedFd};
    use wait_timeout::ChildExt;
    let m = Marker::new("closedstderr");
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills the two-int array it is given.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both fds were just created by pipe(2) and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Nobody reads: every write to watchdog's stderr fails with EPIPE.
    drop(read);
    let mut child = m
        .watchdog()
        .args(["-v", "-t", "0.3", "--", "sleep", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(write))
        .spawn()
        .expect("start watchdog");
    let status = match child.wait_timeout(30 * SECOND).expect("wait for watchdog") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog did not return");
        }
    };
    assert_eq!(status.code(), Some(124));
    m.assert_no_survivors();
}

#[test]
fn a_daemon_started_just_before_the_command_exits_is_swept() {
    // The middle shell exits at once, so its grandchild is born while watchdog is already looking at a
    // command that has exited: one look at /proc can miss it. Six at a time, as a busy machine would.
    let m = Marker::new("lateborn");
    let loops: Vec<_> = (0..6)
        .map(|_| {
            let mut cmd = m.watchdog();
            cmd.args([
                "--",
                "sh",
                "-c",
                // The daemon lets go of the test's pipes, so a survivor fails the test instead of
                // holding its output open.
                "( setsid sh -c 'sleep 4000 & exit 0' >/dev/null 2>&1 & ); exit 3",
            ]);
            std::thread::spawn(move || {
                (0..20)
                    .map(|_| run_bounded(&mut cmd, 60 * SECOND).code)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for codes in loops {
        for code in codes.join().expect("loop thread") {
            assert_eq!(code, Some(3));
        }
    }
    m.assert_no_survivors();
}

#[test]
fn the_command_gets_watchdogs_environment_plus_only_the_progress_fd() {
    let m = Marker::new("environment");
    // The same environment twice: `env` run directly, and `env` run under watchdog.
    let lines = |cmd: &mut std::process::Command| -> std::collections::BTreeSet<String> {
        cmd.env(crate::common::MARKER_ENV, m.value())
            .env("WATCHDOG_TEST_PASSED", "a b;$c")
            .env_remove("LANG");
        let run = run_bounded(cmd, 30 * SECOND);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        run.stdout.lines().map(str::to_string).collect()
    };
    let expected = lines(&mut std::process::Command::new("env"));
    let mut under = std::process::Command::new(crate::common::bin());
    under.args(["--", "env"]);
    let mut seen = lines(&mut under);
    let added: Vec<String> = seen
        .iter()
        .filter(|l| l.starts_with("WATCHDOG_PROGRESS_FD="))
        .cloned()
        .collect();
    assert_eq!(added.len(), 1, "{seen:?}");
    seen.remove(&added[0]);
    assert_eq!(seen, expected);
    assert!(seen.contains("WATCHDOG_TEST_PASSED=a b;$c"));
}

#[test]
fn the_command_is_executed_not_given_to_a_shell() {
    let m = Marker::new("noshell");
    let run = watchdog(
        &m,
        &["--", "printf", "%s|", "a; echo injected", "$HOME", "*"],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "a; echo injected|$HOME|*|");
    let run = watchdog(&m, &["--", "echo hello"]);
    assert_eq!(
        run.code,
        Some(127),
        "a command line is one program name: {}",
        run.stderr
    );
}

/// Defect 4: a positive duration below a nanosecond (or one that underflows) once meant "no limit".
/// Only 0 disables a timer; anything positive fires at once.
#[test]
fn a_tiny_positive_duration_is_a_deadline_not_no_limit() {
    let m = Marker::new("tiny");
    for args in [
        ["--timeout", "0.0000000001"],
        ["--timeout", "1e-10000"],
        ["--stall", "1e-10"],
    ] {
        let run = run_bounded(
            m.watchdog().args(args).args(["--", "sleep", "30"]),
            20 * SECOND,
        );
        assert_eq!(run.code, Some(124), "{args:?}: {}", run.stderr);
        assert!(run.elapsed < 15 * SECOND, "{args:?} took {:?}", run.elapsed);
    }
    m.assert_no_survivors();
}

#[test]
fn the_worker_without_dashes_and_watchdog_help_get_a_did_you_mean_line() {
    let m = Marker::new("did-you-mean");
    let run = watchdog(&m, &["fetch", "http://127.0.0.1:9/a.jpg", "-o", "a.jpg"]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid time interval 'fetch'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("watchdog: did you mean `watchdog [OPTIONS] -- fetch URL -o FILE`?"),
        "{}",
        run.stderr
    );
    let run = watchdog(&m, &["help"]);
    assert_eq!(run.code, Some(125), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `watchdog --help`"),
        "{}",
        run.stderr
    );
    let run = watchdog(&m, &["bacth", "urls.txt"]);
    assert!(
        run.stderr.contains("did you mean `watchdog batch`?"),
        "{}",
        run.stderr
    );
    // A command that is merely not a DURATION gets no guess.
    let run = watchdog(&m, &["sleep", "1"]);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    m.assert_no_survivors();
}
