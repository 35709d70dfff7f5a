//! Where the generators' decisions come from: one small trait, three sources.
//!
//! The type walker ([`super::walk`]) asks a [`ChoiceSource`] for every decision (which
//! branch, whether an optional member is present, which integer). The same walker therefore
//! serves the seeded fuzz loop ([`SplitMix64`]), cargo-fuzz ([`arbitrary::Unstructured`]) and
//! proptest (an `Unstructured` over a shrinkable byte vector). Every source answers `0` when
//! it has nothing left to say, and the walker orders its options so that `0` means "the
//! terminating choice" (absent, empty, first branch): exhausted input gives small values.

use arbitrary::Unstructured;

/// A source of decisions for the type walker.
pub trait ChoiceSource {
    /// A number in `0..=max` (`0` when the source is exhausted).
    fn up_to(&mut self, max: u64) -> u64;

    /// An index in `0..n` (`0` when `n` is 0 or 1).
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let picked = self.up_to((n - 1) as u64);
        usize::try_from(picked).unwrap_or(0).min(n - 1)
    }

    /// True with about `percent` % probability; false when the source is exhausted.
    fn percent(&mut self, percent: u64) -> bool {
        self.up_to(99) >= 100u64.saturating_sub(percent)
    }

    /// An integer in the inclusive range `lo..=hi` (`lo` when exhausted or `lo > hi`).
    fn in_range(&mut self, lo: i128, hi: i128) -> i128 {
        if hi <= lo {
            return lo;
        }
        let width = u64::try_from(hi - lo).unwrap_or(u64::MAX);
        lo + i128::from(self.up_to(width))
    }
}

/// SplitMix64: a tiny deterministic generator, so one seed replays one fuzz run.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl ChoiceSource for SplitMix64 {
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            None => self.next_u64(),
            // Multiply-shift reduction: unbiased enough for test generation, no loop.
            Some(n) => ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64,
        }
    }
}

impl ChoiceSource for Unstructured<'_> {
    fn up_to(&mut self, max: u64) -> u64 {
        self.int_in_range(0..=max).unwrap_or(0)
    }
}

/// A source that always answers `0`: the smallest value the walker can build.
#[derive(Debug, Clone, Copy, Default)]
pub struct Minimal;

impl ChoiceSource for Minimal {
    fn up_to(&mut self, _max: u64) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_stays_in_range_and_replays() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for max in [0u64, 1, 9, 1000, u64::MAX] {
            let x = a.up_to(max);
            assert!(x <= max);
            assert_eq!(x, b.up_to(max));
        }
    }

    #[test]
    fn exhausted_sources_answer_zero() {
        let mut u = Unstructured::new(&[]);
        assert_eq!(u.up_to(41), 0);
        assert!(!u.percent(99));
        assert_eq!(u.in_range(-5, 5), -5);
        assert!(!Minimal.percent(99));
    }
}
