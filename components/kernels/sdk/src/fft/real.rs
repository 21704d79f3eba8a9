//! Real signals through the complex [`BatchFft`]: the transform of a real
//! signal `x` of even length `2n` is a complex transform of length `n` on
//! `z[j] = x[2j] + i·x[2j+1]`, untangled afterwards into the bins `0..=n`
//! (the rest follow by conjugate symmetry); the inverse tangles the bins
//! back into `z` first. The caller packs and unpacks `z`, as only it knows
//! where its samples lie.

use std::f64::consts::PI;

use wide::f32x4;

use super::{BatchFft, Direction, Quads, UnsupportedLength};

/// Planned real transforms of `2n` points, batched like [`BatchFft`].
#[derive(Debug, Clone)]
pub struct RealBatchFft {
    half: usize,
    forward: BatchFft,
    inverse: BatchFft,
    /// `e^{−iπk/n}` for `k` in `0..=n`.
    twiddle_re: Vec<f32>,
    twiddle_im: Vec<f32>,
}

impl RealBatchFft {
    /// Plans real transforms of `len` points: `len / 2` must be 2ᵏ or 3·2ᵏ.
    pub fn new(len: usize) -> Result<Self, UnsupportedLength> {
        if len % 2 == 1 {
            return Err(UnsupportedLength(len));
        }
        let half = len / 2;
        let plan = |direction| BatchFft::new(half, direction).map_err(|_| UnsupportedLength(len));
        let (twiddle_re, twiddle_im) = (0..=half)
            .map(|k| {
                let angle = -PI * k as f64 / half as f64;
                (angle.cos() as f32, angle.sin() as f32)
            })
            .unzip();
        Ok(Self {
            half,
            forward: plan(Direction::Forward)?,
            inverse: plan(Direction::Inverse)?,
            twiddle_re,
            twiddle_im,
        })
    }

    /// The real signal length, `2n`.
    pub fn len(&self) -> usize {
        2 * self.half
    }

    pub fn is_empty(&self) -> bool {
        self.half == 0
    }

    /// The number of bins a spectrum has, `n + 1`.
    pub fn bins(&self) -> usize {
        self.half + 1
    }

    /// Transforms the packed signals in `packed` (`n` rows of `width`; it is
    /// overwritten) into their spectra in `spectrum` (at least `n + 1` rows
    /// of `width`): `X[k] = Σ x[j] e^{−2πi·jk/2n}`.
    pub fn forward(&self, packed: &mut Quads, spectrum: &mut Quads, width: usize) {
        let n = self.half;
        self.forward.process(packed, width);
        for k in 0..=n {
            // The complex transform leaves bin `k` in row `row_of(k)`.
            let z = packed.row(self.forward.row_of(k % n), width);
            let y = packed.row(self.forward.row_of((n - k) % n), width);
            let (wr, wi) = (
                f32x4::splat(self.twiddle_re[k]),
                f32x4::splat(self.twiddle_im[k]),
            );
            let half = f32x4::splat(0.5);
            for ((out, z), y) in spectrum.row_mut(k, width).iter_mut().zip(z).zip(y) {
                let (zr, zi) = split(z);
                let (yr, yi) = split(y);
                // z[k] = E + i·O with E, O the spectra of the even and odd
                // samples: E = (z[k] + z̄[n−k]) / 2, O = −i·(z[k] − z̄[n−k]) / 2.
                let (e_r, e_i) = (half * (zr + yr), half * (zi - yi));
                let (o_r, o_i) = (half * (zi + yi), half * (yr - zr));
                // X[k] = E + e^{−iπk/n}·O.
                join(out, e_r + wr * o_r - wi * o_i, e_i + wr * o_i + wi * o_r);
            }
        }
    }

    /// The inverse of [`Self::forward`], unnormalised: from the spectra in
    /// `spectrum` (`n + 1` rows of `width`) writes `2n · x` packed into
    /// `packed` (at least `n` rows). The imaginary parts of bins 0 and `n`
    /// are ignored.
    pub fn inverse(&self, spectrum: &Quads, packed: &mut Quads, width: usize) {
        let n = self.half;
        for k in 0..n {
            let x = spectrum.row(k, width);
            let y = spectrum.row(n - k, width);
            // Bins 0 and n are real: their imaginary parts do not count.
            let keep_imaginary = f32x4::splat(if k == 0 { 0.0 } else { 1.0 });
            let (wr, wi) = (
                f32x4::splat(self.twiddle_re[k]),
                f32x4::splat(self.twiddle_im[k]),
            );
            // The inverse complex transform takes bin `k` in row `row_of(k)`.
            let target = self.inverse.row_of(k);
            for ((out, x), y) in packed.row_mut(target, width).iter_mut().zip(x).zip(y) {
                let (xr, xi) = split(x);
                let (yr, yi) = split(y);
                let (xi, yi) = (xi * keep_imaginary, yi * keep_imaginary);
                // 2E = X[k] + X̄[n−k], 2O = e^{+iπk/n}·(X[k] − X̄[n−k]).
                let (e_r, e_i) = (xr + yr, xi - yi);
                let (f_r, f_i) = (xr - yr, xi + yi);
                let (o_r, o_i) = (wr * f_r + wi * f_i, wr * f_i - wi * f_r);
                // z = E + i·O.
                join(out, e_r - o_i, e_i + o_r);
            }
        }
        self.inverse.process(packed, width);
    }
}

/// A quad's real and imaginary lanes.
#[inline(always)]
fn split(quad: &[f32; 8]) -> (f32x4, f32x4) {
    let (re, im) = quad.split_at(4);
    (
        f32x4::new(re.try_into().expect("four lanes")),
        f32x4::new(im.try_into().expect("four lanes")),
    )
}

/// Writes a quad's real and imaginary lanes (whole vector stores: an
/// eight-element array literal became eight lane extractions in wasm).
#[inline(always)]
fn join(quad: &mut [f32; 8], re: f32x4, im: f32x4) {
    quad[..4].copy_from_slice(&re.to_array());
    quad[4..].copy_from_slice(&im.to_array());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i + seed) * 7919 + seed * 31) % 1009) as f32 / 504.0 - 1.0)
            .collect()
    }

    /// Packs `signals` (one per column) as `z[j] = x[2j] + i·x[2j+1]`.
    fn pack(signals: &[Vec<f32>]) -> Quads {
        let (width, half) = (signals.len(), signals[0].len() / 2);
        let mut packed = Quads::zeroed(half, width);
        for (c, x) in signals.iter().enumerate() {
            for j in 0..half {
                packed.set(j, c, width, (x[2 * j], x[2 * j + 1]));
            }
        }
        packed
    }

    #[test]
    fn the_spectrum_matches_the_definition() {
        for len in [2, 4, 6, 8, 16, 24, 64, 192, 256, 1024] {
            let signals: Vec<Vec<f32>> = (0..4).map(|c| signal(len, c)).collect();
            let fft = RealBatchFft::new(len).unwrap();
            let mut packed = pack(&signals);
            let mut spectrum = Quads::zeroed(fft.bins(), 4);
            fft.forward(&mut packed, &mut spectrum, 4);
            for (c, x) in signals.iter().enumerate() {
                for k in 0..fft.bins() {
                    let (want_re, want_im) =
                        x.iter().enumerate().fold((0.0, 0.0), |(r, i), (j, &v)| {
                            let angle = -2.0 * PI * ((j * k) % len) as f64 / len as f64;
                            (
                                r + f64::from(v) * angle.cos(),
                                i + f64::from(v) * angle.sin(),
                            )
                        });
                    let (got_re, got_im) = spectrum.get(k, c, 4);
                    let tolerance = 1e-5 * len as f64;
                    assert!(
                        (f64::from(got_re) - want_re).abs() < tolerance
                            && (f64::from(got_im) - want_im).abs() < tolerance,
                        "len {len}, signal {c}, bin {k}: got {got_re}+{got_im}i, want {want_re}+{want_im}i"
                    );
                }
            }
        }
    }

    #[test]
    fn the_inverse_gives_back_the_signal_times_its_length() {
        for len in [2, 8, 96, 512] {
            let signals: Vec<Vec<f32>> = (0..4).map(|c| signal(len, c + 10)).collect();
            let fft = RealBatchFft::new(len).unwrap();
            let (mut packed, mut spectrum) = (pack(&signals), Quads::zeroed(fft.bins(), 4));
            fft.forward(&mut packed, &mut spectrum, 4);
            // Noise in the imaginary parts of bins 0 and n must not matter.
            for c in 0..4 {
                let (re, _) = spectrum.get(0, c, 4);
                spectrum.set(0, c, 4, (re, 3.0));
                let (re, _) = spectrum.get(fft.bins() - 1, c, 4);
                spectrum.set(fft.bins() - 1, c, 4, (re, -2.0));
            }
            let mut back = Quads::zeroed(len / 2, 4);
            fft.inverse(&spectrum, &mut back, 4);
            let want = pack(&signals);
            for (b, w) in back.data.iter().flatten().zip(want.data.iter().flatten()) {
                assert!((b / len as f32 - w).abs() < 1e-5, "{b} / {len} ≠ {w}");
            }
        }
    }

    #[test]
    fn odd_and_unsupported_lengths_are_refused() {
        for len in [3, 10, 20] {
            assert_eq!(RealBatchFft::new(len).unwrap_err(), UnsupportedLength(len));
        }
    }
}
