//! Whether an image file is whole, judged by its structure as its bytes stream by.
//!
//! A server that closes the connection without a Content-Length ends a body the way a complete one
//! ends: HTTP cannot tell a cut-short image from a whole one. The file format can. [`ImageCheck`]
//! walks the container of a JPEG, PNG, GIF, WebP, BMP or TIFF file, fed chunk by chunk as the body
//! arrives (a chunk may end anywhere, inside a marker or a length field), and at the end says whether
//! the file reached its own declared end ([`Verdict::Whole`]), stopped before it
//! ([`Verdict::Truncated`]), or broke its format's rules on the way ([`Verdict::Malformed`], known as
//! soon as the offending bytes arrive, so a download can stop there).
//!
//! It reads no byte twice and decodes no pixel: it follows segment lengths, chunk sizes, block
//! sizes and declared offsets, checks PNG's CRCs and scans JPEG's entropy-coded data for markers.
//! Memory is a few dozen bytes, except for TIFF, whose strip tables it must hold to pair offsets
//! with byte counts. Bytes after an image's end (trailers some cameras append) are ignored.

mod bmp;
mod gif;
mod jpeg;
mod png;
mod tiff;
mod webp;

use std::fmt;

/// The longest run of bytes a format asks for at once through [`Want::Bytes`].
const BUF: usize = 32;

/// What a format's walker needs next from the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Exactly this many bytes (at most [`BUF`]), handed over together.
    Bytes(usize),
    /// Pass over this many bytes (shown to the walker as they go, for PNG's CRC and TIFF's tables).
    Skip(u64),
    /// JPEG's entropy-coded data: the walker scans it for the marker that ends it.
    Scan,
    /// The image is whole; whatever follows is ignored.
    Rest,
}

/// Why a walker refused the stream: a short phrase, e.g. "a chunk's CRC does not match".
type Refusal = &'static str;

/// The end of an image check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The file reached the end its structure declares.
    Whole,
    /// The bytes stopped before that end: more must come.
    Truncated,
    /// The bytes break the format's rules.
    Malformed(Malformed),
}

/// Where and why a body broke its format's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// JPEG, PNG, GIF, WebP, BMP or TIFF; `None` when the body is none of them.
    pub format: Option<&'static str>,
    /// The offset of the byte that gave it away (the first byte after what was understood).
    pub offset: u64,
    pub reason: &'static str,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.format {
            Some(format) => write!(
                f,
                "the {format} is malformed at byte {}: {}",
                self.offset, self.reason
            ),
            None => f.write_str(self.reason),
        }
    }
}

/// The walker of the format the body turned out to be.
enum Walker {
    /// Waiting for the first two bytes, which name the format.
    Unknown,
    Jpeg(jpeg::Jpeg),
    Png(png::Png),
    Gif(gif::Gif),
    WebP(webp::WebP),
    Bmp(bmp::Bmp),
    Tiff(Box<tiff::Tiff>),
}

/// An incremental structural check of one image body: [`feed`](ImageCheck::feed) it every byte in
/// order, then ask [`finish`](ImageCheck::finish).
pub struct ImageCheck {
    walker: Walker,
    want: Want,
    buf: [u8; BUF],
    have: usize,
    /// Bytes fed so far.
    pos: u64,
    failed: Option<Malformed>,
}

impl Default for ImageCheck {
    fn default() -> Self {
        ImageCheck::new()
    }
}

impl ImageCheck {
    pub fn new() -> ImageCheck {
        ImageCheck {
            walker: Walker::Unknown,
            want: Want::Bytes(2),
            buf: [0; BUF],
            have: 0,
            pos: 0,
            failed: None,
        }
    }

    /// The format, once the first bytes have named it.
    pub fn format(&self) -> Option<&'static str> {
        match self.walker {
            Walker::Unknown => None,
            Walker::Jpeg(_) => Some("JPEG"),
            Walker::Png(_) => Some("PNG"),
            Walker::Gif(_) => Some("GIF"),
            Walker::WebP(_) => Some("WebP"),
            Walker::Bmp(_) => Some("BMP"),
            Walker::Tiff(_) => Some("TIFF"),
        }
    }

    /// Takes the next bytes of the body. An error (the same one for every later call) once the bytes
    /// so far break the format's rules.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), Malformed> {
        if let Some(failed) = self.failed {
            return Err(failed);
        }
        while !input.is_empty() {
            let step = match self.want {
                Want::Rest => {
                    self.pos += input.len() as u64;
                    return Ok(());
                }
                Want::Bytes(n) => {
                    let take = (n - self.have).min(input.len());
                    self.buf[self.have..self.have + take].copy_from_slice(&input[..take]);
                    self.have += take;
                    self.pos += take as u64;
                    input = &input[take..];
                    if self.have < n {
                        return Ok(());
                    }
                    self.have = 0;
                    let got = self.buf;
                    self.next(&got[..n])
                }
                Want::Skip(n) => {
                    let take = n.min(input.len() as u64) as usize;
                    self.skipped(&input[..take]);
                    self.pos += take as u64;
                    input = &input[take..];
                    if take as u64 == n {
                        self.next(&[])
                    } else {
                        self.want = Want::Skip(n - take as u64);
                        Ok(())
                    }
                }
                Want::Scan => {
                    let (used, scanned) = match &mut self.walker {
                        Walker::Jpeg(jpeg) => jpeg.scan(input),
                        _ => (0, Err("an internal state without a scan")),
                    };
                    // Past the marker even when it is refused, so the offset does not depend on
                    // where a chunk began.
                    self.pos += used as u64;
                    input = &input[used..];
                    scanned.map(|next| {
                        if let Some(next) = next {
                            self.want = next;
                        }
                    })
                }
            };
            if let Err(reason) = step {
                return Err(self.fail(reason));
            }
        }
        Ok(())
    }

    /// The verdict on everything fed so far, taken as the whole body.
    pub fn finish(&self) -> Verdict {
        match (self.failed, self.want) {
            (Some(failed), _) => Verdict::Malformed(failed),
            (None, Want::Rest) => Verdict::Whole,
            (None, _) => Verdict::Truncated,
        }
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.pos
    }

    fn fail(&mut self, reason: Refusal) -> Malformed {
        let failed = Malformed {
            format: self.format(),
            offset: self.pos,
            reason,
        };
        self.failed = Some(failed);
        failed
    }

    /// Hands what arrived to the walker and records what it wants next. A `Skip(0)` is passed at
    /// once, so the loop in `feed` never waits for no bytes.
    fn next(&mut self, got: &[u8]) -> Result<(), Refusal> {
        let mut want = self.walk(got)?;
        while want == Want::Skip(0) {
            want = self.walk(&[])?;
        }
        self.want = want;
        Ok(())
    }

    fn walk(&mut self, got: &[u8]) -> Result<Want, Refusal> {
        let pos = self.pos;
        match &mut self.walker {
            Walker::Unknown => {
                let (walker, want) = match got {
                    [0xFF, 0xD8] => (Walker::Jpeg(jpeg::Jpeg::new()), jpeg::Jpeg::START),
                    [0x89, b'P'] => (Walker::Png(png::Png::new()), png::Png::START),
                    b"GI" => (Walker::Gif(gif::Gif::new()), gif::Gif::START),
                    b"RI" => (Walker::WebP(webp::WebP::new()), webp::WebP::START),
                    b"BM" => (Walker::Bmp(bmp::Bmp::new()), bmp::Bmp::START),
                    b"II" | b"MM" => (
                        Walker::Tiff(Box::new(tiff::Tiff::new(got == b"II"))),
                        tiff::Tiff::START,
                    ),
                    _ => return Err("not a JPEG, PNG, GIF, WebP, BMP or TIFF image"),
                };
                self.walker = walker;
                Ok(want)
            }
            Walker::Jpeg(w) => w.next(got),
            Walker::Png(w) => w.next(got),
            Walker::Gif(w) => w.next(got),
            Walker::WebP(w) => w.next(got, pos),
            Walker::Bmp(w) => w.next(got, pos),
            Walker::Tiff(w) => w.next(got, pos),
        }
    }

    fn skipped(&mut self, data: &[u8]) {
        match &mut self.walker {
            Walker::Png(w) => w.skipped(data),
            Walker::Tiff(w) => w.skipped(data),
            _ => {}
        }
    }
}

/// Reads a little- or big-endian number from the start of `bytes` (which the caller sized).
fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}
fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
pub mod fixtures;

#[cfg(test)]
mod tests;
