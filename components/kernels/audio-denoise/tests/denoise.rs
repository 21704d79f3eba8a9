//! End-to-end tests of the `audio-denoise` kernel through its public API:
//! denoising quality on generated noisy speech, transparency on clean audio,
//! format round-trips, parameters and the error cases.

use std::io::Cursor;

use audio_denoise::testdata::{add_noise, rms, sample_input, snr_db, speech_like, wav_payload};
use audio_denoise::wav::{decode, WavFormat};
use audio_denoise::AudioDenoise;
use greenmesh_kernel::{Kernel, KernelError, Payload};

const RATE: u32 = 16_000;

/// Runs the kernel on mono audio and returns the decoded output channel.
fn denoise_mono(signal: &[f32], format: WavFormat, params: &str) -> Vec<f32> {
    let input = wav_payload(vec![signal.to_vec()], RATE, format).unwrap();
    let output = AudioDenoise::run(input, params).unwrap();
    assert_eq!(output.media_type, "audio/wav");
    let mut audio = decode(&output.bytes).unwrap();
    assert_eq!(audio.channels.len(), 1);
    audio.channels.remove(0)
}

/// The quality figures of the README: input SNR → output SNR on 2 s of
/// speech-like audio in white noise, each against the clean reference.
#[test]
fn noisy_speech_gains_snr() {
    let clean = speech_like(RATE, 2.0);
    // (input SNR, least gain accepted) in dB.
    let cases = [(0.0, 8.0), (5.0, 7.0), (10.0, 6.0)];
    println!("| input SNR (dB) | output SNR (dB) | gain (dB) |");
    println!("|---:|---:|---:|");
    for (snr, least_gain) in cases {
        let noisy = add_noise(&clean, snr, 7);
        let input_snr = snr_db(&clean, &noisy);
        let output = denoise_mono(&noisy, WavFormat::Int16, "{}");
        let output_snr = snr_db(&clean, &output);
        let gain = output_snr - input_snr;
        println!("| {input_snr:.1} | {output_snr:.1} | {gain:+.1} |");
        assert!(
            gain >= least_gain,
            "at {snr} dB input the gain is {gain:.2} dB, below {least_gain} dB"
        );
    }
}

#[test]
fn a_noise_only_lead_in_also_teaches_the_noise() {
    let clean = speech_like(RATE, 2.0);
    let noisy = add_noise(&clean, 5.0, 11);
    // The speech starts at 0.2 s.
    let output = denoise_mono(&noisy, WavFormat::Float32, r#"{"noise_seconds": 0.2}"#);
    let gain = snr_db(&clean, &output) - snr_db(&clean, &noisy);
    println!("noise_seconds 0.2, 5 dB input: gain {gain:+.1} dB");
    assert!(gain >= 6.0, "gain {gain:.2} dB");
}

#[test]
fn noise_alone_is_attenuated_by_about_reduction_db() {
    let clean = speech_like(RATE, 2.0);
    let noisy = add_noise(&clean, 5.0, 3);
    // The first 0.2 s hold noise only; skip the edges of that stretch.
    let pause = 400..2800;
    for reduction in [6.0f32, 18.0] {
        let params = format!(r#"{{"reduction_db": {reduction}}}"#);
        let output = denoise_mono(&noisy, WavFormat::Float32, &params);
        let attenuation = 20.0 * (rms(&noisy[pause.clone()]) / rms(&output[pause.clone()])).log10();
        println!("reduction_db {reduction}: noise-only stretch attenuated by {attenuation:.1} dB");
        assert!(
            (reduction - 3.0..=reduction + 1.0).contains(&attenuation),
            "reduction_db {reduction}: noise attenuated by {attenuation:.2} dB"
        );
    }
}

#[test]
fn clean_speech_is_preserved() {
    // A clean recording: speech over a faint noise floor (50 dB SNR) in 16
    // bits. Its pauses teach the gate that floor, so the speech must pass.
    let input = add_noise(&speech_like(RATE, 2.0), 50.0, 13);
    let output = denoise_mono(&input, WavFormat::Int16, "{}");
    let snr = snr_db(&input, &output);
    println!("clean speech (50 dB SNR floor) in, output SNR vs input: {snr:.1} dB");
    assert!(snr >= 20.0, "clean speech came back at {snr:.1} dB SNR");
}

#[test]
fn silence_stays_silent() {
    for format in [WavFormat::Int16, WavFormat::Float32] {
        let output = denoise_mono(&vec![0.0; 2 * RATE as usize], format, "{}");
        assert_eq!(output.len(), 2 * RATE as usize);
        assert!(output.iter().all(|&x| x == 0.0));
    }
}

#[test]
fn stereo_float_keeps_its_format_and_length_and_channels_are_independent() {
    let rate = 22_050;
    let noisy = add_noise(&speech_like(rate, 1.0), 5.0, 5);
    let silence = vec![0.0; noisy.len()];
    let input = wav_payload(vec![noisy.clone(), silence], rate, WavFormat::Float32).unwrap();
    let output = decode(&AudioDenoise::run(input, "{}").unwrap().bytes).unwrap();
    assert_eq!(output.sample_rate, rate);
    assert_eq!(output.format, WavFormat::Float32);
    assert_eq!(output.channels.len(), 2);
    assert!(output.channels.iter().all(|c| c.len() == noisy.len()));
    assert!(output.channels[1].iter().all(|&x| x == 0.0));

    let mono = wav_payload(vec![noisy], rate, WavFormat::Float32).unwrap();
    let mono_output = decode(&AudioDenoise::run(mono, "{}").unwrap().bytes).unwrap();
    assert_eq!(mono_output.channels[0], output.channels[0]);
}

#[test]
fn odd_lengths_round_trip_in_sixteen_bits() {
    for len in [0, 1, 999, 8_001] {
        let signal = add_noise(&speech_like(8_000, 1.2)[..len], 10.0, 2);
        let output = denoise_mono_at(&signal, 8_000);
        assert_eq!(output.len(), len);
    }
}

/// Runs the kernel on a 16-bit mono WAV at `rate`.
fn denoise_mono_at(signal: &[f32], rate: u32) -> Vec<f32> {
    let input = wav_payload(vec![signal.to_vec()], rate, WavFormat::Int16).unwrap();
    let audio = decode(&AudioDenoise::run(input, "{}").unwrap().bytes).unwrap();
    assert_eq!((audio.sample_rate, audio.format), (rate, WavFormat::Int16));
    audio.channels[0].clone()
}

#[test]
fn the_sample_input_is_denoised() {
    let (input, params) = sample_input();
    assert_eq!(input.media_type, "audio/wav");
    let noisy = decode(&input.bytes).unwrap();
    assert_eq!(
        (noisy.sample_rate, noisy.format),
        (16_000, WavFormat::Int16)
    );
    assert_eq!(noisy.channels[0].len(), 5 * 16_000);
    let output = decode(&AudioDenoise::run(input, &params).unwrap().bytes).unwrap();
    let clean = speech_like(16_000, 5.0);
    let gain = snr_db(&clean, &output.channels[0]) - snr_db(&clean, &noisy.channels[0]);
    assert!(gain >= 6.0, "gain {gain:.2} dB");
}

#[test]
fn describe_names_the_capability_and_its_params() {
    let description = AudioDenoise::describe();
    assert_eq!(description.name, "audio-denoise");
    assert_eq!(description.input_types, vec!["audio/wav"]);
    assert_eq!(description.output_types, vec!["audio/wav"]);
    let params: serde_json::Value = serde_json::from_str(&description.params).unwrap();
    assert_eq!(params["reduction_db"]["default"], 18.0);
    assert_eq!(params["threshold_sigma"]["default"], 1.5);
    assert!(params["noise_seconds"]["default"].is_null());
}

fn short_wav() -> Payload {
    wav_payload(vec![vec![0.0; 4000]], RATE, WavFormat::Int16).unwrap()
}

fn wav_with(channels: u16, bits: u16, format: hound::SampleFormat, frames: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: RATE,
        bits_per_sample: bits,
        sample_format: format,
    };
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for _ in 0..frames * usize::from(channels) {
        writer.write_sample(0i32).unwrap();
    }
    writer.finalize().unwrap();
    cursor.into_inner()
}

fn run_err(bytes: Vec<u8>, params: &str) -> KernelError {
    AudioDenoise::run(Payload::new("audio/wav", bytes), params).unwrap_err()
}

#[test]
fn bad_inputs_are_refused_with_clear_errors() {
    let err = AudioDenoise::run(Payload::new("audio/mpeg", short_wav().bytes), "{}").unwrap_err();
    assert!(matches!(err, KernelError::UnsupportedMediaType(m) if m.contains("audio/wav")));

    let err = run_err(b"RIFF this is not a wave file".to_vec(), "{}");
    assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("not a readable WAV")));

    let err = run_err(wav_with(1, 24, hound::SampleFormat::Int, 100), "{}");
    assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("24-bit")));

    let err = run_err(wav_with(3, 16, hound::SampleFormat::Int, 100), "{}");
    assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("3 channels")));

    // A header that claims 11 minutes is refused before any sample is read.
    let mut bytes = wav_with(1, 16, hound::SampleFormat::Int, 100);
    let claimed = 660 * RATE * 2;
    let data = bytes.windows(4).position(|w| w == b"data").unwrap();
    bytes[data + 4..data + 8].copy_from_slice(&claimed.to_le_bytes());
    let err = run_err(bytes, "{}");
    assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("600 s")));

    // A data chunk cut short.
    let mut bytes = wav_with(1, 16, hound::SampleFormat::Int, 100);
    bytes.truncate(bytes.len() - 51);
    assert!(matches!(run_err(bytes, "{}"), KernelError::InvalidInput(_)));
}

#[test]
fn bad_params_are_refused() {
    for params in [
        r#"{"reduction": 10}"#,
        r#"{"reduction_db": -1}"#,
        r#"{"reduction_db": 500}"#,
        r#"{"threshold_sigma": "high"}"#,
        r#"{"threshold_sigma": 11}"#,
        r#"{"noise_seconds": 0}"#,
        r#"{"noise_seconds": 0.01}"#,
        r#"{"noise_seconds": 3}"#,
        "{",
    ] {
        let result = AudioDenoise::run(short_wav(), params);
        assert!(
            matches!(result, Err(KernelError::InvalidParams(_))),
            "{params}: {:?}",
            result.err()
        );
    }
}
