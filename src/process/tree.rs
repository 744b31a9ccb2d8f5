//! The process tree watchdog is responsible for: finding every descendant, signalling it, and making
//! sure none is left.
//!
//! A process group alone is not enough: a child can leave it (`setsid`, `setpgid`) or double-fork into a
//! daemon. On Linux watchdog makes itself a *child subreaper*, so orphaned descendants are re-parented to
//! watchdog instead of init, and the whole tree stays reachable through parent links in /proc. Elsewhere
//! only the process group is reachable.

#[cfg(target_os = "linux")]
use std::collections::HashMap;

use nix::unistd::Pid;

/// Makes this process the reaper of its orphaned descendants (Linux), so that double-forked daemons and
/// `setsid` escapees stay in watchdog's tree. Elsewhere a no-op that reports `false`.
pub fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes plain integer arguments and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// A live process found under watchdog, with the process group it is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descendant {
    pub pid: Pid,
    pub group: Pid,
}

/// Live (non-zombie) descendants of `root`, children before grandchildren.
pub fn descendants(root: Pid) -> Vec<Descendant> {
    descendants_pruned(root, |_| false)
}

/// Like [`descendants`], but the descendants of a process for which `prune` is true are left out
/// (the process itself is kept).
#[cfg(target_os = "linux")]
pub fn descendants_pruned(root: Pid, prune: impl Fn(Pid) -> bool) -> Vec<Descendant> {
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some((state, ppid, group)) = read_stat(pid) {
            // Zombies are dead: they need reaping, not signals. Keep them in the map all the same, since
            // a zombie's live children are still part of the tree until they are re-parented.
            children
                .entry(ppid)
                .or_default()
                .push((if state == b'Z' { -pid } else { pid }, group));
        }
    }
    let mut found = Vec::new();
    let mut queue = vec![root.as_raw()];
    while let Some(parent) = queue.pop() {
        if let Some(kids) = children.get(&parent) {
            for &(kid, group) in kids {
                if kid > 0 {
                    found.push(Descendant {
                        pid: Pid::from_raw(kid),
                        group: Pid::from_raw(group),
                    });
                    if prune(Pid::from_raw(kid)) {
                        continue;
                    }
                }
                queue.push(kid.abs());
            }
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
pub fn descendants_pruned(_root: Pid, _prune: impl Fn(Pid) -> bool) -> Vec<Descendant> {
    Vec::new()
}

/// The file (device, inode) a process runs, to recognise another watchdog among the descendants.
#[cfg(target_os = "linux")]
pub fn executable(pid: Option<Pid>) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/exe"),
        None => "/proc/self/exe".to_string(),
    };
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(target_os = "linux"))]
pub fn executable(_pid: Option<Pid>) -> Option<(u64, u64)> {
    None
}

/// State letter, parent pid and process group from /proc/PID/stat. The command name may hold spaces and
/// parentheses, so fields are counted from the last ')'.
#[cfg(target_os = "linux")]
fn read_stat(pid: i32) -> Option<(u8, i32, i32)> {
    use std::io::Read;
    // One read into a buffer on the stack: the fields needed follow the name (at most 16 bytes) within
    // a few dozen bytes, and a truncated tail holds no ')'. Open, read, close: fs::read would also
    // stat the file.
    let mut buf = [0u8; 512];
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let len = file.read(&mut buf).ok()?;
    let stat = &buf[..len];
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, ppid, group))
}

/// Sends a raw signal number (real-time signals have no `Signal` variant) to a process.
pub fn signal_pid_raw(pid: Pid, signal: i32) -> bool {
    // SAFETY: kill(2) with integer arguments.
    unsafe { libc::kill(pid.as_raw(), signal) == 0 }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn finds_children_and_grandchildren() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .spawn()
            .unwrap();
        let me = nix::unistd::getpid();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let mut found: Vec<Descendant> = descendants(me);
        while found.len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = descendants(me);
        }
        let child_pid = Pid::from_raw(child.id() as i32);
        let under_child = descendants(child_pid);
        for found in &under_child {
            signal_pid_raw(found.pid, libc::SIGKILL);
        }
        let _ = child.kill();
        let _ = child.wait();
        let child_group = found.iter().find(|d| d.pid == child_pid).map(|d| d.group);
        assert!(child_group.is_some(), "{found:?}");
        assert!(
            under_child.iter().all(|d| Some(d.group) == child_group),
            "the sleeps are in the shell's group: {under_child:?}"
        );
        assert_eq!(
            under_child.len(),
            2,
            "sh should have two sleeps: {under_child:?}"
        );
    }
}
