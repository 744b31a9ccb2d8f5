//! PNG: the signature, then chunks (length, type, data, CRC of type and data) from IHDR through IEND,
//! every CRC checked, at least one IDAT on the way.

use super::{be32, Refusal, Want};
use crc32fast::Hasher as Crc32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The signature's last six bytes (its first two named the format).
    Signature,
    /// A chunk's length and type.
    Head,
    /// A chunk's data, passed over and hashed.
    Data,
    /// A chunk's CRC.
    Crc,
}

pub struct Png {
    state: State,
    chunks: u32,
    seen_idat: bool,
    last: bool,
    crc: Crc32,
}

impl Png {
    pub const START: Want = Want::Bytes(6);

    pub fn new() -> Png {
        Png {
            state: State::Signature,
            chunks: 0,
            seen_idat: false,
            last: false,
            crc: Crc32::new(),
        }
    }

    pub fn next(&mut self, got: &[u8]) -> Result<Want, Refusal> {
        match self.state {
            State::Signature => {
                if got != b"NG\r\n\x1A\n" {
                    return Err("not a PNG signature");
                }
                self.state = State::Head;
                Ok(Want::Bytes(8))
            }
            State::Head => {
                let length = be32(got);
                let kind = &got[4..8];
                if length > 0x7FFF_FFFF {
                    return Err("a chunk length over 2^31-1");
                }
                if !kind.iter().all(u8::is_ascii_alphabetic) {
                    return Err("a chunk type that is not four letters");
                }
                if self.chunks == 0 && (kind != b"IHDR" || length != 13) {
                    return Err("the first chunk is not a 13-byte IHDR");
                }
                self.chunks += 1;
                if kind == b"IDAT" {
                    self.seen_idat = true;
                }
                if kind == b"IEND" {
                    if !self.seen_idat {
                        return Err("IEND before any IDAT chunk");
                    }
                    self.last = true;
                }
                self.crc = Crc32::new();
                self.crc.update(kind);
                self.state = State::Data;
                Ok(Want::Skip(u64::from(length)))
            }
            State::Data => {
                self.state = State::Crc;
                Ok(Want::Bytes(4))
            }
            State::Crc => {
                if be32(got) != std::mem::take(&mut self.crc).finalize() {
                    return Err("a chunk's CRC does not match its data");
                }
                self.state = State::Head;
                Ok(if self.last {
                    Want::Rest
                } else {
                    Want::Bytes(8)
                })
            }
        }
    }

    pub fn skipped(&mut self, data: &[u8]) {
        self.crc.update(data);
    }
}
