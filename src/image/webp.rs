//! WebP: a RIFF container whose declared size (plus its 8-byte header) is the file's length, holding
//! chunks (FourCC, size, data, a pad byte after an odd size) laid end to end to exactly that length,
//! the first of them VP8, VP8L or VP8X.

use super::{le32, Refusal, Want};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// "FF", the RIFF size and "WEBP" (the first two bytes, "RI", named the format).
    Header,
    /// A chunk's FourCC and size.
    ChunkHead,
    /// Passing over a chunk's data and pad byte.
    ChunkData,
}

pub struct WebP {
    state: State,
    /// The offset just past the last byte the RIFF header declares.
    end: u64,
    chunks: u32,
}

impl WebP {
    pub const START: Want = Want::Bytes(10);

    pub fn new() -> WebP {
        WebP {
            state: State::Header,
            end: 0,
            chunks: 0,
        }
    }

    pub fn next(&mut self, got: &[u8], pos: u64) -> Result<Want, Refusal> {
        match self.state {
            State::Header => {
                if &got[..2] != b"FF" || &got[6..10] != b"WEBP" {
                    return Err("not a RIFF WEBP header");
                }
                self.end = 8 + u64::from(le32(&got[2..6]));
                self.state = State::ChunkHead;
                self.after_chunk(pos)
            }
            State::ChunkHead => {
                let kind = &got[..4];
                if self.chunks == 0 && !matches!(kind, b"VP8 " | b"VP8L" | b"VP8X") {
                    return Err("the first chunk is not VP8, VP8L or VP8X");
                }
                self.chunks += 1;
                let size = u64::from(le32(&got[4..8]));
                let padded = size + (size & 1);
                if pos + padded > self.end {
                    return Err("a chunk runs past the size the RIFF header declares");
                }
                self.state = State::ChunkData;
                Ok(Want::Skip(padded))
            }
            State::ChunkData => {
                self.state = State::ChunkHead;
                self.after_chunk(pos)
            }
        }
    }

    /// At a chunk boundary: the end, or room for another chunk.
    fn after_chunk(&self, pos: u64) -> Result<Want, Refusal> {
        if pos == self.end && self.chunks > 0 {
            Ok(Want::Rest)
        } else if pos + 8 > self.end {
            Err("the RIFF size leaves no room for the chunks")
        } else {
            Ok(Want::Bytes(8))
        }
    }
}
