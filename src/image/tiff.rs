//! TIFF: a header pointing at the first IFD (image file directory), IFDs chained by offsets, and
//! entries whose larger values, strips and tiles lie at declared offsets anywhere in the file. The file
//! is whole when every IFD of the chain (and the Exif, GPS, interoperability and single sub-IFDs they
//! point to) has been read, and every byte a value or a strip or tile declares has arrived.
//!
//! The stream goes one way, so a structure is read when the stream reaches its offset: the walker
//! keeps a list of reads to come, ordered by offset, and the furthest offset anything requires. A
//! pointer back to bytes already passed cannot be followed without keeping the file; what it points
//! at is known to have arrived, and the check goes as far as the offsets allow. The strip (or tile)
//! offset and byte count tables are held until both are known, to pair them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Refusal, Want};

/// More IFDs than this is a loop or an attack, not an image.
const MAX_IFDS: usize = 4096;
/// Strip tables longer than this are not held; their extent then goes unchecked.
const MAX_STRIPS: u32 = 1 << 20;

const STRIP_OFFSETS: u16 = 273;
const STRIP_BYTE_COUNTS: u16 = 279;
const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;
const SUB_IFDS: u16 = 330;
const EXIF_IFD: u16 = 34665;
const GPS_IFD: u16 = 34853;
const INTEROP_IFD: u16 = 40965;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const IFD: u16 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Table {
    Offsets,
    Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ReadKind {
    Ifd,
    Table {
        ifd: usize,
        table: Table,
        elem: usize,
        count: u32,
    },
}

/// Ordered by offset first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Read {
    at: u64,
    kind: ReadKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// 42 and the first IFD's offset (after "II" or "MM").
    Header,
    /// Passing over bytes up to the next read.
    Seek(ReadKind),
    /// An IFD's entry count.
    EntryCount,
    /// One 12-byte entry; `left` more after it.
    Entry { left: u16 },
    /// The offset of the next IFD.
    NextIfd,
    /// Passing over a strip table, decoding it.
    Table { ifd: usize, table: Table },
    /// Passing over the bytes up to the furthest one required.
    Tail,
}

/// An IFD's strip (or tile) tables, until both are known and paired.
#[derive(Default)]
struct Strips {
    offsets: Option<Vec<u32>>,
    counts: Option<Vec<u32>>,
}

/// A strip table being decoded as it streams by.
struct TableRead {
    elem: usize,
    partial: [u8; 4],
    have: usize,
    values: Vec<u32>,
}

pub struct Tiff {
    little: bool,
    state: State,
    /// Reads to come, the nearest first.
    pending: BinaryHeap<Reverse<Read>>,
    /// The furthest offset a declared value, strip or tile requires.
    need: u64,
    strips: Vec<Strips>,
    table: Option<TableRead>,
}

impl Tiff {
    pub const START: Want = Want::Bytes(6);

    pub fn new(little: bool) -> Tiff {
        Tiff {
            little,
            state: State::Header,
            pending: BinaryHeap::new(),
            need: 0,
            strips: Vec::new(),
            table: None,
        }
    }

    fn u16(&self, b: &[u8]) -> u16 {
        let b = [b[0], b[1]];
        if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    }

    fn u32(&self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    }

    pub fn next(&mut self, got: &[u8], pos: u64) -> Result<Want, Refusal> {
        match self.state {
            State::Header => {
                if self.u16(got) != 42 {
                    return Err("not a TIFF header (42)");
                }
                let first = u64::from(self.u32(&got[2..6]));
                if first < 8 {
                    return Err("the first IFD's offset points into the header");
                }
                self.schedule(first, ReadKind::Ifd, pos);
                Ok(self.advance(pos))
            }
            State::Seek(ReadKind::Ifd) => {
                self.state = State::EntryCount;
                Ok(Want::Bytes(2))
            }
            State::Seek(ReadKind::Table {
                ifd,
                table,
                elem,
                count,
            }) => {
                self.table = Some(TableRead {
                    elem,
                    partial: [0; 4],
                    have: 0,
                    values: Vec::new(),
                });
                self.state = State::Table { ifd, table };
                Ok(Want::Skip(u64::from(count) * elem as u64))
            }
            State::EntryCount => {
                let entries = self.u16(got);
                if entries == 0 {
                    return Err("an IFD with no entries");
                }
                if self.strips.len() >= MAX_IFDS {
                    return Err("more than 4096 IFDs");
                }
                self.strips.push(Strips::default());
                self.state = State::Entry { left: entries - 1 };
                Ok(Want::Bytes(12))
            }
            State::Entry { left } => {
                self.entry(got, pos)?;
                if left == 0 {
                    self.state = State::NextIfd;
                    Ok(Want::Bytes(4))
                } else {
                    self.state = State::Entry { left: left - 1 };
                    Ok(Want::Bytes(12))
                }
            }
            State::NextIfd => {
                let next = u64::from(self.u32(got));
                if next != 0 {
                    self.schedule(next, ReadKind::Ifd, pos);
                }
                Ok(self.advance(pos))
            }
            State::Table { ifd, table } => {
                let values = self.table.take().map(|t| t.values).unwrap_or_default();
                self.set_table(ifd, table, values)?;
                Ok(self.advance(pos))
            }
            State::Tail => Ok(Want::Rest),
        }
    }

    pub fn skipped(&mut self, data: &[u8]) {
        let little = self.little;
        let Some(table) = self.table.as_mut() else {
            return;
        };
        for &b in data {
            table.partial[table.have] = b;
            table.have += 1;
            if table.have == table.elem {
                table.have = 0;
                let p = table.partial;
                let value = match (table.elem, little) {
                    (2, true) => u32::from(u16::from_le_bytes([p[0], p[1]])),
                    (2, false) => u32::from(u16::from_be_bytes([p[0], p[1]])),
                    (_, true) => u32::from_le_bytes(p),
                    (_, false) => u32::from_be_bytes(p),
                };
                table.values.push(value);
            }
        }
    }

    /// One IFD entry: tag, type, count, and the value or its offset.
    fn entry(&mut self, got: &[u8], pos: u64) -> Result<(), Refusal> {
        let tag = self.u16(&got[0..2]);
        let kind = self.u16(&got[2..4]);
        let count = self.u32(&got[4..8]);
        let value = &got[8..12];
        // Unknown types are to be ignored (TIFF 6.0, section 2).
        let Some(size) = type_size(kind) else {
            return Ok(());
        };
        let bytes = u64::from(count) * size;
        let out_of_line = bytes > 4;
        if out_of_line {
            let at = u64::from(self.u32(value));
            self.need = self.need.max(at + bytes);
        }
        let ifd = self.strips.len() - 1;
        match tag {
            STRIP_OFFSETS | TILE_OFFSETS | STRIP_BYTE_COUNTS | TILE_BYTE_COUNTS => {
                let table = if matches!(tag, STRIP_OFFSETS | TILE_OFFSETS) {
                    Table::Offsets
                } else {
                    Table::Counts
                };
                let elem = match kind {
                    SHORT => 2,
                    LONG => 4,
                    _ => return Err("a strip or tile table that is not SHORT or LONG"),
                };
                if !out_of_line {
                    let values = (0..count as usize)
                        .map(|i| {
                            let b = &value[i * elem..];
                            if elem == 2 {
                                u32::from(self.u16(b))
                            } else {
                                self.u32(b)
                            }
                        })
                        .collect();
                    return self.set_table(ifd, table, values);
                }
                if count <= MAX_STRIPS {
                    let at = u64::from(self.u32(value));
                    let read = ReadKind::Table {
                        ifd,
                        table,
                        elem,
                        count,
                    };
                    self.schedule(at, read, pos);
                }
                Ok(())
            }
            SUB_IFDS | EXIF_IFD | GPS_IFD | INTEROP_IFD
                if count == 1 && matches!(kind, LONG | IFD) =>
            {
                let at = u64::from(self.u32(value));
                self.schedule(at, ReadKind::Ifd, pos);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Records a strip table; once both of an IFD's are known, requires every strip's bytes.
    fn set_table(&mut self, ifd: usize, table: Table, values: Vec<u32>) -> Result<(), Refusal> {
        let Some(strips) = self.strips.get_mut(ifd) else {
            return Ok(());
        };
        match table {
            Table::Offsets => strips.offsets = Some(values),
            Table::Counts => strips.counts = Some(values),
        }
        if let (Some(offsets), Some(counts)) = (&strips.offsets, &strips.counts) {
            if offsets.len() != counts.len() {
                return Err("the strip (or tile) offsets and byte counts differ in number");
            }
            let end = offsets
                .iter()
                .zip(counts)
                .map(|(&o, &c)| u64::from(o) + u64::from(c))
                .max()
                .unwrap_or(0);
            self.need = self.need.max(end);
            *strips = Strips::default();
        }
        Ok(())
    }

    /// Adds a read at `at`, unless the stream is already past it (then it cannot be read).
    fn schedule(&mut self, at: u64, kind: ReadKind, pos: u64) {
        if at < pos {
            return;
        }
        self.pending.push(Reverse(Read { at, kind }));
    }

    /// Goes to the nearest read still ahead, or past the last required byte when none is left.
    fn advance(&mut self, pos: u64) -> Want {
        while let Some(Reverse(read)) = self.pending.pop() {
            if read.at >= pos {
                self.state = State::Seek(read.kind);
                return Want::Skip(read.at - pos);
            }
        }
        self.state = State::Tail;
        Want::Skip(self.need.saturating_sub(pos))
    }
}

/// The size of one value of a TIFF field type; `None` for a type TIFF 6.0 does not define.
fn type_size(kind: u16) -> Option<u64> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 => Some(8),
        _ => None,
    }
}
