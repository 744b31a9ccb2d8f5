//! Rendering `watchdog report`'s outcome: the summary for a person, the JSON object for a pipeline, and
//! the notes that go with a retry list.

use std::io::{self, Write};

use serde::Serialize;

use super::tally::{HostCount, ListCounts, Outcome};
use crate::batch::status::Status;
use crate::batch::summary::render_bytes;

/// Hosts shown in the text summary.
const HOSTS_SHOWN: usize = 10;

impl Outcome {
    /// The summary for a person.
    pub fn render_text(&self) -> String {
        let mut text = String::new();
        text.push_str(&format!(
            "{} item{} in {} report{} ({} line{}{}): {}\n",
            self.items(),
            plural(self.items()),
            self.reports,
            plural(self.reports as u64),
            self.lines,
            plural(self.lines),
            if self.bad_lines > 0 {
                format!(", {} not readable", self.bad_lines)
            } else {
                String::new()
            },
            self.render_counts(),
        ));
        match &self.list {
            Some(list) => {
                text.push_str(&format!(
                    "list {}{}: {} item{}, {} never tried (missing){}\n",
                    list.path,
                    list.shard
                        .as_deref()
                        .map(|k| format!(" (shard {k})"))
                        .unwrap_or_default(),
                    list.items,
                    plural(list.items),
                    list.missing,
                    if list.invalid_unreported > 0 {
                        format!(
                            ", {} invalid line{} no report mentions",
                            list.invalid_unreported,
                            plural(list.invalid_unreported)
                        )
                    } else {
                        String::new()
                    }
                ));
                if list.not_on_list > 0 {
                    text.push_str(&format!(
                        "{} item{} of the reports {} not on the list{} (another list, or a batch \
                         whose --out is not the reports' directory?)\n",
                        list.not_on_list,
                        plural(list.not_on_list),
                        if list.not_on_list == 1 { "is" } else { "are" },
                        if list.shard.is_some() { " or not in the shard" } else { "" },
                    ));
                }
            }
            None => text.push_str(&format!(
                "the reports mention {} item{}; items never tried are not seen without --list LIST\n",
                self.reported(),
                plural(self.reported())
            )),
        }
        text.push_str(&format!(
            "done {} ({}), missing {}\n",
            self.done(),
            render_bytes(self.bytes),
            self.missing()
        ));
        let hosts = self.hosts_sorted();
        if !hosts.is_empty() {
            text.push_str("by host:\n");
            let width = hosts
                .iter()
                .take(HOSTS_SHOWN)
                .map(|(h, _)| h.len())
                .max()
                .unwrap_or(0);
            for (host, count) in hosts.iter().take(HOSTS_SHOWN) {
                text.push_str(&format!(
                    "  {host:width$}  {} item{}: {} done, {} missing\n",
                    count.items,
                    plural(count.items),
                    count.done,
                    count.missing
                ));
            }
            let rest = hosts.len().saturating_sub(HOSTS_SHOWN);
            if rest > 0 || self.other_hosts.items > 0 {
                let items = hosts
                    .iter()
                    .skip(HOSTS_SHOWN)
                    .map(|(_, c)| c.items)
                    .sum::<u64>()
                    + self.other_hosts.items;
                text.push_str(&format!("  ... {items} items on other hosts\n"));
            }
        }
        if self.missing() > 0 {
            text.push_str(&format!(
                "missing (the first {} of {}; `watchdog report --failed` lists them all for `watchdog batch`):\n",
                self.first_missing.len(),
                self.missing()
            ));
            for item in &self.first_missing {
                text.push_str(&format!(
                    "  {}  {}  {}{}\n",
                    item.status,
                    item.path.as_deref().unwrap_or("-"),
                    item.url,
                    item.error
                        .as_deref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
        text
    }

    /// `10 ok, 2 http_error, 88 missing`.
    fn render_counts(&self) -> String {
        let reported = self.counts.render();
        match (reported, self.never_tried()) {
            (None, 0) => "nothing reported".to_string(),
            (None, missing) => format!("{missing} missing"),
            (Some(counts), 0) => counts,
            (Some(counts), missing) => format!("{counts}, {missing} missing"),
        }
    }

    /// The summary as one JSON object, on one line.
    pub fn render_json(&self) -> String {
        #[derive(Serialize)]
        struct Host<'a> {
            host: &'a str,
            #[serde(flatten)]
            count: HostCount,
        }
        #[derive(Serialize)]
        struct Json<'a> {
            reports: usize,
            lines: u64,
            unreadable_lines: u64,
            items: u64,
            /// Items the reports mention.
            reported: u64,
            done: u64,
            missing: u64,
            bytes: u64,
            statuses: serde_json::Map<String, serde_json::Value>,
            list: Option<&'a ListCounts>,
            hosts: Vec<Host<'a>>,
            other_hosts: HostCount,
            exit_code: u8,
        }
        let mut statuses: serde_json::Map<String, serde_json::Value> = Status::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), self.count(*s).into()))
            .collect();
        statuses.insert("missing".to_string(), self.never_tried().into());
        let json = Json {
            reports: self.reports,
            lines: self.lines,
            unreadable_lines: self.bad_lines,
            items: self.items(),
            reported: self.reported(),
            done: self.done(),
            missing: self.missing(),
            bytes: self.bytes,
            statuses,
            list: self.list.as_ref(),
            hosts: self
                .hosts_sorted()
                .into_iter()
                .map(|(host, count)| Host { host, count })
                .collect(),
            other_hosts: self.other_hosts,
            exit_code: self.exit().code(),
        };
        let mut line = serde_json::to_string(&json).unwrap_or_else(|_| "{}".to_string());
        line.push('\n');
        line
    }

    /// With `--failed`: what was listed, and why some missing items were not.
    pub fn write_retry_notes(&self, err: &mut dyn Write) -> io::Result<()> {
        if self.unlisted_invalid > 0 {
            writeln!(
                err,
                "watchdog: {} invalid item{} not listed: fix {} in the list first (the report's error names the line)",
                self.unlisted_invalid,
                plural(self.unlisted_invalid),
                if self.unlisted_invalid == 1 { "its line" } else { "their lines" },
            )?;
        }
        if self.unlisted_credentials > 0 {
            writeln!(
                err,
                "watchdog: {} item{} not listed: the URL had credentials, which reports never keep (***); \
                 list {} again from the original list",
                self.unlisted_credentials,
                plural(self.unlisted_credentials),
                if self.unlisted_credentials == 1 { "it" } else { "them" },
            )?;
        }
        Ok(())
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
