//! A command made ready for `execve` before a fork, so that the forked child needs no allocation to
//! run it: the argument and environment arrays, and the places to try, found along PATH the way
//! `execvp` would (the rules GNU timeout runs its command by).
//!
//! The init of a contained command (see [`super::init`]) is a forked copy of watchdog that never
//! execs itself; it may call only async-signal-safe functions, so everything is built here, in
//! watchdog, beforehand.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The PATH `execvp` searches when none is set (glibc's confstr default).
const DEFAULT_PATH: &[u8] = b"/bin:/usr/bin";

/// The shell `execvp` runs a file with when the kernel does not recognise its format (ENOEXEC).
const SHELL: &std::ffi::CStr = c"/bin/sh";

/// argv, envp and the candidate paths of one command, as NUL-terminated C arrays.
pub struct Exec {
    /// Owns the strings the pointer arrays point into.
    _strings: Vec<CString>,
    candidates: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    /// `["/bin/sh", <candidate>, argv[1..]]` for a file without a known format; the child writes the
    /// candidate into slot 1 (a store into memory it owns, no allocation).
    script_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

impl Exec {
    /// Prepares `program` (searched along PATH when it holds no '/') with `args`, `arg0` as its
    /// `argv[0]` when given, and watchdog's environment with `set` added (replacing a variable of the
    /// same name). `None` when a string holds a NUL byte, which no exec could pass.
    pub fn new(
        program: &OsStr,
        args: &[OsString],
        arg0: Option<&OsStr>,
        set: (&str, &str),
    ) -> Option<Exec> {
        let c = |s: &OsStr| CString::new(s.as_bytes()).ok();
        let candidates = candidates(program)?;
        let mut strings = Vec::with_capacity(args.len() + 64);
        strings.push(c(arg0.unwrap_or(program))?);
        for arg in args {
            strings.push(c(arg)?);
        }
        let argc = strings.len();
        let mut entry = OsString::from(set.0);
        entry.push("=");
        entry.push(set.1);
        strings.push(c(&entry)?);
        for (key, value) in std::env::vars_os() {
            if key == set.0 {
                continue;
            }
            let mut entry = key;
            entry.push("=");
            entry.push(value);
            // A variable with a NUL cannot be in the environment; skip rather than fail.
            if let Some(entry) = c(&entry) {
                strings.push(entry);
            }
        }
        let argv: Vec<_> = strings[..argc]
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let mut script_argv = vec![SHELL.as_ptr(), std::ptr::null()];
        script_argv.extend_from_slice(&argv[1..]);
        let envp = strings[argc..]
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Some(Exec {
            _strings: strings,
            candidates,
            argv,
            script_argv,
            envp,
        })
    }

    /// Runs the command; returns only on failure, with the errno `execvp` would have failed with.
    /// Called in a forked child: async-signal-safe (`execve` only, and stores into `self`, which the
    /// child owns as its own copy).
    pub fn exec(&mut self) -> i32 {
        let mut denied = false;
        let mut last = libc::ENOENT;
        for candidate in &self.candidates {
            // SAFETY: execve (async-signal-safe) with NUL-terminated strings and NULL-terminated
            // arrays that live in this process.
            unsafe {
                libc::execve(candidate.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr());
            }
            let errno = errno();
            if errno == libc::ENOEXEC {
                // As execvp: a file the kernel cannot run is a shell script without `#!`.
                if let Some(slot) = self.script_argv.get_mut(1) {
                    *slot = candidate.as_ptr();
                }
                // SAFETY: as above; execve is async-signal-safe.
                unsafe {
                    libc::execve(
                        SHELL.as_ptr(),
                        self.script_argv.as_ptr(),
                        self.envp.as_ptr(),
                    );
                }
                return errno;
            }
            match errno {
                // Not here: try the next directory of PATH, as execvp does.
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {
                    last = errno
                }
                // Found but not runnable: remembered, and the search goes on.
                libc::EACCES => denied = true,
                other => return other,
            }
        }
        if denied {
            libc::EACCES
        } else {
            last
        }
    }
}

/// The file `execvp` would run for `program`: the first candidate that is a regular file.
pub fn find(program: &OsStr) -> Option<CString> {
    candidates(program)?.into_iter().find(|path| {
        std::fs::metadata(OsStr::from_bytes(path.as_bytes())).is_ok_and(|m| m.is_file())
    })
}

/// The paths `execvp` would try for `program`, in order.
fn candidates(program: &OsStr) -> Option<Vec<CString>> {
    let bytes = program.as_bytes();
    if bytes.is_empty() {
        return Some(Vec::new()); // ENOENT, as execvp
    }
    if bytes.contains(&b'/') {
        return Some(vec![CString::new(bytes).ok()?]);
    }
    let path = std::env::var_os("PATH").map(OsString::into_vec);
    let path = path.as_deref().unwrap_or(DEFAULT_PATH);
    path.split(|&b| b == b':')
        .map(|dir| {
            // An empty entry is the current directory.
            let mut full = if dir.is_empty() {
                Vec::new()
            } else {
                let mut full = dir.to_vec();
                full.push(b'/');
                full
            };
            full.extend_from_slice(bytes);
            CString::new(full).ok()
        })
        .collect()
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::ENOEXEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(list: &[CString]) -> Vec<&str> {
        list.iter().map(|c| c.to_str().unwrap_or("?")).collect()
    }

    #[test]
    fn a_name_with_a_slash_is_tried_as_it_is() {
        let found = candidates(OsStr::new("./run.sh")).expect("no NUL");
        assert_eq!(texts(&found), ["./run.sh"]);
        assert!(candidates(OsStr::new("")).expect("no NUL").is_empty());
    }

    #[test]
    fn a_bare_name_is_looked_for_along_path() {
        // PATH is the test process's own; every candidate ends in the name, one per entry.
        let found = candidates(OsStr::new("sh")).expect("no NUL");
        let path = std::env::var("PATH").unwrap_or_else(|_| "/bin:/usr/bin".to_string());
        assert_eq!(found.len(), path.split(':').count());
        assert!(texts(&found).iter().all(|c| c.ends_with("sh")));
    }

    #[test]
    fn the_environment_gets_the_variable_once() {
        let exec = Exec::new(
            OsStr::new("true"),
            &[OsString::from("a")],
            Some(OsStr::new("zero")),
            ("WATCHDOG_TEST_ONCE", "7"),
        )
        .expect("no NUL");
        // SAFETY: the arrays are NULL-terminated and point into `exec`'s own strings.
        let read = |list: &[*const libc::c_char]| -> Vec<String> {
            list.iter()
                .take_while(|p| !p.is_null())
                .map(|p| {
                    unsafe { std::ffi::CStr::from_ptr(*p) }
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        };
        assert_eq!(read(&exec.argv), ["zero", "a"]);
        let env = read(&exec.envp);
        assert_eq!(
            env.iter()
                .filter(|e| e.starts_with("WATCHDOG_TEST_ONCE="))
                .count(),
            1
        );
        assert!(env.contains(&"WATCHDOG_TEST_ONCE=7".to_string()));
    }
}
