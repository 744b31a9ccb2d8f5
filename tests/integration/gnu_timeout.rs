//! GNU coreutils' own tests of `timeout(1)` (tests/timeout/*.sh, *.pl), case by case, each run in both
//! of watchdog's forms: GNU's `watchdog [OPTION]... DURATION COMMAND` and `watchdog [OPTION]...
//! --timeout DURATION -- COMMAND`. The cases are restated here; the expectations are GNU's.
//!
//! Left out, by design: timeout-group.sh's "SIGKILL the timeout; its command must still get the
//! --signal signal" case. watchdog ties its command to its life with SIGKILL (PR_SET_PDEATHSIG), not
//! with the --signal signal, so that a command which ignores that signal cannot outlive a killed
//! watchdog; see the man page's "Differences from GNU timeout".
//!
//! The end of the file adds what POSIX.1-2024 asks beyond GNU's suite: every signal that would end
//! watchdog is forwarded, and the command inherits the signal dispositions watchdog was started with.

use std::path::Path;
use std::time::Duration;

use crate::common::{bin, can_run, run_bounded, tempdir, Marker, Run};

pub(crate) const LIMIT: Duration = Duration::from_secs(40);

/// The two ways to give watchdog a deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    /// `watchdog OPTS DURATION COMMAND...`
    Gnu,
    /// `watchdog OPTS --timeout DURATION -- COMMAND...`
    Options,
}

pub(crate) const FORMS: [Form; 2] = [Form::Gnu, Form::Options];

/// watchdog's arguments for GNU's `timeout OPTS DURATION COMMAND...`.
pub(crate) fn args(form: Form, opts: &[&str], duration: &str, command: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    match form {
        Form::Gnu => args.push(duration.to_string()),
        // `=`: a negative duration would otherwise be read as an option.
        Form::Options => {
            args.push(format!("--timeout={duration}"));
            args.push("--".to_string());
        }
    }
    args.extend(command.iter().map(|s| s.to_string()));
    args
}

/// Runs `timeout OPTS DURATION COMMAND...` as watchdog, in `form`.
pub(crate) fn timeout(
    m: &Marker,
    form: Form,
    opts: &[&str],
    duration: &str,
    command: &[&str],
) -> Run {
    run_bounded(
        m.watchdog().args(args(form, opts, duration, command)),
        LIMIT,
    )
}

/// The same invocation as a shell command line, for cases that need a shell around it.
pub(crate) fn timeout_line(form: Form, opts: &[&str], duration: &str, command: &[&str]) -> String {
    let mut line = format!("'{}'", bin().display());
    for arg in args(form, opts, duration, command) {
        line.push_str(&format!(" '{}'", arg.replace('\'', r"'\''")));
    }
    line
}

/// Runs `script` with bash (GNU's suite is run by it; dash's kill takes no `-- -PGID`) in `dir`,
/// under the marker.
pub(crate) fn shell(m: &Marker, dir: &Path, script: &str) -> Run {
    let mut cmd = m.watchdog();
    // Not watchdog this time: the shell runs it.
    let mut sh = std::process::Command::new("bash");
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    cmd = sh;
    run_bounded(cmd.current_dir(dir).args(["-c", script]), LIMIT)
}

// tests/timeout/timeout.sh

#[test]
fn a_command_that_ends_in_time_keeps_its_status() {
    let m = Marker::new("gnu-basic");
    for form in FORMS {
        for duration in ["10", "1d", "0"] {
            let run = timeout(&m, form, &[], duration, &["true"]);
            assert_eq!(run.code, Some(0), "{form:?} {duration}: {}", run.stderr);
        }
        let run = timeout(&m, form, &[], "10", &["sh", "-c", "exit 2"]);
        assert_eq!(run.code, Some(2), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn a_deadline_gives_124_unless_status_is_preserved_or_sigkill_was_needed() {
    let m = Marker::new("gnu-timedout");
    for form in FORMS {
        let run = timeout(&m, form, &[], ".1", &["sleep", "10"]);
        assert_eq!(run.code, Some(124), "{form:?}: {}", run.stderr);
        let run = timeout(&m, form, &["--preserve-status"], ".1", &["sleep", "10"]);
        assert_eq!(run.code, Some(128 + 15), "{form:?}: {}", run.stderr);
        // Signal 0 delivers nothing; the SIGKILL after 1 s stops it: 137, not 124.
        let run = timeout(&m, form, &["-s0", "-k1"], ".1", &["sleep", "10"]);
        assert_eq!(run.code, Some(137), "{form:?}: {}", run.stderr);
        let run = timeout(
            &m,
            form,
            &["--foreground", "-s0", "-k1"],
            ".1",
            &["sleep", "10"],
        );
        assert_eq!(run.code, Some(137), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn an_ignored_sigchld_does_not_confuse_it() {
    let m = Marker::new("gnu-chld");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], "10", &["true"]);
        let run = shell(&m, dir.path(), &format!("trap '' CHLD; exec {line}"));
        assert_eq!(run.code, Some(0), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn a_background_process_holding_the_output_does_not_hold_the_deadline() {
    let m = Marker::new("gnu-setsid");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], ".5", &["sh", "-c", "sleep 2; echo foo"]);
        let script =
            format!("out=$(setsid sleep .1 & exec {line}); status=$?; echo \"[$out] $status\"");
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "[] 124\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn verbose_prints_gnus_lines_for_each_signal_sent() {
    let m = Marker::new("gnu-verbose");
    for form in FORMS {
        for opt in ["-v", "--verbose"] {
            let run = timeout(&m, form, &[opt, "-s0", "-k", ".1"], ".1", &["sleep", "10"]);
            assert_eq!(
                run.stderr,
                "watchdog: sending signal EXIT to command 'sleep'\n\
                 watchdog: sending signal KILL to command 'sleep'\n",
                "{form:?} {opt}"
            );
            assert_eq!(run.code, Some(137));
        }
    }
    m.assert_no_survivors();
}

#[test]
fn a_closed_stderr_does_not_change_the_status() {
    let m = Marker::new("gnu-epipe");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &["-v"], ".1", &["sleep", "10"]);
        let script = format!("{{ {line} 2>&1; echo $? >status; }} | :; cat status");
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "124\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn an_ignored_sigpipe_stays_ignored_for_the_command() {
    let m = Marker::new("gnu-sigpipe");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], "10", &["yes"]);
        let script = format!("(trap '' PIPE && {line} | :) 2>&1 | grep -c 'Broken pipe'");
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "1\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

// tests/timeout/timeout-parameters.sh

#[test]
fn invalid_parameters_exit_125() {
    let m = Marker::new("gnu-params");
    for form in FORMS {
        for duration in ["invalid", " -0.1", " -1e-10000", "42D"] {
            let run = timeout(&m, form, &[], duration, &["sleep", "0"]);
            assert_eq!(run.code, Some(125), "{form:?} '{duration}': {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
            assert!(run.stderr.starts_with("watchdog: "), "{}", run.stderr);
        }
        for opt in ["--kill-after=invalid", "--signal=invalid"] {
            let run = timeout(&m, form, &[opt], "1", &["sleep", "0"]);
            assert_eq!(run.code, Some(125), "{form:?} {opt}: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        }
    }
}

#[test]
fn fractional_and_underflowing_durations() {
    let m = Marker::new("gnu-fraction");
    for form in FORMS {
        for duration in ["10.34", "9.999999999"] {
            let run = timeout(&m, form, &[], duration, &["sleep", "0"]);
            assert_eq!(run.code, Some(0), "{form:?} {duration}: {}", run.stderr);
        }
        // Underflows to 0 in strtod, yet is positive: the smallest step, not "no limit".
        let run = timeout(&m, form, &[], "1e-10000", &["sleep", "10"]);
        assert_eq!(run.code, Some(124), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn a_command_that_cannot_run_or_is_missing() {
    let m = Marker::new("gnu-126-127");
    for form in FORMS {
        let run = timeout(&m, form, &[], "10", &["."]);
        assert_eq!(run.code, Some(126), "{form:?}: {}", run.stderr);
        let run = timeout(&m, form, &[], "10", &["no_such"]);
        assert_eq!(run.code, Some(127), "{form:?}: {}", run.stderr);
    }
}

// tests/timeout/timeout-large-parameters.sh

#[test]
fn durations_too_large_for_a_timer_mean_forever() {
    let m = Marker::new("gnu-large");
    const TIME_T_OFLOW: &str = "9223372036854775808";
    const UINT_OFLOW: &str = "4294967296";
    const LDBL_MAX: &str = "1.18973149535723176502e+4932";
    for form in FORMS {
        // Not timed out at once (an overflowed timer would fire immediately).
        let run = timeout(&m, form, &[], TIME_T_OFLOW, &["sleep", "0.5"]);
        assert_eq!(run.code, Some(0), "{form:?}: {}", run.stderr);
        let time_t_days = format!("{TIME_T_OFLOW}d");
        for duration in [UINT_OFLOW, &time_t_days, "2.34e+5d", LDBL_MAX] {
            let run = timeout(&m, form, &[], duration, &["sleep", "0"]);
            assert_eq!(run.code, Some(0), "{form:?} {duration}: {}", run.stderr);
        }
        let run = timeout(&m, form, &[], &format!("-{LDBL_MAX}"), &["sleep", "0"]);
        assert_eq!(run.code, Some(125), "{form:?}: {}", run.stderr);
    }
    let run = run_bounded(
        m.watchdog()
            .args(["--", &format!("-{LDBL_MAX}"), "sleep", "0"]),
        LIMIT,
    );
    assert_eq!(run.code, Some(125), "{}", run.stderr);
}

// tests/timeout/timeout-blocked.pl

#[test]
fn a_blocked_sigalrm_does_not_stop_the_deadline() {
    let m = Marker::new("gnu-blocked");
    for form in FORMS {
        let mut cmd = m.watchdog();
        let mut perl = std::process::Command::new("perl");
        for (key, value) in cmd.get_envs() {
            if let Some(value) = value {
                perl.env(key, value);
            }
        }
        cmd = perl;
        cmd.args([
            "-e",
            "use POSIX qw(:signal_h); sigprocmask(SIG_BLOCK, POSIX::SigSet->new(SIGALRM)); exec @ARGV or exit 99",
        ]);
        cmd.arg(bin()).args(args(form, &[], ".1", &["sleep", "10"]));
        let run = run_bounded(&mut cmd, LIMIT);
        assert_eq!(run.code, Some(124), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

// tests/timeout/init-parent.sh

#[test]
fn as_init_of_a_pid_namespace() {
    let m = Marker::new("gnu-init");
    let dir = tempdir();
    let probe = shell(&m, dir.path(), "unshare --pid --fork --map-root-user true");
    if !can_run(
        "as_init_of_a_pid_namespace",
        probe.code == Some(0),
        "`unshare --pid --fork --map-root-user` (util-linux, and user namespaces allowed)",
    ) {
        return;
    }
    for form in FORMS {
        let line = timeout_line(form, &[], ".1", &["sleep", "10"]);
        let run = shell(
            &m,
            dir.path(),
            &format!("unshare --pid --fork --map-root-user {line}"),
        );
        assert_eq!(run.code, Some(124), "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

// tests/timeout/timeout-group.sh

/// GNU's timeout.cmd: waits up to $1 seconds for USR1, and on USR1 leaves sig.received.
const TIMEOUT_CMD: &str = "#!/bin/sh
trap 'touch sig.received; exit' USR1
touch timeout.running
count=$1
until test -e sig.received || test $count = 0; do
  sleep 1
  count=$(expr $count - 1)
done
";

fn timeout_cmd(dir: &Path) {
    let path = dir.join("timeout.cmd");
    std::fs::write(&path, TIMEOUT_CMD).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Waits (bounded) for timeout.cmd to start, as GNU's retry_delay_ does.
const WAIT_RUNNING: &str =
    "i=0; until test -e timeout.running || test $i = 200; do sleep 0.05; i=$((i+1)); done";

#[test]
fn a_signal_to_the_foreground_group_reaches_the_command() {
    let m = Marker::new("gnu-group");
    for form in FORMS {
        let dir = tempdir();
        timeout_cmd(dir.path());
        let line = timeout_line(
            form,
            &["-v", "--foreground"],
            "25",
            &["./timeout.cmd", "20"],
        );
        std::fs::write(
            dir.path().join("group.sh"),
            format!("trap '' USR1\nenv --default-signal=USR1 {line} &\nwait\n"),
        )
        .unwrap();
        let script = format!(
            "setsid sh ./group.sh & pid=$!; {WAIT_RUNNING}; kill -USR1 -- -$pid; wait; test -e sig.received && echo received"
        );
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "received\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn nested_timeouts_pass_the_outer_alarm_on() {
    let m = Marker::new("gnu-nested");
    for form in FORMS {
        let dir = tempdir();
        timeout_cmd(dir.path());
        let inner = args(form, &["-sUSR1"], "25", &["./timeout.cmd", "20"]);
        let mut command = vec![bin().display().to_string()];
        command.extend(inner);
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        let outer = timeout_line(form, &["-sALRM"], "30", &command);
        let script = format!(
            "{outer} & pid=$!; {WAIT_RUNNING}; kill -ALRM $pid; wait $pid; echo $?; test -e sig.received && echo received"
        );
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "124\nreceived\n", "{form:?}: {}", run.stderr);
        assert!(run.elapsed < Duration::from_secs(20), "{:?}", run.elapsed);
    }
    m.assert_no_survivors();
}

// Beyond GNU's suite: POSIX.1-2024 forwarding and inherited dispositions.

/// Every signal that would end watchdog reaches the command, which may act on it; the command's own
/// status then stands, as in GNU timeout (here 0: the trap exits 0). (A shell starts a background job with INT and QUIT ignored, which watchdog and its
/// command then inherit: `env --default-signal` gives them back their default, as a terminal would.)
#[test]
fn every_terminating_signal_is_forwarded() {
    let m = Marker::new("forward");
    let dir = tempdir();
    for name in ["HUP", "INT", "QUIT", "USR1", "USR2", "TERM"] {
        for form in FORMS {
            let command = [
                "sh",
                "-c",
                &format!("trap 'echo got {name}; exit 0' {name}; touch ready; while :; do sleep 0.05; done"),
            ];
            let line = timeout_line(form, &[], "30", &command);
            let script = format!(
                "rm -f ready; env --default-signal=INT,QUIT {line} & pid=$!; i=0; until test -e ready || test $i = 400; do sleep 0.05; i=$((i+1)); done; kill -{name} $pid; wait $pid; echo $?"
            );
            let run = shell(&m, dir.path(), &script);
            assert_eq!(
                run.stdout,
                format!("got {name}\n0\n"),
                "{form:?} {name}: {}",
                run.stderr
            );
        }
    }
    m.assert_no_survivors();
}

/// The signal given by -s is caught and forwarded too, even a real-time one.
#[test]
fn the_signal_of_dash_s_is_forwarded_too() {
    let m = Marker::new("forward-s");
    let dir = tempdir();
    for form in FORMS {
        let command = [
            "sh",
            "-c",
            "trap 'echo got 40; exit 0' 40; touch ready; while :; do sleep 0.05; done",
        ];
        let line = timeout_line(form, &["-s", "40"], "30", &command);
        let script = format!(
            "rm -f ready; {line} & pid=$!; i=0; until test -e ready || test $i = 400; do sleep 0.05; i=$((i+1)); done; kill -40 $pid; wait $pid; echo $?"
        );
        let run = shell(&m, dir.path(), &script);
        assert_eq!(run.stdout, "got 40\n0\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// What the caller ignored, the command finds ignored; what the caller left alone is at its default
/// (the Rust runtime's own SIG_IGN for SIGPIPE must not leak).
#[test]
fn the_command_inherits_the_callers_dispositions() {
    let m = Marker::new("dispositions");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], "10", &["sh", "-c", "kill -PIPE $$; echo alive"]);
        let run = shell(&m, dir.path(), &format!("{line}; echo $?"));
        assert_eq!(run.stdout, "141\n", "{form:?} default: {}", run.stderr);
        let run = shell(&m, dir.path(), &format!("trap '' PIPE; {line}; echo $?"));
        assert_eq!(run.stdout, "alive\n0\n", "{form:?} ignored: {}", run.stderr);
        let line = timeout_line(form, &[], "10", &["sh", "-c", "kill -USR1 $$; echo alive"]);
        let run = shell(&m, dir.path(), &format!("trap '' USR1; {line}; echo $?"));
        assert_eq!(run.stdout, "alive\n0\n", "{form:?} USR1: {}", run.stderr);
    }
    m.assert_no_survivors();
}

/// getopt_long's abbreviations: any unambiguous prefix of a long option is that option, with its
/// value after `=` or in the next word, so `sed s/timeout/watchdog/` keeps a script that used them
/// working; a prefix GNU timeout reads as one of its own options (`--s`, `--signal`) keeps that
/// meaning beside watchdog's `--stall`; an ambiguous one is getopt's one line and 125.
#[test]
fn long_options_may_be_abbreviated_as_getopt_long_takes_them() {
    let m = Marker::new("gnu-abbrev");
    let run = |args: &[&str]| run_bounded(m.watchdog().args(args), LIMIT);
    for (args, code) in [
        // SIGKILL right after the first signal, which the command ignores.
        (
            &[
                "--kill=.1",
                "--sig=USR1",
                ".1",
                "sh",
                "-c",
                "trap '' USR1; sleep 10",
            ][..],
            137,
        ),
        (&["--k", ".1", "--s", "KILL", ".1", "sleep", "10"], 137),
        (&["--pres", "--si=INT", ".1", "sleep", "10"], 130),
        (&["--fore", ".1", "sleep", "10"], 124),
        (&["--verb", "--ti=.1", "--", "sleep", "10"], 124),
        (&["--st", ".1", "--", "sleep", "10"], 124),
        (&["--he"], 0),
    ] {
        let run = run(args);
        assert_eq!(run.code, Some(code), "{args:?}: {}", run.stderr);
    }
    let verbose = run(&["--verb", ".1", "sleep", "10"]);
    assert_eq!(
        verbose.stderr, "watchdog: sending signal TERM to command 'sleep'\n",
        "--verb is --verbose"
    );
    for (args, message) in [
        (
            &["--ver", "1", "true"][..],
            "watchdog: option '--ver' is ambiguous; possibilities: '--verbose' '--version'\n",
        ),
        (
            &["--pres=1", "1", "true"],
            "watchdog: option '--preserve-status' doesn't allow an argument\n",
        ),
        (
            &["--sigx=KILL", "1", "true"],
            "watchdog: unrecognized option '--sigx'\n",
        ),
    ] {
        let run = run(args);
        assert_eq!(run.code, Some(125), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr, message, "{args:?}");
    }
    m.assert_no_survivors();
}

/// GNU's form beside watchdog's own: modes stay modes, `--` keeps a command with no deadline, glued
/// short values are values, and a missing command or duration is one line and 125.
#[test]
fn the_gnu_form_beside_watchdogs_own() {
    let m = Marker::new("gnu-form");
    let run = |args: &[&str]| run_bounded(m.watchdog().args(args), LIMIT);
    for (args, code) in [
        // A grace of 1 s, not 0.1 s: under load the SIGKILL could come before `sleep` took the INT.
        (&["-k1", "-sINT", "-t.1", "--", "sleep", "10"][..], 124),
        (&["-vk1", ".1", "sleep", "10"], 124),
        (&["-p", "-s", "INT", ".1", "sleep", "10"], 130),
        (&["--", "sh", "-c", "exit 4"], 4),
        (&["--", "5", "sh", "-c", "exit 4"], 4),
        (&["-t", "5", "--", "sh", "-c", "exit 4"], 4),
        (&["5", "fetch", "--help"], 0),
        (&["batch", "--help"], 0),
        (&["report", "--help"], 0),
    ] {
        let run = run(args);
        assert_eq!(run.code, Some(code), "{args:?}: {}", run.stderr);
    }
    for args in [&["10"][..], &["sleep", "1"], &["-v"], &["-k", "1"]] {
        let run = run(args);
        assert_eq!(run.code, Some(125), "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}
