//! What a running batch knows about itself beyond the closing summary's counts: items in flight and
//! their bytes so far (for the rate over the last interval), the hosts the circuit breaker tripped,
//! items per host, and the list's length once it was read to its end.
//!
//! Fed by the runner's hooks as items start, progress and end; read by the status lines and the
//! metrics file ([`super::watch`]). Memory is bounded whatever the list holds: per worker slot, and per
//! host up to a cap ([`super::metrics::HostTally`]).

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use super::metrics::HostTally;
use super::report::ReportEntry;

/// Tripped hosts remembered by name; beyond this many, trips are not told apart any more.
const MAX_TRIPPED: usize = 10_000;

#[derive(Debug)]
pub struct RunStats {
    pub started: Instant,
    pub started_at: SystemTime,
    /// Per worker slot: `Some(bytes so far)` while it has an item.
    slots: Vec<Option<u64>>,
    tripped: HashSet<String>,
    /// Items per host, counted only for the metrics file (a URL parse and a lookup per item).
    pub hosts: Option<HostTally>,
    /// Items of this run read from the list so far (shard's share, invalid lines included).
    read: u64,
    /// The number of items of this run, once known: counted up front, or when the list ended.
    pub listed: Option<u64>,
}

impl RunStats {
    /// `listed`: the items of the list when counted before the run; `per_host`: count items per
    /// host.
    pub fn new(listed: Option<u64>, per_host: bool) -> RunStats {
        RunStats {
            started: Instant::now(),
            started_at: SystemTime::now(),
            slots: Vec::new(),
            tripped: HashSet::new(),
            hosts: per_host.then(HostTally::default),
            read: 0,
            listed,
        }
    }

    /// An item of this run was read from the list.
    pub fn item_read(&mut self) {
        self.read += 1;
    }

    /// The list has no more items: its length is known exactly now.
    pub fn list_ended(&mut self) {
        self.listed = Some(self.read);
    }

    pub fn ended(&mut self, entry: &ReportEntry) {
        if let Some(hosts) = self.hosts.as_mut() {
            hosts.record(&entry.url, entry.status.is_done());
        }
    }

    pub fn worker_busy(&mut self, slot: usize) {
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        self.slots[slot] = Some(0);
    }

    pub fn worker_progress(&mut self, slot: usize, bytes: u64) {
        if let Some(Some(last)) = self.slots.get_mut(slot) {
            *last = bytes;
        }
    }

    pub fn worker_idle(&mut self, slot: usize) {
        if let Some(slot) = self.slots.get_mut(slot) {
            *slot = None;
        }
    }

    /// Items in a worker now.
    pub fn in_flight(&self) -> u64 {
        self.slots.iter().filter(|s| s.is_some()).count() as u64
    }

    /// Body bytes so far of the items in flight.
    pub fn in_flight_bytes(&self) -> u64 {
        self.slots.iter().flatten().sum()
    }

    /// An item of `host` was reported untried: the host's breaker is open.
    pub fn held_back(&mut self, host: &str) {
        if self.tripped.len() < MAX_TRIPPED && !self.tripped.contains(host) {
            self.tripped.insert(host.to_string());
        }
    }

    /// Hosts whose breaker tripped.
    pub fn hosts_tripped(&self) -> u64 {
        self.tripped.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_and_bytes_follow_the_workers() {
        let mut stats = RunStats::new(None, false);
        stats.worker_busy(2);
        stats.worker_busy(0);
        stats.worker_progress(2, 100);
        stats.worker_progress(2, 250);
        stats.worker_progress(1, 999); // idle slot: nothing
        assert_eq!((stats.in_flight(), stats.in_flight_bytes()), (2, 250));
        stats.worker_idle(2);
        stats.worker_idle(2);
        assert_eq!((stats.in_flight(), stats.in_flight_bytes()), (1, 0));
        stats.worker_busy(2);
        stats.worker_progress(2, 50);
        assert_eq!((stats.in_flight(), stats.in_flight_bytes()), (2, 50));
        stats.held_back("a:80");
        stats.held_back("a:80");
        stats.held_back("b:80");
        assert_eq!(stats.hosts_tripped(), 2);
        stats.item_read();
        assert_eq!(stats.listed, None);
        stats.list_ended();
        assert_eq!(stats.listed, Some(1));
    }
}
