//! The short-time Fourier transform: periodic Hann frames at 75% overlap,
//! transformed up to [`MAX_BATCH`] at a time by the SDK's batched real FFT
//! (ADR 0014) and put back by weighted overlap-add, so that an unmodified
//! spectrum reconstructs the signal exactly.
//!
//! Frames are read from and added into a *padded* copy of the signal (see
//! [`Stft::pad`]), so that every frame, even one hanging over an end, is a
//! plain slice and the packing loops need no edge cases.

use greenmesh_kernel::fft::real::RealBatchFft;
use greenmesh_kernel::fft::{join, split, Quads};
use greenmesh_kernel::{lanes, KernelError};
use wide::f32x4;

/// Frames overlap by 3/4: the hop is a quarter of the frame.
const HOPS_PER_FRAME: usize = 4;

/// The most frames one batch transforms: 64 frames of 1024 samples keep a
/// batch's two buffers (packed signal and spectra) near 0.5 MiB, inside
/// the L2 cache, while the per-stage loops run long.
pub const MAX_BATCH: usize = 64;

/// The frame length used at `sample_rate`: the largest power of two not above
/// 80 ms of audio (512 at 8 kHz, 1024 at 16 kHz, 2048 at 44.1/48 kHz).
pub fn frame_len_for(sample_rate: u32) -> usize {
    let samples = (sample_rate as usize * 80 / 1000).max(2);
    1 << (usize::BITS - 1 - samples.leading_zeros())
}

/// A planned STFT of one frame length, with its windows.
///
/// Frame `t` covers signal samples `t·hop − (len − hop) .. t·hop + hop`
/// (samples outside the signal read as zero), so every sample lies under
/// exactly four frames and is reconstructed with the same weight.
pub struct Stft {
    frame_len: usize,
    hop: usize,
    /// Analysis window (periodic Hann).
    window: Vec<f32>,
    /// Synthesis window: the Hann window scaled by `1 / (len · Σ w²/hop)`,
    /// undoing the unnormalised inverse FFT and the windows' overlap.
    synthesis: Vec<f32>,
    fft: RealBatchFft,
}

/// The spectra of up to [`MAX_BATCH`] frames, one per column: bin `b` of
/// column `c` is row `b`, column `c` of [`Batch::spectrum`] (rows of
/// [`Batch::width`]), with the buffers the transforms go through.
pub struct Batch {
    width: usize,
    packed: Quads,
    spectrum: Quads,
}

impl Batch {
    /// The columns in use: the frame count rounded up to a multiple of 4.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The spectra (rows of [`Self::width`]).
    pub fn spectrum(&self) -> &Quads {
        &self.spectrum
    }

    /// The spectra, to change before [`Stft::synthesize_add`].
    pub fn spectrum_mut(&mut self) -> &mut Quads {
        &mut self.spectrum
    }
}

impl Stft {
    /// Plans an STFT of `frame_len` samples: a power of two, at least 8.
    pub fn new(frame_len: usize) -> Result<Self, KernelError> {
        if frame_len < 8 || !frame_len.is_power_of_two() {
            return Err(KernelError::Failed(format!(
                "an STFT frame of {frame_len} samples (a power of two of at least 8 is needed)"
            )));
        }
        let hop = frame_len / HOPS_PER_FRAME;
        let window: Vec<f32> = (0..frame_len)
            .map(|n| {
                let phase = std::f64::consts::TAU * n as f64 / frame_len as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        let overlap_gain: f64 = window.iter().map(|&w| f64::from(w * w)).sum::<f64>() / hop as f64;
        let scale = 1.0 / (frame_len as f64 * overlap_gain);
        let synthesis = window
            .iter()
            .map(|&w| (f64::from(w) * scale) as f32)
            .collect();
        let fft = RealBatchFft::new(frame_len)
            .map_err(|e| KernelError::Failed(format!("planning the STFT: {e}")))?;
        Ok(Self {
            frame_len,
            hop,
            window,
            synthesis,
            fft,
        })
    }

    /// The frame length in samples.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The number of frequency bins of a spectrum (`frame_len / 2 + 1`).
    pub fn bins(&self) -> usize {
        self.frame_len / 2 + 1
    }

    /// The number of frames covering a signal of `len` samples.
    pub fn frame_count(&self, len: usize) -> usize {
        if len == 0 {
            0
        } else {
            (self.frame_len - self.hop + len - 1) / self.hop + 1
        }
    }

    /// The signal index of frame `frame`'s first sample (negative before the
    /// signal starts).
    pub fn frame_start(&self, frame: usize) -> isize {
        (frame * self.hop) as isize - (self.frame_len - self.hop) as isize
    }

    /// The frames lying wholly inside `range` of the signal.
    pub fn frames_within(&self, range: std::ops::Range<usize>, len: usize) -> Vec<usize> {
        (0..self.frame_count(len))
            .filter(|&t| {
                let start = self.frame_start(t);
                start >= range.start as isize
                    && start + self.frame_len as isize <= range.end as isize
            })
            .collect()
    }

    /// The energy of frame `frame` after windowing (equal, by Parseval, to
    /// its spectrum's energy up to a constant).
    pub fn frame_energy(&self, signal: &[f32], frame: usize) -> f32 {
        let start = self.frame_start(frame);
        let skip = (-start).max(0) as usize;
        let first = start.max(0) as usize;
        let end = ((start + self.frame_len as isize).max(0) as usize).min(signal.len());
        lanes::sum_zip(
            &signal[first.min(end)..end],
            &self.window[skip..],
            |x, w| (x * w) * (x * w),
        )
    }

    /// `signal` between zeros: a whole frame's worth before it and enough
    /// after it for frame `last`. Frame `t`, from −1 to `last`, starts at
    /// [`Self::padded_start`]`(t)` of the result, and a signal of the same
    /// length reads back from an output built on it with [`Self::unpad`].
    pub fn pad(&self, signal: &[f32], last: usize) -> Vec<f32> {
        let len =
            (self.padded_start(last as isize) + self.frame_len).max(self.frame_len + signal.len());
        let mut padded = vec![0.0; len];
        padded[self.frame_len..][..signal.len()].copy_from_slice(signal);
        padded
    }

    /// Where frame `frame` (−1 or more) starts in a padded signal. Frame
    /// −1 is all padding, so it also stands for "no frame".
    pub fn padded_start(&self, frame: isize) -> usize {
        debug_assert!(frame >= -1);
        ((frame + 1) as usize) * self.hop
    }

    /// The `len` signal samples of the padded `padded`.
    pub fn unpad(&self, padded: &[f32], len: usize) -> Vec<f32> {
        padded[self.frame_len..][..len].to_vec()
    }

    /// A batch with room for [`MAX_BATCH`] frames of this STFT.
    pub fn batch(&self) -> Batch {
        let half = self.frame_len / 2;
        Batch {
            width: 0,
            packed: Quads::zeroed(half, MAX_BATCH),
            spectrum: Quads::zeroed(half + 1, MAX_BATCH),
        }
    }

    /// Computes the spectra of the frames starting at `starts` (offsets into
    /// `padded`, at most [`MAX_BATCH`] of them) into `batch`'s columns
    /// `0..starts.len()`; the columns up to the next multiple of 4 hold
    /// frame −1, silence.
    pub fn analyze(&self, padded: &[f32], starts: &[usize], batch: &mut Batch) {
        assert!(
            starts.len() <= MAX_BATCH,
            "at most {MAX_BATCH} frames a batch"
        );
        batch.width = starts.len().next_multiple_of(4);
        let row = batch.width / 4;
        let (window, _) = self.window.as_chunks::<4>();
        // Four frames at a time: four consecutive samples of each, windowed,
        // then a 4×4 transpose gives rows j and j + 1 of the packed signal
        // z[j] = x[2j] + i·x[2j+1] for the four columns.
        for (g, quad_starts) in self.quad_starts(starts, batch.width).enumerate() {
            let frames = quad_starts.map(|s| padded[s..][..self.frame_len].as_chunks::<4>().0);
            let rows = batch.packed.data[..self.frame_len / 2 * row].chunks_exact_mut(2 * row);
            for (i, (pair, &w)) in rows.zip(window).enumerate() {
                let w = f32x4::new(w);
                let x = frames.map(|f| f32x4::new(f[i]) * w);
                let [even, odd, next_even, next_odd] = f32x4::transpose(x);
                join(&mut pair[g], even, odd);
                join(&mut pair[row + g], next_even, next_odd);
            }
        }
        self.fft
            .forward(&mut batch.packed, &mut batch.spectrum, batch.width);
    }

    /// Inverts the spectra in `batch` (analysed from frames starting at
    /// `starts`, which it overwrites) and adds the windowed frames back into
    /// `padded`, the padded output.
    pub fn synthesize_add(&self, batch: &mut Batch, starts: &[usize], padded: &mut [f32]) {
        let row = batch.width / 4;
        self.fft
            .inverse(&batch.spectrum, &mut batch.packed, batch.width);
        let (synthesis, _) = self.synthesis.as_chunks::<4>();
        for (g, quad_starts) in self.quad_starts(starts, batch.width).enumerate() {
            let rows = batch.packed.data[..self.frame_len / 2 * row].chunks_exact(2 * row);
            for (i, (pair, &w)) in rows.zip(synthesis).enumerate() {
                let ((even, odd), (next_even, next_odd)) = (split(&pair[g]), split(&pair[row + g]));
                let frames = f32x4::transpose([even, odd, next_even, next_odd]);
                let w = f32x4::new(w);
                // The four frames overlap, so each is added in turn.
                for (&s, y) in quad_starts.iter().zip(frames) {
                    let out: &mut [f32; 4] = (&mut padded[s + 4 * i..][..4]).try_into().unwrap();
                    *out = (f32x4::new(*out) + y * w).to_array();
                }
            }
        }
    }

    /// `starts` four at a time, padded to `width` with frame −1.
    fn quad_starts<'a>(
        &self,
        starts: &'a [usize],
        width: usize,
    ) -> impl Iterator<Item = [usize; 4]> + 'a {
        let silence = self.padded_start(-1);
        (0..width).step_by(4).map(move |c| {
            std::array::from_fn(|lane| starts.get(c + lane).copied().unwrap_or(silence))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bin `b` of column `c` as `(re, im)`.
    fn bin(batch: &Batch, b: usize, c: usize) -> (f32, f32) {
        batch.spectrum().get(b, c, batch.width())
    }

    #[test]
    fn frame_lengths_follow_the_sample_rate() {
        assert_eq!(frame_len_for(8_000), 512);
        assert_eq!(frame_len_for(16_000), 1024);
        assert_eq!(frame_len_for(44_100), 2048);
        assert_eq!(frame_len_for(48_000), 2048);
        assert_eq!(frame_len_for(96_000), 4096);
    }

    #[test]
    fn analysis_then_synthesis_reconstructs_the_signal() {
        let stft = Stft::new(64).unwrap();
        let mut batch = stft.batch();
        for len in [1, 15, 16, 64, 100, 1000, 5000] {
            let signal: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
                .collect();
            let frames = stft.frame_count(len);
            let padded = stft.pad(&signal, frames);
            let mut output = vec![0.0; padded.len()];
            // Batches of every size from 1 up, so widths that are not
            // multiples of 4 and the largest batch are both exercised.
            let starts: Vec<usize> = (0..frames as isize).map(|t| stft.padded_start(t)).collect();
            let mut rest = &starts[..];
            let mut size = 1;
            while !rest.is_empty() {
                let (now, later) = rest.split_at(size.min(rest.len()));
                stft.analyze(&padded, now, &mut batch);
                stft.synthesize_add(&mut batch, now, &mut output);
                rest = later;
                size = (size * 3).min(MAX_BATCH);
            }
            for (x, y) in signal.iter().zip(stft.unpad(&output, len)) {
                assert!((x - y).abs() < 1e-5, "len {len}: {x} became {y}");
            }
        }
    }

    #[test]
    fn a_pure_tone_lands_in_its_bin_in_every_column() {
        let stft = Stft::new(256).unwrap();
        // 16 cycles per 256 samples: bin 16.
        let signal: Vec<f32> = (0..2048)
            .map(|i| (std::f32::consts::TAU * 16.0 * i as f32 / 256.0).sin())
            .collect();
        let padded = stft.pad(&signal, 16);
        let mut batch = stft.batch();
        let starts: Vec<usize> = (3..10).map(|t| stft.padded_start(t)).collect();
        stft.analyze(&padded, &starts, &mut batch);
        assert_eq!(batch.width(), 8);
        let norm = |(re, im): (f32, f32)| re.hypot(im);
        for c in 0..starts.len() {
            let peak = (0..stft.bins())
                .max_by(|&a, &b| norm(bin(&batch, a, c)).total_cmp(&norm(bin(&batch, b, c))))
                .unwrap();
            assert_eq!(peak, 16, "column {c}");
            assert!(norm(bin(&batch, 20, c)) < 1e-3 * norm(bin(&batch, 16, c)));
        }
        // The padding column is frame −1: silence.
        assert!((0..stft.bins()).all(|b| bin(&batch, b, 7) == (0.0, 0.0)));
    }

    #[test]
    fn a_column_holds_its_own_frame() {
        // An impulse at signal sample 100 lies in frames whose windows
        // cover it; a frame elsewhere sees nothing.
        let stft = Stft::new(64).unwrap();
        let mut signal = vec![0.0; 400];
        signal[100] = 1.0;
        let padded = stft.pad(&signal, stft.frame_count(400));
        let mut batch = stft.batch();
        // Frame t covers 16t − 48 .. 16t + 16: frame 5 misses the impulse,
        // frame 6 holds it at offset 52.
        let starts = [stft.padded_start(5), stft.padded_start(6)];
        stft.analyze(&padded, &starts, &mut batch);
        assert!((0..stft.bins()).all(|b| bin(&batch, b, 0) == (0.0, 0.0)));
        // |X[k]| of a windowed impulse at offset 52 is the window there.
        let expected = stft.window[52];
        for b in 0..stft.bins() {
            let (re, im) = bin(&batch, b, 1);
            assert!((re.hypot(im) - expected).abs() < 1e-5, "bin {b}");
        }
    }

    #[test]
    fn frames_within_a_range_lie_wholly_inside_it() {
        let stft = Stft::new(64).unwrap();
        // Frame t starts at 16t − 48: frames 3..=5 start at 0, 16, 32.
        assert_eq!(stft.frames_within(0..96, 1000), vec![3, 4, 5]);
        assert!(stft.frames_within(0..63, 1000).is_empty());
    }

    #[test]
    fn frame_lengths_the_fft_cannot_plan_are_refused() {
        assert!(Stft::new(4).is_err());
        assert!(Stft::new(96).is_err());
    }
}
