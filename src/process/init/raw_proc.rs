//! /proc read with system calls alone, for the init: it is a forked copy of watchdog that never
//! execs, so it may call only async-signal-safe functions (`open`, `read`, `close`, `stat`, and the
//! `getdents64` system call, which takes no lock), with buffers on the stack.

/// A path under /proc for one process, NUL-terminated, built on the stack.
struct ProcPath {
    buf: [u8; 40],
}

impl ProcPath {
    fn new(pid: i32, leaf: &[u8]) -> ProcPath {
        let mut buf = [0u8; 40];
        let mut len = 0;
        let mut put = |b: u8| {
            if let Some(slot) = buf.get_mut(len) {
                *slot = b;
                len += 1;
            }
        };
        b"/proc/".iter().for_each(|&b| put(b));
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = pid.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 || at == 0 {
                break;
            }
        }
        digits[at..].iter().for_each(|&b| put(b));
        put(b'/');
        leaf.iter().for_each(|&b| put(b));
        // The last byte stays 0 whatever was cut: the path is always terminated.
        ProcPath { buf }
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.buf.as_ptr().cast()
    }
}

/// The parent of `pid` from /proc/PID/stat (counted from the last ')', since the name may hold one).
pub fn parent_of(pid: i32) -> Option<i32> {
    let path = ProcPath::new(pid, b"stat");
    let mut buf = [0u8; 512];
    // SAFETY: open, read and close (all async-signal-safe) on a NUL-terminated path and a stack buffer.
    let len = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let len = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        len
    };
    let stat = buf.get(..usize::try_from(len).ok()?)?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    // ") S PPID ...": skip the state, read the number after it.
    let mut fields = stat
        .get(close + 1..)?
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    fields.next()?;
    let mut ppid: i32 = 0;
    for &digit in fields.next()? {
        if !digit.is_ascii_digit() {
            return None;
        }
        ppid = ppid.checked_mul(10)?.checked_add(i32::from(digit - b'0'))?;
    }
    Some(ppid)
}

/// The file (device, inode) `pid` runs, or this process's own with `None`.
pub fn executable(pid: Option<i32>) -> Option<(u64, u64)> {
    let own = ProcPath {
        buf: *b"/proc/self/exe\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    };
    let path = match pid {
        Some(pid) => ProcPath::new(pid, b"exe"),
        None => own,
    };
    // SAFETY: stat (async-signal-safe) on a NUL-terminated path into a zeroed stack struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::stat(path.as_ptr(), &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// Calls `each` with every process id listed in /proc. Returns false when /proc cannot be read.
pub fn for_each_pid(mut each: impl FnMut(i32)) -> bool {
    // SAFETY: open (async-signal-safe) on a constant path.
    let dir = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return false;
    }
    // linux_dirent64 records, 8-byte aligned.
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: the getdents64 system call writes at most the buffer's size into it.
        let got = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        let Ok(got) = usize::try_from(got) else { break };
        if got == 0 {
            break;
        }
        // SAFETY: a view of the u64 array as bytes, within its size.
        let bytes: &[u8] = unsafe {
            std::slice::from_raw_parts(
                buf.as_ptr().cast::<u8>(),
                got.min(std::mem::size_of_val(&buf)),
            )
        };
        let mut at = 0;
        // d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name (NUL-terminated).
        while let Some(head) = bytes.get(at..at + 19) {
            let reclen = usize::from(u16::from_ne_bytes([head[16], head[17]]));
            if reclen == 0 {
                break;
            }
            let name = bytes.get(at + 19..at + reclen).unwrap_or_default();
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            if let Some(pid) = number(name) {
                each(pid);
            }
            at += reclen;
        }
    }
    // SAFETY: close (async-signal-safe) on the descriptor opened above.
    unsafe {
        libc::close(dir);
    }
    true
}

/// The processes of /proc with their parents, in memory watchdog allocated before the fork (the init
/// may not allocate), to find everything below a process without walking /proc once per process.
pub struct Tree<'a> {
    /// `pid << 32 | parent`, sorted by pid.
    links: &'a mut [u64],
    /// Per link: [`UNKNOWN`], [`BELOW`], [`NESTED_ROOT`] or [`NESTED`].
    marks: &'a mut [u8],
    len: usize,
}

const UNKNOWN: u8 = 0;
/// Below the root: signalled.
const BELOW: u8 = 1;
/// A nested watchdog below the root: signalled, but what is below it is left to it.
const NESTED_ROOT: u8 = 2;
/// Below a nested watchdog: not signalled.
const NESTED: u8 = 3;

/// How many processes a [`Tree`] holds; more are seen by the next look.
pub const TREE_CAPACITY: usize = 1 << 15;

impl<'a> Tree<'a> {
    /// Buffers of [`TREE_CAPACITY`] entries each (shorter ones hold fewer processes).
    pub fn new(links: &'a mut [u64], marks: &'a mut [u8]) -> Tree<'a> {
        Tree {
            links,
            marks,
            len: 0,
        }
    }

    /// Calls `each` with every process below `root` (a snapshot of /proc), except, when `exe` is
    /// given, what runs below a process running `exe` (a nested watchdog), which is itself included.
    pub fn for_each_below(
        &mut self,
        root: i32,
        exe: Option<(u64, u64)>,
        mut each: impl FnMut(i32),
    ) {
        let capacity = self.links.len().min(self.marks.len());
        let mut len = 0;
        let links = &mut *self.links;
        for_each_pid(|pid| {
            if len < capacity {
                if let Some(parent) = parent_of(pid) {
                    links[len] = (u64::from(pid as u32) << 32) | u64::from(parent as u32);
                    len += 1;
                }
            }
        });
        self.len = len;
        let (links, marks) = (&mut self.links[..len], &mut self.marks[..len]);
        // In place, without allocating.
        links.sort_unstable();
        marks.fill(UNKNOWN);
        let pid = |link: u64| (link >> 32) as i32;
        // One pass per generation: a process is marked once its parent is.
        loop {
            let mut changed = false;
            for i in 0..links.len() {
                if marks[i] != UNKNOWN {
                    continue;
                }
                let parent = links[i] as u32 as i32;
                let parent_mark = if parent == root {
                    BELOW
                } else {
                    match links.binary_search_by_key(&parent, |&l| pid(l)) {
                        Ok(at) => marks[at],
                        Err(_) => UNKNOWN,
                    }
                };
                let mark = match parent_mark {
                    UNKNOWN => continue,
                    BELOW if exe.is_some() && executable(Some(pid(links[i]))) == exe => NESTED_ROOT,
                    BELOW => BELOW,
                    _ => NESTED,
                };
                marks[i] = mark;
                changed = true;
                if mark != NESTED {
                    each(pid(links[i]));
                }
            }
            if !changed {
                break;
            }
        }
    }
}

fn number(name: &[u8]) -> Option<i32> {
    if name.is_empty() {
        return None;
    }
    let mut n: i32 = 0;
    for &digit in name {
        if !digit.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(i32::from(digit - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_standard_library_reads() {
        let me = std::process::id() as i32;
        let parent = std::os::unix::process::parent_id() as i32;
        assert_eq!(parent_of(me), Some(parent));
        let mut seen_me = false;
        let mut count = 0;
        assert!(for_each_pid(|pid| {
            count += 1;
            seen_me |= pid == me;
        }));
        assert!(seen_me && count > 1, "{count}");
        use std::os::unix::fs::MetadataExt;
        let exe = std::fs::metadata("/proc/self/exe").expect("own executable");
        assert_eq!(executable(None), Some((exe.dev(), exe.ino())));
        assert_eq!(executable(Some(me)), Some((exe.dev(), exe.ino())));
    }

    #[test]
    fn a_tree_finds_what_is_below_a_process_and_leaves_a_nested_one_alone() {
        let _serial = crate::process::PROCESS_TESTS
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .expect("start sh");
        let (me, sh) = (std::process::id() as i32, child.id() as i32);
        let (mut links, mut marks) = (vec![0u64; TREE_CAPACITY], vec![0u8; TREE_CAPACITY]);
        let mut tree = Tree::new(&mut links, &mut marks);
        let mut below_sh = Vec::new();
        for _ in 0..500 {
            below_sh.clear();
            tree.for_each_below(sh, None, |pid| below_sh.push(pid));
            if below_sh.len() >= 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut all = Vec::new();
        tree.for_each_below(me, None, |pid| all.push(pid));
        // With sh's executable as the "nested watchdog": sh is found, what runs below it is not.
        let mut pruned = Vec::new();
        tree.for_each_below(me, executable(Some(sh)), |pid| pruned.push(pid));
        for pid in &below_sh {
            // SAFETY: kill(2) on processes this test started.
            unsafe {
                libc::kill(*pid, libc::SIGKILL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(below_sh.len(), 2, "the two sleeps: {below_sh:?}");
        assert!(
            all.contains(&sh) && below_sh.iter().all(|p| all.contains(p)),
            "{all:?}"
        );
        assert!(pruned.contains(&sh), "{pruned:?}");
        assert!(below_sh.iter().all(|p| !pruned.contains(p)), "{pruned:?}");
    }
}
