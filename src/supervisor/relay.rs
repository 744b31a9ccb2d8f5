//! Relaying the command's stdout and stderr unchanged while noting when it last wrote, for `--stall`.
//!
//! Each stream gets a thread that blocks on the pipe and on watchdog's own stdout/stderr, so a slow reader
//! downstream can never delay the main loop's deadlines. The main loop never waits on these threads for
//! activity: it reads the last-activity clock when the stall timer fires.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Milliseconds since the supervisor started at which the command last showed a sign of life.
#[derive(Clone)]
pub struct Activity {
    started: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new(started: Instant) -> Activity {
        Activity {
            started,
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records a sign of life now.
    pub fn touch(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(now, Ordering::Relaxed);
    }

    /// When the last sign of life was seen.
    pub fn last(&self) -> Instant {
        self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// The relay threads; `finish` waits (bounded) until they have copied everything.
pub struct Relays {
    done: Receiver<()>,
    count: usize,
}

impl Relays {
    pub fn new() -> (Relays, Sender<()>) {
        let (tx, rx) = channel();
        (Relays { done: rx, count: 0 }, tx)
    }

    /// Copies `from` to `to` on a new thread, touching `activity` on every chunk.
    pub fn start<R, W>(&mut self, mut from: R, mut to: W, activity: Activity, done: Sender<()>)
    where
        R: Read + Send + 'static,
        W: Write + Send + 'static,
    {
        self.count += 1;
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        activity.touch();
                        // Output nobody reads any more is not watchdog's failure: keep draining so the
                        // command is not blocked on a full pipe.
                        let _ = to.write_all(&buf[..n]).and_then(|_| to.flush());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
            let _ = done.send(());
        });
    }

    /// Waits until every relay has reached end of file, or `limit` has passed (a downstream reader that
    /// never reads must not keep watchdog alive).
    pub fn finish(self, limit: Duration) {
        let until = Instant::now() + limit;
        for _ in 0..self.count {
            let left = until.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                return;
            }
        }
    }
}
