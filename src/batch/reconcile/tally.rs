//! Tallying `watchdog report`'s outcomes: per status, per host, bytes, the first items not done, and
//! the exit status they imply.

use std::collections::HashMap;

use serde::Serialize;

use crate::batch::report::ReportEntry;
use crate::batch::status::Status;
use crate::batch::summary::StatusCounts;
use crate::exit::Exit;
use crate::redact::redact_credentials;
use crate::url_parts::UrlParts;

/// Hosts counted one by one; items of any further host are summed up as other hosts.
const MAX_HOSTS: usize = 10_000;
/// Items not done kept to show in the text summary.
pub const MISSING_SHOWN: usize = 10;

/// The host of a URL as the summary shows it: lowercase, without credentials and port; `-` when there
/// is none (an invalid line).
fn host(url: &str) -> String {
    UrlParts::split(url)
        .host()
        .map_or_else(|| "-".to_string(), str::to_ascii_lowercase)
}

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
    pub status: Status,
    pub url: String,
    pub path: Option<String>,
    pub error: Option<String>,
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
    pub hosts: HashMap<String, HostCount>,
    pub other_hosts: HostCount,
    pub first_missing: Vec<Missing>,
    /// With `--failed`: missing items left out of the list.
    pub unlisted_invalid: u64,
    pub unlisted_credentials: u64,
}

impl Outcome {
    pub fn items(&self) -> u64 {
        self.counts.total()
    }

    pub fn count(&self, status: Status) -> u64 {
        self.counts.count(status)
    }

    pub fn done(&self) -> u64 {
        self.counts.done()
    }

    pub fn missing(&self) -> u64 {
        self.counts.not_done()
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
        let done = entry.status.is_done();
        if done {
            self.bytes += entry.bytes.unwrap_or(0);
        } else if self.first_missing.len() < MISSING_SHOWN {
            self.first_missing.push(Missing {
                status: entry.status,
                url: redact_credentials(&entry.url),
                path: entry.path.clone(),
                error: entry.error.as_deref().map(redact_credentials),
            });
        }
        let host = host(&entry.url);
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

    /// Hosts by number of items, most first, then by name.
    pub fn hosts_sorted(&self) -> Vec<(&str, HostCount)> {
        let mut hosts: Vec<(&str, HostCount)> =
            self.hosts.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        hosts.sort_by(|a, b| b.1.items.cmp(&a.1.items).then(a.0.cmp(b.0)));
        hosts
    }
}

/// The line `watchdog batch` takes back for a missing item, or why there is none.
pub fn retry_line(entry: &ReportEntry) -> Result<String, &'static str> {
    if entry.status == Status::Invalid {
        return Err("invalid");
    }
    if redact_credentials(&entry.url) != entry.url || entry.url.contains("://***@") {
        return Err("credentials");
    }
    #[derive(Serialize)]
    struct Retry<'a> {
        url: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    }
    serde_json::to_string(&Retry {
        url: &entry.url,
        path: entry.path.as_deref(),
    })
    .map_err(|_| "invalid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_without_credentials_or_port() {
        assert_eq!(host("https://u:p@Example.org:8443/a"), "example.org");
        assert_eq!(host("http://[::1]:80/x"), "::1");
        assert_eq!(host("ftp"), "-");
        assert_eq!(host("https:///x"), "-");
    }
}
