//! WAV decoding and encoding (through `hound`): PCM 16-bit integer or 32-bit
//! float (finite, within ±1000), mono or stereo, 8–96 kHz, at most ten
//! minutes long.

use std::io::Cursor;

use greenmesh_kernel::KernelError;
use hound::{SampleFormat, WavReader, WavSpec, WavWriter};

/// The lowest sample rate read, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// The highest sample rate read, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 96_000;
/// The most channels read (mono or stereo).
pub const MAX_CHANNELS: u16 = 2;
/// The longest audio read, in seconds.
pub const MAX_SECONDS: u32 = 600;
/// The largest float sample magnitude read (full scale is 1): beyond it, or
/// not finite, the data is not audio and would overflow the spectra.
pub const MAX_FLOAT_MAGNITUDE: f32 = 1000.0;

/// How the samples are stored in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WavFormat {
    /// 16-bit signed integer PCM.
    Int16,
    /// 32-bit IEEE float.
    Float32,
}

/// Decoded audio: one buffer per channel, samples scaled to [-1, 1]
/// (16-bit values are divided by 32768; floats are kept as they are).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub sample_rate: u32,
    pub format: WavFormat,
    pub channels: Vec<Vec<f32>>,
}

/// Decodes a WAV file, refusing formats, rates, channel counts and lengths
/// beyond this kernel's limits with [`KernelError::InvalidInput`].
pub fn decode(bytes: &[u8]) -> Result<Audio, KernelError> {
    let reader = WavReader::new(Cursor::new(bytes))
        .map_err(|e| KernelError::InvalidInput(format!("not a readable WAV file: {e}")))?;
    let spec = reader.spec();
    let format = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, 16) => WavFormat::Int16,
        (SampleFormat::Float, 32) => WavFormat::Float32,
        (SampleFormat::Int, bits) => {
            return Err(KernelError::InvalidInput(format!(
                "{bits}-bit integer PCM is not supported; use 16-bit integer or 32-bit float"
            )))
        }
        (SampleFormat::Float, bits) => {
            return Err(KernelError::InvalidInput(format!(
                "{bits}-bit float PCM is not supported; use 16-bit integer or 32-bit float"
            )))
        }
    };
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        return Err(KernelError::InvalidInput(format!(
            "{} channels; only mono and stereo are supported",
            spec.channels
        )));
    }
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&spec.sample_rate) {
        return Err(KernelError::InvalidInput(format!(
            "sample rate {} Hz is outside {MIN_SAMPLE_RATE}–{MAX_SAMPLE_RATE} Hz",
            spec.sample_rate
        )));
    }
    let frames = reader.duration() as u64;
    if frames > u64::from(MAX_SECONDS) * u64::from(spec.sample_rate) {
        return Err(KernelError::InvalidInput(format!(
            "{:.1} s of audio is longer than the {MAX_SECONDS} s limit",
            frames as f64 / f64::from(spec.sample_rate)
        )));
    }

    let channel_count = usize::from(spec.channels);
    let samples = reader.len() as usize;
    if !samples.is_multiple_of(channel_count) {
        return Err(KernelError::InvalidInput(
            "the data chunk ends inside a sample frame".into(),
        ));
    }
    // hound has read the header: the samples start where it stopped. They
    // are converted here in bulk rather than one `io::Read` call at a time.
    let bytes_per_sample = usize::from(spec.bits_per_sample / 8);
    let start = reader.into_inner().position() as usize;
    let available = (bytes.len() - start.min(bytes.len())) / bytes_per_sample;
    let data = bytes
        .get(start..start + samples * bytes_per_sample)
        .ok_or_else(|| {
            KernelError::InvalidInput(format!(
                "bad sample data: the data chunk claims {samples} samples, the file holds {available}"
            ))
        })?;
    let mut channels = vec![Vec::with_capacity(samples / channel_count); channel_count];
    let frames = data.chunks_exact(bytes_per_sample * channel_count);
    match format {
        WavFormat::Int16 => {
            let value = |b: &[u8]| f32::from(i16::from_le_bytes([b[0], b[1]])) * (1.0 / 32768.0);
            if let [mono] = channels.as_mut_slice() {
                mono.extend(data.chunks_exact(2).map(value));
            } else {
                for frame in frames {
                    for (channel, b) in channels.iter_mut().zip(frame.chunks_exact(2)) {
                        channel.push(value(b));
                    }
                }
            }
        }
        WavFormat::Float32 => {
            for (f, frame) in frames.enumerate() {
                for (c, (channel, b)) in channels.iter_mut().zip(frame.chunks_exact(4)).enumerate()
                {
                    let sample = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    if !sample.is_finite() || sample.abs() > MAX_FLOAT_MAGNITUDE {
                        return Err(KernelError::InvalidInput(format!(
                            "float sample {} is {sample}; samples must be finite and within ±{MAX_FLOAT_MAGNITUDE}",
                            f * channel_count + c
                        )));
                    }
                    channel.push(sample);
                }
            }
        }
    }
    Ok(Audio {
        sample_rate: spec.sample_rate,
        format,
        channels,
    })
}

/// Encodes audio as a WAV file in `audio.format`; 16-bit samples are rounded
/// and clipped to the integer range. All channels must have the same length.
pub fn encode(audio: &Audio) -> Result<Vec<u8>, KernelError> {
    let (bits_per_sample, sample_format) = match audio.format {
        WavFormat::Int16 => (16, SampleFormat::Int),
        WavFormat::Float32 => (32, SampleFormat::Float),
    };
    let spec = WavSpec {
        channels: audio.channels.len() as u16,
        sample_rate: audio.sample_rate,
        bits_per_sample,
        sample_format,
    };
    let frames = audio.channels.first().map_or(0, Vec::len);
    let failed = |e: hound::Error| KernelError::Failed(format!("writing the WAV: {e}"));
    // hound writes the header (of an empty file); the samples are appended
    // in bulk and the two chunk sizes patched.
    let mut cursor = Cursor::new(Vec::new());
    WavWriter::new(&mut cursor, spec)
        .and_then(WavWriter::finalize)
        .map_err(failed)?;
    let mut out = cursor.into_inner();
    let header = out.len();
    let data_bytes = frames * audio.channels.len() * usize::from(bits_per_sample / 8);
    let too_long = || {
        KernelError::Failed(format!(
            "{data_bytes} bytes of samples do not fit a WAV file"
        ))
    };
    let riff_size = u32::try_from(header - 8 + data_bytes).map_err(|_| too_long())?;
    let data_size = u32::try_from(data_bytes).map_err(|_| too_long())?;
    out.resize(header + data_bytes, 0);
    let data = &mut out[header..];
    match (audio.format, audio.channels.as_slice()) {
        (WavFormat::Int16, [mono]) => {
            for (bytes, &sample) in data.chunks_exact_mut(2).zip(mono) {
                bytes.copy_from_slice(&quantise(sample).to_le_bytes());
            }
        }
        (WavFormat::Int16, channels) => {
            for (i, bytes) in data.chunks_exact_mut(2).enumerate() {
                let sample = channels[i % channels.len()][i / channels.len()];
                bytes.copy_from_slice(&quantise(sample).to_le_bytes());
            }
        }
        (WavFormat::Float32, channels) => {
            for (i, bytes) in data.chunks_exact_mut(4).enumerate() {
                let sample = channels[i % channels.len()][i / channels.len()];
                bytes.copy_from_slice(&sample.to_le_bytes());
            }
        }
    }
    out[4..8].copy_from_slice(&riff_size.to_le_bytes());
    out[header - 4..header].copy_from_slice(&data_size.to_le_bytes());
    Ok(out)
}

/// A sample in [-1, 1] as 16-bit PCM: rounded to the nearest level (ties to
/// even: one instruction in wasm and SSE 4.1, where `round` is a library
/// call) and clipped to the integer range.
fn quantise(sample: f32) -> i16 {
    (sample * 32768.0)
        .round_ties_even()
        .clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_stereo_round_trips_exactly() {
        let audio = Audio {
            sample_rate: 22_050,
            format: WavFormat::Int16,
            channels: vec![
                vec![0.0, 0.5, -1.0, 32767.0 / 32768.0],
                vec![-0.25, 1.0 / 32768.0, 0.0, -0.5],
            ],
        };
        assert_eq!(decode(&encode(&audio).unwrap()).unwrap(), audio);
    }

    #[test]
    fn float_mono_round_trips_exactly() {
        let audio = Audio {
            sample_rate: 96_000,
            format: WavFormat::Float32,
            channels: vec![vec![0.123_456_7, -0.987_654_3, 1.5, 0.0]],
        };
        assert_eq!(decode(&encode(&audio).unwrap()).unwrap(), audio);
    }

    #[test]
    fn sixteen_bit_output_is_clipped_not_wrapped() {
        let audio = Audio {
            sample_rate: 8_000,
            format: WavFormat::Int16,
            channels: vec![vec![1.5, -1.5]],
        };
        let decoded = decode(&encode(&audio).unwrap()).unwrap();
        assert_eq!(decoded.channels[0], vec![32767.0 / 32768.0, -1.0]);
    }

    #[test]
    fn float_samples_that_are_not_audio_are_refused() {
        for bad in [f32::NAN, f32::INFINITY, -2000.0] {
            let audio = Audio {
                sample_rate: 8_000,
                format: WavFormat::Float32,
                channels: vec![vec![0.0, bad]],
            };
            let err = decode(&encode(&audio).unwrap()).unwrap_err();
            assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("sample 1")));
        }
    }

    #[test]
    fn rates_outside_the_range_are_refused() {
        let audio = Audio {
            sample_rate: 4_000,
            format: WavFormat::Int16,
            channels: vec![vec![0.0; 8]],
        };
        let err = decode(&encode(&audio).unwrap()).unwrap_err();
        assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("4000 Hz")));
    }
}
