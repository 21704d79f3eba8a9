//! The `video-stabilize` kernel: removes camera shake from a Y4M clip. It
//! estimates the global translation between consecutive frames by phase
//! correlation, accumulates a camera trajectory, smooths it, and re-frames
//! each frame by (smoothed − raw) with bilinear interpolation.

use greenmesh_kernel::{expect_media_type, params, Description, Kernel, KernelError, Payload};
use serde::Deserialize;

mod phase_correlation;
pub mod testdata;
mod trajectory;
mod warp;
mod y4m;

#[cfg(test)]
mod tests;

pub use trajectory::Shift;

use phase_correlation::Estimator;
use y4m::Sampling;

/// The media type read and written: YUV4MPEG2.
pub const MEDIA_TYPE: &str = "video/x-yuv4mpegpipe";

/// The largest accepted `smoothing_radius`, in frames (the frame cap).
const MAX_SMOOTHING_RADIUS: usize = y4m::MAX_FRAMES;
/// The largest accepted `max_shift`, in luma pixels (the side cap).
const MAX_MAX_SHIFT: usize = y4m::MAX_DIMENSION;

const PARAMS_DOC: &str = r#"{"smoothing_radius":{"default":15,"doc":"Frames either side over which the camera trajectory is Gaussian-smoothed (sigma = radius/3); larger keeps less shake and follows pans more loosely. 0 leaves the clip unchanged. At most 512."},"max_shift":{"default":64,"doc":"Largest frame-to-frame displacement searched, in luma pixels per axis (also bounded by about half the analysed frame). 1 to 1920."}}"#;

/// The `video-stabilize` kernel.
pub struct VideoStabilize;

/// The options `run` understands.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Params {
    /// Frames either side over which the trajectory is smoothed.
    smoothing_radius: usize,
    /// Largest frame-to-frame displacement searched, in luma pixels.
    max_shift: usize,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            smoothing_radius: 15,
            max_shift: 64,
        }
    }
}

impl Params {
    fn parse(text: &str) -> Result<Self, KernelError> {
        let parsed: Params = params(text)?;
        if parsed.smoothing_radius > MAX_SMOOTHING_RADIUS {
            return Err(KernelError::InvalidParams(format!(
                "smoothing_radius {} is above {MAX_SMOOTHING_RADIUS}",
                parsed.smoothing_radius
            )));
        }
        if !(1..=MAX_MAX_SHIFT).contains(&parsed.max_shift) {
            return Err(KernelError::InvalidParams(format!(
                "max_shift {} is outside 1..={MAX_MAX_SHIFT}",
                parsed.max_shift
            )));
        }
        Ok(parsed)
    }
}

/// Each frame's content position relative to frame 0, in luma pixels, as
/// measured by phase correlation between consecutive frames.
fn measure_trajectory(clip: &y4m::Clip, max_shift: usize) -> Result<Vec<Shift>, KernelError> {
    let mut estimator = Estimator::new(clip.width, clip.height, max_shift);
    let luma_len = clip.luma_len();
    let mut steps = Vec::with_capacity(clip.frames.len().saturating_sub(1));
    let mut previous = None;
    for frame in &clip.frames {
        let spectrum = estimator.spectrum(&frame.planes[..luma_len])?;
        if let Some(previous) = &previous {
            steps.push(estimator.displacement(previous, &spectrum)?);
        }
        previous = Some(spectrum);
    }
    Ok(trajectory::accumulate(&steps))
}

impl Kernel for VideoStabilize {
    fn describe() -> Description {
        Description {
            name: "video-stabilize".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Removes camera shake from a Y4M clip (phase-correlation translation \
                      estimate, Gaussian-smoothed trajectory, bilinear re-framing)."
                .into(),
            input_types: vec![MEDIA_TYPE.into()],
            output_types: vec![MEDIA_TYPE.into()],
            params: PARAMS_DOC.into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, params: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &[MEDIA_TYPE])?;
        let params = Params::parse(params)?;
        let clip = y4m::parse(&input.bytes)?;
        let path = measure_trajectory(&clip, params.max_shift)?;
        let smoothed = trajectory::smooth(&path, params.smoothing_radius);
        let (width, height, luma_len) = (clip.width, clip.height, clip.luma_len());
        let (chroma_width, chroma_height) = clip.chroma_size();
        let chroma_len = chroma_width * chroma_height;
        let bytes = clip.write_with(|i, frame, out| {
            let correction = smoothed[i] - path[i];
            let (luma, chroma) = frame.planes.split_at(luma_len);
            warp::translate_plane(luma, width, height, correction, out);
            if clip.sampling == Sampling::Yuv420 {
                for plane in chroma.chunks_exact(chroma_len) {
                    let half = correction * 0.5;
                    warp::translate_plane(plane, chroma_width, chroma_height, half, out);
                }
            }
        });
        Ok(Payload::new(MEDIA_TYPE, bytes))
    }
}

greenmesh_kernel::export_kernel!(VideoStabilize);
