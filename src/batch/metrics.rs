//! `--metrics FILE`: what a batch (or `watchdog report`, for a set of reports) tells a monitor, in the
//! Prometheus text exposition format, for node_exporter's textfile collector.
//!
//! Unattended batches (cron, Slurm arrays, Kubernetes Jobs) are watched by alerting on files like this
//! one. The file is replaced atomically (a temporary file in the same directory, then a rename), so a
//! collector never reads half a file. Cardinality is fixed whatever the list holds: one series per
//! status, and per-host series for the [`TOP_HOSTS`] hosts with the most items, the rest summed under
//! [`OTHER_HOSTS`]. Names follow Prometheus' conventions: a `watchdog_` prefix, `_total` on counters,
//! base units in the name (`_bytes`, `_seconds`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::status::Status;
use super::summary::StatusCounts;
use crate::url_parts::UrlParts;

/// Hosts given their own series.
pub const TOP_HOSTS: usize = 20;
/// The `host` label of the items of every other host.
pub const OTHER_HOSTS: &str = "(other)";
/// Hosts counted one by one; items of any further host count under [`OTHER_HOSTS`] at once, so memory
/// stays bounded for a list of any number of hosts.
const MAX_HOSTS: usize = 10_000;

/// The host of a URL as the metrics label it: lowercase, without credentials and port (as
/// `watchdog report` shows hosts); `-` when there is none (an invalid line).
pub fn host_label(url: &str) -> String {
    UrlParts::split(url)
        .host()
        .map_or_else(|| "-".to_string(), str::to_ascii_lowercase)
}

/// Items per host, done and not done, in bounded memory.
#[derive(Debug, Default, Clone)]
pub struct HostTally {
    hosts: HashMap<String, (u64, u64)>,
    other: (u64, u64),
}

impl HostTally {
    /// Counts an item of `url`'s host that ended `done` or not.
    pub fn record(&mut self, url: &str, done: bool) {
        let host = host_label(url);
        let count = if let Some(count) = self.hosts.get_mut(&host) {
            count
        } else if self.hosts.len() < MAX_HOSTS {
            self.hosts.entry(host).or_default()
        } else {
            &mut self.other
        };
        if done {
            count.0 += 1;
        } else {
            count.1 += 1;
        }
    }

    /// `(host, done, not done)` of the hosts with the most items, then the other hosts summed
    /// (when there are any).
    pub fn top(&self) -> Vec<(String, u64, u64)> {
        let hosts = self.hosts.iter().map(|(h, (d, n))| (h.as_str(), *d, *n));
        top_hosts(hosts, self.other)
    }
}

/// The [`TOP_HOSTS`] hosts with the most items (ties by name), and the rest plus `other` summed
/// under [`OTHER_HOSTS`] when not empty.
pub fn top_hosts<'a>(
    hosts: impl Iterator<Item = (&'a str, u64, u64)>,
    other: (u64, u64),
) -> Vec<(String, u64, u64)> {
    let mut all: Vec<(&str, u64, u64)> = hosts.collect();
    all.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(b.0)));
    let mut top: Vec<(String, u64, u64)> = all
        .iter()
        .take(TOP_HOSTS)
        .map(|(h, d, n)| (h.to_string(), *d, *n))
        .collect();
    let rest = all
        .iter()
        .skip(TOP_HOSTS)
        .fold(other, |(d, n), (_, dd, nn)| (d + dd, n + nn));
    if rest.0 + rest.1 > 0 {
        top.push((OTHER_HOSTS.to_string(), rest.0, rest.1));
    }
    top
}

/// What one metrics file says. Values a source cannot know (a set of reports has nothing in flight)
/// are `None` and left out of the file.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub counts: StatusCounts,
    /// Items on the list, once known.
    pub listed: Option<u64>,
    /// Bytes of the items downloaded (`ok`).
    pub bytes: u64,
    /// Attempts of the items that ended, and of those the retries (attempts after an item's first).
    pub attempts: u64,
    pub retries: u64,
    pub in_flight: Option<u64>,
    /// Hosts whose circuit breaker tripped, and the items reported untried because of it.
    pub hosts_tripped: Option<u64>,
    pub held_back: Option<u64>,
    /// Seconds since the epoch.
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
    pub last_success: Option<f64>,
    /// `(host, done, not done)`, as [`top_hosts`] gives them.
    pub hosts: Vec<(String, u64, u64)>,
}

/// Seconds since the epoch of `time`.
pub fn epoch_seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The name of the last-success gauge, which a run that did not succeed carries over from the file.
const LAST_SUCCESS: &str = "watchdog_last_success_timestamp_seconds";

impl Metrics {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        };
        family(
            "watchdog_items_total",
            "counter",
            "Items that ended, by status (the report's status words).",
        );
        for status in Status::ALL {
            let _ = writeln!(
                out,
                "watchdog_items_total{{status=\"{status}\"}} {}",
                self.counts.count(status)
            );
        }
        let mut single = |name: &str, kind: &str, help: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = write!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
                );
            }
        };
        single(
            "watchdog_items_listed",
            "gauge",
            "Items on the list, once the list was read to its end.",
            self.listed.map(|n| n.to_string()),
        );
        single(
            "watchdog_downloaded_bytes_total",
            "counter",
            "Bytes of the items downloaded (status ok).",
            Some(self.bytes.to_string()),
        );
        single(
            "watchdog_attempts_total",
            "counter",
            "Download attempts of the items that ended.",
            Some(self.attempts.to_string()),
        );
        single(
            "watchdog_retries_total",
            "counter",
            "Attempts after an item's first, of the items that ended.",
            Some(self.retries.to_string()),
        );
        single(
            "watchdog_items_in_flight",
            "gauge",
            "Items in a worker now.",
            self.in_flight.map(|n| n.to_string()),
        );
        single(
            "watchdog_hosts_tripped",
            "gauge",
            "Hosts whose circuit breaker (--host-failures) held back items in this run.",
            self.hosts_tripped.map(|n| n.to_string()),
        );
        single(
            "watchdog_items_not_tried_total",
            "counter",
            "Items reported without an attempt because their host's circuit breaker was open.",
            self.held_back.map(|n| n.to_string()),
        );
        single(
            "watchdog_start_time_seconds",
            "gauge",
            "When the run started, in seconds since the epoch.",
            self.start_time.map(seconds),
        );
        single(
            "watchdog_end_time_seconds",
            "gauge",
            "When the run ended, in seconds since the epoch.",
            self.end_time.map(seconds),
        );
        single(
            LAST_SUCCESS,
            "gauge",
            "When a run last ended with every item done (exit 0), in seconds since the epoch.",
            self.last_success.map(seconds),
        );
        if !self.hosts.is_empty() {
            let _ = write!(
                out,
                "# HELP watchdog_host_items_total Items that ended, per host (the {TOP_HOSTS} with the \
                 most items, the rest as host=\"{OTHER_HOSTS}\"), done (ok or skipped) or not.\n\
                 # TYPE watchdog_host_items_total counter\n"
            );
            for (host, done, not_done) in &self.hosts {
                let host = label_value(host);
                let _ = writeln!(
                    out,
                    "watchdog_host_items_total{{host=\"{host}\",result=\"done\"}} {done}"
                );
                let _ = writeln!(
                    out,
                    "watchdog_host_items_total{{host=\"{host}\",result=\"not_done\"}} {not_done}"
                );
            }
        }
        out
    }

    /// Writes the file at `path` atomically (see [`replace_file`]).
    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        replace_file(path, self.render().as_bytes())
    }
}

/// Writes `bytes` to `path` atomically: to a temporary file beside it, then renamed over it, so a
/// reader sees the old file or the new one, never half of one.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    // Not `*.prom`: the textfile collector must never read the temporary file.
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = dir.join(temp_name);
    let written = std::fs::File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_data()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// The last-success time an earlier run wrote to the metrics file at `path`, to be carried over by a
/// run that does not succeed (a monitor alerts on its age).
pub fn earlier_last_success(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(LAST_SUCCESS)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// Seconds with milliseconds.
fn seconds(value: f64) -> String {
    format!("{value:.3}")
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_beyond_the_top_are_summed_under_one_label() {
        let mut tally = HostTally::default();
        for n in 0..(TOP_HOSTS + 5) {
            for _ in 0..=n {
                tally.record(&format!("https://u:pw@h{n}.example:8443/x"), n % 2 == 0);
            }
        }
        let top = tally.top();
        assert_eq!(top.len(), TOP_HOSTS + 1);
        assert_eq!(top[0], (format!("h{}.example", TOP_HOSTS + 4), 25, 0));
        // The five with fewest items: 1 + 2 + 3 + 4 + 5 items, of hosts 0, 2 and 4 done.
        assert_eq!(top[TOP_HOSTS], (OTHER_HOSTS.to_string(), 1 + 3 + 5, 2 + 4));
    }

    #[test]
    fn the_file_names_every_status_and_leaves_out_what_is_unknown() {
        let mut counts = StatusCounts::default();
        counts.add(Status::Ok);
        counts.add(Status::Timeout);
        let metrics = Metrics {
            counts,
            bytes: 10,
            attempts: 3,
            retries: 1,
            start_time: Some(1_700_000_000.5),
            hosts: vec![("a\"b".to_string(), 1, 1)],
            ..Metrics::default()
        };
        let text = metrics.render();
        assert!(
            text.contains("watchdog_items_total{status=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("watchdog_items_total{status=\"io_error\"} 0\n"));
        assert!(text.contains("watchdog_start_time_seconds 1700000000.500\n"));
        assert!(
            text.contains("host=\"a\\\"b\",result=\"not_done\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("in_flight"), "{text}");
        assert!(!text.contains(LAST_SUCCESS), "{text}");
    }

    #[test]
    fn the_file_is_replaced_whole_and_keeps_the_last_success() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("batch.prom");
        let metrics = Metrics {
            last_success: Some(1_700_000_000.0),
            ..Metrics::default()
        };
        metrics.write_to(&path)?;
        assert_eq!(std::fs::read_to_string(&path)?, metrics.render());
        assert_eq!(earlier_last_success(&path), Some(1_700_000_000.0));
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            1,
            "no temporary file left"
        );
        Metrics::default().write_to(&path)?;
        assert_eq!(earlier_last_success(&path), None);
        Ok(())
    }
}
