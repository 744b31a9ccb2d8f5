//! JPEG: from SOI through the segments (each with its length), the scans (entropy-coded data, which
//! may hold stuffed `FF 00` and restart markers `FF D0`..`FF D7`, and in a progressive file come many
//! times), to the EOI marker after the last scan.

use super::{be16, Refusal, Want};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting the 0xFF that starts a marker.
    MarkerStart,
    /// After an 0xFF: the marker code (or more 0xFF fill bytes).
    MarkerCode,
    /// The two length bytes of the segment of `marker`.
    Length,
    /// Passing over a segment's body.
    Segment,
}

pub struct Jpeg {
    state: State,
    marker: u8,
    frame_seen: bool,
    scans: u32,
    /// The last byte of the previous chunk of entropy-coded data was an 0xFF.
    pending_ff: bool,
}

/// Start of frame markers: SOF0..SOF15 without DHT (C4), JPG (C8) and DAC (CC).
fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

impl Jpeg {
    /// SOI (`FF D8`) has been read; the next marker follows.
    pub const START: Want = Want::Bytes(1);

    pub fn new() -> Jpeg {
        Jpeg {
            state: State::MarkerStart,
            marker: 0,
            frame_seen: false,
            scans: 0,
            pending_ff: false,
        }
    }

    pub fn next(&mut self, got: &[u8]) -> Result<Want, Refusal> {
        match self.state {
            State::MarkerStart => match got {
                [0xFF] => {
                    self.state = State::MarkerCode;
                    Ok(Want::Bytes(1))
                }
                _ => Err("expected a marker (0xFF) between segments"),
            },
            State::MarkerCode => match got {
                [code] => self.marker(*code),
                _ => Err("expected a marker code"),
            },
            State::Length => {
                let length = be16(got);
                if length < 2 {
                    return Err("a segment length below 2");
                }
                if is_frame_header(self.marker) {
                    self.frame_seen = true;
                }
                if self.marker == 0xDA {
                    if !self.frame_seen {
                        return Err("a scan (SOS) before the frame header (SOF)");
                    }
                    self.scans += 1;
                }
                self.state = State::Segment;
                Ok(Want::Skip(u64::from(length) - 2))
            }
            State::Segment => {
                self.state = State::MarkerStart;
                if self.marker == 0xDA {
                    self.pending_ff = false;
                    Ok(Want::Scan)
                } else {
                    Ok(Want::Bytes(1))
                }
            }
        }
    }

    /// Acts on a marker code (the byte after 0xFF), outside or at the end of entropy-coded data.
    fn marker(&mut self, code: u8) -> Result<Want, Refusal> {
        self.marker = code;
        match code {
            // Fill bytes: the marker code is still to come.
            0xFF => {
                self.state = State::MarkerCode;
                Ok(Want::Bytes(1))
            }
            0xD9 if self.scans == 0 => Err("EOI before any scan"),
            0xD9 => Ok(Want::Rest),
            0xD8 => Err("a second SOI"),
            0x00 => Err("0xFF 0x00 outside entropy-coded data"),
            // Standalone markers (TEM, RSTn): no length, nothing follows.
            0x01 | 0xD0..=0xD7 => {
                self.state = State::MarkerStart;
                Ok(Want::Bytes(1))
            }
            _ => {
                self.state = State::Length;
                Ok(Want::Bytes(2))
            }
        }
    }

    /// Scans entropy-coded data for the marker that ends it. Returns how many bytes of `data` were
    /// used (through the marker, refused or not) and, when a marker ended the scan, what comes next.
    pub fn scan(&mut self, data: &[u8]) -> (usize, Result<Option<Want>, Refusal>) {
        let mut at = 0;
        if self.pending_ff {
            // The previous chunk ended on 0xFF: this chunk's first byte says what it was.
            let Some(&code) = data.first() else {
                return (0, Ok(None));
            };
            match code {
                0x00 | 0xD0..=0xD7 => at = 1,
                // A fill byte: the new 0xFF may start the marker, and `scan_from` sees it.
                0xFF => {}
                _ => {
                    self.pending_ff = false;
                    return (1, self.marker(code).map(Some));
                }
            }
        }
        self.scan_from(data, at)
    }

    /// Scans `data` from `at`, where no 0xFF is pending.
    fn scan_from(&mut self, data: &[u8], at: usize) -> (usize, Result<Option<Want>, Refusal>) {
        self.pending_ff = false;
        for ff in memchr::memchr_iter(0xFF, &data[at..]) {
            let ff = at + ff;
            match data.get(ff + 1) {
                None => {
                    self.pending_ff = true;
                    return (data.len(), Ok(None));
                }
                // Stuffing, a restart marker, or a fill byte (the iterator comes to the next 0xFF).
                Some(0x00 | 0xD0..=0xD7 | 0xFF) => {}
                Some(&code) => return (ff + 2, self.marker(code).map(Some)),
            }
        }
        (data.len(), Ok(None))
    }
}
