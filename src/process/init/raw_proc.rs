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
}
