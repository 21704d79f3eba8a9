//! Seeded randomness for the carbon benchmarks: SplitMix64, uniform draws
//! and standard normals (Box–Muller).
//!
//! Written out here rather than taken from `rand` so that a seed gives the
//! same jobs and forecast errors whatever crate versions the lock file
//! holds (`rand`'s `StdRng` promises no stability across versions).

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny generator whose outputs
/// pass BigCrush; plenty for sampling job times and forecast noise.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A well-mixed 64-bit value from several inputs, for noise that must be a
/// fixed function of (seed, instant, …) rather than of call order.
pub fn hash(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(GAMMA, |acc, &p| mix(acc.wrapping_add(GAMMA) ^ mix(p)))
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix(self.state)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `[0, n)` without modulo bias (Lemire's method);
    /// 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A standard normal draw (Box–Muller, one of the pair).
    pub fn normal(&mut self) -> f64 {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_reproducible_and_well_spread() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 200_000;
        let (mut sum, mut sq, mut abs) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let z = a.normal();
            sum += z;
            sq += z * z;
            abs += z.abs();
        }
        let n = n as f64;
        assert!((sum / n).abs() < 0.01);
        assert!((sq / n - 1.0).abs() < 0.02);
        // E|Z| = sqrt(2/pi) for a standard normal.
        assert!((abs / n - (2.0 / std::f64::consts::PI).sqrt()).abs() < 0.01);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            counts[a.below(10) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(a.below(0), 0);
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
    }
}
