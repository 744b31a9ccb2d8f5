//! How the command's tree is held, so that nothing outlives watchdog, not even a SIGKILLed one.
//!
//! - `pidns`: the command runs under an init (see [`super::init`]) that is PID 1 of a new PID
//!   namespace. Every process the command starts, `setsid` escapees and double-forked daemons
//!   included, is in that namespace and cannot leave it; when its PID 1 dies, the kernel SIGKILLs all
//!   of them, and the init has PR_SET_PDEATHSIG=SIGKILL, so a SIGKILLed watchdog takes it along. Needs
//!   CAP_SYS_ADMIN (root).
//! - `userns`: the same, with the PID namespace owned by a new user namespace that maps the caller's
//!   own uid and gid to themselves, which an unprivileged user may create where the system allows
//!   unprivileged user namespaces. `id`, file ownership and `$HOME` are unchanged inside; what changes
//!   is that nothing inside can gain privilege: a setuid or setgid program (`sudo`, `su`, `newgrp`)
//!   runs without it, file capabilities give nothing outside the namespace, and ids other than the
//!   caller's own (root's files, other groups) show as the overflow id, `nobody`/`nogroup`.
//! - `sentinel`: the init stays in watchdog's PID namespace as a subreaper with a catchable
//!   parent-death signal; when watchdog dies it SIGKILLs every descendant before it exits. Works for
//!   everyone and changes nothing in the command's view, but nothing enforces it if the sentinel itself
//!   is SIGKILLed.
//! - `group`: the command in its own process group, with watchdog as its subreaper. Only the direct
//!   child dies with a SIGKILLed watchdog; while watchdog lives, it sweeps every descendant.
//!
//! `auto` takes the first that can be had of pidns, userns and sentinel (group only where none can):
//! the strongest whose guarantee is the kernel's, without changing what the command sees. So userns is
//! skipped for a command that is itself setuid, setgid or has file capabilities, which would run
//! without them there.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use nix::unistd::Pid;

use super::init::{self, Init, Kind};
use super::{Processes, ProgressChannel, SpawnSpec};

/// Which containment to use, as asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contain {
    /// The strongest available (see the module comment).
    Auto,
    /// A PID namespace, or an error when one cannot be had.
    PidNamespace,
    /// A user and PID namespace, or an error when they cannot be had.
    UserNamespace,
    /// A sentinel, or an error when it cannot be started.
    Sentinel,
    /// A process group, with watchdog as subreaper.
    Group,
}

/// The containment a command actually runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    // Only Linux has namespaces and subreapers; elsewhere every run is contained as a group.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    PidNamespace,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    UserNamespace,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Sentinel,
    Group,
}

impl Mechanism {
    /// The name `--contain` takes and the events file records.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::PidNamespace => "pidns",
            Mechanism::UserNamespace => "userns",
            Mechanism::Sentinel => "sentinel",
            Mechanism::Group => "group",
        }
    }

    /// What it means, for `-vv`.
    pub fn describe(self) -> &'static str {
        match self {
            Mechanism::PidNamespace => "as PID 2 under its own init in a new PID namespace",
            Mechanism::UserNamespace => {
                "as PID 2 under its own init in a new user and PID namespace (your uid and gid \
                 only: setuid programs cannot gain privilege there)"
            }
            Mechanism::Sentinel => "under a sentinel that kills its tree if watchdog dies",
            Mechanism::Group => "in its own process group",
        }
    }

    fn kind(self) -> Option<Kind> {
        match self {
            Mechanism::PidNamespace => Some(Kind::PidNamespace),
            Mechanism::UserNamespace => Some(Kind::UserNamespace),
            Mechanism::Sentinel => Some(Kind::Sentinel),
            Mechanism::Group => None,
        }
    }
}

/// Why the command could not be started.
#[derive(Debug)]
pub enum SpawnError {
    /// Exec (or fork) failed with this error: the caller tells "not found" from "cannot run".
    Command(io::Error),
    /// The containment asked for cannot be had; the message says why.
    Contain(String),
}

/// A started command under its containment, and watchdog's ends of its pipes.
pub struct Started {
    /// The command, or under an init, the init (which passes signals on and reports the status).
    pub pid: Pid,
    pub mechanism: Mechanism,
    pub init: Option<Init>,
    pub progress: OwnedFd,
    pub stdout: Option<File>,
    pub stderr: Option<File>,
}

/// Starts the command under `contain` (see the module comment).
pub fn spawn(
    processes: &Processes,
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
    contain: Contain,
) -> Result<Started, SpawnError> {
    match contain {
        Contain::Group => group(processes, spec, channel),
        Contain::PidNamespace => explicit(
            spec,
            channel,
            Mechanism::PidNamespace,
            "it needs CAP_SYS_ADMIN on Linux",
        ),
        Contain::UserNamespace => explicit(
            spec,
            channel,
            Mechanism::UserNamespace,
            "it needs unprivileged user namespaces: sysctl user.max_user_namespaces, or \
             kernel.apparmor_restrict_unprivileged_userns on Ubuntu",
        ),
        Contain::Sentinel => explicit(spec, channel, Mechanism::Sentinel, "it needs Linux"),
        // Each fallback is silent: nothing ran, and the channel is unused.
        Contain::Auto => {
            for mechanism in [
                Mechanism::PidNamespace,
                Mechanism::UserNamespace,
                Mechanism::Sentinel,
            ] {
                // Looked up only once pidns failed: root never pays for it.
                if mechanism == Mechanism::UserNamespace && gains_privilege(&spec.program) {
                    continue;
                }
                let Some(kind) = mechanism.kind() else {
                    continue;
                };
                match init::start(kind, spec, &channel) {
                    Ok(started) => return Ok(under_init(started, mechanism, channel)),
                    Err(init::Failure::Command(e)) => return Err(SpawnError::Command(e)),
                    Err(init::Failure::Unavailable(_)) => {}
                }
            }
            group(processes, spec, channel)
        }
    }
}

/// Starts `mechanism`, or says why it cannot be had.
fn explicit(
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
    mechanism: Mechanism,
    needs: &str,
) -> Result<Started, SpawnError> {
    let Some(kind) = mechanism.kind() else {
        return Err(SpawnError::Contain(format!(
            "--contain {}: not an init",
            mechanism.as_str()
        )));
    };
    match init::start(kind, spec, &channel) {
        Ok(started) => Ok(under_init(started, mechanism, channel)),
        Err(init::Failure::Command(e)) => Err(SpawnError::Command(e)),
        Err(init::Failure::Unavailable(why)) => Err(SpawnError::Contain(format!(
            "--contain {}: {why} ({needs}; --contain auto falls back to what can be had)",
            mechanism.as_str()
        ))),
    }
}

fn under_init(started: init::Started, mechanism: Mechanism, channel: ProgressChannel) -> Started {
    Started {
        pid: started.init.pid(),
        mechanism,
        init: Some(started.init),
        // watchdog's copy of the write end goes: only the command's tree holds it now.
        progress: channel.into_read(),
        stdout: started.stdout,
        stderr: started.stderr,
    }
}

/// The supervisor's command (no stdin pipe) with `vfork` semantics, as the init starts it.
#[cfg(target_os = "linux")]
fn group(
    processes: &Processes,
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
) -> Result<Started, SpawnError> {
    if spec.pipe_stdin {
        return group_by_fork(processes, spec, channel);
    }
    let spawned = processes
        .spawn_shared(spec, channel)
        .map_err(SpawnError::Command)?;
    Ok(Started {
        pid: Pid::from_raw(spawned.pid),
        mechanism: Mechanism::Group,
        init: None,
        progress: spawned.progress,
        stdout: spawned.stdout.map(File::from),
        stderr: spawned.stderr.map(File::from),
    })
}

#[cfg(not(target_os = "linux"))]
fn group(
    processes: &Processes,
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
) -> Result<Started, SpawnError> {
    group_by_fork(processes, spec, channel)
}

fn group_by_fork(
    processes: &Processes,
    spec: &SpawnSpec<'_>,
    channel: ProgressChannel,
) -> Result<Started, SpawnError> {
    let mut spawned = processes
        .spawn(spec, channel)
        .map_err(SpawnError::Command)?;
    let file = |fd: Option<OwnedFd>| fd.map(File::from);
    Ok(Started {
        pid: Pid::from_raw(spawned.child.id() as i32),
        mechanism: Mechanism::Group,
        init: None,
        progress: spawned.progress,
        stdout: file(spawned.child.stdout.take().map(OwnedFd::from)),
        stderr: file(spawned.child.stderr.take().map(OwnedFd::from)),
    })
}

/// Whether `program` (as found along PATH) is setuid, setgid or has file capabilities: it would run
/// without them in a user namespace.
#[cfg(target_os = "linux")]
fn gains_privilege(program: &OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = super::exec::find(program) else {
        return false;
    };
    use std::os::unix::ffi::OsStrExt;
    let setid = std::fs::metadata(OsStr::from_bytes(path.as_bytes()))
        .is_ok_and(|m| m.permissions().mode() & (libc::S_ISUID | libc::S_ISGID) != 0);
    // SAFETY: getxattr with a NUL-terminated path and name, asking only for the size.
    setid
        || unsafe {
            libc::getxattr(
                path.as_ptr(),
                c"security.capability".as_ptr(),
                std::ptr::null_mut(),
                0,
            ) > 0
        }
}

#[cfg(not(target_os = "linux"))]
fn gains_privilege(_program: &OsStr) -> bool {
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn program(dir: &tempfile::TempDir, name: &str, mode: u32) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write the program");
        // Set after writing: a write by a non-root owner clears setuid and setgid.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn only_setuid_setgid_or_file_capabilities_make_userns_a_loss() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plain = program(&dir, "plain", 0o755);
        assert!(!gains_privilege(plain.as_os_str()), "a plain 0755 program");
        for (name, mode) in [("setuid", 0o4755), ("setgid", 0o2755)] {
            let path = program(&dir, name, mode);
            assert!(gains_privilege(path.as_os_str()), "a {name} program");
        }
        let missing = dir.path().join("missing");
        assert!(!gains_privilege(missing.as_os_str()), "a program not there");

        // A version 2 `security.capability` granting CAP_NET_RAW (what `setcap cap_net_raw=p` writes).
        let capable = program(&dir, "capable", 0o755);
        let mut cap = Vec::new();
        // CAP_NET_RAW is capability 13.
        for word in [0x0200_0000_u32, 1 << 13, 0, 0, 0] {
            cap.extend_from_slice(&word.to_le_bytes());
        }
        let path = std::ffi::CString::new(capable.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: NUL-terminated path and name, and a buffer of cap.len() bytes.
        let set = unsafe {
            libc::setxattr(
                path.as_ptr(),
                c"security.capability".as_ptr(),
                cap.as_ptr().cast(),
                cap.len(),
                0,
            )
        };
        if set != 0 {
            let why = io::Error::last_os_error();
            // Only root (CAP_SETFCAP) may set it; the skip rule of the integration tests applies.
            assert!(
                std::env::var("WATCHDOG_TEST_ALLOW_SKIP").is_ok_and(|v| v == "1"),
                "cannot set a file capability ({why}): run as root, or set WATCHDOG_TEST_ALLOW_SKIP=1"
            );
            eprintln!("SKIPPED (WATCHDOG_TEST_ALLOW_SKIP=1): the file capability case: {why}");
            return;
        }
        assert!(
            gains_privilege(capable.as_os_str()),
            "a program with a file capability"
        );
    }
}
