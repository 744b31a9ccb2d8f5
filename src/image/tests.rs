use super::fixtures;
use super::*;
use proptest::prelude::*;

fn verdict_in_chunks(body: &[u8], sizes: &[usize]) -> Verdict {
    let mut check = ImageCheck::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        let _ = check.feed(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    check.finish()
}

fn verdict(body: &[u8]) -> Verdict {
    verdict_in_chunks(body, &[usize::MAX])
}

fn malformed(body: &[u8]) -> Malformed {
    match verdict(body) {
        Verdict::Malformed(m) => m,
        other => panic!("expected malformed, got {other:?}"),
    }
}

#[test]
fn every_valid_image_is_whole_and_each_of_its_proper_prefixes_truncated() {
    for (name, body) in fixtures::all() {
        let required = fixtures::required_len(name, &body);
        let mut check = ImageCheck::new();
        for (i, byte) in body.iter().enumerate() {
            if i >= required {
                assert_eq!(check.finish(), Verdict::Whole, "{name}: {i} bytes");
                continue;
            }
            assert_eq!(
                check.finish(),
                Verdict::Truncated,
                "{name}: the first {i} of {} bytes",
                body.len()
            );
            check.feed(std::slice::from_ref(byte)).unwrap_or_else(|e| {
                panic!("{name}: refused at byte {i}: {e}");
            });
        }
        assert_eq!(check.finish(), Verdict::Whole, "{name}");
        assert_eq!(verdict(&body), Verdict::Whole, "{name} in one piece");
    }
}

#[test]
fn names_the_format_it_checks() {
    let names: Vec<_> = fixtures::encoded()
        .iter()
        .map(|(name, body)| {
            let mut check = ImageCheck::new();
            let _ = check.feed(&body[..2]);
            (name.rsplit('.').next().unwrap_or_default(), check.format())
        })
        .collect();
    for (extension, format) in names {
        let expected = match extension {
            "jpg" => "JPEG",
            "png" => "PNG",
            "gif" => "GIF",
            "webp" => "WebP",
            "bmp" => "BMP",
            _ => "TIFF",
        };
        assert_eq!(format, Some(expected));
    }
}

#[test]
fn bytes_after_the_end_are_ignored() {
    for (name, mut body) in fixtures::all() {
        body.extend(b"\0\xFF trailing data a camera appended");
        assert_eq!(verdict(&body), Verdict::Whole, "{name}");
    }
}

#[test]
fn a_thumbnail_end_inside_a_segment_does_not_end_the_jpeg() {
    let body = fixtures::jpeg(1);
    let thumbnail_end = body
        .windows(2)
        .position(|w| w == [0xFF, 0xD9])
        .expect("the thumbnail's EOI");
    assert!(thumbnail_end + 2 < body.len() / 2);
    assert_eq!(verdict(&body[..thumbnail_end + 2]), Verdict::Truncated);
}

#[test]
fn refuses_what_breaks_each_format() {
    let mut png = fixtures::png(100);
    png[80] ^= 1;
    assert!(malformed(&png).reason.contains("CRC"));
    assert_eq!(malformed(&png).format, Some("PNG"));

    let mut png = fixtures::png(100);
    png[12..16].copy_from_slice(b"IDAT");
    assert!(malformed(&png).reason.contains("IHDR"));

    let mut jpeg = fixtures::jpeg(1);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap_or(0);
    jpeg[sof + 1] = 0xFE; // the frame header becomes a comment
    assert!(malformed(&jpeg).reason.contains("before the frame header"));

    assert!(malformed(b"\xFF\xD8\xFF\xD9")
        .reason
        .contains("EOI before any scan"));
    assert!(malformed(b"\xFF\xD8\xFF\x00").reason.contains("outside"));
    assert!(malformed(b"\xFF\xD8\x00")
        .reason
        .contains("expected a marker"));
    assert!(malformed(b"\xFF\xD8\xFF\xE0\x00\x01")
        .reason
        .contains("below 2"));

    let mut gif = fixtures::gif();
    let last = gif.len() - 1;
    gif[last] = 0x99;
    assert!(malformed(&gif).reason.contains("not an extension"));
    assert!(malformed(b"GIF89a\x01\0\x01\0\0\0\0\x3B")
        .reason
        .contains("before any image"));

    let mut webp = fixtures::webp();
    webp[4] = 20; // a RIFF size smaller than its first chunk
    assert!(malformed(&webp).reason.contains("past the size"));
    assert!(malformed(b"RIFF\x04\0\0\0WAVE")
        .reason
        .contains("not a RIFF WEBP"));

    let mut bmp = fixtures::bmp_core();
    bmp[10] = 20; // pixels inside the headers
    assert!(malformed(&bmp).reason.contains("inside the headers"));

    assert!(malformed(b"II\x2B\0\x08\0\0\0").reason.contains("42"));
    assert!(malformed(b"MM\0\x2A\0\0\0\x04").reason.contains("header"));
    let mut tiff = fixtures::tiff_big_endian();
    tiff[8..10].copy_from_slice(&[0, 0]);
    assert!(malformed(&tiff).reason.contains("no entries"));

    let html = malformed(b"<html>");
    assert_eq!(html.format, None);
    assert_eq!(
        html.to_string(),
        "not a JPEG, PNG, GIF, WebP, BMP or TIFF image"
    );
}

/// Found by the image_check fuzz target: a second SOI right after entropy-coded data was refused at
/// the start of the chunk that held it, not at the marker, so the offset depended on the chunking.
#[test]
fn a_marker_refused_in_a_scan_is_placed_at_the_marker_in_any_chunking() {
    let mut body = fixtures::jpeg(1);
    body.truncate(body.len() - 2);
    body.extend([0xFF, 0xD8]);
    let at_once = malformed(&body);
    assert_eq!(at_once.offset, body.len() as u64);
    assert_eq!(at_once.reason, "a second SOI");
    for size in 1..40 {
        assert_eq!(
            verdict_in_chunks(&body, &[size]),
            Verdict::Malformed(at_once),
            "chunks of {size}"
        );
    }
}

#[test]
fn a_refusal_names_where_it_happened_and_stays() {
    let mut png = fixtures::png(100);
    png[80] ^= 1;
    let mut check = ImageCheck::new();
    let first = check.feed(&png).unwrap_err();
    assert_eq!(check.feed(b"more").unwrap_err(), first);
    assert!(first.offset > 80 && first.offset <= png.len() as u64);
    assert!(first
        .to_string()
        .starts_with("the PNG is malformed at byte "));
}

#[test]
fn a_tiff_requires_its_strips() {
    let body = fixtures::tiff_big_endian();
    // Everything up to the strips arrived: the strips are still owed.
    assert_eq!(verdict(&body[..140]), Verdict::Truncated);
    let mut shorter = body.clone();
    // StripByteCounts' last count, 9 -> 8: the file is whole one byte earlier.
    shorter[109] = 8;
    assert_eq!(verdict(&shorter[..158]), Verdict::Whole);
}

/// Valid images and damaged copies of them: a flipped byte, a cut, a spliced-in run.
fn images_and_damage() -> impl Strategy<Value = Vec<u8>> {
    let all = fixtures::all();
    let count = all.len();
    (0..count, any::<u16>(), any::<u8>(), 0..4u8).prop_map(move |(i, at, byte, how)| {
        let mut body = all[i].1.clone();
        let at = usize::from(at) % body.len();
        match how {
            0 => body[at] ^= byte | 1,
            1 => body.truncate(at),
            2 => body.splice(at..at, [0xFF, byte, 0, 1]).for_each(drop),
            _ => {}
        }
        body
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_chunking_gives_the_same_verdict(
        body in images_and_damage(),
        sizes in proptest::collection::vec(1usize..40, 1..8),
    ) {
        prop_assert_eq!(verdict_in_chunks(&body, &sizes), verdict(&body));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_does_not_matter(
        head in prop_oneof![
            Just(&b"\xFF\xD8"[..]), Just(&b"\x89PNG\r\n\x1A\n"[..]), Just(&b"GIF89a"[..]),
            Just(&b"RIFF"[..]), Just(&b"BM"[..]), Just(&b"II\x2A\0"[..]), Just(&b"MM\0\x2A"[..]),
        ],
        tail in proptest::collection::vec(any::<u8>(), 0..600),
        sizes in proptest::collection::vec(1usize..64, 1..6),
    ) {
        let body = [head, &tail[..]].concat();
        prop_assert_eq!(verdict_in_chunks(&body, &sizes), verdict(&body));
    }

    #[test]
    fn no_proper_prefix_of_a_valid_image_is_whole_in_any_chunking(
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        sizes in proptest::collection::vec(1usize..300, 1..6),
    ) {
        let all = fixtures::all();
        let (name, body) = &all[which.index(all.len())];
        let cut = cut.index(fixtures::required_len(name, body));
        prop_assert_eq!(verdict_in_chunks(&body[..cut], &sizes), Verdict::Truncated);
    }
}
