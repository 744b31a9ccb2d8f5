//! What the batch runner keeps per host: the circuit breaker (a host that failed at DNS or connect
//! several times in a row gets no more workers, but for a probe now and then) and the count of items
//! in flight for `--per-host`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::failure::FailureKind;
use crate::url_parts::UrlParts;

/// The key of an item's host: `host:port`, lowercase, with the scheme's default port filled in, and
/// never the userinfo. Text that is no URL keys as itself (such items fail on their own anyway).
pub fn host_key(url: &str) -> String {
    let parts = UrlParts::split(url);
    let default_port = match parts.scheme {
        Some(s) if s.eq_ignore_ascii_case("https") => "443",
        _ => "80",
    };
    match parts.host_and_port() {
        Ok((host, port)) => {
            let port = port.filter(|p| !p.is_empty()).unwrap_or(default_port);
            let host = host.to_ascii_lowercase();
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
        Err(_) => parts.host_port.to_ascii_lowercase(),
    }
}

/// How long a tripped host waits before one item is let through to see whether it came back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Whether the breaker lets an item of a host through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Give it a worker.
    Go,
    /// Report it at once: the host is tripped. The failure kind and the error for the report.
    Refuse(FailureKind, String),
}

#[derive(Debug, Default)]
struct Host {
    /// Attempts in a row that failed at DNS or connect.
    failures: u32,
    /// The kind and error of the last of them.
    last: Option<(FailureKind, String)>,
    /// Tripped: when the next probe may go.
    next_probe: Option<Instant>,
    /// A probe is in flight.
    probing: bool,
    /// Items of this host in a worker now.
    in_flight: usize,
}

/// Per-host state of a batch.
#[derive(Debug, Default)]
pub struct Hosts {
    /// Consecutive DNS/connect failures that trip a host; 0 disables the breaker.
    threshold: u32,
    hosts: HashMap<String, Host>,
}

impl Hosts {
    pub fn new(threshold: u32) -> Hosts {
        Hosts {
            threshold,
            hosts: HashMap::new(),
        }
    }

    /// Items of `host` in flight.
    pub fn in_flight(&self, host: &str) -> usize {
        self.hosts.get(host).map_or(0, |h| h.in_flight)
    }

    /// Whether an item of `host` may be given a worker now; a tripped host lets one probe through
    /// every [`PROBE_INTERVAL`] (the item then counts as the probe).
    pub fn admit(&mut self, host: &str, now: Instant) -> Verdict {
        let Some(state) = self.hosts.get_mut(host) else {
            return Verdict::Go;
        };
        let Some(next_probe) = state.next_probe else {
            return Verdict::Go;
        };
        if !state.probing && now >= next_probe {
            state.probing = true;
            return Verdict::Go;
        }
        let (kind, last) = state
            .last
            .clone()
            .unwrap_or((FailureKind::Connect, String::new()));
        let what = if kind == FailureKind::Dns {
            "DNS"
        } else {
            "connect"
        };
        Verdict::Refuse(
            kind,
            format!(
                "not tried: host {host} failed at {what} {} times in a row (last: {last}); the circuit \
                 breaker (--host-failures) holds its items back, run the batch again to retry them",
                state.failures
            ),
        )
    }

    /// An item of `host` went to a worker.
    pub fn started(&mut self, host: &str) {
        self.hosts.entry(host.to_string()).or_default().in_flight += 1;
    }

    /// An attempt on `host` ended: `failure` is its kind and error if it failed. DNS and connect
    /// failures count towards tripping the host; an answer of any kind resets it; a failure on this
    /// side (a worker that died, a local I/O error) does neither.
    pub fn ended(&mut self, host: &str, failure: Option<(FailureKind, &str)>, now: Instant) {
        let state = self.hosts.entry(host.to_string()).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
        let was_probe = std::mem::take(&mut state.probing);
        match failure {
            Some((kind @ (FailureKind::Dns | FailureKind::Connect), message)) => {
                state.failures += 1;
                state.last = Some((kind, message.to_string()));
                if self.threshold > 0 && (state.failures >= self.threshold || was_probe) {
                    state.next_probe = Some(now + PROBE_INTERVAL);
                }
            }
            // Failures that say nothing about the host: neither count nor reset.
            Some((
                FailureKind::WorkerDied
                | FailureKind::LocalIo
                | FailureKind::Usage
                | FailureKind::InvalidUrl
                | FailureKind::Proxy,
                _,
            )) => {}
            // The server answered: it is usable again.
            _ => {
                state.failures = 0;
                state.last = None;
                state.next_probe = None;
            }
        }
        if state.in_flight == 0 && state.failures == 0 {
            self.hosts.remove(host);
        }
    }

    /// An item of `host` left its worker without telling anything about the host (it was found
    /// complete on disk).
    pub fn released(&mut self, host: &str) {
        if let Some(state) = self.hosts.get_mut(host) {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.probing = false;
            if state.in_flight == 0 && state.failures == 0 {
                self.hosts.remove(host);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_ignore_credentials_case_and_default_ports() {
        assert_eq!(host_key("http://u:pw@Example.COM/x"), "example.com:80");
        assert_eq!(host_key("https://example.com/x"), "example.com:443");
        assert_eq!(host_key("http://127.0.0.2:8080/x"), "127.0.0.2:8080");
        assert_eq!(host_key("http://[::1]:81/x"), "[::1]:81");
    }

    #[test]
    fn a_host_trips_after_consecutive_connect_failures_and_a_probe_brings_it_back() {
        let now = Instant::now();
        let mut hosts = Hosts::new(3);
        let h = "127.0.0.2:80";
        for _ in 0..2 {
            hosts.started(h);
            hosts.ended(h, Some((FailureKind::Connect, "refused")), now);
            assert_eq!(hosts.admit(h, now), Verdict::Go);
        }
        hosts.started(h);
        hosts.ended(h, Some((FailureKind::Connect, "refused")), now);
        match hosts.admit(h, now) {
            Verdict::Refuse(FailureKind::Connect, why) => {
                assert!(why.contains(h) && why.contains("3 times"), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // A probe after the interval, one at a time.
        let later = now + PROBE_INTERVAL;
        assert_eq!(hosts.admit(h, later), Verdict::Go);
        assert!(matches!(hosts.admit(h, later), Verdict::Refuse(..)));
        hosts.started(h);
        hosts.ended(h, None, later);
        assert_eq!(hosts.admit(h, later), Verdict::Go);
    }

    #[test]
    fn an_answer_resets_the_count_and_zero_disables() {
        let now = Instant::now();
        let mut hosts = Hosts::new(2);
        let h = "a:80";
        hosts.ended(h, Some((FailureKind::Dns, "x")), now);
        hosts.ended(h, Some((FailureKind::HttpStatus, "404")), now);
        hosts.ended(h, Some((FailureKind::Dns, "x")), now);
        assert_eq!(hosts.admit(h, now), Verdict::Go);
        // A worker that died says nothing about the host: the second DNS failure still trips it.
        hosts.ended(h, Some((FailureKind::WorkerDied, "killed")), now);
        hosts.ended(h, Some((FailureKind::Dns, "x")), now);
        assert!(matches!(
            hosts.admit(h, now),
            Verdict::Refuse(FailureKind::Dns, _)
        ));
        let mut off = Hosts::new(0);
        for _ in 0..10 {
            off.ended(h, Some((FailureKind::Connect, "x")), now);
        }
        assert_eq!(off.admit(h, now), Verdict::Go);
    }
}
