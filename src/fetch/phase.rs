//! Phase lines from inside the HTTP client: what an attempt is doing before its response head arrives
//! (resolving, connecting, the TLS handshake, waiting for the answer), so that a supervisor that has to
//! stop it can say what failed: a host that never answered a SYN is a `connect_error`, not a stall.
//!
//! ureq resolves and connects deep inside `call()`, so the lines are sent from its resolver and from
//! marks placed in its connector chain. They are sent only when something new happens (a look-up that
//! missed the cache, a new connection): a batch of small files from one server over keep-alive sends a
//! handful per worker, not per item, and the hot path stays as it was.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};

use ureq::unversioned::transport::{ConnectionDetails, Connector, Transport};
use ureq::Error;

use crate::protocol::{Phase, ProgressLine};

/// Where phase lines go, shared by the resolver and the connector marks of a client's agents.
#[derive(Default)]
pub(super) struct Phases {
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
    pub(super) fn send(&self, phase: Phase, host: Option<String>) {
        let Ok(mut slot) = self.channel.lock() else {
            return;
        };
        let Some(file) = slot.as_mut() else { return };
        let Ok(mut line) = serde_json::to_vec(&ProgressLine::Phase { phase, host }) else {
            return;
        };
        line.push(b'\n');
        if file.write_all(&line).is_err() {
            *slot = None;
        }
    }
}

/// `host:port` of a connection's URI.
pub(super) fn host_port(uri: &ureq::http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let port = authority
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{}:{port}", authority.host()))
}

/// Where in the connector chain a [`Mark`] sits.
#[derive(Debug, Clone, Copy)]
pub(super) enum At {
    /// Before the TCP connector: a connection is about to be opened.
    BeforeTcp,
    /// Between TCP and TLS: a handshake is about to start (https only).
    BeforeTls,
    /// At the end: the connection is ready, the request goes out next.
    Connected,
}

/// A connector that makes no connection, only reports where the chain has got to.
#[derive(Debug, Clone)]
pub(super) struct Mark {
    pub(super) phases: Arc<Phases>,
    pub(super) at: At,
}

impl<In: Transport> Connector<In> for Mark {
    type Out = In;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<In>, Error> {
        let phase = match (self.at, &chained) {
            (At::BeforeTcp, None) => Some(Phase::Connecting),
            (At::BeforeTls, Some(transport))
                if !transport.is_tls() && details.uri.scheme_str() == Some("https") =>
            {
                Some(Phase::Tls)
            }
            (At::Connected, Some(_)) => Some(Phase::Request),
            _ => None,
        };
        if let Some(phase) = phase {
            self.phases.send(phase, host_port(details.uri));
        }
        Ok(chained)
    }
}
