//! The progress channel: newline-delimited JSON from a supervised command to watchdog.
//!
//! The worker side writes [`ProgressLine`]s; the supervisor side reads arbitrary bytes with
//! [`LineReader`], which never holds more than one bounded line, because whatever is on the other end of
//! the pipe is untrusted.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::failure::FailureKind;

/// The environment variable that names the progress channel's file descriptor.
pub const PROGRESS_FD_ENV: &str = "WATCHDOG_PROGRESS_FD";

/// The longest progress line watchdog accepts; longer lines are dropped whole.
pub const MAX_LINE: usize = 64 * 1024;

/// What the built-in fetch worker reports. Any JSON object counts as a heartbeat; these are the forms that
/// watchdog also understands (for its progress bar and batch report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum ProgressLine {
    /// The response headers arrived.
    Start {
        url: String,
        http_status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        temp_path: Option<String>,
    },
    /// The worker moved on to `phase` of an attempt, with `host` (`host:port`, never credentials).
    /// Sent only when a new connection is made (a pooled keep-alive connection sends none), so a
    /// batch of small files from one server sends a few per worker, not per item.
    Phase {
        phase: Phase,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// `host` is the proxy, which the attempt is still reaching (looking it up, connecting, or
        /// waiting for its answer to CONNECT): a stop now is the proxy's failure, not the origin's.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        proxy: bool,
    },
    /// Body bytes so far.
    Progress {
        bytes: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// The file is complete at `path`.
    Done {
        path: String,
        bytes: u64,
        /// Absent when the batch runs with `--no-sha256`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// The final answer's status (optional: any program may write to the channel).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
    },
    /// Batch mode: the file at `path` is already complete from an earlier run; nothing was fetched.
    Present { path: String, bytes: u64 },
    /// The download failed; `kind` is why, written as the batch report's status word.
    Error {
        kind: FailureKind,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        http_status: Option<u16>,
        /// The server's `Retry-After`, in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    },
}

/// Where an attempt is before its response head arrives: what the worker was doing if the supervisor
/// has to stop it. After the head (the `start` line, or any `progress` line) it is receiving the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Looking up the host name.
    Resolving,
    /// Opening the TCP connection.
    Connecting,
    /// The TLS handshake.
    Tls,
    /// Connected: the request is sent (or about to be) and the response head awaited.
    Request,
}

/// The worker's end of the progress channel. Writes are best-effort: a supervisor that stopped reading
/// must not make the download fail.
pub struct ProgressWriter {
    file: Option<File>,
}

impl ProgressWriter {
    /// Opens the channel named by `WATCHDOG_PROGRESS_FD`, or a writer that discards everything when the
    /// variable is absent (the worker was run by hand).
    pub fn from_env() -> ProgressWriter {
        let fd = std::env::var(PROGRESS_FD_ENV)
            .ok()
            .and_then(|v| v.parse::<RawFd>().ok());
        let file = fd.filter(|fd| *fd > 2 && fd_is_open(*fd)).map(|fd| {
            // SAFETY: the fd was handed to this process by its supervisor for exactly this purpose, is
            // open (checked above) and is owned by nothing else in this process.
            unsafe { File::from_raw_fd(fd) }
        });
        ProgressWriter { file }
    }

    /// Another handle on the same channel (for phase lines sent from inside the HTTP client), or
    /// `None` when this writer discards everything.
    pub fn try_clone_channel(&self) -> Option<File> {
        self.file.as_ref().and_then(|f| f.try_clone().ok())
    }

    /// A writer that discards everything.
    pub fn disabled() -> ProgressWriter {
        ProgressWriter { file: None }
    }

    /// Sends one line; drops the channel on the first error.
    pub fn send(&mut self, line: &ProgressLine) {
        if let Some(file) = self.file.as_mut() {
            let mut bytes = match serde_json::to_vec(line) {
                Ok(bytes) => bytes,
                Err(_) => return,
            };
            bytes.push(b'\n');
            if file.write_all(&bytes).is_err() {
                self.file = None;
            }
        }
    }
}

fn fd_is_open(fd: RawFd) -> bool {
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok()
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes, holding at most one partial line.
#[derive(Default)]
pub struct LineReader {
    partial: Vec<u8>,
    /// True while discarding the rest of an over-long line.
    skipping: bool,
}

impl LineReader {
    pub fn new() -> LineReader {
        LineReader::default()
    }

    /// Feeds bytes; calls `on_line` for each complete line (without the newline).
    pub fn feed(&mut self, mut bytes: &[u8], mut on_line: impl FnMut(&[u8])) {
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            if !self.skipping && self.partial.len() + pos <= MAX_LINE {
                if self.partial.is_empty() {
                    on_line(&bytes[..pos]);
                } else {
                    self.partial.extend_from_slice(&bytes[..pos]);
                    on_line(&self.partial);
                }
            }
            self.partial.clear();
            self.skipping = false;
            bytes = &bytes[pos + 1..];
        }
        if !self.skipping {
            if self.partial.len() + bytes.len() > MAX_LINE {
                self.partial.clear();
                self.skipping = true;
            } else {
                self.partial.extend_from_slice(bytes);
            }
        }
    }
}

/// What [`drain_fd`] left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The pipe is empty for now.
    Empty,
    /// The read budget ran out with more to read: the caller checks its timers and comes back.
    More,
    /// End of file: every holder of the write end is gone.
    Closed,
}

/// How much [`drain_fd`] reads before it lets its caller look at its timers again: a writer that never
/// pauses must not delay a deadline.
pub const READ_BUDGET: usize = 256 * 1024;

/// Reads from `fd` until it would block or [`READ_BUDGET`] bytes were read, feeding `reader`.
pub fn drain_fd(
    fd: RawFd,
    reader: &mut LineReader,
    on_line: impl FnMut(&[u8]),
) -> io::Result<Drained> {
    let mut on_line = on_line;
    let mut buf = [0u8; 16 * 1024];
    let mut budget = READ_BUDGET;
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Ok(Drained::Closed),
            // A short read emptied the pipe: asking again would only return EAGAIN.
            Ok(n) if n < buf.len() => {
                reader.feed(&buf[..n], &mut on_line);
                return Ok(Drained::Empty);
            }
            Ok(n) => {
                reader.feed(&buf[..n], &mut on_line);
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    return Ok(Drained::More);
                }
            }
            Err(nix::errno::Errno::EAGAIN) => return Ok(Drained::Empty),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Decodes a progress line the built-in workers write. Only a JSON object is one: serde would also take
/// an internally tagged enum from an array (`["done","p",3]`), which is not a line of this protocol and
/// no heartbeat either.
pub fn decode_line(line: &[u8]) -> Option<ProgressLine> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    if line[start] != b'{' {
        return None;
    }
    serde_json::from_slice(line).ok()
}

/// Whether a progress line is a JSON object, the one thing that counts as a heartbeat. Checked without
/// building the value.
pub fn is_json_object(line: &[u8]) -> bool {
    match serde_json::from_slice::<&serde_json::value::RawValue>(line) {
        Ok(raw) => raw.get().starts_with('{'),
        Err(_) => false,
    }
}

/// What a supervisor saw of a download's answer on the progress channel: how far an attempt it stops
/// had got, for the words that say why it was stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrived {
    /// The response head arrived (a `start` line, or any `progress` line).
    pub answered: bool,
    /// The status of the answer, once its `start` line came.
    pub http_status: Option<u16>,
    /// Body bytes so far.
    pub bytes: u64,
    /// The body's announced size.
    pub total: Option<u64>,
}

impl Arrived {
    /// Takes in one line of the worker.
    pub fn observe(&mut self, line: &ProgressLine) {
        match line {
            ProgressLine::Start {
                http_status, total, ..
            } => {
                self.answered = true;
                self.http_status = Some(*http_status);
                self.total = *total;
            }
            ProgressLine::Progress { bytes, total } => {
                self.answered = true;
                self.bytes = *bytes;
                self.total = total.or(self.total);
            }
            _ => {}
        }
    }

    /// How much of the body had arrived, for "after …": `100.0 KiB of 244.1 KiB of the body`,
    /// `the response head (HTTP 200), before any of the body`.
    pub fn body_so_far(&self) -> String {
        body_so_far(self.bytes, self.total, self.http_status)
    }
}

/// See [`Arrived::body_so_far`].
pub fn body_so_far(bytes: u64, total: Option<u64>, http_status: Option<u16>) -> String {
    if bytes == 0 {
        let status = http_status.map_or(String::new(), |code| format!(" (HTTP {code})"));
        return format!("the response head{status}, before any of the body");
    }
    match total {
        Some(total) => format!(
            "{} of {} of the body",
            bytes_for_people(bytes),
            bytes_for_people(total)
        ),
        None => format!("{} of the body", bytes_for_people(bytes)),
    }
}

/// A byte count as a person reads it, in the binary units the progress bars use: `550 B`,
/// `1.2 MiB`. The one formatter of sizes for messages, summaries and reports.
pub(crate) fn bytes_for_people(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        0..KIB => format!("{bytes} B"),
        KIB..0x10_0000 => format!("{:.1} KiB", bytes as f64 / KIB as f64),
        0x10_0000..0x4000_0000 => format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64),
        _ => format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut reader = LineReader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, |line| out.push(line.to_vec()));
        }
        out
    }

    #[test]
    fn what_had_arrived_is_named_by_the_head_and_the_bytes_of_the_body() {
        let mut arrived = Arrived::default();
        assert!(!arrived.answered);
        arrived.observe(&ProgressLine::Start {
            url: "http://h/a".into(),
            http_status: 200,
            total: Some(249_856),
            temp_path: None,
        });
        assert_eq!(
            arrived.body_so_far(),
            "the response head (HTTP 200), before any of the body"
        );
        arrived.observe(&ProgressLine::Progress {
            bytes: 102_400,
            total: None,
        });
        assert_eq!(arrived.http_status, Some(200));
        assert_eq!(arrived.body_so_far(), "100.0 KiB of 244.0 KiB of the body");
        // A progress line alone (a batch worker folds its start line) is an answer too.
        let mut folded = Arrived::default();
        folded.observe(&ProgressLine::Progress {
            bytes: 1000,
            total: None,
        });
        assert!(folded.answered);
        assert_eq!(folded.body_so_far(), "1000 B of the body");
        assert_eq!(
            body_so_far(3 << 30, Some(5 << 30), Some(206)),
            "3.0 GiB of 5.0 GiB of the body"
        );
    }

    #[test]
    fn splits_lines_across_chunks() {
        assert_eq!(
            lines_of(&[b"ab", b"c\nde\n", b"f"]),
            vec![b"abc".to_vec(), b"de".to_vec()]
        );
    }

    #[test]
    fn drops_over_long_lines_and_recovers() {
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = lines_of(&[&long, b"\n{}\n"]);
        assert_eq!(lines, vec![b"{}".to_vec()]);
        let lines = lines_of(&[
            &long[..MAX_LINE / 2],
            &long[..MAX_LINE / 2 + 5],
            b"tail\nok\n",
        ]);
        assert_eq!(lines, vec![b"ok".to_vec()]);
    }

    #[test]
    fn only_objects_decode_as_progress_lines() {
        // Found by the progress-channel fuzz target: serde takes a tagged enum from an array too.
        assert!(serde_json::from_slice::<ProgressLine>(br#"["present","p",2]"#).is_ok());
        assert_eq!(decode_line(br#"["present","p",2]"#), None);
        assert_eq!(
            decode_line(br#" {"event":"present","path":"p","bytes":2}"#),
            Some(ProgressLine::Present {
                path: "p".into(),
                bytes: 2
            })
        );
    }

    #[test]
    fn heartbeats_are_json_objects_only() {
        assert!(is_json_object(br#"{"event":"progress","bytes":1}"#));
        assert!(is_json_object(br#"  {"nested":{"a":[1]}} "#));
        assert!(!is_json_object(b"[1,2]"));
        assert!(!is_json_object(b"\"{}\""));
        assert!(!is_json_object(b"{\"unclosed\":1"));
        assert!(!is_json_object(b"garbage"));
        assert!(!is_json_object(b"\xff\xfe"));
    }

    #[test]
    fn an_error_line_names_its_kind_in_the_report_words() {
        let line = ProgressLine::Error {
            kind: FailureKind::Connect,
            message: "refused".into(),
            http_status: None,
            retry_after_s: None,
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"event":"error","kind":"connect_error","message":"refused"}"#
        );
        assert_eq!(serde_json::from_str::<ProgressLine>(&text).unwrap(), line);
        // A kind that is not a failure word is not an error line watchdog understands.
        let unknown = r#"{"event":"error","kind":"gremlins","message":"?"}"#;
        assert!(serde_json::from_str::<ProgressLine>(unknown).is_err());
    }

    #[test]
    fn phase_lines_are_small_and_round_trip() {
        let line = ProgressLine::Phase {
            phase: Phase::Connecting,
            host: Some("127.0.0.2:80".into()),
            proxy: false,
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"event":"phase","phase":"connecting","host":"127.0.0.2:80"}"#
        );
        assert_eq!(serde_json::from_str::<ProgressLine>(&text).unwrap(), line);
        assert!(is_json_object(text.as_bytes()), "a heartbeat to `--`");
        let via = ProgressLine::Phase {
            phase: Phase::Connecting,
            host: Some("127.0.0.2:3128".into()),
            proxy: true,
        };
        let text = serde_json::to_string(&via).unwrap();
        assert_eq!(
            text,
            r#"{"event":"phase","phase":"connecting","host":"127.0.0.2:3128","proxy":true}"#
        );
        assert_eq!(serde_json::from_str::<ProgressLine>(&text).unwrap(), via);
    }

    #[test]
    fn progress_lines_round_trip() {
        let line = ProgressLine::Progress {
            bytes: 5,
            total: Some(10),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(text, r#"{"event":"progress","bytes":5,"total":10}"#);
        assert_eq!(serde_json::from_str::<ProgressLine>(&text).unwrap(), line);
    }
}
