//! Deterministic test inputs: a speech-like signal (harmonic syllables with
//! pauses), white Gaussian noise at a chosen SNR, WAV payloads, and the SNR
//! measure the tests and the benchmark use. No randomness crate: a fixed-seed
//! xorshift drives everything, so every build produces the same inputs.

use std::f64::consts::TAU;

use greenmesh_kernel::{KernelError, Payload};

use crate::wav::{self, Audio, WavFormat};

/// The RMS level of [`speech_like`] signals (−20 dBFS).
pub const SPEECH_RMS: f32 = 0.1;

/// A xorshift64* generator: small, fast and the same on every platform.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // Never zero, and scrambled so that nearby seeds diverge at once.
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number, uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (bits as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The next number, uniform in (lo, hi].
    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}

/// A speech-like mono signal of `seconds` at `sample_rate`, at RMS
/// [`SPEECH_RMS`]: it opens with a 0.2 s pause, then alternates "syllables"
/// (120–320 ms, a fundamental of 100–240 Hz gliding by up to ±20%, harmonics
/// up to 4 kHz shaped by two formant-like peaks, a raised-cosine envelope)
/// with pauses of 60–250 ms.
pub fn speech_like(sample_rate: u32, seconds: f32) -> Vec<f32> {
    let rate = f64::from(sample_rate);
    let len = (f64::from(seconds) * rate) as usize;
    let mut signal = vec![0.0f32; len];
    let mut rng = XorShift::new(0x5EEC);
    let mut start = (0.2 * rate) as usize;
    while start < len {
        let duration = (rng.between(0.12, 0.32) * rate) as usize;
        let f0_start = rng.between(100.0, 240.0);
        let f0_end = f0_start * rng.between(0.8, 1.2);
        let formant1 = rng.between(400.0, 900.0);
        let formant2 = rng.between(1100.0, 2400.0);
        let loudness = rng.between(0.4, 1.0);
        let top = 4000f64.min(0.45 * rate);
        let harmonics = (top / f0_start.max(f0_end)) as usize;
        let weights: Vec<f64> = (1..=harmonics)
            .map(|h| {
                let f = h as f64 * f0_start;
                let bump = |centre: f64, width: f64| (-((f - centre) / width).powi(2)).exp();
                (0.15 + bump(formant1, 250.0) + 0.6 * bump(formant2, 400.0)) / (h as f64).sqrt()
            })
            .collect();
        let end = (start + duration).min(len);
        let mut phase = 0.0f64;
        for (i, out) in signal[start..end].iter_mut().enumerate() {
            let progress = i as f64 / duration as f64;
            let f0 = f0_start + (f0_end - f0_start) * progress;
            phase = (phase + TAU * f0 / rate) % TAU;
            let envelope = (std::f64::consts::PI * progress).sin().powi(2);
            let value: f64 = weights
                .iter()
                .enumerate()
                .map(|(h, w)| w * ((h + 1) as f64 * phase).sin())
                .sum();
            *out = (loudness * envelope * value) as f32;
        }
        start = end + (rng.between(0.06, 0.25) * rate) as usize;
    }
    let rms = rms(&signal);
    if rms > 0.0 {
        let scale = SPEECH_RMS / rms;
        signal.iter_mut().for_each(|x| *x *= scale);
    }
    signal
}

/// `len` samples of white Gaussian noise of unit variance (Box–Muller on a
/// xorshift seeded with `seed`).
pub fn white_noise(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = XorShift::new(seed);
    (0..len)
        .map(|_| {
            let radius = (-2.0 * rng.uniform().ln()).sqrt();
            (radius * (TAU * rng.uniform()).cos()) as f32
        })
        .collect()
}

/// `clean` plus white Gaussian noise scaled so that the signal-to-noise
/// ratio over the whole signal is `snr_db`.
pub fn add_noise(clean: &[f32], snr_db: f32, seed: u64) -> Vec<f32> {
    let noise_rms = rms(clean) / 10f32.powf(snr_db / 20.0);
    clean
        .iter()
        .zip(white_noise(clean.len(), seed))
        .map(|(&x, n)| x + noise_rms * n)
        .collect()
}

/// The root mean square of `signal` (0 when empty).
pub fn rms(signal: &[f32]) -> f32 {
    if signal.is_empty() {
        return 0.0;
    }
    let energy: f64 = signal.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (energy / signal.len() as f64).sqrt() as f32
}

/// The SNR of `estimate` against `reference`, in dB:
/// `10·log10(Σ reference² / Σ (estimate − reference)²)` (infinite when equal).
pub fn snr_db(reference: &[f32], estimate: &[f32]) -> f32 {
    let (signal, error) =
        reference
            .iter()
            .zip(estimate)
            .fold((0.0f64, 0.0f64), |(s, e), (&r, &x)| {
                let d = f64::from(x) - f64::from(r);
                (s + f64::from(r) * f64::from(r), e + d * d)
            });
    (10.0 * (signal / error).log10()) as f32
}

/// An `audio/wav` payload holding `channels` (of equal length) at
/// `sample_rate` in `format`.
pub fn wav_payload(
    channels: Vec<Vec<f32>>,
    sample_rate: u32,
    format: WavFormat,
) -> Result<Payload, KernelError> {
    let audio = Audio {
        sample_rate,
        format,
        channels,
    };
    Ok(Payload::new("audio/wav", wav::encode(&audio)?))
}

/// The benchmark's typical task: 5 s of 16 kHz mono 16-bit speech-like audio
/// with white noise at 5 dB SNR, and the default parameters (`{}`).
pub fn sample_input() -> (Payload, String) {
    let noisy = add_noise(&speech_like(16_000, 5.0), 5.0, 1);
    let payload = wav_payload(vec![noisy], 16_000, WavFormat::Int16)
        .expect("encoding a generated 16-bit WAV into memory cannot fail");
    (payload, "{}".into())
}
