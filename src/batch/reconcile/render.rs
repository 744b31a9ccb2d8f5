//! Rendering `watchdog report`'s outcome: the summary for a person, the JSON object for a pipeline, and
//! the notes that go with a retry list.

use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};

use serde::Serialize;

use super::tally::{HostCount, ListCounts, Outcome};
use crate::batch::status::Status;
use crate::protocol::bytes_for_people;

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
            bytes_for_people(self.bytes),
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
            self.render_not_done(&mut text);
        }
        text
    }

    /// The items not done, grouped by cause: those a retry may fix, then those it will not, each
    /// cause with its count and its first few items, aligned in columns (path, URL, error).
    fn render_not_done(&self, text: &mut String) {
        let causes = self.causes_sorted();
        let shown = || causes.iter().flat_map(|(_, items)| items.first.iter());
        let path_width = shown()
            .map(|m| m.path.as_deref().unwrap_or("-").chars().count())
            .max()
            .unwrap_or(0);
        let url_width = shown().map(|m| m.url.chars().count()).max().unwrap_or(0);
        let label_width = causes
            .iter()
            .map(|(c, _)| c.label().chars().count())
            .max()
            .unwrap_or(0);
        text.push_str(&format!(
            "not done: {} item{}, {} a retry may fix, {} it will not\n",
            self.missing(),
            plural(self.missing()),
            self.retryable,
            self.permanent()
        ));
        for retry_may_fix in [true, false] {
            let group: Vec<_> = causes
                .iter()
                .filter(|(c, _)| c.retry_may_fix == retry_may_fix)
                .collect();
            if group.is_empty() {
                continue;
            }
            text.push_str(if retry_may_fix {
                "a retry may fix (`watchdog report --failed` lists them for `watchdog batch`, which \
                 must be given the same --out: the paths are relative to it):\n"
            } else {
                "a retry will not fix, until their cause is dealt with (`--failed \
                 --include-permanent` lists them too):\n"
            });
            for (cause, items) in group {
                text.push_str(&format!(
                    "  {:label_width$}  {}\n",
                    cause.label(),
                    items.count
                ));
                for item in &items.first {
                    let line = format!(
                        "    {:path_width$}  {:url_width$}  {}",
                        item.path.as_deref().unwrap_or("-"),
                        item.url,
                        item.error.as_deref().unwrap_or("")
                    );
                    text.push_str(line.trim_end());
                    text.push('\n');
                }
                let more = items.count - items.first.len() as u64;
                if more > 0 {
                    text.push_str(&format!("    and {more} more\n"));
                }
            }
        }
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

    /// The summary as one JSON object on one line, with `not_done`: every item not done, as
    /// `{"url","path","status","http_status","error","retry_may_fix"}`, read back from
    /// [`Outcome::not_done`] (an empty list when it was not kept).
    pub fn write_json(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let summary = self.render_json();
        let summary = summary.trim_end();
        let head = summary.strip_suffix('}').unwrap_or(summary);
        out.write_all(head.as_bytes())?;
        out.write_all(b",\"not_done\":[")?;
        if let Some(spool) = self.not_done.take() {
            let mut file = spool.into_inner().map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            let mut first = true;
            for line in BufReader::new(file).lines() {
                if !first {
                    out.write_all(b",")?;
                }
                first = false;
                out.write_all(line?.as_bytes())?;
            }
        }
        out.write_all(b"]}\n")
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
        if self.unlisted_permanent > 0 {
            writeln!(
                err,
                "watchdog: {} item{} not listed: a retry will not fix {} (a 404, a body refused, a \
                 local error; see the summary); --include-permanent lists {} too",
                self.unlisted_permanent,
                plural(self.unlisted_permanent),
                if self.unlisted_permanent == 1 { "it" } else { "them" },
                if self.unlisted_permanent == 1 { "it" } else { "them" },
            )?;
        }
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
