//! GIF: header, logical screen descriptor and its colour table, then blocks (extensions and images,
//! each followed by data sub-blocks up to an empty one) until the trailer byte 0x3B.

use super::{Refusal, Want};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// "F87a" or "F89a" (the first two bytes named the format).
    Version,
    /// Width, height, flags, background colour, aspect ratio.
    ScreenDescriptor,
    /// Passing over a colour table; then a block starts, or (for an image) its LZW code size.
    ColourTable { then_code_size: bool },
    /// The byte that says which block comes next.
    Introducer,
    /// An extension's label.
    Label,
    /// An image's position, size and flags.
    ImageDescriptor,
    /// An image's minimum LZW code size.
    CodeSize,
    /// A data sub-block's size byte (0 ends the block).
    SubBlockSize,
    /// Passing over a data sub-block.
    SubBlock,
}

pub struct Gif {
    state: State,
    images: u32,
}

/// The size of the colour table `flags` announce, if any.
fn colour_table(flags: u8) -> u64 {
    if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    }
}

impl Gif {
    pub const START: Want = Want::Bytes(4);

    pub fn new() -> Gif {
        Gif {
            state: State::Version,
            images: 0,
        }
    }

    pub fn next(&mut self, got: &[u8]) -> Result<Want, Refusal> {
        match self.state {
            State::Version => {
                if got != b"F87a" && got != b"F89a" {
                    return Err("not a GIF87a or GIF89a header");
                }
                self.state = State::ScreenDescriptor;
                Ok(Want::Bytes(7))
            }
            State::ScreenDescriptor => {
                self.state = State::ColourTable {
                    then_code_size: false,
                };
                Ok(Want::Skip(colour_table(got[4])))
            }
            State::ColourTable { then_code_size } => {
                self.state = if then_code_size {
                    State::CodeSize
                } else {
                    State::Introducer
                };
                Ok(Want::Bytes(1))
            }
            State::Introducer => match got {
                [0x21] => {
                    self.state = State::Label;
                    Ok(Want::Bytes(1))
                }
                [0x2C] => {
                    self.state = State::ImageDescriptor;
                    Ok(Want::Bytes(9))
                }
                [0x3B] if self.images == 0 => Err("the trailer comes before any image"),
                [0x3B] => Ok(Want::Rest),
                _ => Err("a block that is not an extension, an image or the trailer"),
            },
            State::Label => {
                self.state = State::SubBlockSize;
                Ok(Want::Bytes(1))
            }
            State::ImageDescriptor => {
                self.images += 1;
                self.state = State::ColourTable {
                    then_code_size: true,
                };
                Ok(Want::Skip(colour_table(got[8])))
            }
            State::CodeSize => {
                if !(1..=12).contains(&got[0]) {
                    return Err("an LZW minimum code size outside 1..12");
                }
                self.state = State::SubBlockSize;
                Ok(Want::Bytes(1))
            }
            State::SubBlockSize => {
                if got[0] == 0 {
                    self.state = State::Introducer;
                    Ok(Want::Bytes(1))
                } else {
                    self.state = State::SubBlock;
                    Ok(Want::Skip(u64::from(got[0])))
                }
            }
            State::SubBlock => {
                self.state = State::SubBlockSize;
                Ok(Want::Bytes(1))
            }
        }
    }
}
