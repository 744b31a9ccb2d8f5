//! BMP: the file header declares the file's size and where the pixels start; the info header gives
//! the pixel array's size (computed from width, height and bit depth for uncompressed pixels, as
//! declared for compressed ones). The file is whole when both declared ends have arrived.

use super::{le16, le32, Refusal, Want};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// File size, reserved, pixel offset and the info header's size (after "BM").
    FileHeader,
    /// The info header's fields that size the pixels.
    InfoHeader,
    /// Passing over the rest, up to the declared end.
    Body,
}

pub struct Bmp {
    state: State,
    file_size: u64,
    pixels_at: u64,
    info_size: u32,
}

impl Bmp {
    pub const START: Want = Want::Bytes(16);

    pub fn new() -> Bmp {
        Bmp {
            state: State::FileHeader,
            file_size: 0,
            pixels_at: 0,
            info_size: 0,
        }
    }

    pub fn next(&mut self, got: &[u8], pos: u64) -> Result<Want, Refusal> {
        match self.state {
            State::FileHeader => {
                self.file_size = u64::from(le32(&got[0..4]));
                self.pixels_at = u64::from(le32(&got[8..12]));
                self.info_size = le32(&got[12..16]);
                if self.info_size < 12 {
                    return Err("an info header shorter than 12 bytes");
                }
                if self.pixels_at < 14 + u64::from(self.info_size) {
                    return Err("the pixel data starts inside the headers");
                }
                self.state = State::InfoHeader;
                // The fields up to the image size, as far as the header has them: 16-bit sizes in
                // the OS/2 1.x header, 32-bit ones in the others.
                match self.info_size {
                    12 => Ok(Want::Bytes(8)),
                    13..=15 => Err("an info header of an unknown size"),
                    16..=23 => Ok(Want::Bytes(12)),
                    _ => Ok(Want::Bytes(20)),
                }
            }
            State::InfoHeader => {
                let (width, height, bits, compression, image_size) = if got.len() == 8 {
                    let (w, h) = (le16(&got[0..2]), le16(&got[2..4]));
                    (u64::from(w), u64::from(h), le16(&got[6..8]), 0, 0)
                } else {
                    let w = le32(&got[0..4]) as i32;
                    let h = le32(&got[4..8]) as i32;
                    if w < 0 {
                        return Err("a negative width");
                    }
                    let sized = got.len() >= 20;
                    (
                        u64::from(w.unsigned_abs()),
                        u64::from(h.unsigned_abs()),
                        le16(&got[10..12]),
                        if sized { le32(&got[12..16]) } else { 0 },
                        if sized {
                            u64::from(le32(&got[16..20]))
                        } else {
                            0
                        },
                    )
                };
                if !matches!(bits, 0 | 1 | 2 | 4 | 8 | 16 | 24 | 32 | 64) {
                    return Err("a bit depth that is not 1, 2, 4, 8, 16, 24, 32 or 64");
                }
                // Uncompressed (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS; OS/2 2.x numbers 3 for
                // Huffman): rows of whole 32-bit words.
                let uncompressed =
                    compression == 0 || (self.info_size != 64 && matches!(compression, 3 | 6));
                let pixels = if uncompressed && bits != 0 {
                    (width * u64::from(bits))
                        .div_ceil(32)
                        .saturating_mul(4 * height)
                } else {
                    image_size
                };
                let end = self.file_size.max(self.pixels_at.saturating_add(pixels));
                self.state = State::Body;
                Ok(Want::Skip(end.saturating_sub(pos)))
            }
            State::Body => Ok(Want::Rest),
        }
    }
}
