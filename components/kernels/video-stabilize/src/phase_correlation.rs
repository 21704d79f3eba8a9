//! Global translation between two frames by phase correlation on the luma
//! plane: Hann-windowed 2-D FFTs (real-to-complex along rows, complex along
//! columns), the normalised cross-power spectrum with a Gaussian spectral
//! taper, an inverse FFT, the peak within `max_shift`, and a sub-pixel
//! parabolic fit (on the logarithm of the peak and its neighbours).

use std::f32::consts::PI;
use std::sync::Arc;

use greenmesh_kernel::{lanes, KernelError};
use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, FftError, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

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
/// non-negative `kx` half (the rest follows by symmetry), `kx` major, so
/// `(nx/2 + 1) × ny` values; `None` for a flat region.
pub struct Spectrum(Option<Vec<Complex32>>);

/// Estimates frame-to-frame translations for frames of one size.
pub struct Estimator {
    width: usize,
    /// Downsampling factor from luma pixels to analysis pixels.
    factor: usize,
    /// Top-left corner of the analysis region, in luma pixels.
    origin: (usize, usize),
    /// Analysis region size, in analysis pixels (FFT lengths; `nx` is even).
    nx: usize,
    ny: usize,
    /// Spectrum row length along x: `nx/2 + 1`.
    half_nx: usize,
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
    rows_forward: Arc<dyn RealToComplex<f32>>,
    rows_inverse: Arc<dyn ComplexToReal<f32>>,
    columns_forward: Arc<dyn Fft<f32>>,
    columns_inverse: Arc<dyn Fft<f32>>,
    /// Real `ny × nx` buffer: the windowed samples, later the surface.
    real: Vec<f32>,
    /// Complex `ny × (nx/2 + 1)` buffer (row spectra).
    rows: Vec<Complex32>,
    /// Complex `(nx/2 + 1) × ny` buffer (cross-power spectrum).
    cross: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

/// The largest n ≤ `limit` (at least 2) of the form 2ᵏ or 3·2ᵏ (k ≥ 1):
/// the lengths rustfft runs as radix-4 with SIMD butterflies on every target
/// (wasm SIMD included; other smooth lengths fall back to scalar mixed-radix
/// steps there), even for the real FFT's half-length complex transform.
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

/// Transposes the `rows`×`cols` row-major `src` into `dst` (`cols`×`rows`),
/// in square blocks so both sides stay in cache; each block writes whole
/// runs of `dst` from strided reads of `src`.
fn transpose(src: &[Complex32], dst: &mut [Complex32], rows: usize, cols: usize) {
    const BLOCK: usize = 16;
    for r0 in (0..rows).step_by(BLOCK) {
        let r1 = (r0 + BLOCK).min(rows);
        for c in 0..cols {
            let run = &mut dst[c * rows + r0..c * rows + r1];
            let column = &src[r0 * cols + c..];
            if let Ok(run) = <&mut [Complex32; BLOCK]>::try_from(&mut *run) {
                // A whole block: sixteen fixed-offset copies, no loop.
                let column = &column[..(BLOCK - 1) * cols + 1];
                for (i, d) in run.iter_mut().enumerate() {
                    *d = column[i * cols];
                }
            } else {
                for (d, s) in run.iter_mut().zip(column.iter().step_by(cols)) {
                    *d = *s;
                }
            }
        }
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

fn fft_failure(error: FftError) -> KernelError {
    KernelError::Failed(format!("FFT: {error}"))
}

impl Estimator {
    /// An estimator for `width`×`height` luma planes (each side at least 4)
    /// searching displacements of up to `max_shift` luma pixels per axis (and
    /// at most about half the analysis region).
    pub fn new(width: usize, height: usize, max_shift: usize) -> Self {
        let factor = width.max(height).div_ceil(MAX_ANALYSIS_SIDE).max(1);
        let (aw, ah) = (width / factor, height / factor);
        let nx = fft_length_at_most(aw);
        let ny = fft_length_at_most(ah);
        let half_nx = nx / 2 + 1;
        let origin = ((aw - nx) / 2 * factor, (ah - ny) / 2 * factor);
        let mut taper = vec![0.0; half_nx * ny];
        let mut perfect_peak = 0.0;
        let spread = 2.0 * PI * PI * PEAK_SIGMA * PEAK_SIGMA;
        for kx in 0..half_nx {
            let fx = signed_frequency(kx, nx);
            // Bins 0 and nx/2 stand for themselves; the others for a pair.
            let multiplicity = if kx == 0 || kx == nx / 2 { 1.0 } else { 2.0 };
            for ky in 0..ny {
                let fy = signed_frequency(ky, ny);
                let t = (-spread * (fx * fx + fy * fy)).exp();
                taper[kx * ny + ky] = t;
                perfect_peak += multiplicity * t;
            }
        }
        let shift_reach = max_shift.div_ceil(factor);
        let reach = (shift_reach.min(nx / 2 - 1), shift_reach.min(ny / 2 - 1));
        let mut real_planner = RealFftPlanner::new();
        let rows_forward = real_planner.plan_fft_forward(nx);
        let rows_inverse = real_planner.plan_fft_inverse(nx);
        let mut planner = FftPlanner::new();
        let columns_forward = planner.plan_fft_forward(ny);
        let columns_inverse = planner.plan_fft_inverse(ny);
        let scratch_len = [
            rows_forward.get_scratch_len(),
            rows_inverse.get_scratch_len(),
            columns_forward.get_inplace_scratch_len(),
            columns_inverse.get_inplace_scratch_len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        let (window_x, window_y) = (hann(nx), hann(ny));
        Self {
            width,
            factor,
            origin,
            nx,
            ny,
            half_nx,
            window_weight: window_x.iter().sum::<f32>() * window_y.iter().sum::<f32>(),
            window_weight_squared: lanes::dot(&window_x, &window_x)
                * lanes::dot(&window_y, &window_y),
            window_x,
            window_y,
            taper,
            perfect_peak,
            reach,
            rows_forward,
            rows_inverse,
            columns_forward,
            columns_inverse,
            real: vec![0.0; nx * ny],
            rows: vec![Complex32::default(); half_nx * ny],
            cross: vec![Complex32::default(); half_nx * ny],
            scratch: vec![Complex32::default(); scratch_len],
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
                for (sample, &v) in row.iter_mut().zip(line(0)) {
                    *sample = f32::from(v);
                }
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
            }
            weighted += wy * lanes::dot(row, &self.window_x);
        }
        weighted / self.window_weight
    }

    /// The windowed spectrum of a luma plane (`width`×`height` bytes).
    pub fn spectrum(&mut self, luma: &[u8]) -> Result<Spectrum, KernelError> {
        let (nx, ny, half_nx) = (self.nx, self.ny, self.half_nx);
        let mean = self.load_samples(luma);
        // Subtract the mean so the windowed signal has no DC, then window.
        // The contrast test weighs each deviation by the window squared,
        // as the windowed samples carry it.
        let mut energy = 0.0f32;
        for (row, &wy) in self.real.chunks_exact_mut(nx).zip(&self.window_y) {
            for (sample, &wx) in row.iter_mut().zip(&self.window_x) {
                *sample = (*sample - mean) * wx * wy;
            }
            energy += lanes::dot(row, row);
        }
        let weight = self.window_weight_squared;
        if energy < MIN_CONTRAST * MIN_CONTRAST * weight {
            return Ok(Spectrum(None));
        }
        for (row, out) in self
            .real
            .chunks_exact_mut(nx)
            .zip(self.rows.chunks_exact_mut(half_nx))
        {
            self.rows_forward
                .process_with_scratch(row, out, &mut self.scratch)
                .map_err(fft_failure)?;
        }
        let mut spectrum = vec![Complex32::default(); half_nx * ny];
        transpose(&self.rows, &mut spectrum, ny, half_nx);
        self.columns_forward
            .process_with_scratch(&mut spectrum, &mut self.scratch);
        Ok(Spectrum(Some(spectrum)))
    }

    /// How far the content moved from the frame of `from` to the frame of
    /// `to`, in luma pixels: `to(x) ≈ from(x − shift)`. Zero where either
    /// frame is flat or the correlation peak is too weak to trust.
    pub fn displacement(&mut self, from: &Spectrum, to: &Spectrum) -> Result<Shift, KernelError> {
        let (Some(from), Some(to)) = (&from.0, &to.0) else {
            return Ok(Shift::default());
        };
        let (nx, ny, half_nx) = (self.nx, self.ny, self.half_nx);
        for (((c, a), b), &t) in self.cross.iter_mut().zip(from).zip(to).zip(&self.taper) {
            let product = a.conj() * b;
            // `norm_sqr().sqrt()` rather than `norm()`: hypot is a slow
            // library call in WebAssembly.
            let magnitude_squared = product.norm_sqr();
            *c = if magnitude_squared > 1e-30 {
                product * (t / magnitude_squared.sqrt())
            } else {
                Complex32::default()
            };
        }
        self.columns_inverse
            .process_with_scratch(&mut self.cross, &mut self.scratch);
        transpose(&self.cross, &mut self.rows, half_nx, ny);
        for (row, out) in self
            .rows
            .chunks_exact_mut(half_nx)
            .zip(self.real.chunks_exact_mut(nx))
        {
            // Bins 0 and nx/2 of a real signal's spectrum are real; drop the
            // rounding residue so the inverse real FFT accepts them.
            row[0].im = 0.0;
            row[half_nx - 1].im = 0.0;
            self.rows_inverse
                .process_with_scratch(row, out, &mut self.scratch)
                .map_err(fft_failure)?;
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
        let (mut best, mut peak) = (f32::MIN, (0, 0));
        for dy in -ry..=ry {
            let row = &surface[wrap(dy, ny) * nx..][..nx];
            for dx in -rx..=rx {
                let v = row[wrap(dx, nx)];
                if v > best {
                    best = v;
                    peak = (dx, dy);
                }
            }
        }
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
