//! Content checks on a body as it streams by: `--expect image` (magic bytes first, then the image's
//! structure through its end, see [`crate::image`]), `--max-size`, and the SHA-256 of everything
//! written. A body is refused as early as possible, so an HTML error page served with status 200 is
//! stopped after its first bytes instead of being downloaded whole.

use std::borrow::Cow;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use super::error::{FailureKind, FetchError};
use super::Expect;
use crate::image::{ImageCheck, Malformed, Verdict};

/// How many leading bytes the image check needs.
pub const SNIFF_LEN: usize = 12;

/// The image format a body starts with, judged by its magic bytes. `None` when it is none of JPEG,
/// PNG, GIF, WebP, BMP or TIFF.
pub fn sniff_image(head: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\xFF\xD8\xFF", "JPEG"),
        (b"\x89PNG\r\n\x1A\n", "PNG"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
    ];
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some("WebP");
    }
    SIGNATURES
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|(_, name)| *name)
}

/// Parses `--sha256`: 64 hex digits, either case.
pub fn parse_sha256(text: &str) -> Result<String, FetchError> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(FetchError::new(
            FailureKind::Usage,
            format!("--sha256 '{text}' is not a SHA-256 digest: expected 64 hex digits"),
        ))
    }
}

/// A short description of what a refused body looks like, to make the message useful.
fn describe(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    if text.trim_start().starts_with('<') {
        "it looks like HTML or XML".to_string()
    } else if head.is_empty() {
        "the body is empty".to_string()
    } else {
        let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("it starts with bytes {}", hex.join(" "))
    }
}

/// Watches the bytes of one body: counts them, hashes them, and applies `--expect` and `--max-size`.
pub struct BodyCheck {
    expect: Option<Expect>,
    max_size: Option<u64>,
    head: Vec<u8>,
    /// How many bytes at the start of `head` are already on disk (fed by `feed_existing`).
    head_on_disk: usize,
    sniffed: bool,
    /// `None` when no digest is wanted.
    hasher: Option<BodyHasher>,
    /// With `--expect image`: whether the image is whole.
    image: Option<ImageCheck>,
    bytes: u64,
}

impl BodyCheck {
    pub fn new(expect: Option<Expect>, max_size: Option<u64>) -> BodyCheck {
        BodyCheck {
            expect,
            max_size,
            head: Vec::with_capacity(SNIFF_LEN),
            head_on_disk: 0,
            sniffed: expect.is_none(),
            hasher: Some(BodyHasher::new()),
            image: (expect == Some(Expect::Image)).then(ImageCheck::new),
            bytes: 0,
        }
    }

    /// Skips the SHA-256: [`BodyCheck::sha256_hex`] then returns `None`.
    pub fn without_digest(mut self) -> BodyCheck {
        self.hasher = None;
        self
    }

    /// Refuses a body whose announced size is already over `--max-size`.
    pub fn check_announced(&self, total: Option<u64>) -> Result<(), FetchError> {
        match (total, self.max_size) {
            (Some(total), Some(max)) if total > max => Err(FetchError::new(
                FailureKind::Rejected,
                format!(
                    "the server announced {total} bytes, more than --max-size {max}; raise --max-size to accept it"
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Takes the next chunk of the body. Returns the part that may be written now: with `--expect`,
    /// the first bytes are held back until there are enough of them to judge.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> Result<Cow<'a, [u8]>, FetchError> {
        self.bytes += chunk.len() as u64;
        if let Some(max) = self.max_size {
            if self.bytes > max {
                return Err(FetchError::new(
                    FailureKind::Rejected,
                    format!(
                        "the body is larger than --max-size {max}; raise --max-size to accept it"
                    ),
                ));
            }
        }
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(chunk);
        }
        if let Some(image) = self.image.as_mut() {
            // Until the magic bytes are judged, a refusal waits for them: a body that is no image at
            // all gets their better message, and `judge` reports the refusal otherwise.
            if let (Err(malformed), true) = (image.feed(chunk), self.sniffed) {
                return Err(malformed_image(malformed));
            }
        }
        if self.sniffed {
            return Ok(Cow::Borrowed(chunk));
        }
        // Only the bytes the judgement needs are held: a first chunk is often the whole body, and
        // copying it would cost as much as checking it.
        let held = self.head.len();
        let wanted = (SNIFF_LEN - held).min(chunk.len());
        self.head.extend_from_slice(&chunk[..wanted]);
        if self.head.len() < SNIFF_LEN {
            return Ok(Cow::Borrowed(&[]));
        }
        self.judge()?;
        self.head.truncate(held);
        let earlier = self.take_head();
        Ok(if earlier.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            Cow::Owned([earlier.as_slice(), chunk].concat())
        })
    }

    /// The held-back bytes that are not on disk yet.
    fn take_head(&mut self) -> Vec<u8> {
        let mut head = std::mem::take(&mut self.head);
        head.drain(..self.head_on_disk.min(head.len()));
        self.head_on_disk = 0;
        head
    }

    /// Takes bytes already on disk from an earlier attempt (`--resume`): they count and are hashed,
    /// and judged like new ones, but are not handed back for writing.
    pub fn feed_existing(&mut self, chunk: &[u8]) -> Result<(), FetchError> {
        let was_sniffed = self.sniffed;
        self.feed(chunk)?;
        if !was_sniffed && !self.sniffed {
            self.head_on_disk = self.head.len();
        }
        Ok(())
    }

    /// The end of the body: judges a body too short to have been judged yet, and whether an image is
    /// whole. Returns bytes still held back, which may now be written.
    pub fn finish(&mut self) -> Result<Vec<u8>, FetchError> {
        if !self.sniffed {
            self.judge()?;
        }
        if let Some(image) = &self.image {
            match image.finish() {
                Verdict::Whole => {}
                Verdict::Malformed(malformed) => return Err(malformed_image(malformed)),
                Verdict::Truncated => {
                    return Err(FetchError::new(
                        FailureKind::Truncated,
                        format!(
                            "--expect image: the {} ends after {} bytes, before the end its structure declares; try again, with --resume to continue where it stopped",
                            image.format().unwrap_or("image"),
                            image.bytes()
                        ),
                    ))
                }
            }
        }
        Ok(self.take_head())
    }

    fn judge(&mut self) -> Result<(), FetchError> {
        self.sniffed = true;
        match self.expect {
            Some(Expect::Image) if sniff_image(&self.head).is_none() => Err(FetchError::new(
                FailureKind::Rejected,
                format!(
                    "--expect image: the body is not a JPEG, PNG, GIF, WebP, BMP or TIFF image ({})",
                    describe(&self.head)
                ),
            )),
            // A refusal of the structure that waited for this judgement.
            _ => match self.image.as_ref().map(ImageCheck::finish) {
                Some(Verdict::Malformed(malformed)) => Err(malformed_image(malformed)),
                _ => Ok(()),
            },
        }
    }

    /// Bytes seen so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The lowercase hex SHA-256 of everything fed; `None` [`without_digest`](Self::without_digest).
    /// Feeding more afterwards is a mistake the hash ignores.
    pub fn sha256_hex(&mut self) -> Option<String> {
        Some(crate::hex::lower_hex(&self.hasher.as_mut()?.finish()))
    }
}

/// The refusal of a body that breaks its image format's rules.
fn malformed_image(malformed: Malformed) -> FetchError {
    FetchError::new(
        FailureKind::Rejected,
        format!("--expect image: {malformed}"),
    )
}

/// Bodies up to this size are hashed inline; past it, on a helper thread.
const INLINE_HASH_LIMIT: u64 = 1 << 20;
/// How much body the helper thread is given at a time.
const HASH_BATCH: usize = 256 * 1024;
/// About what one round of libcurl hands over: a batch is allocated this much past `HASH_BATCH`, so
/// that it seldom grows.
const READ_CHUNK: usize = 256 * 1024;

/// SHA-256 of a body. Hashing runs at about the speed a fast loopback transfer arrives, so on a single
/// thread it would halve the throughput of a large download; past the first MiB the hashing moves to a
/// helper thread and overlaps with receiving and writing. Small bodies (most images) never pay for a
/// thread.
enum BodyHasher {
    /// `fed` counts toward the switch; `None` once a thread could not be started (stay inline).
    Inline {
        hasher: Sha256,
        fed: Option<u64>,
    },
    Background {
        batch: Vec<u8>,
        to_thread: SyncSender<Vec<u8>>,
        thread: JoinHandle<Option<Sha256>>,
    },
    Finished([u8; 32]),
    /// Only while switching between the states above.
    Switching,
}

impl BodyHasher {
    fn new() -> BodyHasher {
        BodyHasher::Inline {
            hasher: Sha256::new(),
            fed: Some(0),
        }
    }

    fn update(&mut self, chunk: &[u8]) {
        match self {
            BodyHasher::Inline { hasher, fed } => {
                hasher.update(chunk);
                if let Some(fed) = fed {
                    *fed += chunk.len() as u64;
                    if *fed > INLINE_HASH_LIMIT {
                        self.move_to_thread();
                    }
                }
            }
            BodyHasher::Background {
                batch, to_thread, ..
            } => {
                batch.extend_from_slice(chunk);
                if batch.len() >= HASH_BATCH {
                    let full =
                        std::mem::replace(batch, Vec::with_capacity(HASH_BATCH + READ_CHUNK));
                    let _ = to_thread.send(full);
                }
            }
            BodyHasher::Finished(_) | BodyHasher::Switching => {}
        }
    }

    fn move_to_thread(&mut self) {
        let BodyHasher::Inline { hasher, .. } = std::mem::replace(self, BodyHasher::Switching)
        else {
            return;
        };
        // A short queue bounds the memory held for the thread when it falls behind. The hasher goes
        // over only once the thread runs, so a failed spawn leaves it here to carry on inline.
        let (to_thread, from_body) = sync_channel::<Vec<u8>>(4);
        let (give_hasher, take_hasher) = sync_channel::<Sha256>(1);
        let spawned = std::thread::Builder::new()
            .name("sha256".into())
            .spawn(move || {
                let mut hasher = take_hasher.recv().ok()?;
                for batch in from_body {
                    hasher.update(&batch);
                }
                Some(hasher)
            });
        *self = match spawned {
            Ok(thread) if give_hasher.send(hasher.clone()).is_ok() => BodyHasher::Background {
                batch: Vec::with_capacity(HASH_BATCH + READ_CHUNK),
                to_thread,
                thread,
            },
            _ => BodyHasher::Inline { hasher, fed: None },
        };
    }

    fn finish(&mut self) -> [u8; 32] {
        let digest = match std::mem::replace(self, BodyHasher::Switching) {
            BodyHasher::Inline { hasher, .. } => hasher.finalize().into(),
            BodyHasher::Background {
                batch,
                to_thread,
                thread,
            } => {
                let _ = to_thread.send(batch);
                drop(to_thread);
                match thread.join() {
                    Ok(Some(hasher)) => hasher.finalize().into(),
                    // The thread never got the hasher or panicked: there is no digest to give. Both
                    // are impossible short of memory corruption; an all-zero digest fails any check.
                    _ => [0; 32],
                }
            }
            BodyHasher::Finished(digest) => digest,
            BodyHasher::Switching => [0; 32],
        };
        *self = BodyHasher::Finished(digest);
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_large_bodies_on_a_thread_with_the_same_result() {
        // 3 MiB + a ragged tail, fed in uneven chunks: crosses the inline limit and several batches.
        let body: Vec<u8> = (0..(3 << 20) + 12345)
            .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut check = BodyCheck::new(None, None);
        for chunk in body.chunks(70_001) {
            assert_eq!(check.feed(chunk).unwrap().len(), chunk.len());
        }
        let expected: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(check.sha256_hex().as_ref(), Some(&expected));
        assert_eq!(
            check.sha256_hex(),
            Some(expected),
            "asking twice gives the same digest"
        );
        assert_eq!(check.bytes(), body.len() as u64);
    }

    #[test]
    fn recognizes_image_formats() {
        assert_eq!(
            sniff_image(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01"),
            Some("JPEG")
        );
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1A\n\0\0\0\x0D"), Some("PNG"));
        assert_eq!(sniff_image(b"GIF89a\x01\0\x01\0\0\0"), Some("GIF"));
        assert_eq!(sniff_image(b"GIF87a"), Some("GIF"));
        assert_eq!(sniff_image(b"RIFF\x24\0\0\0WEBPVP8 "), Some("WebP"));
        assert_eq!(sniff_image(b"BM\x36\0\0\0\0\0\0\0\x36\0"), Some("BMP"));
        assert_eq!(sniff_image(b"II*\0\x08\0\0\0"), Some("TIFF"));
        assert_eq!(sniff_image(b"MM\0*\0\0\0\x08"), Some("TIFF"));
    }

    #[test]
    fn refuses_non_images() {
        assert_eq!(sniff_image(b"<!doctype html><html>"), None);
        assert_eq!(sniff_image(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff_image(b""), None);
        assert_eq!(sniff_image(b"\xFF\xD8"), None);
    }

    #[test]
    fn sha256_accepts_either_case() {
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert_eq!(parse_sha256(upper).unwrap(), upper.to_ascii_lowercase());
        assert!(parse_sha256("abc").is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }

    #[test]
    fn holds_back_the_head_until_judged() {
        let png = crate::image::fixtures::png(100);
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        assert!(check.feed(&png[..3]).unwrap().is_empty());
        let out = check.feed(&png[3..]).unwrap();
        assert_eq!(&*out, &png[..]);
        assert_eq!(&*check.feed(b"more").unwrap(), b"more");
        assert!(check.finish().unwrap().is_empty());
        assert_eq!(check.bytes(), png.len() as u64 + 4);
    }

    #[test]
    fn a_first_chunk_long_enough_to_judge_is_written_as_it_came_without_a_copy() {
        let png = crate::image::fixtures::png(4000);
        for first in [SNIFF_LEN, 100, png.len()] {
            let mut check = BodyCheck::new(Some(Expect::Image), None);
            let out = check.feed(&png[..first]).unwrap();
            assert!(matches!(out, Cow::Borrowed(_)), "first chunk of {first}");
            assert_eq!(&*out, &png[..first]);
            let rest = check.feed(&png[first..]).unwrap();
            assert_eq!(&*rest, &png[first..]);
            assert!(check.finish().unwrap().is_empty(), "first chunk of {first}");
        }
        // Bytes held back from a shorter first chunk come out once, before the chunk that judged.
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        assert!(check.feed(&png[..5]).unwrap().is_empty());
        assert!(check.feed(&png[5..9]).unwrap().is_empty());
        assert_eq!(&*check.feed(&png[9..2000]).unwrap(), &png[..2000]);
        assert_eq!(&*check.feed(&png[2000..]).unwrap(), &png[2000..]);
        assert!(check.finish().unwrap().is_empty());
    }

    #[test]
    fn refuses_html_early_and_short_bodies_at_the_end() {
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        let err = check.feed(b"<html><body>not found</body>").unwrap_err();
        assert_eq!(err.failure_kind(), FailureKind::Rejected);
        assert!(err.message().contains("HTML"), "{}", err.message());

        let mut check = BodyCheck::new(Some(Expect::Image), None);
        assert!(check.feed(b"BM").unwrap().is_empty());
        assert_eq!(
            check.finish().unwrap_err().failure_kind(),
            FailureKind::Truncated
        );
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        assert_eq!(
            check.finish().unwrap_err().failure_kind(),
            FailureKind::Rejected
        );
    }

    #[test]
    fn an_image_cut_short_is_truncated_and_a_broken_one_rejected_at_once() {
        let jpeg = crate::image::fixtures::jpeg(2);
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        check.feed(&jpeg[..jpeg.len() - 1]).unwrap();
        let err = check.finish().unwrap_err();
        assert_eq!(err.failure_kind(), FailureKind::Truncated);
        assert!(
            err.message().contains("the JPEG ends after"),
            "{}",
            err.message()
        );

        let mut png = crate::image::fixtures::png(4000);
        png[100] ^= 0x40;
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        let err = check.feed(&png).unwrap_err();
        assert_eq!(err.failure_kind(), FailureKind::Rejected);
        assert!(err.message().contains("CRC"), "{}", err.message());

        // A RIFF that is not a WebP is refused by its magic bytes, as no image at all.
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        let err = check.feed(b"RIFF\x24\0\0\0WAVEfmt ").unwrap_err();
        assert!(
            err.message().contains("not a JPEG, PNG"),
            "{}",
            err.message()
        );

        // Without --expect the structure is not looked at.
        let mut check = BodyCheck::new(None, None);
        check.feed(&png[..50]).unwrap();
        assert!(check.finish().is_ok());
    }

    #[test]
    fn a_resumed_image_is_checked_from_its_first_byte_on_disk() {
        let gif = crate::image::fixtures::gif();
        for split in [1, 5, 12, 13, 300, gif.len() - 1] {
            let mut check = BodyCheck::new(Some(Expect::Image), None);
            check.feed_existing(&gif[..split]).unwrap();
            let out = check.feed(&gif[split..]).unwrap();
            assert_eq!(&*out, &gif[split..], "split at {split}");
            assert!(check.finish().unwrap().is_empty(), "split at {split}");
        }
        // A partial file whose bytes on disk are damaged is refused, however whole the rest is.
        let mut damaged = gif.clone();
        damaged[25] = 0x99; // the first block's introducer
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        let refused = check
            .feed_existing(&damaged[..400])
            .and_then(|()| check.feed(&damaged[400..]).map(|_| ()));
        assert_eq!(refused.unwrap_err().failure_kind(), FailureKind::Rejected);
    }

    #[test]
    fn max_size_applies_to_announced_and_streamed_sizes() {
        let mut check = BodyCheck::new(None, Some(10));
        assert!(check.check_announced(Some(10)).is_ok());
        assert!(check.check_announced(Some(11)).is_err());
        assert!(check.check_announced(None).is_ok());
        assert!(check.feed(&[0; 10]).is_ok());
        assert!(check.feed(&[0; 1]).is_err());
    }

    #[test]
    fn bytes_already_on_disk_are_not_handed_back() {
        let mut check = BodyCheck::new(Some(Expect::Image), None);
        check.feed_existing(b"\x89PNG").unwrap();
        let out = check.feed(b"\r\n\x1A\n\0\0\0\x0D").unwrap();
        assert_eq!(&*out, b"\r\n\x1A\n\0\0\0\x0D");
        assert_eq!(check.bytes(), 12);
    }

    #[test]
    fn hashes_everything_fed() {
        let mut check = BodyCheck::new(None, None);
        check.feed_existing(b"ab").unwrap();
        check.feed(b"c").unwrap();
        assert_eq!(
            check.sha256_hex().as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let mut unhashed = BodyCheck::new(None, None).without_digest();
        unhashed.feed(b"abc").unwrap();
        assert_eq!((unhashed.bytes(), unhashed.sha256_hex()), (3, None));
    }
}
