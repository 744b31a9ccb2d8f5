//! `watchdog report --html FILE`: the outcome as one page a person looks at after a run over a bad
//! network, to see at a glance where the failures were: which status, which host, when.
//!
//! The page is self-contained (inline CSS and script, no fonts, images or requests; its
//! Content-Security-Policy forbids any), so it opens from a file share or a CI artifact on a machine
//! without a network. It stays small for reports of any length: everything is aggregated as the
//! outcomes stream past (per status, per host, per time bucket), and the table of items not done holds
//! at most [`MAX_ROWS`] rows and says how many it left out. The table's filter can be set from the
//! address, `page.html#status=timeout&q=example.com`, to share a view.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::batch::metrics::host_label;
use crate::batch::report::ReportEntry;
use crate::batch::status::Status;
use crate::batch::timestamp::{format_utc_millis, parse_utc_millis};
use crate::redact::redact_credentials;

use super::tally::Outcome;

/// Rows of the table of items not done.
pub const MAX_ROWS: usize = 1000;
/// Hosts shown in the bars per host and in the slowest hosts.
const HOSTS_SHOWN: usize = 20;
const SLOWEST_SHOWN: usize = 10;
/// Hosts whose times are kept; items of further hosts are left out of the slowest hosts.
const MAX_TIMED_HOSTS: usize = 10_000;
/// Time buckets kept while reading: past this many, they merge pairwise (twice as wide).
const MAX_BUCKETS: usize = 1024;
/// Columns of the chart over time.
const COLUMNS: u64 = 60;
/// The longest error shown in a row, in characters.
const ERROR_WIDTH: usize = 300;

/// One row of the table: an item not done.
#[derive(Debug)]
struct Row {
    status: &'static str,
    url: String,
    path: String,
    error: String,
    finished_at: String,
}

/// What the page shows beyond the summary's counts, gathered as outcomes are recorded.
#[derive(Debug, Default)]
pub struct PageTally {
    rows: Vec<Row>,
    /// Items not done that have no row.
    rows_left_out: u64,
    /// Per host: items tried, the sum and the longest of their times (ms).
    times: HashMap<String, (u64, u64, u64)>,
    /// Items done and not done per bucket of `bucket_ms` of finished_at (ms since the epoch / width).
    buckets: BTreeMap<u64, (u64, u64)>,
    bucket_ms: u64,
    /// Outcomes without a finished_at (lines of an older watchdog, items never tried).
    untimed: u64,
}

impl PageTally {
    /// Counts an outcome of a report.
    pub fn record(&mut self, entry: &ReportEntry) {
        let done = entry.status.is_done();
        if !done {
            self.row(Row {
                status: entry.status.as_str(),
                url: redact_credentials(&entry.url),
                path: entry.path.clone().unwrap_or_default(),
                error: entry
                    .error
                    .as_deref()
                    .map(redact_credentials)
                    .unwrap_or_default(),
                finished_at: entry.finished_at.clone().unwrap_or_default(),
            });
        }
        if entry.attempts > 0 {
            let host = host_label(&entry.url);
            let len = self.times.len();
            let time = match self.times.get_mut(&host) {
                Some(time) => Some(time),
                None if len < MAX_TIMED_HOSTS => Some(self.times.entry(host).or_default()),
                None => None,
            };
            if let Some((items, sum, longest)) = time {
                *items += 1;
                *sum += entry.elapsed_ms;
                *longest = (*longest).max(entry.elapsed_ms);
            }
        }
        match entry.finished_at.as_deref().and_then(parse_utc_millis) {
            Some(at) => self.count_at(at, done),
            None => self.untimed += 1,
        }
    }

    /// Counts an item of the list that no report mentions.
    pub fn record_never_tried(&mut self, url: &str, path: &str) {
        self.row(Row {
            status: "missing",
            url: redact_credentials(url),
            path: path.to_string(),
            error: "no report mentions it".to_string(),
            finished_at: String::new(),
        });
        self.untimed += 1;
    }

    fn row(&mut self, row: Row) {
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        } else {
            self.rows_left_out += 1;
        }
    }

    fn count_at(&mut self, at_ms: u64, done: bool) {
        if self.bucket_ms == 0 {
            self.bucket_ms = 1000;
        }
        let bucket = self.buckets.entry(at_ms / self.bucket_ms).or_default();
        if done {
            bucket.0 += 1;
        } else {
            bucket.1 += 1;
        }
        while self.buckets.len() > MAX_BUCKETS {
            let old = std::mem::take(&mut self.buckets);
            for (key, (d, n)) in old {
                let merged = self.buckets.entry(key / 2).or_default();
                merged.0 += d;
                merged.1 += n;
            }
            self.bucket_ms *= 2;
        }
    }

    /// The chart's columns: `(start ms, done, not done)`, at most [`COLUMNS`], spanning the first to
    /// the last finished_at.
    fn columns(&self) -> Vec<(u64, u64, u64)> {
        let (Some((&first, _)), Some((&last, _))) = (
            self.buckets.first_key_value(),
            self.buckets.last_key_value(),
        ) else {
            return Vec::new();
        };
        let per_column = (last - first) / COLUMNS + 1;
        let mut columns: Vec<(u64, u64, u64)> = (0..=(last - first) / per_column)
            .map(|i| ((first + i * per_column) * self.bucket_ms, 0, 0))
            .collect();
        for (key, (d, n)) in &self.buckets {
            if let Some(column) = columns.get_mut(((key - first) / per_column) as usize) {
                column.1 += d;
                column.2 += n;
            }
        }
        columns
    }
}

/// `text` safe in HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// `n` with thousands separated by a thin space, for reading.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// The CSS class of a status's bar.
fn tone(status: &str) -> &'static str {
    match status {
        "ok" => "ok",
        "skipped" => "skip",
        "missing" => "miss",
        _ => "fail",
    }
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:2px 6px;vertical-align:top}
tr:nth-child(even){background:#f4f4f4}
.bars td.label{width:14em;white-space:nowrap}.bars td.n{width:6em;text-align:right}
.track{background:#eee;height:14px;display:flex}
.seg{height:14px}.ok{background:#2e8b57}.skip{background:#8fbc8f}.fail{background:#d9534f}
.miss{background:#999}
.chart{display:flex;align-items:flex-end;height:140px;gap:1px;border-bottom:1px solid #888}
.col{flex:1;display:flex;flex-direction:column-reverse;min-width:2px}
.axis{display:flex;justify-content:space-between;color:#666;font-size:12px}
.note{color:#666}td.err{font-family:monospace;font-size:12px;word-break:break-all}
td.url{word-break:break-all}";

const SCRIPT: &str = "\
(function(){
var q=document.getElementById('filter'),s=document.getElementById('status-filter'),
shown=document.getElementById('shown'),rows=document.querySelectorAll('#items tbody tr');
function apply(){var t=q.value.toLowerCase(),w=s.value,n=0;
for(var i=0;i<rows.length;i++){var r=rows[i];
var keep=(!w||r.getAttribute('data-status')===w)&&(!t||r.textContent.toLowerCase().indexOf(t)>=0);
r.hidden=!keep;if(keep)n++;}
shown.textContent=String(n);}
var h=new URLSearchParams(location.hash.slice(1));
if(h.get('q'))q.value=h.get('q');if(h.get('status'))s.value=h.get('status');
q.addEventListener('input',apply);s.addEventListener('change',apply);apply();
})();";

/// One row of a bar chart: a label, segments `(class, value)` on a track as long as `max`, a total.
fn bar_row(out: &mut String, label: &str, data: &str, segments: &[(&str, u64)], max: u64) {
    let total: u64 = segments.iter().map(|(_, v)| v).sum();
    let _ = write!(
        out,
        "<tr class=\"bar\" {data}><td class=\"label\">{}</td><td><div class=\"track\">",
        escape(label)
    );
    for (class, value) in segments.iter().filter(|(_, v)| *v > 0) {
        let width = *value as f64 * 100.0 / max.max(1) as f64;
        let _ = write!(
            out,
            "<div class=\"seg {class}\" style=\"width:{width:.2}%\" title=\"{value}\"></div>"
        );
    }
    let _ = write!(out, "</div></td><td class=\"n\">{}</td></tr>", count(total));
}

impl Outcome {
    /// The page (see the module documentation); `generated` is when, for its header.
    pub fn render_html(&self, generated: &str) -> String {
        let page = self.page.as_deref();
        let mut out = String::with_capacity(64 * 1024);
        out.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
             style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
             <meta name=\"viewport\" content=\"width=device-width\">\
             <title>watchdog report</title><style>",
        );
        out.push_str(STYLE);
        out.push_str("</style></head><body>\n<h1>watchdog report</h1>\n");
        let _ = writeln!(
            out,
            "<p id=\"summary\"><b id=\"items\">{}</b> items: <b id=\"done\">{}</b> done, \
             <b id=\"missing\">{}</b> not done; {} downloaded; from {} report{} ({} lines{}), \
             written {}.</p>",
            count(self.items()),
            count(self.done()),
            count(self.missing()),
            crate::protocol::bytes_for_people(self.bytes),
            self.reports,
            if self.reports == 1 { "" } else { "s" },
            count(self.lines),
            if self.bad_lines > 0 {
                format!(", {} unreadable", count(self.bad_lines))
            } else {
                String::new()
            },
            escape(generated),
        );
        // By status.
        let mut statuses: Vec<(&str, u64)> = Status::ALL
            .iter()
            .map(|s| (s.as_str(), self.count(*s)))
            .filter(|(_, n)| *n > 0)
            .collect();
        if self.never_tried() > 0 {
            statuses.push(("missing", self.never_tried()));
        }
        let max = statuses.iter().map(|(_, n)| *n).max().unwrap_or(0);
        out.push_str("<h2>By status</h2>\n<table class=\"bars\" id=\"by-status\">");
        for (status, n) in &statuses {
            bar_row(
                &mut out,
                status,
                &format!("data-status=\"{status}\""),
                &[(tone(status), *n)],
                max,
            );
        }
        out.push_str("</table>\n");
        // By host.
        let hosts = self.hosts_sorted();
        let max = hosts.first().map_or(0, |(_, c)| c.items);
        let _ = write!(
            out,
            "<h2>By host</h2>\n<p class=\"note\">Done <span class=\"seg ok\">&nbsp;&nbsp;</span> \
             and not done <span class=\"seg fail\">&nbsp;&nbsp;</span>, the {HOSTS_SHOWN} hosts with \
             the most items{}.</p>\n<table class=\"bars\" id=\"by-host\">",
            if hosts.len() > HOSTS_SHOWN || self.other_hosts.items > 0 {
                format!(
                    " ({} more hosts not shown)",
                    count(hosts.len().saturating_sub(HOSTS_SHOWN) as u64)
                        + if self.other_hosts.items > 0 { "+" } else { "" }
                )
            } else {
                String::new()
            }
        );
        for (host, c) in hosts.iter().take(HOSTS_SHOWN) {
            bar_row(
                &mut out,
                host,
                "",
                &[("ok", c.done), ("fail", c.missing)],
                max,
            );
        }
        out.push_str("</table>\n");
        if let Some(page) = page {
            render_time(&mut out, page);
            render_slowest(&mut out, page);
            render_rows(&mut out, page, self.missing());
        }
        out.push_str("<script>");
        out.push_str(SCRIPT);
        out.push_str("</script>\n</body></html>\n");
        out
    }
}

fn render_time(out: &mut String, page: &PageTally) {
    out.push_str("<h2>Over time</h2>\n");
    let columns = page.columns();
    let (Some(first), Some(last)) = (columns.first(), columns.last()) else {
        out.push_str("<p class=\"note\">No outcome has a finished_at time.</p>\n");
        return;
    };
    let width = columns.get(1).map_or(page.bucket_ms, |c| c.0 - first.0);
    let _ = write!(
        out,
        "<p class=\"note\">Items done <span class=\"seg ok\">&nbsp;&nbsp;</span> and not done \
         <span class=\"seg fail\">&nbsp;&nbsp;</span> by when they ended, {} per column{}.</p>\n\
         <div class=\"chart\" id=\"over-time\">",
        crate::batch::status_line::compact_duration(std::time::Duration::from_millis(width)),
        if page.untimed > 0 {
            format!(
                "; {} outcomes have no time and are not shown",
                count(page.untimed)
            )
        } else {
            String::new()
        }
    );
    let max = columns.iter().map(|c| c.1 + c.2).max().unwrap_or(0).max(1);
    for (start, done, not_done) in &columns {
        let _ = write!(
            out,
            "<div class=\"col\" title=\"{}: {done} done, {not_done} not done\">",
            format_utc_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(*start))
        );
        for (class, n) in [("ok", done), ("fail", not_done)] {
            if *n > 0 {
                let _ = write!(
                    out,
                    "<div class=\"seg {class}\" style=\"height:{:.1}px\"></div>",
                    *n as f64 * 140.0 / max as f64
                );
            }
        }
        out.push_str("</div>");
    }
    let stamp =
        |ms: u64| format_utc_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms));
    let _ = write!(
        out,
        "</div>\n<div class=\"axis\"><span>{}</span><span>{}</span></div>\n",
        stamp(first.0),
        stamp(last.0 + width)
    );
}

fn render_slowest(out: &mut String, page: &PageTally) {
    let mut hosts: Vec<(&str, u64, u64, u64)> = page
        .times
        .iter()
        .map(|(h, (n, sum, longest))| (h.as_str(), *n, sum / (*n).max(1), *longest))
        .collect();
    hosts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    out.push_str(
        "<h2>Slowest hosts</h2>\n<p class=\"note\">By the mean time of an item (elapsed_ms, from \
         its first attempt to its outcome).</p>\n<table id=\"slowest\"><thead><tr><th>host</th>\
         <th>items</th><th>mean</th><th>longest</th></tr></thead><tbody>",
    );
    for (host, n, mean, longest) in hosts.iter().take(SLOWEST_SHOWN) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.2} s</td><td>{:.2} s</td></tr>",
            escape(host),
            count(*n),
            *mean as f64 / 1000.0,
            *longest as f64 / 1000.0
        );
    }
    out.push_str("</tbody></table>\n");
}

fn render_rows(out: &mut String, page: &PageTally, not_done: u64) {
    let mut statuses: Vec<&str> = page.rows.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let _ = write!(
        out,
        "<h2>Items not done</h2>\n<p><label>Filter <input id=\"filter\" type=\"search\" \
         placeholder=\"URL, path or error\"></label> <label>status <select id=\"status-filter\">\
         <option value=\"\">all</option>{}</select></label> <span class=\"note\"><span \
         id=\"shown\">{}</span> shown of {} rows",
        statuses
            .iter()
            .map(|s| format!("<option>{s}</option>"))
            .collect::<String>(),
        page.rows.len(),
        page.rows.len(),
    );
    if page.rows_left_out > 0 || not_done > page.rows.len() as u64 {
        let left_out = page.rows_left_out.max(not_done - page.rows.len() as u64);
        let _ = write!(
            out,
            "; <span id=\"left-out\">{}</span> more items not done are not listed here (the first \
             {MAX_ROWS} are; watchdog report --failed lists them all)",
            count(left_out)
        );
    }
    out.push_str(
        "</span></p>\n<table id=\"items\"><thead><tr><th>status</th><th>URL</th><th>path</th>\
         <th>error</th><th>finished</th></tr></thead><tbody>\n",
    );
    for row in &page.rows {
        let error: String = if row.error.chars().count() > ERROR_WIDTH {
            row.error.chars().take(ERROR_WIDTH - 1).collect::<String>() + "…"
        } else {
            row.error.clone()
        };
        let _ = writeln!(
            out,
            "<tr data-status=\"{}\"><td>{}</td><td class=\"url\">{}</td><td>{}</td>\
             <td class=\"err\">{}</td><td>{}</td></tr>",
            row.status,
            row.status,
            escape(&row.url),
            escape(&row.path),
            escape(&error),
            escape(&row.finished_at)
        );
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, status: Status, at: &str, elapsed_ms: u64) -> ReportEntry {
        ReportEntry {
            finished_at: Some(at.to_string()),
            attempts: 1,
            elapsed_ms,
            error: (!status.is_done()).then(|| "<b>bad</b> & worse".to_string()),
            ..ReportEntry::new(url, status)
        }
    }

    #[test]
    fn the_page_escapes_what_it_shows_and_bounds_its_rows() {
        let mut outcome = Outcome {
            page: Some(Box::default()),
            ..Outcome::default()
        };
        outcome.record(&entry(
            "http://a/1",
            Status::Ok,
            "2026-12-02T02:00:00.000Z",
            100,
        ));
        outcome.record(&entry(
            "http://u:pw@b/x?<script>",
            Status::Timeout,
            "2026-12-02T02:10:00.000Z",
            9000,
        ));
        for i in 0..MAX_ROWS + 5 {
            outcome.record(&entry(
                &format!("http://c/{i}"),
                Status::HttpError,
                "2026-12-02T02:05:00.000Z",
                10,
            ));
        }
        let html = outcome.render_html("now");
        assert!(!html.contains("<script>\""), "{html}");
        assert!(html.contains("http://***@b/x?&lt;script&gt;"));
        assert!(html.contains("&lt;b&gt;bad&lt;/b&gt; &amp; worse"));
        assert!(!html.contains("pw"));
        assert_eq!(html.matches("<tr data-status=").count(), MAX_ROWS);
        assert!(
            html.contains("<span id=\"left-out\">6</span> more items not done"),
            "{html}"
        );
        assert_eq!(html.matches("class=\"bar\" data-status=").count(), 3);
        // Slowest first.
        let slowest = html.split("id=\"slowest\"").nth(1).unwrap_or_default();
        assert!(slowest.find(">b<") < slowest.find(">a<"), "{slowest}");
        assert!(!html.contains("http://") || !html.contains("src=\"http"));
    }

    #[test]
    fn time_buckets_stay_bounded_and_keep_every_count() {
        let mut page = PageTally::default();
        let start = 1_796_000_000_000u64;
        for i in 0..5000u64 {
            page.count_at(start + i * 7_000, i % 3 != 0);
        }
        assert!(page.buckets.len() <= MAX_BUCKETS);
        let columns = page.columns();
        assert!(columns.len() as u64 <= COLUMNS, "{}", columns.len());
        let (done, not_done) = columns.iter().fold((0, 0), |(d, n), c| (d + c.1, n + c.2));
        assert_eq!((done, not_done), (3333, 1667));
    }
}
