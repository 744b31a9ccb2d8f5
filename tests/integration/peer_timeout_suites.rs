//! Two more public suites of timeout(1), restated in our own words and run in both of watchdog's
//! forms beside the GNU port (gnu_timeout.rs): uutils coreutils' `tests/by-util/test_timeout.rs` and
//! FreeBSD's `usr.bin/timeout/tests/timeout_test.sh`. Where they expect what GNU timeout does, the case
//! is here; the expectations are GNU's.
//!
//! Listed, not run, because they are specific to those implementations and contradict GNU:
//! - uutils `test_verbose`: `-s0` printed as "sending signal 0"; GNU's sig2str names it EXIT
//!   (`gnu_timeout::verbose_prints_gnus_lines_for_each_signal_sent`).
//! - uutils `test_windows_*`: Windows consoles and CTRL_BREAK; not a Unix behaviour.
//! - FreeBSD `invalid_timeout`: `999...9d` and `2.34e+5d` refused as invalid; GNU takes a duration too
//!   large for a timer as "for ever" and runs the command (timeout-large-parameters.sh), and so does
//!   watchdog (`gnu_timeout::durations_too_large_for_a_timer_mean_forever`).
//! - FreeBSD's messages (`timeout: invalid duration`, `timeout: invalid signal`, `timeout: exec(.):
//!   Permission denied`): the same cases are run here with GNU's words and codes instead.
//!
//! uutils' `test_dont_underflow` (1e-18172487393827593258 is a deadline of 1 ns, not none) is run: it
//! is what GNU does since its bug 77535 was fixed, though coreutils 9.1 still exits 0 there.

use std::time::{Duration, Instant};

use crate::common::{tempdir, Marker};
use crate::gnu_timeout::{shell, timeout, timeout_line, FORMS};

/// Runs `watchdog OPTS DURATION COMMAND` in both forms and checks the code, stdout and stderr.
fn expect(
    m: &Marker,
    opts: &[&str],
    duration: &str,
    command: &[&str],
    code: i32,
    out: &str,
    err: &str,
) {
    for form in FORMS {
        let run = timeout(m, form, opts, duration, command);
        let what = format!("{form:?} {opts:?} {duration} {command:?}");
        assert_eq!(run.code, Some(code), "{what}: {}", run.stderr);
        assert_eq!(run.stdout, out, "{what}");
        assert_eq!(run.stderr, err, "{what}");
    }
}

// uutils coreutils: tests/by-util/test_timeout.rs

#[test]
fn uutils_exit_codes_of_the_command_and_of_usage() {
    let m = Marker::new("uu-codes");
    expect(&m, &[], "1", &["true"], 0, "", "");
    expect(&m, &[], "1", &["false"], 1, "", "");
    expect(&m, &[], "1700", &["echo", "-n", "abcd"], 0, "abcd", "");
    expect(&m, &[], "1", &["/this/command/definitely/does/not/exist"], 127, "",
        "watchdog: failed to run command '/this/command/definitely/does/not/exist': No such file or directory\n");
    expect(
        &m,
        &[],
        "1",
        &["/"],
        126,
        "",
        "watchdog: failed to run command '/': Permission denied\n",
    );
    let run = crate::common::watchdog(&m, &["--definitely-invalid", "1", "true"]);
    assert_eq!(run.code, Some(125));
    m.assert_no_survivors();
}

#[test]
fn uutils_invalid_intervals_and_signals() {
    let m = Marker::new("uu-invalid");
    for bad in ["xyz", "'1", "10€"] {
        expect(
            &m,
            &[],
            bad,
            &["sleep", "0"],
            125,
            "",
            &format!("watchdog: invalid time interval '{bad}'\n"),
        );
    }
    expect(
        &m,
        &["-k", "xyz"],
        "1",
        &["sleep", "0"],
        125,
        "",
        "watchdog: invalid time interval 'xyz'\n",
    );
    expect(
        &m,
        &["-s", "invalid"],
        "1",
        &["sleep", "0"],
        125,
        "",
        "watchdog: 'invalid': invalid signal\n",
    );
    // `timeout -- -1 sleep 0`, and GNU's form with an empty duration and command.
    let run = crate::common::watchdog(&m, &["--", "-1", "sleep", "0"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(125), "watchdog: invalid time interval '-1'\n")
    );
    let run = crate::common::watchdog(&m, &["", ""]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (Some(125), "watchdog: invalid time interval ''\n")
    );
}

#[test]
fn uutils_non_utf8_arguments_pass_through() {
    use std::os::unix::ffi::OsStrExt;
    let m = Marker::new("uu-non-utf8");
    for form in FORMS {
        let mut cmd = m.watchdog();
        cmd.args(crate::gnu_timeout::args(form, &[], "1700", &["echo"]));
        cmd.arg(std::ffi::OsStr::from_bytes(b"a\xffb"));
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{form:?}");
        assert_eq!(out.stdout, b"a\xffb\n", "{form:?}");
        let mut cmd = m.watchdog();
        cmd.args(crate::gnu_timeout::args(form, &[], "1", &[]));
        cmd.arg(std::ffi::OsStr::from_bytes(b"/nonexistent/absent-\xff"));
        assert_eq!(cmd.output().unwrap().status.code(), Some(127), "{form:?}");
    }
}

#[test]
fn uutils_verbose_zero_foreground_and_preserve_status() {
    let m = Marker::new("uu-options");
    for flag in ["-v", "--verbose"] {
        expect(
            &m,
            &[flag],
            ".1",
            &["sleep", "1"],
            124,
            "",
            "watchdog: sending signal TERM to command 'sleep'\n",
        );
    }
    // A zero duration is no deadline, and -v then prints nothing.
    expect(&m, &["-v"], "0", &["sleep", ".1"], 0, "", "");
    expect(&m, &["-v", "-s0", "-k0"], "0", &["sleep", ".1"], 0, "", "");
    for flag in ["-f", "--foreground"] {
        expect(&m, &[flag], ".1", &["sleep", "10"], 124, "", "");
    }
    for flag in ["-p", "--preserve-status"] {
        expect(&m, &[flag], ".1", &["sleep", "10"], 128 + 15, "", "");
    }
    expect(&m, &["-k", "1"], "1", &["sleep", "10"], 124, "", "");
    expect(&m, &["--kill-after=1"], "1", &["sleep", "0"], 0, "", "");
    // CONT stops nothing: the command ends by itself, and its status is kept.
    for spelling in ["CONT", "cOnT", "SIGcont"] {
        expect(
            &m,
            &["-s", spelling, "--preserve-status"],
            ".1",
            &["sleep", "1"],
            0,
            "",
            "",
        );
    }
    expect(
        &m,
        &["--foreground", "-s0", "-k.1"],
        ".1",
        &["sleep", "10"],
        137,
        "",
        "",
    );
    m.assert_no_survivors();
}

#[test]
fn uutils_sigkill_as_the_signal_reports_137() {
    let m = Marker::new("uu-kill");
    for opts in [
        &["-s", "KILL"][..],
        &["--signal=9"],
        &["-s", "SIGKILL", "--kill-after=3"],
        &["--foreground", "-s", "KILL"],
    ] {
        expect(&m, opts, ".05", &["sleep", "20"], 137, "", "");
    }
    expect(&m, &["-s", "HUP"], ".05", &["sleep", "20"], 124, "", "");
    m.assert_no_survivors();
}

#[test]
fn uutils_durations_that_overflow_or_underflow() {
    let m = Marker::new("uu-flow");
    expect(&m, &[], "9223372036854775808d", &["sleep", "0"], 0, "", "");
    expect(
        &m,
        &["-k", "9223372036854775808d"],
        "10",
        &["sleep", "0"],
        0,
        "",
        "",
    );
    for tiny in [".0000000001", "1e-100", "1e-18172487393827593258"] {
        expect(&m, &[], tiny, &["sleep", "1"], 124, "", "");
    }
    // 0x0.1d is a hex fraction (0.11 s), not 0x0.1 days.
    for form in FORMS {
        let started = Instant::now();
        let run = timeout(&m, form, &[], "0x0.1d", &["sleep", "10"]);
        assert_eq!(run.code, Some(124), "{form:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "{form:?}");
    }
    m.assert_no_survivors();
}

#[test]
fn uutils_the_command_sees_the_signals() {
    let m = Marker::new("uu-trap");
    let dir = tempdir();
    // The deadline's TERM reaches a trap (sh may say "Terminated" of its sleep on stderr).
    for form in FORMS {
        let trap = ["sh", "-c", "trap 'echo inside_trap' TERM; sleep 5"];
        let run = timeout(&m, form, &[], "1", &trap);
        assert_eq!(run.code, Some(124), "{form:?}: {}", run.stderr);
        assert_eq!(run.stdout, "inside_trap\n", "{form:?}");
    }
    // A background child does not hold the deadline.
    expect(
        &m,
        &[],
        ".5",
        &["sh", "-c", "sleep .1 & sleep 2"],
        124,
        "",
        "",
    );
    for form in FORMS {
        // TERM and INT sent to timeout reach the command; its own status stands. (`wait`, so that
        // the signal cannot fall between `touch` and the start of `sleep`.)
        for (trap, signal, said) in [
            (
                "trap 'echo child received TERM' TERM; sleep 5 & touch ready; wait $!",
                "TERM",
                "child received TERM\n143\n",
            ),
            (
                "trap 'echo got_int; exit 42' INT; sleep 5 & touch ready; wait $!",
                "INT",
                "got_int\n42\n",
            ),
        ] {
            let line = timeout_line(form, &[], "10", &["sh", "-c", trap]);
            let script = format!(
                "rm -f ready; env --default-signal=INT {line} & pid=$!; i=0; until test -e ready || test $i = 400; do sleep 0.025; i=$((i+1)); done; kill -{signal} $pid; wait $pid; echo $?"
            );
            let run = shell(&m, dir.path(), &script);
            assert_eq!(run.stdout, said, "{form:?} {signal}: {}", run.stderr);
        }
        // An ignored SIGCHLD in the caller.
        let line = timeout_line(
            form,
            &[],
            "10",
            &[
                "sh",
                "-c",
                &format!(
                    "trap '' CHLD; exec {} 1 true",
                    crate::common::bin().display()
                ),
            ],
        );
        let run = shell(&m, dir.path(), &format!("{line}; echo $?"));
        assert_eq!(run.stdout, "0\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
#[cfg(target_os = "linux")]
fn uutils_real_time_signal_names() {
    let m = Marker::new("uu-rt");
    for (given, named) in [
        ("RTMAX", "RTMAX"),
        ("RTMIN", "RTMIN"),
        ("SIGRTMAX", "RTMAX"),
    ] {
        expect(
            &m,
            &["-v", "-s", given],
            ".1",
            &["sleep", "1"],
            124,
            "",
            &format!("watchdog: sending signal {named} to command 'sleep'\n"),
        );
    }
    m.assert_no_survivors();
}

// FreeBSD: usr.bin/timeout/tests/timeout_test.sh

#[test]
fn freebsd_nominal_units_and_no_timeout() {
    let m = Marker::new("bsd-nominal");
    for duration in ["5", "1d", "1h", "1m", "1s", "0"] {
        expect(&m, &[], duration, &["true"], 0, "", "");
    }
    m.assert_no_survivors();
}

#[test]
fn freebsd_exit_numbers() {
    let m = Marker::new("bsd-exit");
    let dir = tempdir();
    expect(&m, &[], "5", &["sh", "-c", "exit 2"], 2, "", "");
    expect(&m, &[], ".1", &["sleep", "1"], 124, "", "");
    expect(
        &m,
        &["--preserve-status"],
        ".1",
        &["sleep", "10"],
        143,
        "",
        "",
    );
    expect(&m, &["-s1", "-k1"], ".1", &["sleep", "10"], 124, "", "");
    for form in FORMS {
        let line = timeout_line(form, &[], "10", &["true"]);
        let run = shell(
            &m,
            dir.path(),
            &format!(
                "sh -c \"trap '' CHLD; exec {}\"; echo $?",
                line.replace('"', "\\\"")
            ),
        );
        assert_eq!(run.stdout, "0\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn freebsd_with_a_child_holding_the_output() {
    let m = Marker::new("bsd-child");
    let dir = tempdir();
    for form in FORMS {
        let line = timeout_line(form, &[], ".5", &["sh", "-c", "sleep 10; echo foo"]);
        let run = shell(
            &m,
            dir.path(),
            &format!("out=$(sleep .1 & exec {line}); echo \"[$out] $?\""),
        );
        assert_eq!(run.stdout, "[] 124\n", "{form:?}: {}", run.stderr);
    }
    m.assert_no_survivors();
}

#[test]
fn freebsd_invalid_durations_signals_and_commands_in_gnus_words() {
    let m = Marker::new("bsd-invalid");
    expect(
        &m,
        &[],
        "invalid",
        &["sleep", "0"],
        125,
        "",
        "watchdog: invalid time interval 'invalid'\n",
    );
    expect(
        &m,
        &["--kill-after=invalid"],
        "1",
        &["sleep", "0"],
        125,
        "",
        "watchdog: invalid time interval 'invalid'\n",
    );
    expect(
        &m,
        &[],
        "42D",
        &["sleep", "0"],
        125,
        "",
        "watchdog: invalid time interval '42D'\n",
    );
    expect(
        &m,
        &["--signal=invalid"],
        "1",
        &["sleep", "0"],
        125,
        "",
        "watchdog: 'invalid': invalid signal\n",
    );
    expect(
        &m,
        &[],
        "10",
        &["."],
        126,
        "",
        "watchdog: failed to run command '.': Permission denied\n",
    );
    expect(
        &m,
        &[],
        "10",
        &["enoexists"],
        127,
        "",
        "watchdog: failed to run command 'enoexists': No such file or directory\n",
    );
}
