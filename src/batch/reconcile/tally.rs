//! Tallying `watchdog report`'s outcomes: per status, per host, bytes, the first items not done, and
//! the exit status they imply.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use serde::Serialize;

use crate::batch::list::json_line;
use crate::batch::metrics::{host_label, top_hosts, Metrics};

use super::html::PageTally;
use crate::batch::report::ReportEntry;
use crate::batch::retry::retry_may_fix;
use crate::batch::status::Status;
use crate::batch::summary::{error_without_url, StatusCounts};
use crate::batch::timestamp::parse_utc_millis;
use crate::exit::Exit;
use crate::redact::redact_credentials;

/// Hosts counted one by one; items of any further host are summed up as other hosts.
const MAX_HOSTS: usize = 10_000;
/// Items not done shown per cause in the text summary.
pub const SHOWN_PER_CAUSE: usize = 3;

/// Items, done and missing, of one host.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct HostCount {
    pub items: u64,
    pub done: u64,
    pub missing: u64,
}

/// A missing item shown in the text summary.
#[derive(Debug, Clone)]
pub struct Missing {
    pub url: String,
    pub path: Option<String>,
    /// Without the URL it often starts with: the line names it already.
    pub error: Option<String>,
}

/// Why items are not done, as the text summary groups them: what a retry may fix apart from what it
/// will not, then the status, and for an HTTP error the answer's code (a 404 apart from a 503).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cause {
    /// See [`retry_may_fix`]; an item never tried may always be fixed by a retry.
    pub retry_may_fix: bool,
    /// A status word, or `missing` for an item of the list that no report mentions.
    pub status: &'static str,
    pub http_status: Option<u16>,
}

impl Cause {
    /// `http_error 404`, `stalled`, `missing (never tried)`.
    pub fn label(&self) -> String {
        match (self.status, self.http_status) {
            ("missing", _) => "missing (never tried)".to_string(),
            (status @ ("http_error" | "proxy_error"), Some(code)) => format!("{status} {code}"),
            (status, _) => status.to_string(),
        }
    }
}

/// The items of one cause: how many, and the first few.
#[derive(Debug, Clone, Default)]
pub struct CauseItems {
    pub count: u64,
    pub first: Vec<Missing>,
}

/// One item not done, as a line of `--json`'s `not_done`: serialized straight from borrowed fields
/// (a list of ten million items writes as many), its keys in the order published, alphabetical.
#[derive(Serialize)]
struct NotDoneLine<'a> {
    error: Option<&'a str>,
    http_status: Option<u16>,
    path: Option<&'a str>,
    retry_may_fix: bool,
    status: &'a str,
    url: &'a str,
}

/// What the reports add up to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub reports: usize,
    pub lines: u64,
    pub bad_lines: u64,
    pub counts: StatusCounts,
    /// Bytes of the items done.
    pub bytes: u64,
    /// Bytes of the items whose outcome is ok (downloaded).
    pub downloaded: u64,
    /// Attempts of the items' outcomes, and of those the attempts after an item's first.
    pub attempts: u64,
    pub retries: u64,
    /// Milliseconds since the epoch: the earliest start (finished_at less elapsed_ms) and the latest
    /// finished_at of the outcomes that have one.
    pub first_started_ms: Option<u64>,
    pub last_finished_ms: Option<u64>,
    pub hosts: HashMap<String, HostCount>,
    pub other_hosts: HostCount,
    /// The items not done, by cause (a few dozen causes at most: statuses and HTTP codes).
    pub causes: HashMap<Cause, CauseItems>,
    /// Items not done that a retry may fix.
    pub retryable: u64,
    /// With `--failed`: missing items left out of the list.
    pub unlisted_invalid: u64,
    pub unlisted_credentials: u64,
    /// Items a retry will not fix, left out without `--include-permanent`.
    pub unlisted_permanent: u64,
    /// With `--list`: what the list held.
    pub list: Option<ListCounts>,
    /// With `--html`: what the page shows beyond these counts.
    pub page: Option<Box<PageTally>>,
    /// With `--json`: every item not done, one JSON object a line, in an unlinked file (a list of
    /// any length in flat memory), and the first error writing it.
    pub not_done: Option<BufWriter<File>>,
    pub not_done_error: Option<io::Error>,
}

/// With `--list`: the list's items (of the shard), and those no report mentions.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListCounts {
    /// The list as given.
    pub path: String,
    /// `K/N` when one shard's share was checked.
    pub shard: Option<String>,
    /// Items of the list (of the shard), each counted once: duplicates are one item.
    pub items: u64,
    /// Valid items no report mentions: never tried (`missing`).
    pub missing: u64,
    /// Invalid list lines no report mentions (counted as `invalid`).
    pub invalid_unreported: u64,
    /// Items the reports mention that are not on the list (or not in the shard): reports of another
    /// list, or of batches whose --out was not the reports' directory (names can differ then).
    pub not_on_list: u64,
}

impl Outcome {
    /// Items: every item a report mentions, and with `--list` every list item none mentions.
    pub fn items(&self) -> u64 {
        self.counts.total() + self.never_tried()
    }

    /// Items the reports mention.
    pub fn reported(&self) -> u64 {
        self.counts.total() - self.list.as_ref().map_or(0, |list| list.invalid_unreported)
    }

    /// Items of the list that no report mentions (0 without `--list`).
    pub fn never_tried(&self) -> u64 {
        self.list.as_ref().map_or(0, |list| list.missing)
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts.count(status)
    }

    pub fn done(&self) -> u64 {
        self.counts.done()
    }

    /// Items not done: failed, invalid, or never tried.
    pub fn missing(&self) -> u64 {
        self.counts.not_done() + self.never_tried()
    }

    /// [`Exit::SomeFailed`] when an item is not done, else [`Exit::UnreadableLines`] when a line
    /// could not be read, else [`Exit::Success`].
    pub fn exit(&self) -> Exit {
        if self.missing() > 0 {
            Exit::SomeFailed
        } else if self.bad_lines > 0 {
            Exit::UnreadableLines
        } else {
            Exit::Success
        }
    }

    /// Counts `entry`, the latest outcome of its item.
    pub fn record(&mut self, entry: &ReportEntry) {
        self.counts.add(entry.status);
        self.attempts += u64::from(entry.attempts);
        self.retries += u64::from(entry.attempts.saturating_sub(1));
        if entry.status == Status::Ok {
            self.downloaded += entry.bytes.unwrap_or(0);
        }
        if let Some(at) = entry.finished_at.as_deref().and_then(parse_utc_millis) {
            let started = at.saturating_sub(entry.elapsed_ms);
            self.first_started_ms = Some(self.first_started_ms.map_or(started, |s| s.min(started)));
            self.last_finished_ms = Some(self.last_finished_ms.map_or(at, |l| l.max(at)));
        }
        if let Some(page) = self.page.as_mut() {
            page.record(entry);
        }
        let done = entry.status.is_done();
        if done {
            self.bytes += entry.bytes.unwrap_or(0);
        } else {
            let cause = Cause {
                retry_may_fix: retry_may_fix(entry),
                status: entry.status.as_str(),
                http_status: entry.http_status,
            };
            self.note_missing(
                cause,
                &entry.url,
                entry.path.as_deref(),
                entry.error.as_deref(),
            );
        }
        self.count_host(&entry.url, done);
    }

    /// Counts an item of the list that no report mentions: never tried, `missing`.
    pub fn record_never_tried(&mut self, url: &str, path: &str) {
        if let Some(list) = self.list.as_mut() {
            list.missing += 1;
        }
        let cause = Cause {
            retry_may_fix: true,
            status: "missing",
            http_status: None,
        };
        self.note_missing(cause, url, Some(path), Some("no report mentions it"));
        if let Some(page) = self.page.as_mut() {
            page.record_never_tried(url, path);
        }
        self.count_host(url, false);
    }

    /// Items not done that a retry will not fix: their cause must be dealt with first.
    pub fn permanent(&self) -> u64 {
        self.missing() - self.retryable
    }

    fn note_missing(&mut self, cause: Cause, url: &str, path: Option<&str>, error: Option<&str>) {
        if cause.retry_may_fix {
            self.retryable += 1;
        }
        let url = redact_credentials(url);
        let error = error.map(|e| redact_credentials(error_without_url(&url, e)));
        if let Some(out) = self.not_done.as_mut() {
            let line = NotDoneLine {
                error: error.as_deref(),
                http_status: cause.http_status,
                path,
                retry_may_fix: cause.retry_may_fix,
                status: cause.status,
                url: &url,
            };
            let written = serde_json::to_writer(&mut *out, &line)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                self.not_done_error.get_or_insert(e);
            }
        }
        let items = self.causes.entry(cause).or_default();
        items.count += 1;
        if items.first.len() < SHOWN_PER_CAUSE {
            items.first.push(Missing {
                url,
                path: path.map(str::to_string),
                error,
            });
        }
    }

    /// The causes of the items not done, those a retry may fix first, then by number of items.
    pub fn causes_sorted(&self) -> Vec<(Cause, &CauseItems)> {
        let mut causes: Vec<(Cause, &CauseItems)> =
            self.causes.iter().map(|(c, items)| (*c, items)).collect();
        causes.sort_by(|a, b| {
            (b.0.retry_may_fix, b.1.count)
                .cmp(&(a.0.retry_may_fix, a.1.count))
                .then_with(|| a.0.label().cmp(&b.0.label()))
        });
        causes
    }

    fn count_host(&mut self, url: &str, done: bool) {
        let host = host_label(url);
        let count = if let Some(count) = self.hosts.get_mut(&host) {
            count
        } else if self.hosts.len() < MAX_HOSTS {
            self.hosts.entry(host).or_default()
        } else {
            &mut self.other_hosts
        };
        count.items += 1;
        if done {
            count.done += 1;
        } else {
            count.missing += 1;
        }
    }

    /// The metrics of these outcomes (see [`Metrics`]): the run's times are those of the items, the
    /// last success is the last item's end when every item is done; what only a running batch
    /// knows (in flight, the circuit breaker) is left out.
    pub fn metrics(&self) -> Metrics {
        let ms = |ms: u64| ms as f64 / 1000.0;
        Metrics {
            counts: self.counts,
            listed: self.list.as_ref().map(|list| list.items),
            bytes: self.downloaded,
            attempts: self.attempts,
            retries: self.retries,
            in_flight: None,
            hosts_tripped: None,
            held_back: None,
            start_time: self.first_started_ms.map(ms),
            end_time: self.last_finished_ms.map(ms),
            last_success: self
                .last_finished_ms
                .filter(|_| self.exit() == Exit::Success)
                .map(ms),
            hosts: top_hosts(
                self.hosts
                    .iter()
                    .map(|(h, c)| (h.as_str(), c.done, c.missing)),
                (self.other_hosts.done, self.other_hosts.missing),
            ),
        }
    }

    /// Hosts by number of items, most first, then by name.
    pub fn hosts_sorted(&self) -> Vec<(&str, HostCount)> {
        let mut hosts: Vec<(&str, HostCount)> =
            self.hosts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        hosts.sort_by(|a, b| b.1.items.cmp(&a.1.items).then(a.0.cmp(b.0)));
        hosts
    }
}

/// The line `watchdog batch` takes back for a missing item, or why there is none: `invalid`,
/// `credentials`, or `permanent` (a retry will not fix it) unless `include_permanent`.
pub fn retry_line(entry: &ReportEntry, include_permanent: bool) -> Result<String, &'static str> {
    if entry.status == Status::Invalid {
        return Err("invalid");
    }
    if !include_permanent && !retry_may_fix(entry) {
        return Err("permanent");
    }
    if redact_credentials(&entry.url) != entry.url || entry.url.contains("://***@") {
        return Err("credentials");
    }
    json_line(&entry.url, entry.path.as_deref(), entry.extra.as_ref()).ok_or("invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_line_puts_the_extra_keys_back_where_the_list_had_them() {
        let line = r#"{"url":"https://h/a","path":"a","status":"timeout","http_status":null,"bytes":null,"sha256":null,"attempts":1,"elapsed_ms":5,"error":null,"extra":{"id":12345678901234567890,"caption":"x"}}"#;
        let entry: ReportEntry = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            retry_line(&entry, false).as_deref(),
            Ok(r#"{"url":"https://h/a","path":"a","id":12345678901234567890,"caption":"x"}"#)
        );
        // An old line without extra, and one whose extra is not an object: url and path only.
        let old = r#"{"url":"https://h/b","path":"b","status":"timeout","http_status":null,"bytes":null,"sha256":null,"attempts":1,"elapsed_ms":5,"error":null}"#;
        let entry: ReportEntry = serde_json::from_str(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            retry_line(&entry, false).as_deref(),
            Ok(r#"{"url":"https://h/b","path":"b"}"#)
        );
        let odd = old.replace("\"error\":null", "\"error\":null,\"extra\":[1]");
        let entry: ReportEntry = serde_json::from_str(&odd).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            retry_line(&entry, false).as_deref(),
            Ok(r#"{"url":"https://h/b","path":"b"}"#)
        );
    }

    #[test]
    fn hosts_are_named_without_credentials_or_port() {
        assert_eq!(host_label("https://u:p@Example.org:8443/a"), "example.org");
        assert_eq!(host_label("http://[::1]:80/x"), "::1");
        assert_eq!(host_label("ftp"), "-");
        assert_eq!(host_label("https:///x"), "-");
    }
}
