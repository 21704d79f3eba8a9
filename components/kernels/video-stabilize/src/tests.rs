//! End-to-end tests of the kernel on generated shaken clips: quality
//! figures (residual shake before and after), format round-trips and the
//! refused inputs and params.

use super::*;
use testdata::{shaken_clip, ShakenClip, PAN_VELOCITY};

/// How far a clip's motion strays from the true smooth pan.
struct Shakiness {
    /// RMS distance, in px, between the measured trajectory and the true pan
    /// (both relative to frame 0, mean offset removed).
    deviation_from_pan: f32,
    /// RMS length, in px, of the trajectory's second difference (frame-to-frame
    /// change of velocity): the high-frequency jitter.
    jitter: f32,
    /// Least-squares velocity of the trajectory, px per frame.
    velocity: Shift,
}

fn rms(values: impl Iterator<Item = Shift>) -> f32 {
    let (mut sum, mut count) = (0.0, 0);
    for v in values {
        sum += v.x * v.x + v.y * v.y;
        count += 1;
    }
    (sum / count as f32).sqrt()
}

fn shakiness(bytes: &[u8], pan: &[Shift]) -> Shakiness {
    let clip = y4m::parse(bytes).unwrap();
    let path = measure_trajectory(&clip, 64).unwrap();
    let n = path.len() as f32;
    let offsets: Vec<Shift> = path
        .iter()
        .zip(pan)
        .map(|(&p, &q)| p - (q - pan[0]))
        .collect();
    let mean = offsets.iter().fold(Shift::default(), |a, &b| a + b) * (1.0 / n);
    let t_mean = (n - 1.0) / 2.0;
    let path_mean = path.iter().fold(Shift::default(), |a, &b| a + b) * (1.0 / n);
    let (mut covariance, mut variance) = (Shift::default(), 0.0);
    for (i, &p) in path.iter().enumerate() {
        let dt = i as f32 - t_mean;
        covariance = covariance + (p - path_mean) * dt;
        variance += dt * dt;
    }
    Shakiness {
        deviation_from_pan: rms(offsets.iter().map(|&o| o - mean)),
        jitter: rms(path.windows(3).map(|w| w[2] - w[1] * 2.0 + w[0])),
        velocity: covariance * (1.0 / variance),
    }
}

fn stabilize(payload: &Payload, params: &str) -> Payload {
    VideoStabilize::run(payload.clone(), params).unwrap()
}

/// Stabilises a shaken clip, prints the figures and checks the thresholds.
fn check_stabilization(label: &str, clip: &ShakenClip) {
    let output = stabilize(&clip.payload, "{}");
    let before = shakiness(&clip.payload.bytes, &clip.pan);
    let after = shakiness(&output.bytes, &clip.pan);
    println!(
        "{label}: deviation from the pan {:.3} -> {:.3} px RMS ({:.1}x), \
         jitter (2nd difference) {:.3} -> {:.3} px RMS ({:.1}x), \
         pan velocity true ({:.2}, {:.2}) kept ({:.3}, {:.3}) px/frame",
        before.deviation_from_pan,
        after.deviation_from_pan,
        before.deviation_from_pan / after.deviation_from_pan,
        before.jitter,
        after.jitter,
        before.jitter / after.jitter,
        PAN_VELOCITY.x,
        PAN_VELOCITY.y,
        after.velocity.x,
        after.velocity.y,
    );
    assert!(before.deviation_from_pan > 3.0 * after.deviation_from_pan);
    assert!(before.jitter > 10.0 * after.jitter);
    assert!((after.velocity - PAN_VELOCITY).length() < 0.1);
}

#[test]
fn quality_stabilization_removes_shake_and_keeps_the_pan() {
    check_stabilization("96x64, 24 frames", &shaken_clip(96, 64, 24));
    check_stabilization("320x240, 30 frames", &shaken_clip(320, 240, 30));
}

#[test]
fn quality_the_measured_trajectory_follows_the_true_camera() {
    let clip = shaken_clip(96, 64, 24);
    let path = measure_trajectory(&y4m::parse(&clip.payload.bytes).unwrap(), 64).unwrap();
    let truth: Vec<Shift> = clip
        .pan
        .iter()
        .zip(&clip.shake)
        .map(|(&p, &s)| p + s)
        .collect();
    let steps = path.windows(2).zip(truth.windows(2));
    let errors = steps.map(|(m, t)| (m[1] - m[0]) - (t[1] - t[0]));
    let step_error = rms(errors.clone());
    let worst = errors.map(Shift::length).fold(0.0, f32::max);
    println!("frame-to-frame displacement error: {step_error:.3} px RMS, worst {worst:.3} px");
    assert!(worst < 0.25, "worst step error {worst}");
}

#[test]
fn headers_and_sizes_are_kept() {
    let mut clip = shaken_clip(48, 32, 4).payload;
    let header = b"YUV4MPEG2 W48 H32 F25:1 It A4:3 C420paldv XCOLORRANGE=LIMITED\n";
    let old_header_end = clip.bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    clip.bytes.splice(..old_header_end, header.iter().copied());
    let frame_header = b"FRAME Ixyz\n";
    let second_frame = header.len() + 6 + 48 * 32 * 3 / 2;
    clip.bytes
        .splice(second_frame..second_frame + 6, frame_header.iter().copied());
    let output = stabilize(&clip, r#"{"smoothing_radius": 3}"#);
    assert_eq!(output.media_type, "video/x-yuv4mpegpipe");
    assert_eq!(output.bytes.len(), clip.bytes.len());
    assert!(output.bytes.starts_with(header));
    assert_eq!(
        &output.bytes[second_frame..][..frame_header.len()],
        frame_header
    );
    assert_ne!(output.bytes, clip.bytes);
}

#[test]
fn a_zero_radius_leaves_the_clip_unchanged() {
    let clip = shaken_clip(48, 32, 5).payload;
    assert_eq!(stabilize(&clip, r#"{"smoothing_radius": 0}"#), clip);
}

#[test]
fn mono_clips_get_the_same_luma_as_their_colour_version() {
    let (width, height, frames) = (64, 48, 8);
    let colour = shaken_clip(width, height, frames).payload;
    let header_end = colour.bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame_len = width * height * 3 / 2;
    let mut mono = format!("YUV4MPEG2 W{width} H{height} F25:1 Cmono\n").into_bytes();
    for frame in colour.bytes[header_end..].chunks_exact(6 + frame_len) {
        mono.extend_from_slice(&frame[..6 + width * height]);
    }
    let colour_out = stabilize(&colour, "{}");
    let mono_out = stabilize(&Payload::new(MEDIA_TYPE, mono.clone()), "{}");
    let mono_header_end = mono.iter().position(|&b| b == b'\n').unwrap() + 1;
    let luma_frames = mono_out.bytes[mono_header_end..].chunks_exact(6 + width * height);
    let colour_frames = colour_out.bytes[header_end..].chunks_exact(6 + frame_len);
    for (m, c) in luma_frames.zip(colour_frames) {
        assert_eq!(m, &c[..6 + width * height]);
    }
    assert_ne!(mono_out.bytes, mono);
}

fn error_of(payload: Payload, params: &str) -> KernelError {
    VideoStabilize::run(payload, params).unwrap_err()
}

#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let clip = shaken_clip(32, 32, 3).payload;
    let wrong_type = Payload::new("video/mp4", clip.bytes.clone());
    assert!(matches!(
        error_of(wrong_type, "{}"),
        KernelError::UnsupportedMediaType(_)
    ));

    let not_y4m = Payload::new(MEDIA_TYPE, b"\x1aE\xdf\xa3 matroska".to_vec());
    let err = error_of(not_y4m, "{}");
    assert!(
        matches!(&err, KernelError::InvalidInput(m) if m.contains("not a Y4M")),
        "{err}"
    );

    let mut yuv444 = b"YUV4MPEG2 W32 H32 C444\nFRAME\n".to_vec();
    yuv444.extend(std::iter::repeat_n(128, 32 * 32 * 3));
    let err = error_of(Payload::new(MEDIA_TYPE, yuv444), "{}");
    assert!(
        matches!(&err, KernelError::InvalidInput(m) if m.contains("C444")),
        "{err}"
    );

    let mut truncated = clip.clone();
    truncated.bytes.truncate(clip.bytes.len() - 100);
    let err = error_of(truncated, "{}");
    assert!(matches!(&err, KernelError::InvalidInput(m) if m.contains("frame 2 is truncated")));
}

#[test]
fn bad_params_are_refused() {
    let clip = shaken_clip(32, 32, 2).payload;
    for (params, expected) in [
        (r#"{"smoothing_radus": 5}"#, "smoothing_radus"),
        (r#"{"smoothing_radius": -1}"#, "invalid value"),
        (r#"{"smoothing_radius": 513}"#, "above 512"),
        (r#"{"max_shift": 0}"#, "outside 1..=1920"),
        ("\"fast\"", "invalid type"),
    ] {
        match error_of(clip.clone(), params) {
            KernelError::InvalidParams(m) => assert!(m.contains(expected), "{params}: {m}"),
            other => panic!("{params}: {other:?}"),
        }
    }
}

#[test]
fn the_description_names_the_capability_and_its_types() {
    let d = VideoStabilize::describe();
    assert_eq!(d.name, "video-stabilize");
    assert_eq!(d.input_types, vec!["video/x-yuv4mpegpipe"]);
    assert_eq!(d.output_types, d.input_types);
    assert!(d.params.contains("\"smoothing_radius\":{\"default\":15"));
    assert!(d.params.contains("\"max_shift\":{\"default\":64"));
}

#[test]
fn the_sample_input_is_a_valid_320x240_30_frame_clip() {
    let (payload, params) = testdata::sample_input();
    let clip = y4m::parse(&payload.bytes).unwrap();
    assert_eq!((clip.width, clip.height, clip.frames.len()), (320, 240, 30));
    assert_eq!(params, "{}");
}
