//! A deterministic pseudo-random generator for the crate's randomized unit tests
//! (xorshift64*, Marsaglia/Vigna; no external crate). Test-only.

/// xorshift64*: seed with any non-zero value.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
