//! `--contain`: a SIGKILLed watchdog leaves nothing under pidns, userns or sentinel, as root and as
//! an ordinary user (`nobody`, through `setpriv`); the process group shows its documented limit; the
//! command keeps its uid and its files' owner under userns; where user namespaces are unavailable
//! `auto` falls back silently and `--contain userns` is an error; exit codes, signals, `--foreground`,
//! `--stall` and the progress channel work the same under every init.
//!
//! Whether the system grants a namespace is asked of util-linux's `unshare`, not of watchdog, so that
//! a broken watchdog cannot skip a test. CI runs as root with unprivileged user namespaces allowed:
//! there a test that cannot run fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;

const SECOND: Duration = Duration::from_secs(1);

/// The mechanisms that run the command under an init.
const INITS: [&str; 3] = ["pidns", "userns", "sentinel"];

/// Whether `unshare ARGS true` succeeds (as `user`, through setpriv, when given).
fn unshare_works(user: Option<&Nobody>, args: &[&str]) -> bool {
    let mut cmd = match user {
        Some(nobody) => nobody.setpriv(Path::new("unshare")),
        None => Command::new("unshare"),
    };
    cmd.args(args)
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether `mechanism` can be had here (as `user` when given); if not, says so and the test skips it.
fn available(test: &str, mechanism: &str, user: Option<&Nobody>) -> bool {
    let ok = match mechanism {
        "pidns" => unshare_works(user, &["--pid", "--fork"]),
        "userns" => unshare_works(user, &["--user", "--map-current-user", "--pid", "--fork"]),
        _ => true,
    };
    can_run(
        test,
        ok,
        &format!("--contain {mechanism}, which cannot be had here"),
    )
}

/// watchdog run as `nobody`: a copy of the binary in a directory anyone can read and write (for the
/// events file and the files the command creates).
struct Nobody {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

const NOBODY: u32 = 65534;

impl Nobody {
    /// `None` (the test is skipped, or fails under CI) without root or setpriv.
    fn new(test: &str) -> Option<Nobody> {
        // SAFETY: geteuid takes nothing and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let setpriv = Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !can_run(test, root && setpriv, "root and setpriv, to become nobody") {
            return None;
        }
        let dir = tempdir();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod the temp dir");
        let copy = dir.path().join("watchdog");
        // Copied by `cp`, not by this process: a descriptor open for writing here would be inherited,
        // until its exec, by whatever another test forks meanwhile, and executing the copy would then
        // fail with ETXTBSY ("Text file busy").
        let copied = Command::new("cp")
            .arg(bin())
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        assert!(copied, "cp {} {}", bin().display(), copy.display());
        Some(Nobody { dir, bin: copy })
    }

    /// [`Nobody::new`] where `mechanism` can be had as nobody; `None` (the test is skipped, or fails
    /// under CI) otherwise.
    fn having(test: &str, mechanism: &str) -> Option<Nobody> {
        let nobody = Nobody::new(test)?;
        nobody.can_have(test, mechanism).then_some(nobody)
    }

    /// Whether `mechanism` can be had as nobody (`auto`: userns, which it picks for nobody); if not,
    /// says so and the test skips it.
    fn can_have(&self, test: &str, mechanism: &str) -> bool {
        let mechanism = if mechanism == "auto" {
            "userns"
        } else {
            mechanism
        };
        available(test, mechanism, Some(self))
    }

    fn setpriv(&self, program: &Path) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg(program);
        cmd
    }

    /// watchdog as nobody, with the marker set.
    fn watchdog(&self, m: &Marker) -> Command {
        let mut cmd = self.setpriv(&self.bin);
        cmd.env(MARKER_ENV, m.value());
        cmd
    }

    fn run(&self, m: &Marker, args: &[&str]) -> Run {
        run_bounded(self.watchdog(m).args(args), 30 * SECOND)
    }
}

/// The tree of the issue: a `setsid` grandchild, a double-forked daemon that ignores TERM, and a
/// hundred sleepers; `ready` once all are forked. With sh and watchdog that is 104 processes.
const TREE: &str = "setsid sleep 300 & (setsid sh -c 'trap \"\" TERM; sleep 300' &) ; \
    i=0; while [ $i -lt 100 ]; do sleep 300 & i=$((i+1)); done; echo ready; wait";
const TREE_PROCESSES: usize = 103;

/// Starts `watchdog` (with the marker) under `contain` on [`TREE`], waits until the whole tree runs,
/// SIGKILLs watchdog and reaps it. Returns the start event.
fn sigkill_watchdog_over_the_tree(
    m: &Marker,
    mut watchdog: Command,
    events_dir: &Path,
    contain: &str,
) -> serde_json::Value {
    let events = events_dir.join(format!("events-{contain}.jsonl"));
    let mut child = watchdog
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
    if !available(
        "contain_auto_a_sigkilled_watchdog_leaves_nothing",
        "pidns",
        None,
    ) {
        return;
    }
    let m = Marker::new("contain-auto-kill");
    let dir = tempdir();
    let used = sigkill_watchdog_over_the_tree(&m, m.watchdog(), dir.path(), "auto");
    assert_eq!(used["contain"], "pidns", "root gets a PID namespace");
    // The kernel kills the namespace with its init, which PR_SET_PDEATHSIG kills with watchdog.
    m.assert_no_survivors();
}

#[test]
fn contain_every_init_a_sigkilled_watchdog_leaves_nothing() {
    for mechanism in INITS {
        if !available(
            "contain_every_init_a_sigkilled_watchdog_leaves_nothing",
            mechanism,
            None,
        ) {
            continue;
        }
        let m = Marker::new(&format!("contain-{mechanism}-kill"));
        let dir = tempdir();
        let used = sigkill_watchdog_over_the_tree(&m, m.watchdog(), dir.path(), mechanism);
        assert_eq!(used["contain"], mechanism);
        m.assert_no_survivors();
    }
}

#[test]
fn contain_group_a_sigkilled_watchdog_takes_its_command_and_leaves_the_grandchildren() {
    // The documented limit of a process group: only the direct child dies with watchdog
    // (PR_SET_PDEATHSIG), the rest of the tree outlives it.
    let m = Marker::new("contain-group-kill");
    let dir = tempdir();
    let start = sigkill_watchdog_over_the_tree(&m, m.watchdog(), dir.path(), "group");
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
fn contain_as_nobody_a_sigkilled_watchdog_leaves_nothing() {
    let test = "contain_as_nobody_a_sigkilled_watchdog_leaves_nothing";
    let Some(nobody) = Nobody::new(test) else {
        return;
    };
    for mechanism in ["auto", "userns", "sentinel"] {
        if !nobody.can_have(test, mechanism) {
            continue;
        }
        let m = Marker::new(&format!("contain-nobody-{mechanism}-kill"));
        let used =
            sigkill_watchdog_over_the_tree(&m, nobody.watchdog(&m), nobody.dir.path(), mechanism);
        let expected = if mechanism == "auto" {
            "userns"
        } else {
            mechanism
        };
        assert_eq!(used["contain"], expected);
        m.assert_no_survivors();
    }
}

#[test]
fn contain_as_nobody_the_command_keeps_its_uid_and_files_and_the_mechanism_is_named() {
    let test = "contain_as_nobody_the_command_keeps_its_uid_and_files_and_the_mechanism_is_named";
    let Some(nobody) = Nobody::having(test, "userns") else {
        return;
    };
    let m = Marker::new("contain-nobody-view");
    // GNU's form, as a user types it.
    let run = nobody.run(&m, &["5", "id", "-u"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, format!("{NOBODY}\n"));
    assert_eq!(run.stderr, "", "auto is silent");

    let made = nobody.dir.path().join("made-inside");
    let events = nobody.dir.path().join("events.jsonl");
    let run = nobody.run(&m, &["-vv", "--events", s(&events), "5", "touch", s(&made)]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&made).expect("the file"));
    assert_eq!(owner, NOBODY, "the file belongs to the caller, nobody");
    assert_eq!(start_event(&events)["contain"], "userns");
    assert!(
        run.stderr.contains("new user and PID namespace")
            && run.stderr.contains("(--contain userns)"),
        "{}",
        run.stderr
    );

    // pidns needs CAP_SYS_ADMIN: asked for, it is one line and 125.
    let run = nobody.run(&m, &["--contain", "pidns", "--", "true"]);
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
fn contain_userns_a_setuid_program_gains_nothing_and_auto_runs_it_under_a_sentinel() {
    let test = "contain_userns_a_setuid_program_gains_nothing_and_auto_runs_it_under_a_sentinel";
    let Some(nobody) = Nobody::having(test, "userns") else {
        return;
    };
    // A setuid-root `id`, which reports its effective uid.
    let id = nobody.dir.path().join("id-setuid");
    std::fs::copy("/usr/bin/id", &id).expect("copy id");
    std::fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o4755))
        .expect("chmod u+s");
    let m = Marker::new("contain-setuid");
    let run = nobody.run(&m, &["--contain", "userns", "--", s(&id), "-u"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{NOBODY}\n"),
        "no privilege in a user namespace"
    );

    let events = nobody.dir.path().join("events-setuid.jsonl");
    let run = nobody.run(&m, &["--events", s(&events), "--", s(&id), "-u"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "0\n", "auto keeps the program's privilege");
    assert_eq!(start_event(&events)["contain"], "sentinel");
    m.assert_no_survivors();
}

#[test]
fn contain_without_user_namespaces_auto_falls_back_and_userns_is_an_error() {
    let test = "contain_without_user_namespaces_auto_falls_back_and_userns_is_an_error";
    if Nobody::new(test).is_none() || !available(test, "userns", None) {
        return;
    }
    // Inside a user namespace of its own whose user.max_user_namespaces is 0 (which disturbs no
    // other test), with every capability dropped so that no PID namespace can be had either.
    let m = Marker::new("contain-no-userns");
    let dir = tempdir();
    let events = dir.path().join("events.jsonl");
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces || exit 99; \
         set -- setpriv --bounding-set=-all --inh-caps=-all {bin}; \
         \"$@\" --events {events} -- sh -c 'exit 3'; echo auto=$?; \
         \"$@\" --contain userns -- true; echo userns=$?",
        bin = s(&bin()),
        events = s(&events),
    );
    let run = run_bounded(
        Command::new("unshare")
            .args(["--user", "--map-root-user", "sh", "-c", &script])
            .env(MARKER_ENV, m.value()),
        30 * SECOND,
    );
    assert_eq!(run.stdout, "auto=3\nuserns=125\n", "{}", run.stderr);
    assert_eq!(start_event(&events)["contain"], "sentinel");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("watchdog: --contain userns: cannot create a user namespace: "),
        "{}",
        run.stderr
    );
    m.assert_no_survivors();
}

#[test]
fn contain_pidns_and_userns_a_process_sees_its_own_pid_in_proc() {
    for mechanism in ["pidns", "userns"] {
        if !available(
            "contain_pidns_and_userns_a_process_sees_its_own_pid_in_proc",
            mechanism,
            None,
        ) {
            continue;
        }
        let m = Marker::new("contain-proc");
        // The shell opens /proc/self/stat itself: its first field is the shell's own pid.
        let run = watchdog(
            &m,
            &[
                "--contain",
                mechanism,
                "--",
                "sh",
                "-c",
                "read pid rest < /proc/self/stat; echo $$ $pid",
            ],
        );
        assert_eq!(run.code, Some(0), "{mechanism}: {}", run.stderr);
        assert_eq!(
            run.stdout, "2 2\n",
            "{mechanism}: the command is PID 2, after its init"
        );
    }
}

/// Runs `check` with a `watchdog ARGS` runner for every init mechanism that can be had, as root, and
/// as nobody for the ones an ordinary user can have.
fn under_every_init(test: &str, check: impl Fn(&str, &dyn Fn(&[&str]) -> Run)) {
    let m = Marker::new(test);
    for mechanism in INITS {
        if !available(test, mechanism, None) {
            continue;
        }
        let run = |args: &[&str]| {
            let mut all = vec!["--contain", mechanism];
            all.extend_from_slice(args);
            watchdog(&m, &all)
        };
        check(mechanism, &run);
        m.assert_no_survivors();
    }
    let Some(nobody) = Nobody::new(test) else {
        return;
    };
    for mechanism in ["userns", "sentinel"] {
        if !nobody.can_have(test, mechanism) {
            continue;
        }
        let run = |args: &[&str]| {
            let mut all = vec!["--contain", mechanism];
            all.extend_from_slice(args);
            nobody.run(&m, &all)
        };
        check(&format!("{mechanism} as nobody"), &run);
        m.assert_no_survivors();
    }
}

#[test]
fn contain_every_init_keeps_exit_codes_signals_and_errors() {
    under_every_init("contain-codes", |mechanism, run| {
        assert_eq!(
            run(&["--", "sh", "-c", "exit 3"]).code,
            Some(3),
            "{mechanism}"
        );
        // A death by a signal watchdog did not send is passed on as one, as GNU timeout does.
        assert_eq!(
            run(&["--", "sh", "-c", "kill -KILL $$"]).signal,
            Some(9),
            "{mechanism}"
        );
        assert_eq!(
            run(&["--", "sh", "-c", "kill -40 $$"]).signal,
            Some(40),
            "{mechanism}"
        );
        assert_eq!(
            run(&["-t", "0.2", "--", "sleep", "100"]).code,
            Some(124),
            "{mechanism}"
        );
        let out = run(&["-t", "0.2", "--preserve-status", "--", "sleep", "100"]);
        assert_eq!(
            out.code,
            Some(143),
            "{mechanism}: TERM reached the command: {}",
            out.stderr
        );
        let out = run(&["--", "/nonexistent/command"]);
        assert_eq!(out.code, Some(127), "{mechanism}");
        assert!(
            out.stderr.contains("No such file or directory"),
            "{mechanism}: {}",
            out.stderr
        );
        let out = run(&["--", "/dev/null"]);
        assert_eq!(out.code, Some(126), "{mechanism}: {}", out.stderr);
        // Found along PATH, arguments and argv[0] as given, no shell in between.
        let out = run(&["--", "sh", "-c", "echo \"$0|$1\"", "zero", "a b"]);
        assert_eq!(out.stdout, "zero|a b\n", "{mechanism}: {}", out.stderr);
    });
}

#[test]
fn contain_every_init_a_forwarded_signal_tears_down_the_tree() {
    for mechanism in INITS {
        if !available(
            "contain_every_init_a_forwarded_signal_tears_down_the_tree",
            mechanism,
            None,
        ) {
            continue;
        }
        let m = Marker::new("contain-forward");
        let mut child = m
            .watchdog()
            .args(["--contain", mechanism, "-t", "60", "--", "sh", "-c"])
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
        // The command died of the forwarded TERM, and watchdog passes that death on, as GNU does.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM),
            "{mechanism}"
        );
        m.assert_no_survivors();
    }
}

#[test]
fn contain_every_init_foreground_and_a_daemon_left_behind() {
    under_every_init("contain-fg", |mechanism, run| {
        let out = run(&[
            "--foreground",
            "-t",
            "0.3",
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "sleep 100 & setsid sleep 100 & sleep 100",
        ]);
        assert_eq!(out.code, Some(124), "{mechanism}: {}", out.stderr);
        // The command exits at once, leaving a daemon that ignores TERM: it is swept, the status
        // kept.
        let out = run(&[
            "-k",
            "0.3",
            "--",
            "sh",
            "-c",
            "(setsid sh -c 'trap \"\" TERM; sleep 100' &) ; exit 4",
        ]);
        assert_eq!(out.code, Some(4), "{mechanism}: {}", out.stderr);
    });
}

#[test]
fn contain_every_init_stall_relays_output_and_reads_the_progress_channel() {
    under_every_init("contain-stall", |mechanism, run| {
        // Output is relayed unchanged and counts as life; so do progress lines.
        let out = run(&[
            "--stall",
            "5",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; echo '{\"event\":\"progress\"}' >&$WATCHDOG_PROGRESS_FD",
        ]);
        assert_eq!(out.code, Some(0), "{mechanism}: {}", out.stderr);
        assert_eq!(out.stdout, "out\n", "{mechanism}");
        assert_eq!(out.stderr, "err\n", "{mechanism}");
        // Silence is a stall.
        let out = run(&["--stall", "0.3", "--", "sleep", "100"]);
        assert_eq!(out.code, Some(124), "{mechanism}: {}", out.stderr);
    });
}

#[test]
fn contain_events_record_the_mechanism_and_verbose_names_it() {
    let m = Marker::new("contain-events");
    let dir = tempdir();
    for mechanism in ["pidns", "userns", "sentinel", "group"] {
        if !available(
            "contain_events_record_the_mechanism_and_verbose_names_it",
            mechanism,
            None,
        ) {
            continue;
        }
        let events = dir.path().join(format!("{mechanism}.jsonl"));
        let run = watchdog(
            &m,
            &[
                "-vv",
                "--contain",
                mechanism,
                "--events",
                s(&events),
                "--",
                "true",
            ],
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(start_event(&events)["contain"], mechanism);
        assert!(
            run.stderr.contains(&format!("(--contain {mechanism})")),
            "{}",
            run.stderr
        );
    }
    // Root's default.
    if available(
        "contain_events_record_the_mechanism_and_verbose_names_it",
        "pidns",
        None,
    ) {
        let run = watchdog(&m, &["-vv", "--", "true"]);
        assert!(
            run.stderr.contains("new PID namespace (--contain pidns)"),
            "{}",
            run.stderr
        );
    }
}

/// SIGKILLs `watchdog` forty times anywhere in its start-up: before the init's PR_SET_PDEATHSIG,
/// between it and the command's exec, while the command starts. The delays only spread the kills;
/// nothing waits on them.
fn sigkill_while_starting(m: &Marker, watchdog: impl Fn() -> Command) {
    for trial in 0..40u64 {
        let mut child = watchdog()
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

#[test]
fn contain_auto_a_watchdog_sigkilled_while_starting_leaves_nothing() {
    let test = "contain_auto_a_watchdog_sigkilled_while_starting_leaves_nothing";
    if available(test, "pidns", None) {
        let m = Marker::new("contain-early-kill");
        sigkill_while_starting(&m, || m.watchdog());
    }
    let Some(nobody) = Nobody::new(test) else {
        return;
    };
    for mechanism in ["auto", "sentinel"] {
        let m = Marker::new(&format!("contain-early-kill-{mechanism}"));
        sigkill_while_starting(&m, || {
            let mut cmd = nobody.watchdog(&m);
            cmd.args(["--contain", mechanism]);
            cmd
        });
    }
}

/// As with GNU timeout, the command reads watchdog's stdin (`printf 'one\ntwo\n' | watchdog 5 cat`),
/// and it inherits none of watchdog's own descriptors: only what the caller gave (stdin, stdout,
/// stderr) and the progress channel, `$WATCHDOG_PROGRESS_FD`. Under every mechanism.
#[test]
fn contain_every_mechanism_passes_stdin_on_and_no_descriptor_of_its_own() {
    const TEST: &str = "contain_every_mechanism_passes_stdin_on_and_no_descriptor_of_its_own";
    let m = Marker::new("contain-stdin-fds");
    // The shell lists its own descriptors; the same shell started by the test is the baseline.
    let listing = "ls /proc/$$/fd; echo progress=${WATCHDOG_PROGRESS_FD:-none}";
    let fds = |run: &Run| -> (Vec<u32>, String) {
        let mut numbers = Vec::new();
        let mut progress = String::new();
        for line in run.stdout.lines() {
            match line.strip_prefix("progress=") {
                Some(fd) => progress = fd.to_string(),
                None => numbers.push(line.parse().expect("an fd number")),
            }
        }
        numbers.sort_unstable();
        (numbers, progress)
    };
    let baseline = run_bounded(Command::new("sh").args(["-c", listing]), 10 * SECOND);
    let (expected, none) = fds(&baseline);
    assert_eq!(
        none, "none",
        "the test's own environment sets WATCHDOG_PROGRESS_FD"
    );
    for mechanism in ["pidns", "userns", "sentinel", "group"] {
        if !available(TEST, mechanism, None) {
            continue;
        }
        let run = run_bounded_with_input(
            m.watchdog().args(["--contain", mechanism, "5", "cat"]),
            Some(b"one\ntwo\n"),
            30 * SECOND,
        );
        assert_eq!(run.code, Some(0), "{mechanism}: {}", run.stderr);
        assert_eq!(
            run.stdout, "one\ntwo\n",
            "{mechanism}: stdin reaches the command"
        );

        let run = watchdog(&m, &["--contain", mechanism, "5", "sh", "-c", listing]);
        assert_eq!(run.code, Some(0), "{mechanism}: {}", run.stderr);
        let (seen, progress) = fds(&run);
        let mut want = expected.clone();
        want.push(progress.parse().expect("$WATCHDOG_PROGRESS_FD is a number"));
        want.sort_unstable();
        assert_eq!(seen, want, "{mechanism}: the command's descriptors");
    }
    m.assert_no_survivors();
}

/// watchdog ignores the terminal's stop signals for itself only: the command gets SIGTTIN and SIGTTOU
/// as the caller left them (default from a plain shell, ignored after `trap '' TTIN TTOU`), under
/// every mechanism.
#[test]
fn contain_every_mechanism_leaves_the_terminal_stop_signals_as_the_caller_left_them() {
    use crate::gnu_timeout::{shell, timeout_line, Form};
    const TEST: &str =
        "contain_every_mechanism_leaves_the_terminal_stop_signals_as_the_caller_left_them";
    let m = Marker::new("contain-tty-stops");
    let dir = tempdir();
    let stops = (1u64 << (libc::SIGTTIN - 1)) | (1 << (libc::SIGTTOU - 1));
    for mechanism in ["pidns", "userns", "sentinel", "group"] {
        if !available(TEST, mechanism, None) {
            continue;
        }
        let line = timeout_line(
            Form::Options,
            &["--contain", mechanism],
            "5",
            &["grep", "SigIgn", "/proc/self/status"],
        );
        for (trap, want) in [("", 0), ("trap '' TTIN TTOU; ", stops)] {
            let run = shell(&m, dir.path(), &format!("{trap}{line}"));
            assert_eq!(run.code, Some(0), "{mechanism}: {}", run.stderr);
            let mask = run
                .stdout
                .trim()
                .strip_prefix("SigIgn:")
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
                .unwrap_or_else(|| panic!("{mechanism}: not a SigIgn line: {}", run.stdout));
            assert_eq!(
                mask & stops,
                want,
                "{mechanism}, after {trap:?}: SigIgn {mask:x}"
            );
        }
    }
    m.assert_no_survivors();
}

/// `--contain group` (what an ordinary user gets where no init can be had; root gets pidns by
/// default, so the supervise tests do not cover it): while watchdog lives it sweeps what left the
/// group, `setsid` escapees and double-forked daemons, when the command exits and on the deadline.
#[test]
fn contain_group_sweeps_escapees_and_daemons_while_watchdog_lives() {
    let m = Marker::new("contain-group-sweep");
    let leave = "setsid sleep 300 & (sleep 300 &); sleep 300 &";
    let run = watchdog(
        &m,
        &[
            "--contain",
            "group",
            "30",
            "sh",
            "-c",
            &format!("{leave} exit 3"),
        ],
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.elapsed < 20 * SECOND, "took {:?}", run.elapsed);
    m.assert_no_survivors();
    // Only an escapee left: the command's group is empty, the tree is not. The command exits once
    // the escapee has left the group (it says so through a FIFO).
    let dir = tempdir();
    let fifo = dir.path().join("left");
    let script = format!(
        "mkfifo '{f}'; setsid sh -c \"echo > '{f}'; exec sleep 300\" & read x < '{f}'; exit 3",
        f = fifo.display()
    );
    let run = watchdog(&m, &["--contain", "group", "30", "sh", "-c", &script]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.elapsed < 20 * SECOND, "took {:?}", run.elapsed);
    m.assert_no_survivors();

    let run = watchdog(
        &m,
        &[
            "--contain",
            "group",
            "0.5",
            "sh",
            "-c",
            &format!("{leave} sleep 300"),
        ],
    );
    assert_eq!(run.code, Some(124), "{}", run.stderr);
    m.assert_no_survivors();
}
