//! The `--events FILE` writer: watchdog's own events as JSON Lines, flushed line by line so that a reader
//! (or a post-mortem after SIGKILL) sees everything up to the last event.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

/// Appends events to a file; a disabled log costs nothing.
pub struct EventLog {
    out: Option<BufWriter<File>>,
    started: Instant,
}

impl EventLog {
    /// Opens (creates or truncates) `path`, or returns a disabled log when `path` is `None`.
    pub fn open(path: Option<&Path>, started: Instant) -> io::Result<EventLog> {
        let out = match path {
            Some(path) => Some(BufWriter::new(File::create(path)?)),
            None => None,
        };
        Ok(EventLog { out, started })
    }

    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Writes `{"event": name, "time_ms": …, fields…}`. A write error disables the log rather than
    /// disturbing the supervised command.
    pub fn emit(&mut self, name: &str, fields: Value) {
        let Some(out) = self.out.as_mut() else { return };
        let mut line =
            json!({ "event": name, "time_ms": self.started.elapsed().as_millis() as u64 });
        if let (Some(line), Value::Object(fields)) = (line.as_object_mut(), fields) {
            line.extend(fields);
        }
        let ok = serde_json::to_writer(&mut *out, &line).is_ok()
            && out.write_all(b"\n").is_ok()
            && out.flush().is_ok();
        if !ok {
            crate::report_error(
                "--events: cannot write the events file; no more events will be written",
            );
            self.out = None;
        }
    }
}
