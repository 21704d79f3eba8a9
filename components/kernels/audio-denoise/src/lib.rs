//! The `audio-denoise` kernel: removes stationary background noise from a WAV
//! file by spectral gating, each channel on its own, keeping the file's
//! sample rate, channel count and sample format.

mod gate;
mod stft;
pub mod testdata;
pub mod wav;

use greenmesh_kernel::{expect_media_type, params, Description, Kernel, KernelError, Payload};
use serde::Deserialize;

use crate::gate::{denoise_channel, GateSettings};

/// The media type read and written.
const WAV: &str = "audio/wav";
/// The largest `reduction_db` accepted.
const MAX_REDUCTION_DB: f32 = 120.0;
/// The largest `threshold_sigma` accepted.
const MAX_THRESHOLD_SIGMA: f32 = 10.0;

/// The spectral-gating denoiser (see the crate's README).
pub struct AudioDenoise;

/// The parameters `run` understands.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    /// How far gated bins are attenuated, in dB (0–120).
    reduction_db: f32,
    /// Bins below the noise's mean + this many standard deviations (in dB)
    /// are gated (0–10).
    threshold_sigma: f32,
    /// Learn the noise from this many leading seconds, which must be noise
    /// only, instead of from the quietest 20% of frames.
    noise_seconds: Option<f32>,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            reduction_db: 18.0,
            threshold_sigma: 1.5,
            noise_seconds: None,
        }
    }
}

impl Params {
    /// Checks the ranges and turns the parameters into gate settings.
    fn settings(self) -> Result<GateSettings, KernelError> {
        if !(0.0..=MAX_REDUCTION_DB).contains(&self.reduction_db) {
            return Err(KernelError::InvalidParams(format!(
                "reduction_db = {} is outside 0–{MAX_REDUCTION_DB}",
                self.reduction_db
            )));
        }
        if !(0.0..=MAX_THRESHOLD_SIGMA).contains(&self.threshold_sigma) {
            return Err(KernelError::InvalidParams(format!(
                "threshold_sigma = {} is outside 0–{MAX_THRESHOLD_SIGMA}",
                self.threshold_sigma
            )));
        }
        if let Some(seconds) = self.noise_seconds {
            if !(seconds.is_finite() && seconds > 0.0) {
                return Err(KernelError::InvalidParams(format!(
                    "noise_seconds = {seconds} must be a positive number of seconds"
                )));
            }
        }
        Ok(GateSettings {
            reduction_db: self.reduction_db,
            threshold_sigma: self.threshold_sigma,
            noise_seconds: self.noise_seconds,
        })
    }
}

impl Kernel for AudioDenoise {
    fn describe() -> Description {
        let defaults = Params::default();
        let params = serde_json::json!({
            "reduction_db": {
                "default": defaults.reduction_db,
                "doc": "How far gated (noise-only) bins are attenuated, in dB, 0–120.",
            },
            "threshold_sigma": {
                "default": defaults.threshold_sigma,
                "doc": "A bin is gated when its level is below the noise's mean + this many standard deviations (in dB, per frequency bin), 0–10.",
            },
            "noise_seconds": {
                "default": null,
                "doc": "If set, learn the noise from this many leading seconds (noise only) instead of from the quietest 20% of frames.",
            },
        });
        Description {
            name: "audio-denoise".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Removes stationary background noise from WAV audio by spectral gating."
                .into(),
            input_types: vec![WAV.into()],
            output_types: vec![WAV.into()],
            params: params.to_string(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, params_json: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &[WAV])?;
        let settings = params::<Params>(params_json)?.settings()?;
        let mut audio = wav::decode(&input.bytes)?;
        drop(input);
        for channel in &mut audio.channels {
            *channel = denoise_channel(channel, audio.sample_rate, &settings)?;
        }
        Ok(Payload::new(WAV, wav::encode(&audio)?))
    }
}

greenmesh_kernel::export_kernel!(AudioDenoise);
