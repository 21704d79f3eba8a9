//! The short-time Fourier transform: periodic Hann frames at 75% overlap,
//! analysed one at a time and put back by weighted overlap-add, so that an
//! unmodified spectrum reconstructs the signal exactly.

use std::sync::Arc;

use greenmesh_kernel::{lanes, KernelError};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Frames overlap by 3/4: the hop is a quarter of the frame.
const HOPS_PER_FRAME: usize = 4;

/// The frame length used at `sample_rate`: the largest power of two not above
/// 80 ms of audio (512 at 8 kHz, 1024 at 16 kHz, 2048 at 44.1/48 kHz).
pub fn frame_len_for(sample_rate: u32) -> usize {
    let samples = (sample_rate as usize * 80 / 1000).max(2);
    1 << (usize::BITS - 1 - samples.leading_zeros())
}

/// A planned STFT of one frame length, with its window and FFT scratch.
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
    forward: Arc<dyn RealToComplex<f32>>,
    inverse: Arc<dyn ComplexToReal<f32>>,
    time: Vec<f32>,
    scratch: Vec<Complex<f32>>,
}

impl Stft {
    /// Plans an STFT of `frame_len` samples (a multiple of 4, at least 8).
    pub fn new(frame_len: usize) -> Self {
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
        let mut planner = RealFftPlanner::<f32>::new();
        let forward = planner.plan_fft_forward(frame_len);
        let inverse = planner.plan_fft_inverse(frame_len);
        let scratch_len = forward.get_scratch_len().max(inverse.get_scratch_len());
        Self {
            frame_len,
            hop,
            window,
            synthesis,
            forward,
            inverse,
            time: vec![0.0; frame_len],
            scratch: vec![Complex::default(); scratch_len],
        }
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
        let (skip, span) = self.overlap(frame, signal.len());
        lanes::sum_zip(&signal[span], &self.window[skip..], |x, w| {
            (x * w) * (x * w)
        })
    }

    /// Computes the spectrum of frame `frame` of `signal` into `spectrum`
    /// (`bins()` long).
    pub fn analyze(
        &mut self,
        signal: &[f32],
        frame: usize,
        spectrum: &mut [Complex<f32>],
    ) -> Result<(), KernelError> {
        let (skip, span) = self.overlap(frame, signal.len());
        self.time.fill(0.0);
        let count = span.len();
        for ((slot, &x), &w) in self.time[skip..skip + count]
            .iter_mut()
            .zip(&signal[span])
            .zip(&self.window[skip..])
        {
            *slot = x * w;
        }
        self.forward
            .process_with_scratch(&mut self.time, spectrum, &mut self.scratch)
            .map_err(|e| KernelError::Failed(format!("forward FFT: {e}")))
    }

    /// Inverts `spectrum` (which it overwrites) as frame `frame` and adds the
    /// windowed result into `output`, the reconstructed signal.
    pub fn synthesize_add(
        &mut self,
        spectrum: &mut [Complex<f32>],
        frame: usize,
        output: &mut [f32],
    ) -> Result<(), KernelError> {
        // A real signal's DC and Nyquist bins are real; the inverse insists.
        spectrum[0].im = 0.0;
        if let Some(last) = spectrum.last_mut() {
            last.im = 0.0;
        }
        self.inverse
            .process_with_scratch(spectrum, &mut self.time, &mut self.scratch)
            .map_err(|e| KernelError::Failed(format!("inverse FFT: {e}")))?;
        let (skip, span) = self.overlap(frame, output.len());
        for ((out, &y), &w) in output[span]
            .iter_mut()
            .zip(&self.time[skip..])
            .zip(&self.synthesis[skip..])
        {
            *out += y * w;
        }
        Ok(())
    }

    /// Where frame `frame` meets a signal of `len` samples: the offset into
    /// the frame of the first sample inside the signal, and the signal range.
    fn overlap(&self, frame: usize, len: usize) -> (usize, std::ops::Range<usize>) {
        let start = self.frame_start(frame);
        let skip = (-start).max(0) as usize;
        let first = start.max(0) as usize;
        let end = ((start + self.frame_len as isize).max(0) as usize).min(len);
        (skip, first.min(end)..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut stft = Stft::new(64);
        for len in [1, 15, 16, 64, 100, 1000] {
            let signal: Vec<f32> = (0..len)
                .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
                .collect();
            let mut output = vec![0.0; len];
            let mut spectrum = vec![Complex::default(); stft.bins()];
            for t in 0..stft.frame_count(len) {
                stft.analyze(&signal, t, &mut spectrum).unwrap();
                stft.synthesize_add(&mut spectrum, t, &mut output).unwrap();
            }
            for (x, y) in signal.iter().zip(&output) {
                assert!((x - y).abs() < 1e-5, "len {len}: {x} became {y}");
            }
        }
    }

    #[test]
    fn a_pure_tone_lands_in_its_bin() {
        let mut stft = Stft::new(256);
        // 16 cycles per 256 samples: bin 16.
        let signal: Vec<f32> = (0..2048)
            .map(|i| (std::f32::consts::TAU * 16.0 * i as f32 / 256.0).sin())
            .collect();
        let mut spectrum = vec![Complex::default(); stft.bins()];
        stft.analyze(&signal, 8, &mut spectrum).unwrap();
        let peak = (0..spectrum.len())
            .max_by(|&a, &b| spectrum[a].norm().total_cmp(&spectrum[b].norm()))
            .unwrap();
        assert_eq!(peak, 16);
        assert!(spectrum[20].norm() < 1e-3 * spectrum[16].norm());
    }

    #[test]
    fn frames_within_a_range_lie_wholly_inside_it() {
        let stft = Stft::new(64);
        // Frame t starts at 16t − 48: frames 3..=5 start at 0, 16, 32.
        assert_eq!(stft.frames_within(0..96, 1000), vec![3, 4, 5]);
        assert!(stft.frames_within(0..63, 1000).is_empty());
    }
}
