//! Float helpers that compile to the same fast code natively and in wasm.
//!
//! In a component, `f32::max`, `ln` and `log10` are library calls (wasm's
//! `f32.max` propagates NaN where Rust's does not; there is no wasm `log`),
//! and a sum over a slice is a scalar chain that cannot vectorise. These
//! versions are branch-free or split into lanes, so LLVM vectorises them on
//! both targets and the sandbox stays close to native.

use wide::bytemuck::cast;
use wide::{f32x4, i32x4};

/// `max(x, 0)`, with NaN mapped to 0: the comparison form compiles to a
/// vector select, where `f32::max` is a `fmaxf` library call in wasm.
#[inline]
pub fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// The largest value, ignoring NaNs (`-∞` for an empty slice), without
/// `fmaxf` calls. Four lanes at a time with [`keep_larger`]: a scalar
/// `if x > m` fold stays scalar in wasm (its `f32x4.max` propagates NaN, so
/// LLVM cannot use it), where `maxps` vectorises it natively.
#[inline]
pub fn max(xs: &[f32]) -> f32 {
    let (quads, rest) = xs.as_chunks::<4>();
    let mut top = f32x4::splat(f32::NEG_INFINITY);
    for &quad in quads {
        top = keep_larger(top, f32x4::new(quad));
    }
    top.to_array()
        .into_iter()
        .chain(rest.iter().copied())
        .fold(f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

/// `x` in the lanes where it is larger than `top`, else `top` (so a NaN in
/// `x` is skipped): one instruction on both targets, wasm's
/// `f32x4.pmax(top, x)` and SSE's `maxps(x, top)`, which wide's `fast_max`
/// is with the operands in that target's order. A compare-and-select
/// stayed a compare and a blend in wasm, twice the latency of the chain.
#[inline(always)]
pub fn keep_larger(top: f32x4, x: f32x4) -> f32x4 {
    if cfg!(target_arch = "wasm32") {
        top.fast_max(x)
    } else if cfg!(target_feature = "sse") {
        x.fast_max(top)
    } else {
        x.simd_gt(top).select(x, top)
    }
}

/// Σ `f(aᵢ, bᵢ)` over the common length, in eight interleaved partial sums
/// that vectorise when `f` inlines (the order of additions differs from a
/// left-to-right sum, the same way on every target).
#[inline]
pub fn sum_zip(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut partial = [0.0f32; LANES];
    let (a_blocks, b_blocks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(&x, &y)| f(x, y))
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for i in 0..LANES {
            partial[i] += f(x[i], y[i]);
        }
    }
    partial.iter().sum::<f32>() + tail
}

/// Σ aᵢ·bᵢ over the common length ([`sum_zip`] of the product).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    sum_zip(a, b, |x, y| x * y)
}

/// Cephes' `logf` polynomial in the mantissa, highest power first.
const LN_POLYNOMIAL: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];
/// ln 2 = `LN_2_HIGH − LN_2_LOW`, the high part exact in a few bits.
const LN_2_HIGH: f32 = 0.693_359_4;
const LN_2_LOW: f32 = 2.121_944_4e-4;

/// The natural logarithm of a positive, finite, normal `x`, within 2 ulp of
/// `f32::ln`: Cephes' `logf` (frexp, then a degree-9 polynomial on the
/// mantissa). Branch-free, so loops over it vectorise; in wasm `ln` is a
/// libm call, natively it is glibc's. Zero, negative, subnormal, infinite or
/// NaN inputs give meaningless results: callers add a floor first.
#[inline]
pub fn ln(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 126;
    // The mantissa in [0.5, 1).
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let low = m < SQRT_HALF;
    let e = (exponent - i32::from(low)) as f32;
    let m = if low { m + m - 1.0 } else { m - 1.0 };
    let z = m * m;
    let mut y = LN_POLYNOMIAL[0];
    for c in &LN_POLYNOMIAL[1..] {
        y = y * m + c;
    }
    let y = y * m * z - LN_2_LOW * e - 0.5 * z;
    m + y + LN_2_HIGH * e
}

/// `log10(x)` through [`ln`], with the same domain.
#[inline]
pub fn log10(x: f32) -> f32 {
    ln(x) * std::f32::consts::LOG10_E
}

/// [`ln`] of four values at once, bit for bit the same as four calls (the
/// same operations in the same order), for loops that cannot leave a
/// scalar remainder: a vectorised loop over a few dozen values spends as
/// long in its scalar tail as in its body, and more so in wasm.
#[inline]
pub fn ln_x4(x: f32x4) -> f32x4 {
    let bits: i32x4 = cast(x);
    let exponent = (bits.unbounded_shr_scalar(23) & i32x4::splat(0xff)) - i32x4::splat(126);
    let m: f32x4 = cast((bits & i32x4::splat(0x007f_ffff)) | i32x4::splat(0x3f00_0000));
    let low = m.simd_lt(f32x4::splat(std::f32::consts::FRAC_1_SQRT_2));
    // A true lane of the mask is all ones, −1 as an integer.
    let e = (exponent + cast::<f32x4, i32x4>(low)).round_float();
    let one = f32x4::splat(1.0);
    let m = low.select(m + m - one, m - one);
    let z = m * m;
    let mut y = f32x4::splat(LN_POLYNOMIAL[0]);
    for &c in &LN_POLYNOMIAL[1..] {
        y = y * m + f32x4::splat(c);
    }
    let y = y * m * z - f32x4::splat(LN_2_LOW) * e - f32x4::splat(0.5) * z;
    m + y + f32x4::splat(LN_2_HIGH) * e
}

/// [`log10`] of four values at once, through [`ln_x4`].
#[inline]
pub fn log10_x4(x: f32x4) -> f32x4 {
    ln_x4(x) * f32x4::splat(std::f32::consts::LOG10_E)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_and_max_ignore_nans() {
        assert_eq!(relu(-2.0), 0.0);
        assert_eq!(relu(2.5), 2.5);
        assert_eq!(relu(f32::NAN), 0.0);
        assert_eq!(max(&[1.0, f32::NAN, 7.0, -3.0]), 7.0);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        assert_eq!(max(&[f32::NAN; 9]), f32::NEG_INFINITY);
        // Past the four-lane body: the maximum in the tail, then in a lane.
        let mut xs: Vec<f32> = (0..11).map(|i| i as f32 * 0.5 - 2.0).collect();
        xs[5] = f32::NAN;
        assert_eq!(max(&xs), 3.0);
        xs[10] = -9.0;
        xs[6] = 8.0;
        assert_eq!(max(&xs), 8.0);
        // A NaN and a value in the same lane, in different quads.
        let mut xs = vec![-1.0; 20];
        xs[0] = f32::NAN;
        xs[4] = 5.0;
        assert_eq!(max(&xs), 5.0);
    }

    #[test]
    fn four_lane_logarithms_equal_the_scalar_ones_bit_for_bit() {
        let mut x = f32::MIN_POSITIVE;
        while x < f32::MAX / 2.0 {
            let xs = [x, x * 1.000_123, x * 1.414, x * 1.999];
            let (ln4, log4) = (ln_x4(f32x4::new(xs)), log10_x4(f32x4::new(xs)));
            for (i, v) in xs.into_iter().enumerate() {
                assert_eq!(ln4.to_array()[i].to_bits(), ln(v).to_bits(), "ln {v}");
                assert_eq!(
                    log4.to_array()[i].to_bits(),
                    log10(v).to_bits(),
                    "log10 {v}"
                );
            }
            x *= 1.37;
        }
    }

    #[test]
    fn ln_is_within_two_ulp_of_std_over_the_normal_range() {
        let mut x = f32::MIN_POSITIVE;
        let mut worst = 0.0f32;
        while x < f32::MAX / 1.001 {
            for v in [x, x * 1.000_123, x * 1.3, x * 1.999] {
                let (ours, std) = (ln(v), v.ln());
                let ulp = (std.abs().max(f32::MIN_POSITIVE)).to_bits();
                let ulps = (ours - std).abs() / (f32::from_bits(ulp + 1) - f32::from_bits(ulp));
                worst = worst.max(ulps);
            }
            x *= 1.37;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
        assert!((log10(1000.0) - 3.0).abs() < 1e-6);
        assert!((log10(1e-12) + 12.0).abs() < 1e-5);
    }

    #[test]
    fn dot_sums_products_over_the_common_length() {
        for n in [0, 1, 7, 15, 16, 17, 33, 64, 70] {
            let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..n).map(|i| (n - i) as f32 * 0.5).collect();
            let expected: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert_eq!(dot(&a, &b), expected, "n = {n}");
        }
        assert_eq!(dot(&[1.0, 2.0, 3.0], &[4.0]), 4.0);
    }
}
