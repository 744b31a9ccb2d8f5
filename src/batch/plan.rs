//! What to do with each line of the list, decided before any process starts.
//!
//! The runner reads the list and asks a [`Planner`] about every entry. The answer folds together the
//! pure steps of batch mode in the order that matters: a bad line becomes its `invalid` report entry;
//! the item's name is made safe and unique, by every shard for every item, so that shards writing to
//! one directory agree on all names and never give one name to two URLs; the shard keeps only its own
//! items; a URL seen before is a `skipped` duplicate; a name an earlier run finished is a candidate for
//! skipping, which the runner confirms with [`super::verify::is_done`] where slow file I/O cannot stall
//! it.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::allocate::{Allocation, NameAllocator};
use super::list::{Item, ListEntry};
use super::report::ReportEntry;
use super::resume::{DoneIndex, Expected};
use super::shard::Shard;
use super::status::Status;
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
    /// [`super::verify::is_done`] with `expected`, report it `skipped`, otherwise fetch it.
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
    /// (empty for a fresh run). The name allocator keeps its index in `out_dir` once the list is long.
    pub fn new(
        shard: Shard,
        out_dir: &Path,
        report: &Path,
        done: DoneIndex,
    ) -> io::Result<Planner> {
        Planner::with_names(shard, out_dir, report, done, NameAllocator::new(out_dir))
    }

    /// Like [`Planner::new`], with the given (empty) name allocator.
    pub fn with_names(
        shard: Shard,
        out_dir: &Path,
        report: &Path,
        done: DoneIndex,
        names: NameAllocator,
    ) -> io::Result<Planner> {
        let mut planner = Planner { shard, names, done };
        planner.reserve(out_dir, report)?;
        Ok(planner)
    }

    /// Keeps `file`'s name away from downloads when it lies inside `out_dir`, as a report there is.
    pub fn reserve(&mut self, out_dir: &Path, file: &Path) -> io::Result<()> {
        if let Ok(inside) = without_dot(file).strip_prefix(without_dot(out_dir)) {
            if let Some(inside) = inside.to_str().filter(|i| !i.is_empty()) {
                self.names.reserve(inside)?;
            }
        }
        Ok(())
    }

    /// The plan for one list entry. Fails only when the name allocator's or the resume index's file
    /// on disk cannot be written or read.
    pub fn plan(&mut self, entry: ListEntry) -> io::Result<Plan> {
        let line_no = entry.line_no;
        let item = match entry.item {
            Ok(item) => item,
            Err(invalid) => {
                // Every shard reads every line; one of them reports a bad line, chosen by its text.
                return Ok(if self.shard.owns(&invalid.text) {
                    Plan::Report(ReportEntry::invalid(line_no, &invalid))
                } else {
                    Plan::NotMine
                });
            }
        };
        let mine = self.shard.owns(&item.url);
        let requested = match names::output_name(&item.url, item.path.as_deref()) {
            Ok(name) => name,
            Err(_) if !mine => return Ok(Plan::NotMine),
            Err(err) => return Ok(Plan::Report(refused(line_no, &item, &err.reason))),
        };
        // Other shards' items take their names too: the shards may share the output directory.
        let allocation = self.names.allocate(&item.url, &requested)?;
        if !mine {
            return Ok(Plan::NotMine);
        }
        let path = match allocation {
            Allocation::Assigned(path) => path,
            Allocation::Duplicate(path) => {
                return Ok(Plan::Report(ReportEntry {
                    path: Some(path),
                    error: Some(format!("line {line_no}: duplicate of an earlier line")),
                    extra: item.extra,
                    ..ReportEntry::new(&item.url, Status::Skipped)
                }))
            }
            Allocation::Conflict(reason) => {
                return Ok(Plan::Report(refused(line_no, &item, &reason)))
            }
        };
        Ok(match self.done.expected(&item.url, &path)? {
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
        })
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
        extra: item.extra.clone(),
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
    use std::collections::{HashMap, HashSet};
    use std::io::Cursor;

    fn plans(planner: &mut Planner, list: &str) -> io::Result<Vec<Plan>> {
        ListReader::new(Cursor::new(list.as_bytes().to_vec()))
            .filter_map(Result::ok)
            .map(|entry| planner.plan(entry))
            .collect()
    }

    /// A planner for a fresh run into `out` (which the index would move to, and these lists are too
    /// short for).
    fn fresh(shard: Shard) -> io::Result<Planner> {
        let out = Path::new("out");
        Planner::new(
            shard,
            out,
            Path::new("out/report.jsonl"),
            DoneIndex::new(out),
        )
    }

    #[test]
    fn every_line_gets_exactly_one_plan() -> io::Result<()> {
        let mut planner = fresh(Shard::ALL)?;
        let got = plans(
            &mut planner,
            "https://h/a.jpg\nhttps://h/a.jpg\nftp://h/x\nhttps://h2/a.jpg\nhttps://h/report.jsonl\n\
             https://h/f\tf\nhttps://h/g\tf/g.jpg\n",
        )?;
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
        Ok(())
    }

    #[test]
    fn the_report_name_is_reserved_wherever_it_is_given() -> io::Result<()> {
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
                DoneIndex::new(Path::new(out)),
            )?;
            let list = format!("https://h/x\t{reserved}\n");
            let got = plans(&mut planner, &list)?;
            assert!(
                matches!(&got[0], Plan::Fetch { path, .. } if path != reserved),
                "{out} {report}: {got:?}"
            );
        }
        Ok(())
    }

    #[test]
    fn shards_split_items_and_bad_lines_without_overlap() -> io::Result<()> {
        let mut list = String::new();
        for i in 0..3000 {
            list.push_str(&format!("https://h/{i}.jpg\n"));
            if i % 10 == 0 {
                list.push_str(&format!("bad line {i}\n"));
            }
        }
        let mut seen = 0;
        for index in 0..4 {
            let mut planner = fresh(Shard { index, count: 4 })?;
            seen += plans(&mut planner, &list)?
                .iter()
                .filter(|p| !matches!(p, Plan::NotMine))
                .count();
        }
        assert_eq!(seen, 3000 + 300);
        Ok(())
    }

    /// With the name index on disk from early on, shards still agree on every name: no name is given
    /// to two URLs, and every repeated URL is a duplicate of its first line.
    #[test]
    fn shards_agree_on_names_when_the_index_is_on_disk() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut list = String::new();
        for i in 0..2000 {
            // Many URLs asking for a few names, and every tenth URL twice.
            list.push_str(&format!(
                "https://h{}/img.jpg?id={i}\tp{}.jpg\n",
                i % 3,
                i % 5
            ));
            if i % 10 == 0 {
                list.push_str(&format!(
                    "https://h{}/img.jpg?id={i}\tp{}.jpg\n",
                    i % 3,
                    i % 5
                ));
            }
        }
        let mut owner = HashMap::new();
        let mut duplicates = 0;
        for index in 0..3 {
            let names = NameAllocator::with_memory_entries(dir.path(), 100);
            let mut planner = Planner::with_names(
                Shard { index, count: 3 },
                dir.path(),
                &dir.path().join("report.jsonl"),
                DoneIndex::new(dir.path()),
                names,
            )?;
            for plan in plans(&mut planner, &list)? {
                match plan {
                    Plan::Fetch { item, path, .. } => {
                        assert!(owner.insert(path.clone(), item.url).is_none(), "{path}")
                    }
                    Plan::Report(entry) => {
                        assert_eq!(entry.status, Status::Skipped, "{entry:?}");
                        let path = entry.path.unwrap_or_default();
                        assert_eq!(owner.get(&path), Some(&entry.url));
                        duplicates += 1;
                    }
                    Plan::NotMine => {}
                    Plan::CheckDone { .. } => panic!("nothing is done yet"),
                }
            }
        }
        assert_eq!(owner.len(), 2000);
        assert_eq!(duplicates, 200);
        assert_eq!(owner.values().collect::<HashSet<_>>().len(), 2000);
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
        Ok(())
    }

    #[test]
    fn finished_items_are_checked_not_fetched() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let sha = "ab".repeat(32);
        let done = ReportEntry {
            path: Some("a.jpg".into()),
            bytes: Some(3),
            sha256: Some(sha.clone()),
            ..ReportEntry::new("https://h/a.jpg", Status::Ok)
        };
        let report = format!("{}\n", done.to_json_line());
        let index = || DoneIndex::read(Cursor::new(report.clone()), dir.path());
        let mut planner = Planner::new(Shard::ALL, Path::new("o"), Path::new("r.jsonl"), index()?)?;
        let got = plans(&mut planner, "https://h/a.jpg\nhttps://h/b.jpg\n")?;
        assert!(matches!(&got[0], Plan::CheckDone { expected, .. } if expected.bytes == 3));
        assert!(matches!(&got[1], Plan::Fetch { .. }));
        // The list now asks for other content: fetch again.
        let mut planner = Planner::new(Shard::ALL, Path::new("o"), Path::new("r.jsonl"), index()?)?;
        let list = format!(
            "{{\"url\":\"https://h/a.jpg\",\"sha256\":\"{}\"}}\n{{\"url\":\"https://h/a.jpg\",\"path\":\"x/\",\"sha256\":\"{sha}\"}}\n",
            "cd".repeat(32)
        );
        let got = plans(&mut planner, &list)?;
        assert!(matches!(&got[0], Plan::Fetch { .. }));
        assert!(matches!(&got[1], Plan::Fetch { path, .. } if path == "x/a.jpg"));
        Ok(())
    }
}
