//! Spectral gating of one channel: a per-bin noise threshold learnt from
//! noise-only frames, a soft mask smoothed over time and frequency, and the
//! gated bins attenuated by `reduction_db`.

use greenmesh_kernel::fft::{join, split};
use greenmesh_kernel::{lanes, KernelError};
use wide::f32x4;

use crate::stft::{frame_len_for, Batch, Stft, MAX_BATCH};

/// Quads in the widest batch.
const QUADS: usize = MAX_BATCH / 4;

/// The share of a signal's frames, the quietest ones, that the noise profile
/// is learnt from when no noise-only lead-in is given.
const QUIET_FRACTION: f32 = 0.2;
/// How far above its threshold, in dB, a bin must be to pass untouched; the
/// mask rises smoothly from 0 at the threshold to 1 here.
const SOFT_KNEE_DB: f32 = 6.0;
/// Mask smoothing over frequency: weights of bins `b−1 ..= b+1`. Wider
/// kernels blur harmonics' masks and cost SNR (5 taps: −2 dB on the tests).
const FREQUENCY_TAPS: [f32; 3] = [0.25, 0.5, 0.25];
/// Mask smoothing over time: weights of frames `t−1 ..= t+1`.
const TIME_TAPS: [f32; 3] = [0.25, 0.5, 0.25];
/// Added to every bin's power before taking dB, so silence has a floor.
const POWER_FLOOR: f32 = 1e-12;

/// How a channel is gated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSettings {
    /// How far gated bins are attenuated, in dB.
    pub reduction_db: f32,
    /// The threshold in each bin is the noise's mean + this many standard
    /// deviations, in dB.
    pub threshold_sigma: f32,
    /// Learn the noise from the first this many seconds instead of from the
    /// quietest frames.
    pub noise_seconds: Option<f32>,
}

/// Denoises one channel sampled at `sample_rate`, returning a signal of the
/// same length.
pub fn denoise_channel(
    signal: &[f32],
    sample_rate: u32,
    settings: &GateSettings,
) -> Result<Vec<f32>, KernelError> {
    let stft = Stft::new(frame_len_for(sample_rate))?;
    let profile_frames = noise_frames(&stft, signal, sample_rate, settings.noise_seconds)?;
    let plan = BatchPlan::new(stft.frame_count(signal.len()));
    let padded = stft.pad(signal, plan.last_frame());
    let mut batch = stft.batch();
    let threshold = noise_threshold(
        &stft,
        &padded,
        &profile_frames,
        settings.threshold_sigma,
        &mut batch,
    );
    let output = gate(
        &stft,
        &padded,
        &plan,
        &threshold,
        settings.reduction_db,
        &mut batch,
    );
    Ok(stft.unpad(&output, signal.len()))
}

/// The frames that the noise profile is learnt from: those wholly inside the
/// first `noise_seconds`, or else the quietest [`QUIET_FRACTION`] of the
/// frames wholly inside the signal (all frames if the signal is shorter than
/// one).
fn noise_frames(
    stft: &Stft,
    signal: &[f32],
    sample_rate: u32,
    noise_seconds: Option<f32>,
) -> Result<Vec<usize>, KernelError> {
    if let Some(seconds) = noise_seconds {
        let duration = signal.len() as f32 / sample_rate as f32;
        if seconds > duration {
            return Err(KernelError::InvalidParams(format!(
                "noise_seconds = {seconds} is longer than the audio ({duration:.3} s)"
            )));
        }
        let end = (seconds * sample_rate as f32) as usize;
        let frames = stft.frames_within(0..end, signal.len());
        if frames.is_empty() {
            return Err(KernelError::InvalidParams(format!(
                "noise_seconds = {seconds} is shorter than one analysis frame ({:.3} s)",
                stft.frame_len() as f32 / sample_rate as f32
            )));
        }
        return Ok(frames);
    }
    let mut candidates = stft.frames_within(0..signal.len(), signal.len());
    if candidates.is_empty() {
        candidates = (0..stft.frame_count(signal.len())).collect();
    }
    let mut by_energy: Vec<(f32, usize)> = candidates
        .into_iter()
        .map(|t| (stft.frame_energy(signal, t), t))
        .collect();
    by_energy.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let keep = ((by_energy.len() as f32 * QUIET_FRACTION).ceil() as usize).max(1);
    Ok(by_energy.into_iter().take(keep).map(|(_, t)| t).collect())
}

/// The per-bin gate threshold as a power: `mean + sigma · std` of the bin's
/// level in dB over `frames` (of the padded signal `padded`). Empty
/// `frames` (an empty signal) give zeros.
fn noise_threshold(
    stft: &Stft,
    padded: &[f32],
    frames: &[usize],
    sigma: f32,
    batch: &mut Batch,
) -> Vec<f32> {
    let bins = stft.bins();
    let mut sum = vec![0.0f64; bins];
    let mut sum_sq = vec![0.0f64; bins];
    let mut level = [0.0f32; MAX_BATCH];
    let (floor, ten) = (f32x4::splat(POWER_FLOOR), f32x4::splat(10.0));
    for chunk in frames.chunks(MAX_BATCH) {
        let starts: Vec<usize> = chunk
            .iter()
            .map(|&t| stft.padded_start(t as isize))
            .collect();
        stft.analyze(padded, &starts, batch);
        for (b, (s, q)) in sum.iter_mut().zip(&mut sum_sq).enumerate() {
            let row = batch.spectrum().row(b, batch.width());
            for (quad, level) in row.iter().zip(level.as_chunks_mut::<4>().0) {
                let (re, im) = split(quad);
                *level = (ten * lanes::log10_x4(re * re + im * im + floor)).to_array();
            }
            for &db in &level[..chunk.len()] {
                let db = f64::from(db);
                *s += db;
                *q += db * db;
            }
        }
    }
    let n = frames.len().max(1) as f64;
    sum.iter()
        .zip(&sum_sq)
        .map(|(&s, &q)| {
            let mean = s / n;
            let std = (q / n - mean * mean).max(0.0).sqrt();
            let threshold_db = mean + f64::from(sigma) * std;
            10f64.powf(threshold_db / 10.0) as f32
        })
        .collect()
}

/// How the gate splits a signal's frames into batches: batch `i` finishes
/// frames `i·per .. (i+1)·per` and also analyses the frame on either side,
/// whose masks the time smoothing needs, so `per + 2` frames a batch.
struct BatchPlan {
    frames: usize,
    per: usize,
    batches: usize,
}

impl BatchPlan {
    /// Batches of equal size, as few as [`MAX_BATCH`] allows, and as
    /// little padding to a multiple of 4 as that leaves.
    fn new(frames: usize) -> Self {
        let batches = frames.div_ceil(MAX_BATCH - 2);
        let per = frames.div_ceil(batches.max(1));
        Self {
            frames,
            per,
            batches,
        }
    }

    /// The last frame any batch reads: the padded signal must reach it.
    fn last_frame(&self) -> usize {
        self.batches * self.per
    }

    /// Batch `i`'s frames (−1 for the one before frame 0), one per column.
    fn columns(&self, i: usize) -> std::ops::Range<isize> {
        let first = (i * self.per) as isize - 1;
        first..first + self.per as isize + 2
    }
}

/// Gates every frame of `padded` as [`BatchPlan`] batches them: scales each
/// bin by `floor + (1 − floor) · mask` with `floor = 10^(−reduction_db/20)`
/// and the mask smoothed over time and frequency, and resynthesises into a
/// padded output.
///
/// Within a batch the bins are gated row by row, through a ring of the
/// raw masks of three rows, so memory does not grow with the signal.
fn gate(
    stft: &Stft,
    padded: &[f32],
    plan: &BatchPlan,
    threshold: &[f32],
    reduction_db: f32,
    batch: &mut Batch,
) -> Vec<f32> {
    let bins = stft.bins();
    let floor = 10f32.powf(-reduction_db / 20.0);
    let mut output = vec![0.0f32; padded.len()];
    // The raw masks of rows b − 1, b and b + 1, by row modulo 3.
    let mut raw = [[f32x4::ZERO; QUADS]; 3];
    // Row b's mask smoothed over frequency, column c at c + 1 (so that
    // every column's neighbours are in the array).
    let mut mask = [0.0f32; MAX_BATCH + 4];
    for i in 0..plan.batches {
        let columns = plan.columns(i);
        let starts: Vec<usize> = columns.clone().map(|t| stft.padded_start(t)).collect();
        stft.analyze(padded, &starts, batch);
        let (width, quads) = (batch.width(), batch.width() / 4);
        let weights = time_weights(columns, plan, floor);
        let spectrum = batch.spectrum_mut();
        raw_mask(spectrum.row(0, width), threshold[0], &mut raw[0]);
        for b in 0..bins {
            if b + 1 < bins {
                raw_mask(
                    spectrum.row(b + 1, width),
                    threshold[b + 1],
                    &mut raw[(b + 1) % 3],
                );
            }
            // Over frequency: rows b − 1 ..= b + 1 (missing ones weigh 0).
            let [low, own, high] = renormalised(FREQUENCY_TAPS, b, bins).map(f32x4::splat);
            let (below, here, above) = (&raw[(b + 2) % 3], &raw[b % 3], &raw[(b + 1) % 3]);
            for (g, ((&l, &x), &h)) in below.iter().zip(here).zip(above).take(quads).enumerate() {
                let smoothed = low * l + own * x + high * h;
                mask[1 + 4 * g..][..4].copy_from_slice(&smoothed.to_array());
            }
            // Over time: columns c − 1 ..= c + 1, then the gain applied.
            let [base, previous, own, next] = &weights;
            for (g, quad) in spectrum.row_mut(b, width).iter_mut().enumerate() {
                let at =
                    |offset: usize| f32x4::new(mask[4 * g + offset..][..4].try_into().unwrap());
                let gain = base[g] + previous[g] * at(0) + own[g] * at(1) + next[g] * at(2);
                let (re, im) = split(quad);
                join(quad, re * gain, im * gain);
            }
        }
        stft.synthesize_add(batch, &starts, &mut output);
    }
    output
}

/// The gain of a column is `base + previous · m[c−1] + own · m[c] +
/// next · m[c+1]`, with `m` the mask smoothed over frequency: these four
/// weights for each of a batch's `columns` (frames), four columns a quad.
/// They are zero in the first and last columns, which other batches finish,
/// and past the last frame; elsewhere `base` is `floor` and the others
/// [`TIME_TAPS`] scaled by `1 − floor`.
fn time_weights(
    columns: std::ops::Range<isize>,
    plan: &BatchPlan,
    floor: f32,
) -> [[f32x4; QUADS]; 4] {
    let mut weights = [[0.0f32; MAX_BATCH]; 4];
    for (c, t) in columns.enumerate() {
        if c == 0 || c > plan.per || t as usize >= plan.frames {
            continue;
        }
        let [previous, own, next] = renormalised(TIME_TAPS, t as usize, plan.frames);
        weights[0][c] = floor;
        weights[1][c] = (1.0 - floor) * previous;
        weights[2][c] = (1.0 - floor) * own;
        weights[3][c] = (1.0 - floor) * next;
    }
    weights.map(|w| {
        let (quads, _) = w.as_chunks::<4>();
        std::array::from_fn(|g| f32x4::new(quads[g]))
    })
}

/// The unsmoothed masks of a spectrum row whose bin has threshold `threshold`.
fn raw_mask(row: &[[f32; 8]], threshold: f32, out: &mut [f32x4]) {
    let threshold = f32x4::splat(threshold);
    for (quad, out) in row.iter().zip(out) {
        let (re, im) = split(quad);
        *out = soft_mask(re * re + im * im, threshold);
    }
}

/// The unsmoothed mask of four bins: 0 at or below the threshold power, 1
/// at [`SOFT_KNEE_DB`] above it or more, a smoothstep in dB between.
fn soft_mask(power: f32x4, threshold: f32x4) -> f32x4 {
    let (zero, one) = (f32x4::ZERO, f32x4::ONE);
    // Above the threshold the ratio is > 1 (+∞ for a zero threshold, whose
    // logarithm is large and clamps to 1); 0/0 is NaN, masked below.
    let x = f32x4::splat(10.0) * lanes::log10_x4(power / threshold) / f32x4::splat(SOFT_KNEE_DB);
    let x = x.simd_lt(zero).select(zero, x);
    let x = x.simd_gt(one).select(one, x);
    let mask = x * x * (f32x4::splat(3.0) - f32x4::splat(2.0) * x);
    power.simd_gt(threshold).select(mask, zero)
}

/// The weights of `taps` (centred on `index`) over `index − 1 ..= index + 1`,
/// with those outside `0..count` zero and the rest renormalised to sum to 1.
fn renormalised(taps: [f32; 3], index: usize, count: usize) -> [f32; 3] {
    let exists = [index > 0, true, index + 1 < count];
    let total: f32 = taps
        .iter()
        .zip(exists)
        .filter(|(_, e)| *e)
        .map(|(w, _)| w)
        .sum();
    std::array::from_fn(|k| if exists[k] { taps[k] / total } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_mask_rises_from_the_threshold_to_the_knee() {
        let mask = |power: f32, threshold: f32| {
            let lanes = soft_mask(f32x4::splat(power), f32x4::splat(threshold)).to_array();
            assert!(lanes.iter().all(|&m| m == lanes[0]));
            lanes[0]
        };
        assert_eq!(mask(0.5, 1.0), 0.0);
        assert_eq!(mask(1.0, 1.0), 0.0);
        assert!((mask(10f32.powf(0.3), 1.0) - 0.5).abs() < 1e-5);
        assert_eq!(mask(4.0, 1.0), 1.0);
        assert_eq!(mask(1e-3, 0.0), 1.0);
        assert_eq!(mask(0.0, 0.0), 0.0);
        // Each lane on its own.
        let lanes = soft_mask(f32x4::new([0.5, 4.0, 2.0, 0.0]), f32x4::ONE).to_array();
        assert_eq!([lanes[0], lanes[1], lanes[3]], [0.0, 1.0, 0.0]);
        assert!(lanes[2] > 0.0 && lanes[2] < 1.0);
    }

    #[test]
    fn taps_are_renormalised_over_the_neighbours_that_exist() {
        let taps = [0.25, 0.5, 0.25];
        assert_eq!(renormalised(taps, 3, 7), [0.25, 0.5, 0.25]);
        let [low, own, high] = renormalised(taps, 0, 7);
        assert_eq!(low, 0.0);
        assert!((own - 2.0 / 3.0).abs() < 1e-6 && (high - 1.0 / 3.0).abs() < 1e-6);
        let [low, own, high] = renormalised(taps, 6, 7);
        assert_eq!(high, 0.0);
        assert!((own - 2.0 / 3.0).abs() < 1e-6 && (low - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(renormalised(taps, 0, 1), [0.0, 1.0, 0.0]);
    }

    #[test]
    fn batches_cover_every_frame_once_with_a_neighbour_each_side() {
        for frames in [1, 2, 61, 62, 63, 316, 1000] {
            let plan = BatchPlan::new(frames);
            let mut finished = vec![0; frames];
            for i in 0..plan.batches {
                let columns = plan.columns(i);
                assert!(columns.len() <= MAX_BATCH, "{frames} frames");
                for t in columns.start + 1..columns.end - 1 {
                    if (t as usize) < frames {
                        finished[t as usize] += 1;
                    }
                }
                assert!(columns.end - 1 <= plan.last_frame() as isize);
            }
            assert!(finished.iter().all(|&n| n == 1), "{frames} frames");
        }
        assert_eq!(BatchPlan::new(0).batches, 0);
    }

    #[test]
    fn without_reduction_the_gate_is_transparent() {
        let signal: Vec<f32> = (0..5000)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let settings = GateSettings {
            reduction_db: 0.0,
            threshold_sigma: 1.5,
            noise_seconds: None,
        };
        let output = denoise_channel(&signal, 16_000, &settings).unwrap();
        for (x, y) in signal.iter().zip(&output) {
            assert!((x - y).abs() < 1e-5);
        }
    }
}
