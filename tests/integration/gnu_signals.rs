//! GNU timeout's signal semantics beyond its own suite, in both forms: how the caller sees the
//! command's death by a signal, what a forwarded signal leaves of the command's status and of the
//! timers, the process group a backgrounded watchdog leads, real-time signal names and GNU's words
//! for every diagnostic. Each case was checked side by side with coreutils' timeout.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin, run_bounded, tempdir, Marker};
use crate::gnu_timeout::{args, shell, timeout, timeout_line, FORMS, LIMIT};

/// Waits (bounded) for `ready` in the shell's directory before signalling.
const WAIT_READY: &str =
    "i=0; until test -e ready || test $i = 400; do sleep 0.025; i=$((i+1)); done";

/// Python's `subprocess` sees a death by a signal as a negative return code: -15, not 143.
#[test]
fn python_sees_the_commands_signal_as_minus_n() {
    let m = Marker::new("gnu-minus-15");
    for form in FORMS {
        let command = args(form, &[], "3", &["sh", "-c", "kill -TERM $$"]);
        let mut cmd = m.watchdog();
        let mut python = Command::new("python3");
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                python.env(key, value);
            }
        }
        cmd = python;
        cmd.args([
            "-c",
            "import subprocess, sys; print(subprocess.run(sys.argv[1:]).returncode)",
        ]);
        cmd.arg(bin()).args(command);
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.stdout, "-15\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// A signal sent to watchdog reaches the command; what the command then does decides the status.
#[test]
fn after_a_forwarded_signal_the_commands_own_status_stands() {
    let m = Marker::new("gnu-own-status");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(
            form,
            &[],
            "30",
            &[
                "sh",
                "-c",
                "trap 'exit 42' INT; touch ready; while :; do sleep 0.05; done",
            ],
        );
        let script = format!(
            "rm -f ready; {line} & pid=$!; {WAIT_READY}; kill -INT $pid; wait $pid; echo $?"
        );
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "42\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// The hang: TERM to watchdog at 0.3 s, a command that ignores TERM, `-k 0 -s KILL 1`. GNU's
/// deadline still fires at 1 s and SIGKILLs the command: 137.
#[test]
fn a_forwarded_signal_never_disarms_the_deadline() {
    let m = Marker::new("gnu-no-disarm");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(
            form,
            &["-k", "0", "-s", "KILL"],
            "1",
            &["sh", "-c", "trap '' TERM; touch ready; sleep 100"],
        );
        let script = format!(
            "rm -f ready; {line} & pid=$!; {WAIT_READY}; sleep 0.3; kill -TERM $pid; wait $pid; echo $?"
        );
        let started = Instant::now();
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "137\n", "{form:?}: {}", run.stderr);
        assert!(started.elapsed() < Duration::from_secs(15), "{form:?}");
    }
    m.assert_no_survivors();
}

/// Each forwarded signal, to a command that ignores it: with `-k 0 -s KILL` the deadline ends it; with
/// `-k 1` the signal starts the grace, and SIGKILL follows a second later, as GNU's does.
#[test]
fn every_forwarded_signal_keeps_the_timers_running() {
    let m = Marker::new("gnu-timers");
    let dir = tempdir();
    for name in ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM"] {
        let command = format!("trap '' {name}; touch ready; sleep 100");
        for (opts, duration) in [(&["-k", "0", "-s", "KILL"][..], "2"), (&["-k", "1"], "60")] {
            for form in FORMS {
                let line = timeout_line(form, opts, duration, &["sh", "-c", &command]);
                let script = format!(
                    "rm -f ready; env --default-signal=INT,QUIT {line} & pid=$!; {WAIT_READY}; kill -{name} $pid; wait $pid; echo $?"
                );
                let started = Instant::now();
                let run = shell(&m, dir.path(), &script);
                assert_eq!(
                    run.stdout, "137\n",
                    "{form:?} {name} {opts:?}: {}",
                    run.stderr
                );
                // Bounded well below the 60 s deadline: the grace, not the deadline, ended it.
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{form:?} {name} {opts:?}"
                );
            }
        }
    }
    m.assert_no_survivors();
}

/// wait-for-it.sh's pattern: `timeout T cmd &` in a script, then `kill -INT -$PID` on Ctrl-C. The
/// backgrounded watchdog leads a group of its own, and catches INT although a background job starts
/// with it ignored; with --foreground it stays in the script's group, which has no such number.
#[test]
fn a_backgrounded_watchdog_leads_a_group_that_kill_reaches() {
    let m = Marker::new("gnu-pgid");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], "20", &["sh", "-c", "touch ready; sleep 30"]);
        let script = format!(
            "rm -f ready; {line} & PID=$!; {WAIT_READY}; kill -INT -$PID; wait $PID; echo $?"
        );
        let started = Instant::now();
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "130\n", "{form:?}: {}", run.stderr);
        assert!(!run.stderr.contains("No such process"), "{}", run.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{form:?}: {:?}",
            started.elapsed()
        );

        let line = timeout_line(
            form,
            &["--foreground"],
            "1",
            &["sh", "-c", "touch ready; sleep 30"],
        );
        let script = format!(
            "rm -f ready; {line} & PID=$!; {WAIT_READY}; kill -INT -$PID; wait $PID; echo $?"
        );
        let run = shell(&m, dir.path(), &script);
        assert!(run.stderr.contains("No such process"), "{}", run.stderr);
        assert_eq!(run.stdout, "124\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// nohup's HUP stays ignored: the command inherits it ignored and survives a hangup, as under nohup
/// alone. (GNU timeout catches HUP and would forward it; see the man page's differences.)
#[test]
fn nohups_hangup_stays_ignored() {
    let m = Marker::new("gnu-nohup");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(
            form,
            &[],
            "30",
            &["sh", "-c", "touch ready; sleep 0.5; echo survived"],
        );
        let script = format!(
            "rm -f ready; nohup {line} >out 2>/dev/null & pid=$!; {WAIT_READY}; kill -HUP $pid; wait $pid; echo $?; cat out"
        );
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "0\nsurvived\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// Ctrl-C in an interactive bash stops a `for` loop of watchdog calls, as with timeout: the job dies
/// of SIGINT, so bash breaks the loop (it would carry on after a job that exited 130).
#[test]
fn ctrl_c_stops_a_for_loop_of_watchdog_calls_in_a_terminal() {
    let m = Marker::new("gnu-ctrl-c");
    let dir = tempdir();
    let mut terminal = m.watchdog();
    let mut script = Command::new("script");
    for (key, value) in terminal.get_envs() {
        if let Some(value) = value {
            script.env(key, value);
        }
    }
    terminal = script;
    let mut child = terminal
        .current_dir(dir.path())
        .env("TERM", "dumb")
        .env("PS1", "$ ")
        .args(["-qfec", "bash --norc --noprofile -i", "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script(1) from util-linux");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let output = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    // The quotes keep the typed line (which the terminal echoes) from matching the output.
    let line = format!(
        "for i in 1 2 3; do '{}' 30 sh -c \"touch ready.$i; sleep 30\"; echo \"aft\"\"er-$i\"; done; echo \"loop\"\"-end\"\n",
        bin().display()
    );
    stdin.write_all(line.as_bytes()).unwrap();
    let started = Instant::now();
    while !dir.path().join("ready.1").exists() {
        assert!(started.elapsed() < LIMIT, "the loop never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    stdin.write_all(b"\x03").unwrap();
    // Let the loop go on if it will, then leave.
    std::thread::sleep(Duration::from_millis(1500));
    stdin
        .write_all(b"echo \"sh\"\"ell-alive\"; exit\n")
        .unwrap();
    drop(stdin);
    let status = wait_timeout::ChildExt::wait_timeout(&mut child, LIMIT).unwrap();
    if status.is_none() {
        let _ = child.kill();
    }
    let out = output.join().unwrap();
    assert!(out.contains("shell-alive"), "{out}");
    assert!(!out.contains("after-1"), "the loop went on: {out}");
    assert!(!out.contains("loop-end"), "the loop went on: {out}");
    assert!(!dir.path().join("ready.2").exists(), "{out}");
    assert!(started.elapsed() < Duration::from_secs(20));
    m.assert_no_survivors();
}

/// Real-time signals by GNU's names in -s, -v and --events; 32 and 33 (glibc's own) are refused.
#[test]
fn real_time_signals_by_name() {
    let m = Marker::new("gnu-rt");
    let dir = tempdir();
    for form in FORMS {
        for (given, printed) in [
            ("RTMIN", "RTMIN"),
            ("RTMIN+1", "RTMIN+1"),
            ("RTMAX-2", "RTMAX-2"),
            ("SIGRTMAX", "RTMAX"),
            ("40", "RTMIN+6"),
        ] {
            let events = dir.path().join("events.jsonl");
            let events_arg = format!("--events={}", events.display());
            let run = timeout(
                &m,
                form,
                &["-v", "-s", given, &events_arg],
                ".1",
                &["sleep", "10"],
            );
            assert_eq!(run.code, Some(124), "{form:?} {given}: {}", run.stderr);
            assert_eq!(
                run.stderr,
                format!("watchdog: sending signal {printed} to command 'sleep'\n"),
                "{form:?} {given}"
            );
            let log = std::fs::read_to_string(&events).unwrap();
            assert!(
                log.contains(&format!("\"signal\":\"{printed}\"")),
                "{given}: {log}"
            );
        }
        for refused in ["32", "33", "RTMIN+31", "RTMAX-31", "65"] {
            let run = timeout(&m, form, &["-s", refused], "1", &["true"]);
            assert_eq!(run.code, Some(125), "{form:?} {refused}");
            assert_eq!(
                run.stderr,
                format!("watchdog: '{refused}': invalid signal\n")
            );
        }
    }
    m.assert_no_survivors();
}

/// GNU's words for every diagnostic it has, after `watchdog: `, on one line.
#[test]
fn diagnostics_in_gnus_words() {
    let m = Marker::new("gnu-words");
    let run = |args: &[&str]| run_bounded(m.watchdog().args(args), LIMIT);
    for (args, code, message) in [
        (&["xyz", "true"][..], 125, "invalid time interval 'xyz'"),
        (&["-k", "x", "1", "true"], 125, "invalid time interval 'x'"),
        (
            &["--kill-after=1x", "1", "true"],
            125,
            "invalid time interval '1x'",
        ),
        (
            &["--timeout", "x", "--", "true"],
            125,
            "invalid time interval 'x'",
        ),
        (&["-s", "X", "1", "true"], 125, "'X': invalid signal"),
        (
            &["--signal=NOPE", "1", "true"],
            125,
            "'NOPE': invalid signal",
        ),
        (
            &["--bogus", "1", "true"],
            125,
            "unrecognized option '--bogus'",
        ),
        (&["-z", "1", "true"], 125, "invalid option -- 'z'"),
        (&["--signal"], 125, "option '--signal' requires an argument"),
        (
            &["--foreground=x", "1", "true"],
            125,
            "option '--foreground' doesn't allow an argument",
        ),
        (
            &["1", "no_such_command"],
            127,
            "failed to run command 'no_such_command': No such file or directory",
        ),
        (
            &["1", "/"],
            126,
            "failed to run command '/': Permission denied",
        ),
    ] {
        for contain in ["auto", "group"] {
            let mut all = vec!["--contain", contain];
            all.extend_from_slice(args);
            let run = run(&all);
            assert_eq!(run.code, Some(code), "{all:?}: {}", run.stderr);
            assert_eq!(run.stderr, format!("watchdog: {message}\n"), "{all:?}");
        }
    }
    m.assert_no_survivors();
}

/// A command that dumps core: GNU's line, and watchdog dies of the same signal without a core of its
/// own.
#[test]
fn a_core_dump_is_reported_as_gnu_does() {
    let m = Marker::new("gnu-core");
    let dir = tempdir();
    // Where the machine writes no core files, bash says so and the case cannot be checked.
    let probe = shell(
        &m,
        dir.path(),
        "ulimit -c unlimited; sh -c 'kill -SEGV $$'; echo $?",
    );
    assert!(
        probe.stderr.contains("core dumped"),
        "no core dump is written on this machine (core_pattern, ulimit): {}",
        probe.stderr
    );
    for form in FORMS {
        for contain in ["auto", "group"] {
            let line = timeout_line(
                form,
                &["--contain", contain],
                "10",
                &["sh", "-c", "kill -SEGV $$"],
            );
            let run = shell(
                &m,
                dir.path(),
                &format!("ulimit -c unlimited; {line}; echo $?"),
            );
            assert!(
                run.stderr
                    .starts_with("watchdog: the monitored command dumped core\n"),
                "{form:?} {contain}: {}",
                run.stderr
            );
            assert_eq!(run.stdout, "139\n", "{form:?} {contain}: {}", run.stderr);
            // bash names watchdog's own death: by SIGSEGV, and without a core.
            assert!(
                run.stderr.contains("Segmentation fault")
                    && run.stderr.matches("core dumped").count() == 0,
                "{}",
                run.stderr
            );
        }
    }
    m.assert_no_survivors();
}

/// On Linux the deadline is a timer on CLOCK_BOOTTIME, which counts suspended time as GNU's does.
#[test]
#[cfg(target_os = "linux")]
fn the_deadline_runs_on_the_boot_clock() {
    let m = Marker::new("gnu-boottime");
    let mut child = m
        .watchdog()
        .args(["30", "sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fds = std::path::Path::new("/proc")
        .join(child.id().to_string())
        .join("fdinfo");
    let started = Instant::now();
    let clock = loop {
        let found = std::fs::read_dir(&fds).ok().and_then(|dir| {
            dir.flatten()
                .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
                .find_map(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("clockid:").map(|c| c.trim().to_string()))
                })
        });
        if found.is_some() || started.elapsed() > Duration::from_secs(10) {
            break found;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = crate::common::signal_and_wait(&mut child, libc::SIGKILL, LIMIT);
    // 7 is CLOCK_BOOTTIME.
    assert_eq!(clock.as_deref(), Some("7"));
    m.assert_no_survivors();
}
