//! Sharding: a deterministic partition of the combined list (cases, then commands).
//!
//! An item belongs to shard `K/N` when the FNV-1a hash of its ID modulo N is K-1. Hashing
//! the ID (not the position) keeps an item in its shard when other cases are added, and
//! every shard of the same N computes the same partition without talking to the others.

use std::str::FromStr;

pub use super::result::Shard;

/// A `K/N` text that is not a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad shard `{text}`: {why} (expected K/N with 1 <= K <= N)")]
pub struct ShardParseError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(text: &str) -> Result<Shard, ShardParseError> {
        let err = |why| ShardParseError { text: text.to_string(), why };
        let (k, n) = text.split_once('/').ok_or_else(|| err("no `/`"))?;
        let index: u32 = k.trim().parse().map_err(|_| err("K is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| err("N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(err("out of range"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Whether the item with this ID belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        fnv1a(id.as_bytes()) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

/// 64-bit FNV-1a: stable across platforms and Rust versions (unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_partitions() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/3".parse::<Shard>().unwrap_err().why, "out of range");
        assert_eq!("4/3".parse::<Shard>().unwrap_err().why, "out of range");
        assert_eq!("x".parse::<Shard>().unwrap_err().why, "no `/`");
        let ids: Vec<String> = (0..200).map(|i| format!("case-{i}")).collect();
        let shards: Vec<Shard> = (1..=3).map(|k| Shard { index: k, count: 3 }).collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.contains(id)).count(), 1, "{id} in exactly one shard");
        }
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
