//! Splitting one list between machines: `--shard K/N` takes the items whose URL hashes to K.
//!
//! Every machine reads the whole list and keeps its own part, so no one has to split files, and the
//! split depends only on the URL: the same URL lands on the same shard on every run and every platform
//! (the first 8 bytes of its SHA-256, big-endian, modulo N; `printf %s URL | sha256sum` shows it), so
//! duplicates of a URL meet in one shard and a resumed shard sees the same items again.
//!
//! `--shard auto` reads the index from the job scheduler: a Slurm job array (`SLURM_ARRAY_TASK_ID`,
//! counted from `SLURM_ARRAY_TASK_MIN` in steps of `SLURM_ARRAY_TASK_STEP`, with
//! `SLURM_ARRAY_TASK_COUNT` shards) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, 0-based;
//! Kubernetes exports no count, so `--shard-count` must give it).

use std::fmt;

use sha2::{Digest, Sha256};

/// Shard `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// A `--shard` value or scheduler environment that does not name a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardError(pub String);

impl fmt::Display for ShardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShardError {}

fn error(message: impl Into<String>) -> ShardError {
    ShardError(message.into())
}

impl Shard {
    /// The whole list.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Resolves `--shard SPEC` (`K/N` or `auto`) and `--shard-count`; `env` looks up environment
    /// variables (pass `|name| std::env::var(name).ok()`).
    pub fn resolve(
        spec: &str,
        shard_count: Option<u32>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, ShardError> {
        if spec.trim().eq_ignore_ascii_case("auto") {
            Shard::from_env(shard_count, env)
        } else {
            Shard::parse(spec)
        }
    }

    /// Parses `K/N`, 1-based: `1/4` is the first of four shards.
    pub fn parse(spec: &str) -> Result<Shard, ShardError> {
        let expected = || {
            error(format!(
                "invalid shard '{spec}': expected K/N with 1 <= K <= N (e.g. 1/4), or auto"
            ))
        };
        let (k, n) = spec.trim().split_once('/').ok_or_else(expected)?;
        let k: u32 = k.trim().parse().map_err(|_| expected())?;
        let n: u32 = n.trim().parse().map_err(|_| expected())?;
        if n == 0 || k == 0 || k > n {
            return Err(expected());
        }
        Ok(Shard {
            index: k - 1,
            count: n,
        })
    }

    /// The shard of this Slurm array task or Kubernetes Indexed Job pod.
    pub fn from_env(
        shard_count: Option<u32>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, ShardError> {
        let number =
            |name: &str| -> Result<Option<u64>, ShardError> {
                match env(name) {
                    None => Ok(None),
                    Some(text) if text.trim().is_empty() => Ok(None),
                    Some(text) => text.trim().parse().map(Some).map_err(|_| {
                        error(format!("--shard auto: {name}='{text}' is not a number"))
                    }),
                }
            };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let count = match shard_count {
                Some(count) => u64::from(count),
                None => number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                    error("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not; give --shard-count")
                })?,
            };
            let offset = id.checked_sub(min).ok_or_else(|| {
                error(format!(
                    "--shard auto: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
                ))
            })?;
            if offset % step != 0 || offset / step >= count {
                return Err(error(format!(
                    "--shard auto: Slurm array task {id} is not one of {count} evenly spaced tasks from {min}; \
                     use a contiguous --array (e.g. 0-{}) or --shard K/N",
                    count.saturating_sub(1)
                )));
            }
            return Shard::checked(offset / step, count, "SLURM_ARRAY_TASK_COUNT");
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = shard_count.ok_or_else(|| {
                error("--shard auto: JOB_COMPLETION_INDEX is set but Kubernetes gives no shard count; add --shard-count N (the Job's completions)")
            })?;
            if index >= u64::from(count) {
                return Err(error(format!(
                    "--shard auto: JOB_COMPLETION_INDEX {index} is not below --shard-count {count}"
                )));
            }
            return Shard::checked(index, u64::from(count), "--shard-count");
        }
        Err(error(
            "--shard auto: neither SLURM_ARRAY_TASK_ID (Slurm job array) nor JOB_COMPLETION_INDEX (Kubernetes Indexed Job) is set; use --shard K/N",
        ))
    }

    fn checked(index: u64, count: u64, what: &str) -> Result<Shard, ShardError> {
        match (u32::try_from(index), u32::try_from(count)) {
            (Ok(index), Ok(count)) if count > 0 && index < count => Ok(Shard { index, count }),
            _ => Err(error(format!(
                "--shard auto: invalid shard count from {what}: {count}"
            ))),
        }
    }

    /// Whether this shard takes the item with this URL.
    pub fn owns(&self, url: &str) -> bool {
        self.count <= 1 || shard_of(url, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    /// The 1-based form users type: `2/8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// The 0-based shard of `url` among `count`.
fn shard_of(url: &str, count: u32) -> u32 {
    let digest = Sha256::digest(url.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn parses_k_of_n() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 4 / 4 "), Ok(Shard { index: 3, count: 4 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard::ALL));
        for bad in [
            "0/4", "5/4", "1/0", "4", "a/b", "-1/4", "1/4/2", "", "1.5/4",
        ] {
            let err = Shard::parse(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("expected K/N"), "{bad}: {err}");
        }
        assert_eq!(Shard { index: 1, count: 8 }.to_string(), "2/8");
    }

    #[test]
    fn slurm_arrays() {
        let shard = |vars: &[(&str, &str)], count| Shard::resolve("auto", count, env_of(vars));
        assert_eq!(
            shard(
                &[
                    ("SLURM_ARRAY_TASK_ID", "3"),
                    ("SLURM_ARRAY_TASK_COUNT", "8")
                ],
                None
            ),
            Ok(Shard { index: 3, count: 8 })
        );
        // --array=1-8: ids start at MIN.
        assert_eq!(
            shard(
                &[
                    ("SLURM_ARRAY_TASK_ID", "1"),
                    ("SLURM_ARRAY_TASK_MIN", "1"),
                    ("SLURM_ARRAY_TASK_COUNT", "8")
                ],
                None
            ),
            Ok(Shard { index: 0, count: 8 })
        );
        // --array=10-16:2 has 4 tasks: 10, 12, 14, 16.
        let stepped = |id| {
            shard(
                &[
                    ("SLURM_ARRAY_TASK_ID", id),
                    ("SLURM_ARRAY_TASK_MIN", "10"),
                    ("SLURM_ARRAY_TASK_STEP", "2"),
                    ("SLURM_ARRAY_TASK_COUNT", "4"),
                ],
                None,
            )
        };
        assert_eq!(stepped("16"), Ok(Shard { index: 3, count: 4 }));
        assert!(stepped("13").is_err());
        // --array=1,5,9 is not evenly spaced from MIN with a count of 3.
        assert!(shard(
            &[
                ("SLURM_ARRAY_TASK_ID", "9"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "3")
            ],
            None
        )
        .is_err());
        assert!(shard(&[("SLURM_ARRAY_TASK_ID", "3")], None).is_err());
        assert_eq!(
            shard(&[("SLURM_ARRAY_TASK_ID", "3")], Some(5)),
            Ok(Shard { index: 3, count: 5 })
        );
        assert!(shard(
            &[
                ("SLURM_ARRAY_TASK_ID", "x"),
                ("SLURM_ARRAY_TASK_COUNT", "8")
            ],
            None
        )
        .is_err());
        assert!(shard(
            &[
                ("SLURM_ARRAY_TASK_ID", "8"),
                ("SLURM_ARRAY_TASK_COUNT", "8")
            ],
            None
        )
        .is_err());
    }

    #[test]
    fn kubernetes_indexed_jobs_need_a_count() {
        let vars = [("JOB_COMPLETION_INDEX", "2")];
        let err = Shard::from_env(None, env_of(&vars))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("--shard-count"), "{err}");
        assert_eq!(
            Shard::from_env(Some(3), env_of(&vars)),
            Ok(Shard { index: 2, count: 3 })
        );
        assert!(Shard::from_env(Some(2), env_of(&vars)).is_err());
        let err = Shard::from_env(Some(2), env_of(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("neither"), "{err}");
    }

    #[test]
    fn shards_are_disjoint_complete_and_balanced() {
        let urls: Vec<String> = (0..40_000).map(|i| format!("https://h/{i}.jpg")).collect();
        for count in [1u32, 2, 3, 7, 16] {
            let shards: Vec<Shard> = (0..count).map(|index| Shard { index, count }).collect();
            let mut sizes = vec![0usize; count as usize];
            for url in &urls {
                let owners: Vec<u32> = shards
                    .iter()
                    .filter(|s| s.owns(url))
                    .map(|s| s.index)
                    .collect();
                assert_eq!(owners.len(), 1, "{url} owned by {owners:?}");
                sizes[owners[0] as usize] += 1;
            }
            let fair = urls.len() as f64 / f64::from(count);
            for size in sizes {
                assert!(
                    (size as f64 - fair).abs() < fair * 0.1,
                    "count {count}: {size} vs {fair}"
                );
            }
        }
    }

    #[test]
    fn the_split_is_pinned() {
        // sha256("abc") starts ba7816bf8f01cfea = 13436514500253700074.
        assert!(Shard {
            index: 4,
            count: 10
        }
        .owns("abc"));
        assert!(!Shard {
            index: 0,
            count: 10
        }
        .owns("abc"));
        assert_eq!(shard_of("abc", 7), 2);
    }
}
