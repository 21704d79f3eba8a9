//! A YUV4MPEG2 (Y4M) reader and writer for the subset this kernel handles:
//! 8-bit 4:2:0 (`C420jpeg`, `C420`, `C420paldv`, `C420mpeg2`; no `C` tag
//! means 4:2:0) and 8-bit `Cmono`, within the size caps below.
//!
//! The stream header and every `FRAME` header are kept verbatim, so frame
//! rate, aspect, interlacing and `X` extension tags pass through unchanged.

use greenmesh_kernel::KernelError;

/// The largest accepted width or height.
pub const MAX_DIMENSION: usize = 1920;
/// The largest accepted frame area (1920×1080).
pub const MAX_PIXELS: usize = 1920 * 1080;
/// The smallest accepted width or height.
pub const MIN_DIMENSION: usize = 16;
/// The most frames a clip may hold.
pub const MAX_FRAMES: usize = 512;
/// The longest stream or frame header line accepted, in bytes.
const MAX_HEADER_LINE: usize = 4096;

const STREAM_MAGIC: &[u8] = b"YUV4MPEG2 ";
const FRAME_MAGIC: &[u8] = b"FRAME";

/// How the planes of a frame are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampling {
    /// Luma plus two chroma planes at half width and half height (rounded up).
    Yuv420,
    /// Luma only.
    Mono,
}

/// One frame: its verbatim header line and its plane bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// `FRAME...\n`, newline included.
    pub header: &'a [u8],
    /// Y, then U and V for 4:2:0.
    pub planes: &'a [u8],
}

/// A parsed clip borrowing the input bytes.
#[derive(Debug, Clone)]
pub struct Clip<'a> {
    /// The stream header line, newline included.
    pub header: &'a [u8],
    /// Luma width, in pixels.
    pub width: usize,
    /// Luma height, in pixels.
    pub height: usize,
    /// The plane layout.
    pub sampling: Sampling,
    /// The frames, in order.
    pub frames: Vec<Frame<'a>>,
}

impl Clip<'_> {
    /// Bytes in the luma plane.
    pub fn luma_len(&self) -> usize {
        self.width * self.height
    }

    /// Width and height of each chroma plane (zero for mono).
    pub fn chroma_size(&self) -> (usize, usize) {
        match self.sampling {
            Sampling::Yuv420 => (self.width.div_ceil(2), self.height.div_ceil(2)),
            Sampling::Mono => (0, 0),
        }
    }

    /// Bytes of plane data in one frame.
    pub fn frame_len(&self) -> usize {
        let (cw, ch) = self.chroma_size();
        self.luma_len() + 2 * cw * ch
    }

    /// Writes a clip with the same stream and frame headers, the plane bytes
    /// of frame `i` appended by `write_planes(i, frame, out)`, which must
    /// append exactly [`Clip::frame_len`] bytes.
    pub fn write_with(&self, mut write_planes: impl FnMut(usize, &Frame, &mut Vec<u8>)) -> Vec<u8> {
        let total = self.header.len()
            + self
                .frames
                .iter()
                .map(|f| f.header.len() + f.planes.len())
                .sum::<usize>();
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(self.header);
        for (i, frame) in self.frames.iter().enumerate() {
            out.extend_from_slice(frame.header);
            let before = out.len();
            write_planes(i, frame, &mut out);
            debug_assert_eq!(out.len() - before, self.frame_len());
        }
        out
    }
}

fn invalid(message: impl Into<String>) -> KernelError {
    KernelError::InvalidInput(message.into())
}

/// Splits off one `\n`-terminated line (newline included) starting at `at`.
fn line_at<'a>(bytes: &'a [u8], at: usize, what: &str) -> Result<&'a [u8], KernelError> {
    let rest = &bytes[at..];
    let limit = rest.len().min(MAX_HEADER_LINE);
    match rest[..limit].iter().position(|&b| b == b'\n') {
        Some(end) => Ok(&rest[..=end]),
        None => Err(invalid(format!(
            "{what} at byte {at} has no line end within {MAX_HEADER_LINE} bytes"
        ))),
    }
}

fn parse_dimension(tag: &str, value: &str) -> Result<usize, KernelError> {
    if value.is_empty() || value.len() > 6 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "Y4M header tag {tag}{value:?} is not a size"
        )));
    }
    value
        .parse()
        .map_err(|_| invalid(format!("Y4M header tag {tag}{value:?} is not a size")))
}

fn parse_sampling(colorspace: &str) -> Result<Sampling, KernelError> {
    match colorspace {
        "420jpeg" | "420" | "420paldv" | "420mpeg2" => Ok(Sampling::Yuv420),
        "mono" => Ok(Sampling::Mono),
        other => Err(invalid(format!(
            "Y4M colorspace C{other} is not supported; this kernel reads 8-bit 4:2:0 \
             (C420jpeg, C420, C420paldv, C420mpeg2) or Cmono"
        ))),
    }
}

/// Parses a Y4M stream, checking the format subset and the size caps.
pub fn parse(bytes: &[u8]) -> Result<Clip<'_>, KernelError> {
    if !bytes.starts_with(STREAM_MAGIC) {
        return Err(invalid(
            "not a Y4M stream: it does not start with \"YUV4MPEG2 \"",
        ));
    }
    let header = line_at(bytes, 0, "the Y4M stream header")?;
    let text = std::str::from_utf8(&header[STREAM_MAGIC.len()..header.len() - 1])
        .map_err(|_| invalid("the Y4M stream header is not ASCII"))?;
    let (mut width, mut height, mut sampling) = (None, None, Sampling::Yuv420);
    for token in text.split(' ').filter(|t| !t.is_empty()) {
        let (tag, value) = token.split_at(1);
        match tag {
            "W" => width = Some(parse_dimension(tag, value)?),
            "H" => height = Some(parse_dimension(tag, value)?),
            "C" => sampling = parse_sampling(value)?,
            _ => {}
        }
    }
    let (Some(width), Some(height)) = (width, height) else {
        return Err(invalid("the Y4M stream header lacks its W or H tag"));
    };
    if width < MIN_DIMENSION || height < MIN_DIMENSION {
        return Err(invalid(format!(
            "{width}×{height} is below the smallest frame size, {MIN_DIMENSION}×{MIN_DIMENSION}"
        )));
    }
    if width > MAX_DIMENSION || height > MAX_DIMENSION || width * height > MAX_PIXELS {
        return Err(invalid(format!(
            "{width}×{height} is beyond the cap: at most {MAX_DIMENSION} on a side \
             and {MAX_PIXELS} pixels (1920×1080)"
        )));
    }
    let mut clip = Clip {
        header,
        width,
        height,
        sampling,
        frames: Vec::new(),
    };
    let frame_len = clip.frame_len();
    let mut at = header.len();
    while at < bytes.len() {
        let index = clip.frames.len();
        if index == MAX_FRAMES {
            return Err(invalid(format!(
                "the clip has more than {MAX_FRAMES} frames"
            )));
        }
        if !bytes[at..].starts_with(FRAME_MAGIC) {
            return Err(invalid(format!(
                "frame {index} at byte {at} does not start with \"FRAME\""
            )));
        }
        let frame_header = line_at(bytes, at, "a FRAME header")?;
        if !matches!(frame_header[FRAME_MAGIC.len()], b'\n' | b' ') {
            return Err(invalid(format!(
                "frame {index} has a malformed FRAME header"
            )));
        }
        at += frame_header.len();
        let available = bytes.len() - at;
        if available < frame_len {
            return Err(invalid(format!(
                "frame {index} is truncated: {available} of {frame_len} bytes"
            )));
        }
        clip.frames.push(Frame {
            header: frame_header,
            planes: &bytes[at..at + frame_len],
        });
        at += frame_len;
    }
    Ok(clip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(header: &str, frames: usize, frame_len: usize) -> Vec<u8> {
        let mut bytes = header.as_bytes().to_vec();
        for i in 0..frames {
            bytes.extend_from_slice(b"FRAME\n");
            bytes.extend((0..frame_len).map(|j| (i + j) as u8));
        }
        bytes
    }

    #[test]
    fn a_420_stream_is_split_into_frames_with_headers_kept() {
        let header = "YUV4MPEG2 W17 H16 F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG\n";
        let frame_len = 17 * 16 + 2 * 9 * 8;
        let bytes = stream(header, 3, frame_len);
        let clip = parse(&bytes).unwrap();
        assert_eq!(
            (clip.width, clip.height, clip.sampling),
            (17, 16, Sampling::Yuv420)
        );
        assert_eq!(clip.header, header.as_bytes());
        assert_eq!(clip.frames.len(), 3);
        assert_eq!(clip.frame_len(), frame_len);
        assert_eq!(clip.frames[1].planes[0], 1);
        let copy = clip.write_with(|_, frame, out| out.extend_from_slice(frame.planes));
        assert_eq!(copy, bytes);
    }

    #[test]
    fn mono_streams_have_one_plane_and_no_c_tag_means_420() {
        let mono = stream("YUV4MPEG2 W16 H16 Cmono\n", 2, 256);
        let clip = parse(&mono).unwrap();
        assert_eq!((clip.sampling, clip.frame_len()), (Sampling::Mono, 256));
        let plain = stream("YUV4MPEG2 W16 H16 F25:1\n", 1, 384);
        assert_eq!(parse(&plain).unwrap().sampling, Sampling::Yuv420);
    }

    #[test]
    fn unsupported_or_broken_streams_are_refused_with_reasons() {
        let cases: &[(Vec<u8>, &str)] = &[
            (b"RIFF....WAVE".to_vec(), "not a Y4M stream"),
            (
                stream("YUV4MPEG2 W16 H16 C444\n", 1, 768),
                "C444 is not supported",
            ),
            (stream("YUV4MPEG2 W16 H16 C420p10\n", 1, 768), "C420p10"),
            (stream("YUV4MPEG2 W16 F25:1\n", 1, 384), "lacks its W or H"),
            (stream("YUV4MPEG2 W1921 H16\n", 1, 0), "beyond the cap"),
            (stream("YUV4MPEG2 W1920 H1088\n", 1, 0), "beyond the cap"),
            (stream("YUV4MPEG2 W8 H16\n", 1, 0), "below the smallest"),
            (
                stream("YUV4MPEG2 W16 H16\n", 1, 383),
                "frame 0 is truncated",
            ),
            (stream("YUV4MPEG2 W16 H16\n", 2, 383), "frame 1 at byte"),
            (stream("YUV4MPEG2 W16 H16\n", 2, 385), "frame 1 at byte"),
            (b"YUV4MPEG2 W16 H16".to_vec(), "no line end"),
        ];
        for (bytes, expected) in cases {
            match parse(bytes) {
                Err(KernelError::InvalidInput(m)) => assert!(m.contains(expected), "{m}"),
                other => panic!("expected an error with {expected:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn more_than_the_frame_cap_is_refused() {
        let bytes = stream("YUV4MPEG2 W16 H16 Cmono\n", MAX_FRAMES + 1, 256);
        let err = parse(&bytes).unwrap_err();
        assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("more than 512")));
    }
}
