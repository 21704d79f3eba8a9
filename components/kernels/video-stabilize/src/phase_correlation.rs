//! Global translation between two frames by phase correlation on the luma
//! plane: Hann-windowed 2-D FFTs (batched, ADR 0014: real along columns, all
//! columns at once, then complex along rows, all rows at once), the
//! normalised cross-power spectrum with a Gaussian spectral taper, an
//! inverse FFT, the peak within `max_shift`, and a sub-pixel parabolic fit
//! (on the logarithm of the peak and its neighbours).

use std::f32::consts::PI;

use greenmesh_kernel::fft::real::RealBatchFft;
use greenmesh_kernel::fft::{join, split, transpose, BatchFft, Direction, Quads};
use greenmesh_kernel::{lanes, KernelError};
use wide::f32x4;

use crate::trajectory::Shift;

/// Frames whose longer side exceeds this are box-downsampled by an integer
/// factor before analysis, so the FFTs stay at most about this size.
const MAX_ANALYSIS_SIDE: usize = 640;
/// σ, in analysis pixels, of the Gaussian that the correlation peak is
/// shaped into (by tapering the cross-power spectrum); it suppresses noise in
/// the high frequencies and makes the log-parabolic sub-pixel fit nearly exact.
const PEAK_SIGMA: f32 = 1.0;
/// Peaks below this fraction of a perfect match's height are taken as "no
/// reliable motion" (flat or unrelated frames), giving a zero displacement.
const MIN_PEAK_HEIGHT: f32 = 0.03;
/// Windowed analysis regions whose RMS deviation from their mean (weighted
/// by the window squared) is below
/// this many grey levels are flat: they carry no motion information.
const MIN_CONTRAST: f32 = 0.01;

/// The windowed 2-D spectrum of one frame's analysis region: the
/// non-negative `ky` half (the rest follows by symmetry), one row per `kx`
/// (in the x transform's row order) of `ny/2 + 1` values and zero padding;
/// `None` for a flat region.
pub struct Spectrum(Option<Quads>);

/// Estimates frame-to-frame translations for frames of one size.
pub struct Estimator {
    width: usize,
    /// Downsampling factor from luma pixels to analysis pixels.
    factor: usize,
    /// Top-left corner of the analysis region, in luma pixels.
    origin: (usize, usize),
    /// Analysis region size, in analysis pixels (FFT lengths, both even).
    nx: usize,
    ny: usize,
    /// Spectrum row length: the `ny/2 + 1` bins along y rounded up to whole
    /// quads (the padding stays zero).
    stride: usize,
    window_x: Vec<f32>,
    window_y: Vec<f32>,
    /// Σ over the region of `window_x · window_y`, and of its square.
    window_weight: f32,
    window_weight_squared: f32,
    /// Gaussian taper of the cross-power spectrum, laid out like a spectrum.
    taper: Vec<f32>,
    /// The correlation peak height of a perfect match: Σ taper over the full
    /// (two-sided) spectrum.
    perfect_peak: f32,
    /// Largest displacement searched, in analysis pixels, per axis.
    reach: (usize, usize),
    /// Real transforms along y (columns), forward and back.
    along_y: RealBatchFft,
    /// Complex transforms along x (rows of the transposed half spectrum).
    along_x: BatchFft,
    along_x_inverse: BatchFft,
    /// Real `ny × nx` buffer: the windowed samples, later the surface.
    real: Vec<f32>,
    /// The region's rows packed in pairs for the real transform along y
    /// (`ny/2` rows of `nx`), and its spectra (`stride` rows of `nx`).
    packed: Quads,
    columns: Quads,
    /// The cross-power spectrum (`nx` rows of `stride`).
    cross: Quads,
}

/// The largest n ≤ `limit` (at least 2) of the form 2ᵏ or 3·2ᵏ (k ≥ 1): the
/// lengths the batched FFT runs, even for the real transform's half-length
/// complex one.
fn fft_length_at_most(limit: usize) -> usize {
    (2..=limit)
        .rev()
        .find(|&n| {
            let odd = n >> n.trailing_zeros();
            n % 2 == 0 && (odd == 1 || odd == 3)
        })
        .unwrap_or(2)
}

/// A periodic Hann window of length `n`, sampled at pixel centres.
fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * (i as f32 + 0.5) / n as f32).cos())
        .collect()
}

/// The signed frequency of FFT bin `k` of `n`, in cycles per sample.
fn signed_frequency(k: usize, n: usize) -> f32 {
    let k = if k > n / 2 {
        k as f32 - n as f32
    } else {
        k as f32
    };
    k / n as f32
}

/// Four lanes of a slice of (at least) four.
#[inline(always)]
fn lanes4(x: &[f32]) -> f32x4 {
    f32x4::new(x[..4].try_into().expect("four lanes"))
}

/// Converts a row of luma bytes into `samples` and returns the per-lane
/// sums of the samples weighted by `weights`.
///
/// Sixteen values per iteration, summed as a tree before joining the
/// running sum: in a component Cranelift keeps a loop-carried vector on the
/// stack (the fuel and epoch checks' slow paths are calls), so a sum carried
/// quad by quad waits on a store and a load every four values.
fn convert_and_weigh(bytes: &[u8], samples: &mut [f32], weights: &[f32]) -> f32x4 {
    fn quad(bytes: &[u8], samples: &mut [f32], weights: &[f32]) -> f32x4 {
        let x = f32x4::new(std::array::from_fn(|i| f32::from(bytes[i])));
        samples[..4].copy_from_slice(&x.to_array());
        x * lanes4(weights)
    }
    let (b16, b4) = bytes[..samples.len()].as_chunks::<16>();
    let (w16, w4) = weights[..samples.len()].as_chunks::<16>();
    let (s16, s4) = samples.as_chunks_mut::<16>();
    let mut sum = f32x4::splat(0.0);
    for ((b, s), w) in b16.iter().zip(s16.iter_mut()).zip(w16) {
        let (s01, s23) = s.split_at_mut(8);
        let ((s0, s1), (s2, s3)) = (s01.split_at_mut(4), s23.split_at_mut(4));
        sum += (quad(&b[..4], s0, &w[..4]) + quad(&b[4..8], s1, &w[4..8]))
            + (quad(&b[8..12], s2, &w[8..12]) + quad(&b[12..], s3, &w[12..]));
    }
    for ((b, s), w) in b4
        .chunks_exact(4)
        .zip(s4.chunks_exact_mut(4))
        .zip(w4.chunks_exact(4))
    {
        sum += quad(b, s, w);
    }
    sum
}

/// Removes `mean` from rows `even` and `odd`, windows them (`weights`: the
/// x window, then the two rows' y weights) and packs them into `quads` as
/// real and imaginary parts; returns the per-lane energy of the result,
/// summed sixteen values per iteration as in [`convert_and_weigh`].
fn window_and_pack(
    even: &[f32],
    odd: &[f32],
    (window_x, w_even, w_odd): (&[f32], f32x4, f32x4),
    mean: f32x4,
    quads: &mut [[f32; 8]],
) -> f32x4 {
    let pack = |even: &[f32], odd: &[f32], wx: &[f32], quad: &mut [f32; 8]| {
        let wx = lanes4(wx);
        let re = (lanes4(even) - mean) * wx * w_even;
        let im = (lanes4(odd) - mean) * wx * w_odd;
        join(quad, re, im);
        re * re + im * im
    };
    let n = even.len();
    let (e16, e4) = even.as_chunks::<16>();
    let (o16, o4) = odd[..n].as_chunks::<16>();
    let (w16, w4) = window_x[..n].as_chunks::<16>();
    let (q4, q1) = quads[..n / 4].as_chunks_mut::<4>();
    let mut energy = f32x4::splat(0.0);
    for (((e, o), w), q) in e16.iter().zip(o16).zip(w16).zip(q4.iter_mut()) {
        let [q0, q1, q2, q3] = q;
        energy += (pack(&e[..4], &o[..4], &w[..4], q0) + pack(&e[4..8], &o[4..8], &w[4..8], q1))
            + (pack(&e[8..12], &o[8..12], &w[8..12], q2) + pack(&e[12..], &o[12..], &w[12..], q3));
    }
    for (((e, o), w), q) in e4
        .chunks_exact(4)
        .zip(o4.chunks_exact(4))
        .zip(w4.chunks_exact(4))
        .zip(q1.iter_mut())
    {
        energy += pack(e, o, w, q);
    }
    energy
}

/// Fills `cross` with the normalised cross-power spectrum of `from` and
/// `to`: `conj(from) · to` scaled to magnitude `taper` (zero where the
/// product vanishes).
///
/// Four quads per iteration: with one quad per iteration the loop ran at
/// about 1.7× native in a component, paying a fuel and an epoch check and
/// reloading its constants for every quad (docs/benchmarks.md).
fn cross_power(cross: &mut [[f32; 8]], from: &[[f32; 8]], to: &[[f32; 8]], taper: &[f32]) {
    let tiny = f32x4::splat(1e-30);
    let quad = |c: &mut [f32; 8], a: &[f32; 8], b: &[f32; 8], t: &[f32; 4]| {
        let ((a_re, a_im), (b_re, b_im)) = (split(a), split(b));
        let (p_re, p_im) = (a_re * b_re + a_im * b_im, a_re * b_im - a_im * b_re);
        let magnitude_squared = p_re * p_re + p_im * p_im;
        let scale = magnitude_squared
            .simd_gt(tiny)
            .select(f32x4::new(*t) / magnitude_squared.sqrt(), f32x4::splat(0.0));
        join(c, p_re * scale, p_im * scale);
    };
    let n = cross.len();
    let (taper, _) = taper[..4 * n].as_chunks::<4>();
    let (c4, c1) = cross.as_chunks_mut::<4>();
    let (a4, a1) = from[..n].as_chunks::<4>();
    let (b4, b1) = to[..n].as_chunks::<4>();
    let (t4, t1) = taper.as_chunks::<4>();
    for (((c, a), b), t) in c4.iter_mut().zip(a4).zip(b4).zip(t4) {
        for (((c, a), b), t) in c.iter_mut().zip(a).zip(b).zip(t) {
            quad(c, a, b, t);
        }
    }
    for (((c, a), b), t) in c1.iter_mut().zip(a1).zip(b1).zip(t1) {
        quad(c, a, b, t);
    }
}

/// Unpacks a row of quads into its real parts (`even`) and imaginary parts
/// (`odd`), four quads per iteration as in [`cross_power`].
fn unpack_row(quads: &[[f32; 8]], even: &mut [f32], odd: &mut [f32]) {
    let unpack = |quad: &[f32; 8], re: &mut [f32; 4], im: &mut [f32; 4]| {
        re.copy_from_slice(&quad[..4]);
        im.copy_from_slice(&quad[4..]);
    };
    let (q4, q1) = quads.as_chunks::<4>();
    let (even, _) = even.as_chunks_mut::<4>();
    let (odd, _) = odd.as_chunks_mut::<4>();
    let (e4, e1) = even.as_chunks_mut::<4>();
    let (o4, o1) = odd.as_chunks_mut::<4>();
    for ((q, e), o) in q4.iter().zip(e4).zip(o4) {
        for ((q, e), o) in q.iter().zip(e).zip(o) {
            unpack(q, e, o);
        }
    }
    for ((q, e), o) in q1.iter().zip(e1).zip(o1) {
        unpack(q, e, o);
    }
}

/// The sub-pixel offset of a peak from its sampled neighbours: the vertex of
/// the parabola through the logarithms (exact for a Gaussian peak), or
/// through the values themselves where a neighbour is not positive.
fn parabolic_offset(left: f32, centre: f32, right: f32) -> f32 {
    let (l, c, r) = if left > 0.0 && right > 0.0 && centre > 0.0 {
        (left.ln(), centre.ln(), right.ln())
    } else {
        (left, centre, right)
    };
    let curvature = l - 2.0 * c + r;
    if curvature < 0.0 {
        (0.5 * (l - r) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

impl Estimator {
    /// An estimator for `width`×`height` luma planes (each side at least
    /// 16, as Y4M parsing ensures, so the x transform length is a multiple
    /// of 4)
    /// searching displacements of up to `max_shift` luma pixels per axis (and
    /// at most about half the analysis region).
    pub fn new(width: usize, height: usize, max_shift: usize) -> Self {
        let factor = width.max(height).div_ceil(MAX_ANALYSIS_SIDE).max(1);
        let (aw, ah) = (width / factor, height / factor);
        let nx = fft_length_at_most(aw);
        let ny = fft_length_at_most(ah);
        let half_ny = ny / 2 + 1;
        let stride = half_ny.next_multiple_of(4);
        let origin = ((aw - nx) / 2 * factor, (ah - ny) / 2 * factor);
        let plan = "analysis sides are 2ᵏ or 3·2ᵏ";
        let along_y = RealBatchFft::new(ny).expect(plan);
        let along_x = BatchFft::new(nx, Direction::Forward).expect(plan);
        let along_x_inverse = BatchFft::new(nx, Direction::Inverse).expect(plan);
        let mut taper = vec![0.0; nx * stride];
        let mut perfect_peak = 0.0;
        let spread = 2.0 * PI * PI * PEAK_SIGMA * PEAK_SIGMA;
        for kx in 0..nx {
            let fx = signed_frequency(kx, nx);
            let row = &mut taper[along_x.row_of(kx) * stride..][..half_ny];
            for (ky, t) in row.iter_mut().enumerate() {
                let fy = signed_frequency(ky, ny);
                *t = (-spread * (fx * fx + fy * fy)).exp();
                // Bins 0 and ny/2 stand for themselves; the others for a pair.
                let multiplicity = if ky == 0 || ky == ny / 2 { 1.0 } else { 2.0 };
                perfect_peak += multiplicity * *t;
            }
        }
        let shift_reach = max_shift.div_ceil(factor);
        let reach = (shift_reach.min(nx / 2 - 1), shift_reach.min(ny / 2 - 1));
        let (window_x, window_y) = (hann(nx), hann(ny));
        Self {
            width,
            factor,
            origin,
            nx,
            ny,
            stride,
            window_weight: window_x.iter().sum::<f32>() * window_y.iter().sum::<f32>(),
            window_weight_squared: lanes::dot(&window_x, &window_x)
                * lanes::dot(&window_y, &window_y),
            window_x,
            window_y,
            taper,
            perfect_peak,
            reach,
            along_y,
            along_x,
            along_x_inverse,
            real: vec![0.0; nx * ny],
            packed: Quads::zeroed(ny / 2, nx),
            columns: Quads::zeroed(stride, nx),
            cross: Quads::zeroed(nx, stride),
        }
    }

    /// Fills `self.real` with the analysis region (box-downsampled by
    /// `factor`), returning the window-weighted mean.
    fn load_samples(&mut self, luma: &[u8]) -> f32 {
        let (nx, k) = (self.nx, self.factor);
        let scale = 1.0 / (k * k) as f32;
        let mut weighted = 0.0f32;
        for ((ay, row), &wy) in self
            .real
            .chunks_exact_mut(nx)
            .enumerate()
            .zip(&self.window_y)
        {
            let line = |dy: usize| {
                let start = (self.origin.1 + ay * k + dy) * self.width + self.origin.0;
                &luma[start..start + nx * k]
            };
            if k == 1 {
                // Convert and weigh in one pass, four lanes at a time (`nx`
                // is a multiple of 4).
                let sum = convert_and_weigh(line(0), row, &self.window_x);
                weighted += wy * sum.reduce_add();
            } else {
                row.fill(0.0);
                for dy in 0..k {
                    for (sample, block) in row.iter_mut().zip(line(dy).chunks_exact(k)) {
                        *sample += block.iter().map(|&v| u32::from(v)).sum::<u32>() as f32;
                    }
                }
                for sample in row.iter_mut() {
                    *sample *= scale;
                }
                weighted += wy * lanes::dot(row, &self.window_x);
            }
        }
        weighted / self.window_weight
    }

    /// The windowed spectrum of a luma plane (`width`×`height` bytes).
    pub fn spectrum(&mut self, luma: &[u8]) -> Result<Spectrum, KernelError> {
        let (nx, stride) = (self.nx, self.stride);
        let mean = self.load_samples(luma);
        // Subtract the mean so the windowed signal has no DC, window, and
        // pack: rows 2m and 2m + 1 become the real and imaginary parts of
        // packed row m, so the real transform along y then runs on all
        // columns at once. The contrast test weighs each deviation by the
        // window squared, as the windowed samples carry it.
        let mean = f32x4::splat(mean);
        let mut energy = f32x4::splat(0.0);
        for (m, (pair, wy)) in self
            .real
            .chunks_exact(2 * nx)
            .zip(self.window_y.chunks_exact(2))
            .enumerate()
        {
            let (even, odd) = pair.split_at(nx);
            let weights = (&self.window_x[..], f32x4::splat(wy[0]), f32x4::splat(wy[1]));
            energy += window_and_pack(even, odd, weights, mean, self.packed.row_mut(m, nx));
        }
        let weight = self.window_weight_squared;
        if energy.reduce_add() < MIN_CONTRAST * MIN_CONTRAST * weight {
            return Ok(Spectrum(None));
        }
        self.along_y
            .forward(&mut self.packed, &mut self.columns, nx);
        let mut spectrum = Quads::zeroed(nx, stride);
        transpose(&self.columns, stride, nx, &mut spectrum);
        self.along_x.process(&mut spectrum, stride);
        Ok(Spectrum(Some(spectrum)))
    }

    /// How far the content moved from the frame of `from` to the frame of
    /// `to`, in luma pixels: `to(x) ≈ from(x − shift)`. Zero where either
    /// frame is flat or the correlation peak is too weak to trust.
    pub fn displacement(&mut self, from: &Spectrum, to: &Spectrum) -> Result<Shift, KernelError> {
        let (Some(from), Some(to)) = (&from.0, &to.0) else {
            return Ok(Shift::default());
        };
        let (nx, ny, stride) = (self.nx, self.ny, self.stride);
        cross_power(&mut self.cross.data, &from.data, &to.data, &self.taper);
        self.along_x_inverse.process(&mut self.cross, stride);
        transpose(&self.cross, nx, stride, &mut self.columns);
        self.along_y.inverse(&self.columns, &mut self.packed, nx);
        for (m, pair) in self.real.chunks_exact_mut(2 * nx).enumerate() {
            let (even, odd) = pair.split_at_mut(nx);
            unpack_row(self.packed.row(m, nx), even, odd);
        }

        let surface = &self.real;
        let wrap = |d: isize, n: usize| {
            if d < 0 {
                (d + n as isize) as usize
            } else {
                d as usize
            }
        };
        let at = |dx: isize, dy: isize| surface[wrap(dy, ny) * nx + wrap(dx, nx)];
        let (rx, ry) = (self.reach.0 as isize, self.reach.1 as isize);
        // The best row by its vectorised maximum (the first row wins a tie,
        // as in a scan), then the first column in it holding that maximum.
        let (mut best, mut best_dy) = (f32::MIN, None);
        for dy in -ry..=ry {
            let row = &surface[wrap(dy, ny) * nx..][..nx];
            // The searched columns in scan order (dx = −rx ..= rx): the
            // wrapped-around negative shifts, then 0 ..= rx.
            let top = [&row[nx - rx as usize..], &row[..=rx as usize]].map(lanes::max);
            let top = if top[1] > top[0] { top[1] } else { top[0] };
            if top > best {
                best = top;
                best_dy = Some(dy);
            }
        }
        let Some(py) = best_dy else {
            return Ok(Shift::default());
        };
        let row = &surface[wrap(py, ny) * nx..][..nx];
        let px = (-rx..=rx)
            .find(|&dx| row[wrap(dx, nx)] == best)
            .expect("the maximum lies in its row");
        let peak = (px, py);
        if best < MIN_PEAK_HEIGHT * self.perfect_peak {
            return Ok(Shift::default());
        }
        let (px, py) = peak;
        let sub_x = parabolic_offset(at(px - 1, py), best, at(px + 1, py));
        let sub_y = parabolic_offset(at(px, py - 1), best, at(px, py + 1));
        let k = self.factor as f32;
        Ok(Shift::new((px as f32 + sub_x) * k, (py as f32 + sub_y) * k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn cross_power_has_the_taper_s_magnitude_and_the_phase_difference() {
        // Six quads: one block of four and a remainder of two. Lane j of
        // quad q holds a = (q + 1) e^{iθ} and b = (j + 2) e^{i(θ + φ)}, so
        // conj(a)·b has phase φ; the last lane of the last quad is zero.
        let (quads, lanes) = (6, 4);
        let mut from = vec![[0f32; 8]; quads];
        let mut to = vec![[0f32; 8]; quads];
        let taper: Vec<f32> = (0..quads * lanes).map(|i| 0.5 + i as f32 / 10.0).collect();
        let phase = |q: usize, j: usize| 0.3 * q as f32 - 0.2 * j as f32;
        for q in 0..quads {
            for j in 0..lanes {
                let (theta, phi) = (0.1 * (q + j) as f32, phase(q, j));
                let (a, b) = ((q + 1) as f32, (j + 2) as f32);
                [from[q][j], from[q][4 + j]] = [a * theta.cos(), a * theta.sin()];
                [to[q][j], to[q][4 + j]] = [b * (theta + phi).cos(), b * (theta + phi).sin()];
            }
        }
        [to[5][3], to[5][7]] = [0.0, 0.0];
        let mut cross = vec![[f32::NAN; 8]; quads];
        cross_power(&mut cross, &from, &to, &taper);
        for q in 0..quads {
            for j in 0..lanes {
                let (re, im) = (cross[q][j], cross[q][4 + j]);
                if (q, j) == (5, 3) {
                    assert_eq!((re, im), (0.0, 0.0));
                    continue;
                }
                let t = taper[4 * q + j];
                let (want_re, want_im) = (t * phase(q, j).cos(), t * phase(q, j).sin());
                assert!(
                    (re - want_re).abs() < 1e-5 && (im - want_im).abs() < 1e-5,
                    "{q} {j}"
                );
            }
        }
        // Unpacking puts each quad's real lanes in `even`, imaginary in `odd`.
        let (mut even, mut odd) = (vec![0f32; 24], vec![0f32; 24]);
        unpack_row(&cross, &mut even, &mut odd);
        for q in 0..quads {
            assert_eq!(even[4 * q..4 * q + 4], cross[q][..4]);
            assert_eq!(odd[4 * q..4 * q + 4], cross[q][4..]);
        }
    }

    #[test]
    fn fft_lengths_are_powers_of_two_or_three_times_one() {
        assert_eq!(fft_length_at_most(320), 256);
        assert_eq!(fft_length_at_most(239), 192);
        assert_eq!(fft_length_at_most(97), 96);
        assert_eq!(fft_length_at_most(17), 16);
        assert_eq!(fft_length_at_most(5), 4);
        assert_eq!(fft_length_at_most(2), 2);
    }

    #[test]
    fn parabolic_fit_finds_the_vertex_of_a_sampled_gaussian() {
        let g = |x: f32| (-(x - 0.3) * (x - 0.3) / 2.0).exp();
        assert!((parabolic_offset(g(-1.0), g(0.0), g(1.0)) - 0.3).abs() < 1e-5);
        assert_eq!(parabolic_offset(1.0, 1.0, 1.0), 0.0);
    }

    #[test]
    fn quality_known_sub_pixel_shifts_are_recovered_within_a_quarter_pixel() {
        let (w, h) = (96, 64);
        let mut estimator = Estimator::new(w, h, 64);
        let base = Shift::new(40.0, 25.0);
        let reference = estimator
            .spectrum(&testdata::scene_luma(w, h, base))
            .unwrap();
        let mut worst = 0.0f32;
        for shift in [
            Shift::new(0.0, 0.0),
            Shift::new(2.3, -1.7),
            Shift::new(-3.6, 0.45),
            Shift::new(0.5, 3.75),
            Shift::new(-7.25, -5.5),
            Shift::new(11.8, 9.1),
        ] {
            let moved = estimator
                .spectrum(&testdata::scene_luma(w, h, base + shift))
                .unwrap();
            let found = estimator.displacement(&reference, &moved).unwrap();
            let error = (found - shift).length();
            worst = worst.max(error);
            assert!(error < 0.25, "true {shift:?}, estimated {found:?}");
        }
        println!("phase correlation: worst error {worst:.3} px over 6 shifts on 96×64");
    }

    #[test]
    fn large_frames_are_analysed_downsampled_with_shifts_in_luma_pixels() {
        let (w, h) = (1280, 96);
        let mut estimator = Estimator::new(w, h, 64);
        assert_eq!(estimator.factor, 2);
        let base = Shift::new(0.0, 0.0);
        let shift = Shift::new(-9.0, 4.5);
        let a = estimator
            .spectrum(&testdata::scene_luma(w, h, base))
            .unwrap();
        let b = estimator
            .spectrum(&testdata::scene_luma(w, h, base + shift))
            .unwrap();
        let found = estimator.displacement(&a, &b).unwrap();
        assert!((found - shift).length() < 0.5, "{found:?}");
    }

    #[test]
    fn the_most_extreme_accepted_frames_are_analysed() {
        // 16 px on one side (the Y4M minimum) and 1920 on the other (the
        // maximum, box-averaged by 3): transform lengths 4 and 512.
        for (w, h) in [(1920, 16), (16, 1920)] {
            let mut estimator = Estimator::new(w, h, 64);
            let a = estimator
                .spectrum(&testdata::scene_luma(w, h, Shift::default()))
                .unwrap();
            let b = estimator
                .spectrum(&testdata::scene_luma(w, h, Shift::new(1.0, 1.0)))
                .unwrap();
            let found = estimator.displacement(&a, &b).unwrap();
            assert!(
                found.x.is_finite() && found.y.is_finite(),
                "{w}×{h}: {found:?}"
            );
        }
    }

    #[test]
    fn a_flat_frame_gives_no_motion() {
        let mut estimator = Estimator::new(32, 32, 8);
        let flat = estimator.spectrum(&[90; 32 * 32]).unwrap();
        let textured = estimator
            .spectrum(&testdata::scene_luma(32, 32, Shift::default()))
            .unwrap();
        assert!(flat.0.is_none());
        let found = estimator.displacement(&flat, &textured).unwrap();
        assert_eq!(found, Shift::default());
    }
}
