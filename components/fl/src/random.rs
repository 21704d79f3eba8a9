//! Randomness as the training code takes it: passed in, so the kernel can
//! hand it the node's own entropy (DP noise must come from randomness no
//! one else knows: never a seed from the lease) while tests and the bench
//! use a seeded generator.

/// A source of uniform 64-bit numbers, and what training draws from it.
pub trait Random {
    fn next_u64(&mut self) -> u64;

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: ln is finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

/// splitmix64: seeded and reproducible, for tests, the bench and data
/// splits. Not for privacy noise.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl Random for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A random permutation of `0..n`.
pub fn shuffled(n: usize, rng: &mut impl Random) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussians_have_mean_zero_and_unit_variance() {
        let mut r = SplitMix64(9);
        let xs: Vec<f64> = (0..100_000).map(|_| r.gaussian()).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }
}
