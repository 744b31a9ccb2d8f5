//! Phase lines from inside the HTTP client: what an attempt is doing before its response head arrives
//! (resolving, connecting, the TLS handshake, waiting for the answer), so that a supervisor that has to
//! stop it can say what failed: a host that never answered a SYN is a `connect_error`, not a stall.
//!
//! The lines are sent by our resolver (a look-up that missed its cache), by libcurl's open-socket
//! callback (a new connection) and by the client's transfer loop, which watches the new connection's
//! timings until the request goes out. They are sent only when something new happens: a batch of small
//! files from one server over keep-alive sends a handful per worker, not per item.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use crate::protocol::{Phase, ProgressLine};

/// Where phase lines go, shared by the resolver and the transfer of a client.
#[derive(Default)]
pub struct Phases {
    /// A second handle on the progress channel; `None` sends nothing (single downloads, tests).
    channel: Mutex<Option<File>>,
    /// Test-only: host names the resolver never answers for (see [`SILENT_HOSTS_ENV`]).
    #[cfg(feature = "test-hooks")]
    silent_hosts: std::sync::OnceLock<Vec<String>>,
}

impl fmt::Debug for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Phases").finish_non_exhaustive()
    }
}

/// Test-only: a comma-separated list of host names a batch worker's resolver never answers for, as
/// a DNS server that drops every query would. Read by batch workers alone; the integration tests use
/// it to produce a silent resolver without touching the system's DNS configuration. Only a build with
/// the `test-hooks` feature reads it: a binary built for users ignores it.
#[cfg(feature = "test-hooks")]
pub const SILENT_HOSTS_ENV: &str = "WATCHDOG_TEST_SILENT_HOSTS";

impl Phases {
    /// Sends phase lines to `channel` from now on.
    pub(super) fn connect(&self, channel: File) {
        if let Ok(mut slot) = self.channel.lock() {
            *slot = Some(channel);
        }
    }

    /// Sets the test-only silent hosts (see [`SILENT_HOSTS_ENV`]).
    #[cfg(feature = "test-hooks")]
    pub(super) fn set_silent_hosts(&self, hosts: Vec<String>) {
        let _ = self.silent_hosts.set(hosts);
    }

    #[cfg(feature = "test-hooks")]
    pub(super) fn is_silent(&self, host: &str) -> bool {
        self.silent_hosts
            .get()
            .is_some_and(|hosts| hosts.iter().any(|h| h.eq_ignore_ascii_case(host)))
    }

    /// Sends one phase line (best-effort: a closed channel only stops them).
    pub fn send(&self, phase: Phase, host: Option<String>, proxy: bool) {
        let Ok(mut slot) = self.channel.lock() else {
            return;
        };
        let Some(file) = slot.as_mut() else { return };
        let Ok(mut line) = serde_json::to_vec(&ProgressLine::Phase { phase, host, proxy }) else {
            return;
        };
        line.push(b'\n');
        if file.write_all(&line).is_err() {
            *slot = None;
        }
    }
}
