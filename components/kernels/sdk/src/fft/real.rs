//! Real signals through the complex [`BatchFft`]: the transform of a real
//! signal `x` of even length `2n` is a complex transform of length `n` on
//! `z[j] = x[2j] + i·x[2j+1]`, untangled afterwards into the bins `0..=n`
//! (the rest follow by conjugate symmetry); the inverse tangles the bins
//! back into `z` first. The caller packs and unpacks `z`, as only it knows
//! where its samples lie.

use std::f64::consts::PI;

use wide::f32x4;

use super::{join, split, BatchFft, Direction, Quads, UnsupportedLength};

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
        let row = width / 4;
        self.forward.process(packed, width);
        let half = f32x4::splat(0.5);
        // Bins k and n − k come from the same two rows: one pass makes both.
        for k in 0..=n / 2 {
            let j = n - k;
            // The complex transform leaves bin `k` in row `row_of(k)`.
            let z = packed.row(self.forward.row_of(k % n), width);
            let y = packed.row(self.forward.row_of(j % n), width);
            let (wk, wj) = (self.twiddle(k), self.twiddle(j));
            let (low, high) = spectrum.data.split_at_mut(j * row);
            let out_j = &mut high[..row];
            // z[k] = E + i·O with E, O the spectra of the even and odd
            // samples: E = (z[k] + z̄[n−k]) / 2, O = −i·(z[k] − z̄[n−k]) / 2;
            // then X[k] = E + e^{−iπk/n}·O, and for n − k, Ē and Ō.
            let halves = |z: &[f32; 8], y: &[f32; 8]| {
                let ((zr, zi), (yr, yi)) = (split(z), split(y));
                let e = (half * (zr + yr), half * (zi - yi));
                let o = (half * (zi + yi), half * (yr - zr));
                (e, o)
            };
            if k < j {
                let out_k = &mut low[k * row..][..row];
                for (((ok, oj), z), y) in out_k.iter_mut().zip(out_j.iter_mut()).zip(z).zip(y) {
                    let (e, o) = halves(z, y);
                    join(
                        ok,
                        e.0 + wk.0 * o.0 - wk.1 * o.1,
                        e.1 + wk.0 * o.1 + wk.1 * o.0,
                    );
                    join(
                        oj,
                        e.0 + wj.0 * o.0 + wj.1 * o.1,
                        wj.1 * o.0 - wj.0 * o.1 - e.1,
                    );
                }
            } else {
                for ((oj, z), y) in out_j.iter_mut().zip(z).zip(y) {
                    let (e, o) = halves(z, y);
                    join(
                        oj,
                        e.0 + wk.0 * o.0 - wk.1 * o.1,
                        e.1 + wk.0 * o.1 + wk.1 * o.0,
                    );
                }
            }
        }
    }

    /// The inverse of [`Self::forward`], unnormalised: from the spectra in
    /// `spectrum` (`n + 1` rows of `width`) writes `2n · x` packed into
    /// `packed` (at least `n` rows). The imaginary parts of bins 0 and `n`
    /// are ignored.
    pub fn inverse(&self, spectrum: &Quads, packed: &mut Quads, width: usize) {
        let n = self.half;
        // 2E = X[k] + X̄[n−k], 2F = X[k] − X̄[n−k], 2O = e^{+iπk/n}·F and
        // z[k] = E + i·O; for n − k, E and F are Ē and −F̄. Bin 0 pairs
        // with bin n (both real: their imaginary parts do not count), the
        // others k with n − k, both made in one pass.
        let tangle = |e: (f32x4, f32x4), f: (f32x4, f32x4), w: (f32x4, f32x4)| {
            let o = (w.0 * f.0 + w.1 * f.1, w.0 * f.1 - w.1 * f.0);
            (e.0 - o.1, e.1 + o.0)
        };
        for k in 0..=n / 2 {
            let m = n - k;
            let x = spectrum.row(k, width);
            let y = spectrum.row(m, width);
            let (wk, wm) = (self.twiddle(k), self.twiddle(m));
            // The inverse complex transform takes bin `k` in row `row_of(k)`.
            let (rk, rm) = (self.inverse.row_of(k), self.inverse.row_of(m % n));
            if k == 0 || k == m {
                let keep_imaginary = f32x4::splat(if k == 0 { 0.0 } else { 1.0 });
                for ((out, x), y) in packed.row_mut(rk, width).iter_mut().zip(x).zip(y) {
                    let ((xr, xi), (yr, yi)) = (split(x), split(y));
                    let (xi, yi) = (xi * keep_imaginary, yi * keep_imaginary);
                    let z = tangle((xr + yr, xi - yi), (xr - yr, xi + yi), wk);
                    join(out, z.0, z.1);
                }
                continue;
            }
            let row = width / 4;
            let (first, second) = (rk.min(rm), rk.max(rm));
            let (low, high) = packed.data.split_at_mut(second * row);
            let (out_first, out_second) = (&mut low[first * row..][..row], &mut high[..row]);
            let (out_k, out_m) = if rk < rm {
                (out_first, out_second)
            } else {
                (out_second, out_first)
            };
            for (((ok, om), x), y) in out_k.iter_mut().zip(out_m.iter_mut()).zip(x).zip(y) {
                let ((xr, xi), (yr, yi)) = (split(x), split(y));
                let (e, f) = ((xr + yr, xi - yi), (xr - yr, xi + yi));
                let zk = tangle(e, f, wk);
                let zm = tangle((e.0, -e.1), (-f.0, f.1), wm);
                join(ok, zk.0, zk.1);
                join(om, zm.0, zm.1);
            }
        }
        self.inverse.process(packed, width);
    }

    /// `e^{−iπk/n}`, splatted.
    fn twiddle(&self, k: usize) -> (f32x4, f32x4) {
        (
            f32x4::splat(self.twiddle_re[k]),
            f32x4::splat(self.twiddle_im[k]),
        )
    }
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
