//! What to do with each line of the list, decided before any process starts.
//!
//! The runner reads the list and asks a [`Planner`] about every entry. The answer folds together the
//! pure steps of batch mode in the order that matters: a bad line becomes its `invalid` report entry;
//! the item's name is made safe and unique, by every shard for every item, so that shards writing to
//! one directory agree on all names and never give one name to two URLs; the shard keeps only its own
//! items; a URL seen before is a `skipped` duplicate; a name an earlier run finished is a candidate for
//! skipping, which the runner confirms with [`super::report::is_done`] where slow file I/O cannot stall
//! it.

use std::path::{Component, Path, PathBuf};

use super::allocate::{Allocation, NameAllocator};
use super::list::{Item, ListEntry};
use super::report::{DoneIndex, Expected, ReportEntry, Status};
use super::shard::Shard;
use crate::names;

/// The runner's next step for one list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Another shard's item: nothing to do, nothing to report.
    NotMine,
    /// Nothing to download; write this entry to the report (`invalid` lines, duplicates, conflicts).
    Report(ReportEntry),
    /// Download `item` to `path` (relative to the output directory).
    Fetch {
        line_no: u64,
        item: Item,
        path: String,
    },
    /// An earlier run finished this item: if the file at `path` passes
    /// [`super::report::is_done`] with `expected`, report it `skipped`, otherwise fetch it.
    CheckDone {
        line_no: u64,
        item: Item,
        path: String,
        expected: Expected,
    },
}

/// Turns list entries into [`Plan`]s; holds the name allocator and the resume index.
pub struct Planner {
    shard: Shard,
    names: NameAllocator,
    done: DoneIndex,
}

impl Planner {
    /// `out_dir` and `report` as given on the command line: when the report lies inside the output
    /// directory its name is kept away from downloads. `done` is the previous runs' report, read back
    /// (empty for a fresh run).
    pub fn new(shard: Shard, out_dir: &Path, report: &Path, done: DoneIndex) -> Planner {
        let mut names = NameAllocator::new();
        if let Ok(inside) = without_dot(report).strip_prefix(without_dot(out_dir)) {
            if let Some(inside) = inside.to_str() {
                names.reserve(inside);
            }
        }
        Planner { shard, names, done }
    }

    pub fn plan(&mut self, entry: ListEntry) -> Plan {
        let line_no = entry.line_no;
        let item = match entry.item {
            Ok(item) => item,
            Err(invalid) => {
                // Every shard reads every line; one of them reports a bad line, chosen by its text.
                return if self.shard.owns(&invalid.text) {
                    Plan::Report(ReportEntry::invalid(line_no, &invalid))
                } else {
                    Plan::NotMine
                };
            }
        };
        let mine = self.shard.owns(&item.url);
        let requested = match names::output_name(&item.url, item.path.as_deref()) {
            Ok(name) => name,
            Err(_) if !mine => return Plan::NotMine,
            Err(err) => return Plan::Report(refused(line_no, &item, &err.reason)),
        };
        // Other shards' items take their names too: the shards may share the output directory.
        let allocation = self.names.allocate(&item.url, &requested);
        if !mine {
            return Plan::NotMine;
        }
        let path = match allocation {
            Allocation::Assigned(path) => path,
            Allocation::Duplicate(path) => {
                return Plan::Report(ReportEntry {
                    path: Some(path),
                    error: Some(format!("line {line_no}: duplicate of an earlier line")),
                    ..ReportEntry::new(&item.url, Status::Skipped)
                })
            }
            Allocation::Conflict(reason) => return Plan::Report(refused(line_no, &item, &reason)),
        };
        match self.done.expected(&item.url, &path) {
            Some(expected) if agrees_with_list(&expected, item.sha256.as_deref()) => {
                Plan::CheckDone {
                    line_no,
                    item,
                    path,
                    expected,
                }
            }
            _ => Plan::Fetch {
                line_no,
                item,
                path,
            },
        }
    }

    /// Approximate heap memory of the allocator and the resume index, in bytes.
    pub fn heap_bytes(&self) -> usize {
        self.names.heap_bytes() + self.done.heap_bytes()
    }
}

/// `path` without `.` components, so that `./out/r.jsonl` is seen inside `out` and `r.jsonl` inside `.`.
fn without_dot(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn refused(line_no: u64, item: &Item, reason: &str) -> ReportEntry {
    ReportEntry {
        error: Some(format!("line {line_no}: {reason}")),
        ..ReportEntry::new(&item.url, Status::Invalid)
    }
}

/// An earlier download counts only if it is what the list asks for now.
fn agrees_with_list(expected: &Expected, list_sha256: Option<&str>) -> bool {
    match (list_sha256, expected.sha256_prefix) {
        (Some(hex), Some(prefix)) => {
            u64::from_str_radix(hex.get(..16).unwrap_or(""), 16).is_ok_and(|p| p == prefix)
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::list::ListReader;
    use std::io::Cursor;

    fn plans(planner: &mut Planner, list: &str) -> Vec<Plan> {
        ListReader::new(Cursor::new(list.as_bytes().to_vec()))
            .filter_map(Result::ok)
            .map(|entry| planner.plan(entry))
            .collect()
    }

    fn fresh(shard: Shard) -> Planner {
        Planner::new(
            shard,
            Path::new("out"),
            Path::new("out/report.jsonl"),
            DoneIndex::default(),
        )
    }

    #[test]
    fn every_line_gets_exactly_one_plan() {
        let mut planner = fresh(Shard::ALL);
        let got = plans(
            &mut planner,
            "https://h/a.jpg\nhttps://h/a.jpg\nftp://h/x\nhttps://h2/a.jpg\nhttps://h/report.jsonl\n\
             https://h/f\tf\nhttps://h/g\tf/g.jpg\n",
        );
        assert_eq!(got.len(), 7);
        assert!(matches!(&got[0], Plan::Fetch { path, line_no: 1, .. } if path == "a.jpg"));
        assert!(
            matches!(&got[1], Plan::Report(e) if e.status == Status::Skipped
            && e.path.as_deref() == Some("a.jpg"))
        );
        assert!(matches!(&got[2], Plan::Report(e) if e.status == Status::Invalid));
        assert!(
            matches!(&got[3], Plan::Fetch { path, .. } if path.starts_with("a-") && path.ends_with(".jpg"))
        );
        assert!(matches!(&got[4], Plan::Fetch { path, .. } if path != "report.jsonl"));
        assert!(matches!(&got[5], Plan::Fetch { path, .. } if path == "f"));
        assert!(
            matches!(&got[6], Plan::Report(e) if e.status == Status::Invalid
            && e.error.as_deref().is_some_and(|m| m.contains("not a directory")))
        );
    }

    #[test]
    fn the_report_name_is_reserved_wherever_it_is_given() {
        for (out, report, reserved) in [
            ("out", "out/report.jsonl", "report.jsonl"),
            (".", "report.jsonl", "report.jsonl"),
            (".", "./logs/r.jsonl", "logs/r.jsonl"),
            ("./out", "out/sub/r.jsonl", "sub/r.jsonl"),
        ] {
            let mut planner = Planner::new(
                Shard::ALL,
                Path::new(out),
                Path::new(report),
                DoneIndex::default(),
            );
            let list = format!("https://h/x\t{reserved}\n");
            let got = plans(&mut planner, &list);
            assert!(
                matches!(&got[0], Plan::Fetch { path, .. } if path != reserved),
                "{out} {report}: {got:?}"
            );
        }
    }

    #[test]
    fn shards_split_items_and_bad_lines_without_overlap() {
        let mut list = String::new();
        for i in 0..3000 {
            list.push_str(&format!("https://h/{i}.jpg\n"));
            if i % 10 == 0 {
                list.push_str(&format!("bad line {i}\n"));
            }
        }
        let mut seen = 0;
        for index in 0..4 {
            let mut planner = fresh(Shard { index, count: 4 });
            seen += plans(&mut planner, &list)
                .iter()
                .filter(|p| !matches!(p, Plan::NotMine))
                .count();
        }
        assert_eq!(seen, 3000 + 300);
    }

    #[test]
    fn finished_items_are_checked_not_fetched() -> std::io::Result<()> {
        let sha = "ab".repeat(32);
        let done = ReportEntry {
            path: Some("a.jpg".into()),
            bytes: Some(3),
            sha256: Some(sha.clone()),
            ..ReportEntry::new("https://h/a.jpg", Status::Ok)
        };
        let report = format!("{}\n", done.to_json_line());
        let index = || DoneIndex::read(Cursor::new(report.clone()));
        let mut planner = Planner::new(Shard::ALL, Path::new("o"), Path::new("r.jsonl"), index()?);
        let got = plans(&mut planner, "https://h/a.jpg\nhttps://h/b.jpg\n");
        assert!(matches!(&got[0], Plan::CheckDone { expected, .. } if expected.bytes == 3));
        assert!(matches!(&got[1], Plan::Fetch { .. }));
        // The list now asks for other content: fetch again.
        let mut planner = Planner::new(Shard::ALL, Path::new("o"), Path::new("r.jsonl"), index()?);
        let list = format!(
            "{{\"url\":\"https://h/a.jpg\",\"sha256\":\"{}\"}}\n{{\"url\":\"https://h/a.jpg\",\"path\":\"x/\",\"sha256\":\"{sha}\"}}\n",
            "cd".repeat(32)
        );
        let got = plans(&mut planner, &list);
        assert!(matches!(&got[0], Plan::Fetch { .. }));
        assert!(matches!(&got[1], Plan::Fetch { path, .. } if path == "x/a.jpg"));
        Ok(())
    }
}
