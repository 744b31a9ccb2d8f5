//! Valid images for the tests: real encoder outputs (Pillow, committed under tests/fixtures/images)
//! and small files built here byte by byte to reach what an encoder rarely writes (restart markers and
//! stuffing across a chunk boundary, an EOI inside a thumbnail, odd RIFF chunks, a big-endian TIFF
//! with its tables, an Exif IFD and strips after the IFD). In all but one the last byte is required,
//! so no proper prefix is whole (see [`required_len`]).

use crc32fast::Hasher as Crc32;

/// Every valid image, by name.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut all = encoded();
    all.extend([
        ("built baseline.jpg", jpeg(1)),
        ("built progressive.jpg", jpeg(3)),
        ("built.png", png(300)),
        ("built.gif", gif()),
        ("built.webp", webp()),
        ("built core.bmp", bmp_core()),
        ("built v3.bmp", bmp_v3()),
        ("built big-endian.tif", tiff_big_endian()),
        ("built tables-first.tif", tiff_tables_first()),
    ]);
    all
}

/// How many bytes of a valid image its structure requires: all of them, except in `pages.tif`,
/// where Pillow ends the file with four bytes nothing points to.
pub fn required_len(name: &str, body: &[u8]) -> usize {
    match name {
        "pages.tif" => body.len() - 4,
        _ => body.len(),
    }
}

/// The real encoder outputs.
pub fn encoded() -> Vec<(&'static str, Vec<u8>)> {
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                include_bytes!(concat!("../../tests/fixtures/images/", $name)).to_vec(),
            )
        };
    }
    vec![
        fixture!("baseline.jpg"),
        fixture!("progressive.jpg"),
        fixture!("restart.jpg"),
        fixture!("exif.jpg"),
        fixture!("gray.jpg"),
        fixture!("plain.png"),
        fixture!("interlaced.png"),
        fixture!("palette.png"),
        fixture!("plain.gif"),
        fixture!("animated.gif"),
        fixture!("lossy.webp"),
        fixture!("lossless.webp"),
        fixture!("animated.webp"),
        fixture!("rgb24.bmp"),
        fixture!("palette8.bmp"),
        fixture!("plain.tif"),
        fixture!("lzw.tif"),
        fixture!("pages.tif"),
    ]
}

fn segment(out: &mut Vec<u8>, marker: u8, body: &[u8]) {
    out.extend([0xFF, marker]);
    out.extend(((body.len() + 2) as u16).to_be_bytes());
    out.extend(body);
}

/// A JPEG with `scans` scans, a restart interval, stuffed bytes and restart markers in its
/// entropy-coded data, and an Exif segment whose thumbnail holds its own SOI..EOI.
pub fn jpeg(scans: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    segment(&mut out, 0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
    segment(&mut out, 0xE1, b"Exif\0\0\xFF\xD8\xFF\xDB\0\x02\xFF\xD9");
    segment(&mut out, 0xDB, &[0; 65]);
    let frame = if scans > 1 { 0xC2 } else { 0xC0 };
    segment(&mut out, frame, b"\x08\0\x10\0\x10\x01\x01\x11\0");
    segment(&mut out, 0xDD, b"\0\x01");
    for scan in 0..scans {
        segment(&mut out, 0xC4, &[0x00; 17]);
        segment(&mut out, 0xDA, b"\x01\x01\0\0\x3F\0");
        for i in 0..40u8 {
            out.extend([(i.wrapping_mul(37) & 0x7F) | 1, 0xFF, 0x00, 0x7F]);
            if i % 8 == 7 {
                out.extend([0xFF, 0xD0 + (i / 8) % 8]);
            }
        }
        if scan + 1 == scans {
            // Fill bytes before the EOI.
            out.extend([0xFF, 0xFF]);
        }
    }
    out.extend([0xFF, 0xD9]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = Crc32::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.finalize().to_be_bytes());
}

/// A PNG with an IDAT of `idat` bytes (the structure only: the data is not a zlib stream).
pub fn png(idat: usize) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1A\n".to_vec();
    chunk(&mut out, b"IHDR", b"\0\0\0\x10\0\0\0\x10\x08\x02\0\0\0");
    chunk(&mut out, b"tEXt", b"Comment\0built");
    let data: Vec<u8> = (0..idat).map(|i| (i * 31 % 256) as u8).collect();
    chunk(&mut out, b"IDAT", &data[..idat / 2]);
    chunk(&mut out, b"IDAT", &data[idat / 2..]);
    chunk(&mut out, b"IEND", b"");
    out
}

/// A GIF89a with a global colour table, a graphic control extension and an image with a local
/// colour table and data in several sub-blocks.
pub fn gif() -> Vec<u8> {
    let mut out = b"GIF89a\x10\0\x10\0\x81\0\0".to_vec();
    out.extend([0u8; 12]);
    out.extend(b"\x21\xF9\x04\x01\x0A\0\x02\0");
    out.extend(b"\x2C\0\0\0\0\x10\0\x10\0\x80");
    out.extend([7u8; 6]);
    out.push(2);
    for size in [255u8, 255, 17] {
        out.push(size);
        out.extend((0..size).map(|i| i ^ 0x3B));
    }
    out.push(0);
    out.push(0x3B);
    out
}

/// A WebP: VP8X, an odd-sized chunk with its pad byte, then VP8L.
pub fn webp() -> Vec<u8> {
    let mut body = b"WEBP".to_vec();
    for (kind, data) in [
        (b"VP8X", &b"\x08\0\0\0\x0F\0\0\x0F\0\0"[..]),
        (b"EXIF", &b"odd!!"[..]),
        (b"VP8L", &b"\x2F\x0F\xC0\x03\0\x07\x10\x11\xFD"[..]),
    ] {
        body.extend(kind);
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(data);
        if data.len() % 2 == 1 {
            body.push(0);
        }
    }
    let mut out = b"RIFF".to_vec();
    out.extend((body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// A BMP with the OS/2 1.x core header, 3x2 pixels at 24 bits: rows of 12 bytes.
pub fn bmp_core() -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend(50u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend(26u32.to_le_bytes());
    out.extend(12u32.to_le_bytes());
    out.extend(3u16.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(24u16.to_le_bytes());
    out.extend((0..24).map(|i| i as u8));
    out
}

/// A top-down 5x3 BMP at 4 bits with a 16-colour palette and a file size field of 0 (allowed for
/// uncompressed files): the pixel rows decide the end.
pub fn bmp_v3() -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend(0u32.to_le_bytes());
    out.extend([0; 4]);
    out.extend((14u32 + 40 + 64).to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend(5i32.to_le_bytes());
    out.extend((-3i32).to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0; 24]);
    out.extend([0x55; 64]);
    // 5 pixels at 4 bits: 3 bytes, padded to 4, times 3 rows.
    out.extend([0x12; 12]);
    out
}

fn entry(out: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]) {
    out.extend(tag.to_be_bytes());
    out.extend(kind.to_be_bytes());
    out.extend(count.to_be_bytes());
    out.extend(value);
}

fn be_short(v: u16) -> [u8; 4] {
    let b = v.to_be_bytes();
    [b[0], b[1], 0, 0]
}

/// A big-endian TIFF: IFD0 right after the header, then its out-of-line values (bits per sample,
/// strip offsets as LONG, strip byte counts as SHORT), an Exif IFD with an out-of-line comment, and
/// three strips, the last ending the file.
pub fn tiff_big_endian() -> Vec<u8> {
    let mut out = b"MM\0\x2A\0\0\0\x08".to_vec();
    // IFD0 at 8: 2 + 6 * 12 + 4 = 78 bytes, to 86.
    out.extend(6u16.to_be_bytes());
    entry(&mut out, 256, 3, 1, be_short(3));
    entry(&mut out, 257, 3, 1, be_short(3));
    entry(&mut out, 258, 3, 3, 86u32.to_be_bytes());
    entry(&mut out, 273, 4, 3, 92u32.to_be_bytes());
    entry(&mut out, 279, 3, 3, 104u32.to_be_bytes());
    entry(&mut out, 34665, 4, 1, 110u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    assert_eq!(out.len(), 86);
    out.extend([0, 8, 0, 8, 0, 8]);
    for offset in [138u32, 143, 150] {
        out.extend(offset.to_be_bytes());
    }
    for count in [5u16, 7, 9] {
        out.extend(count.to_be_bytes());
    }
    // The Exif IFD at 110: 2 + 12 + 4 = 18 bytes, to 128; its comment to 138.
    out.extend(1u16.to_be_bytes());
    entry(&mut out, 37510, 7, 10, 128u32.to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.extend(b"ASCII\0\0\0hi");
    assert_eq!(out.len(), 138);
    out.extend((0..21).map(|i| i as u8));
    out
}

/// A little-endian TIFF written the other way round: strips and tables first, the IFD last (its
/// tables lie behind it, so only the IFD itself can be awaited).
pub fn tiff_tables_first() -> Vec<u8> {
    let mut out = b"II\x2A\0".to_vec();
    out.extend(32u32.to_le_bytes());
    out.extend([9u8; 8]);
    out.extend(8u32.to_le_bytes());
    out.extend(12u32.to_le_bytes());
    out.extend(4u32.to_le_bytes());
    out.extend(4u32.to_le_bytes());
    assert_eq!(out.len(), 32);
    out.extend(3u16.to_le_bytes());
    for (tag, kind, count, value) in [(256u16, 3u16, 1u32, 2u32), (273, 4, 2, 16), (279, 4, 2, 24)]
    {
        out.extend(tag.to_le_bytes());
        out.extend(kind.to_le_bytes());
        out.extend(count.to_le_bytes());
        out.extend(value.to_le_bytes());
    }
    out.extend(0u32.to_le_bytes());
    out
}
