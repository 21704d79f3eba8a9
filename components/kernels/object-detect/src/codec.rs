//! PNG in and out: decodes any PNG (gray, gray+alpha, RGB, RGBA, palette,
//! 1–16 bits) to an 8-bit gray image, and encodes gray images (for test scenes).

use greenmesh_kernel::KernelError;
use std::io::Cursor;

/// Largest accepted width or height, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// An 8-bit gray image, row-major, `pixels.len() == width * height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl GrayImage {
    /// A `width`×`height` image filled with `level`.
    pub fn filled(width: u32, height: u32, level: u8) -> Self {
        Self {
            width,
            height,
            pixels: vec![level; width as usize * height as usize],
        }
    }
}

/// Decodes a PNG to gray: colour becomes Rec. 601 luma
/// (`(299 R + 587 G + 114 B) / 1000`), and alpha is composited over white.
/// Refuses images wider or taller than [`MAX_SIDE`].
pub fn decode_png(bytes: &[u8]) -> Result<GrayImage, KernelError> {
    let invalid =
        |e: png::DecodingError| KernelError::InvalidInput(format!("not a readable PNG: {e}"));
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let header = decoder.read_header_info().map_err(invalid)?;
    let (width, height) = (header.width, header.height);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(KernelError::InvalidInput(format!(
            "image is {width}×{height}; the limit is {MAX_SIDE}×{MAX_SIDE}"
        )));
    }
    let mut reader = decoder.read_info().map_err(invalid)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| KernelError::InvalidInput("image too large".into()))?;
    let mut buffer = vec![0u8; size];
    let frame = reader.next_frame(&mut buffer).map_err(invalid)?;
    let samples = &buffer[..frame.buffer_size()];
    let pixels: Vec<u8> = match frame.color_type {
        png::ColorType::Grayscale => samples.to_vec(),
        png::ColorType::GrayscaleAlpha => samples
            .chunks_exact(2)
            .map(|p| over_white(p[0], p[1]))
            .collect(),
        png::ColorType::Rgb => samples
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
        png::ColorType::Rgba => samples
            .chunks_exact(4)
            .map(|p| over_white(luma(p[0], p[1], p[2]), p[3]))
            .collect(),
        png::ColorType::Indexed => {
            return Err(KernelError::InvalidInput(
                "palette PNG without a palette".into(),
            ))
        }
    };
    if pixels.len() != width as usize * height as usize {
        return Err(KernelError::InvalidInput(format!(
            "unsupported PNG sample layout ({:?}, {:?})",
            frame.color_type, frame.bit_depth
        )));
    }
    Ok(GrayImage {
        width,
        height,
        pixels,
    })
}

/// Encodes a gray image as an 8-bit grayscale PNG.
pub fn encode_png(image: &GrayImage) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .expect("writing a PNG header to memory cannot fail");
    writer
        .write_image_data(&image.pixels)
        .expect("the pixel count matches the header");
    writer
        .finish()
        .expect("finishing a PNG in memory cannot fail");
    out
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

fn over_white(gray: u8, alpha: u8) -> u8 {
    let a = alpha as u32;
    ((gray as u32 * a + 255 * (255 - a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(width: u32, height: u32, color: png::ColorType, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn gray_round_trips() {
        let image = GrayImage {
            width: 3,
            height: 2,
            pixels: vec![0, 50, 100, 150, 200, 255],
        };
        assert_eq!(decode_png(&encode_png(&image)).unwrap(), image);
    }

    #[test]
    fn colour_becomes_luma_and_alpha_is_composited_over_white() {
        let rgb = encode(2, 1, png::ColorType::Rgb, &[255, 0, 0, 0, 0, 255]);
        assert_eq!(decode_png(&rgb).unwrap().pixels, vec![76, 29]);
        let rgba = encode(2, 1, png::ColorType::Rgba, &[0, 0, 0, 0, 0, 0, 0, 255]);
        assert_eq!(decode_png(&rgba).unwrap().pixels, vec![255, 0]);
    }

    #[test]
    fn garbage_and_huge_images_are_refused() {
        assert!(matches!(
            decode_png(b"not a png"),
            Err(KernelError::InvalidInput(_))
        ));
        let wide = encode(
            MAX_SIDE + 1,
            1,
            png::ColorType::Grayscale,
            &[0; MAX_SIDE as usize + 1],
        );
        let err = decode_png(&wide).unwrap_err();
        assert!(matches!(err, KernelError::InvalidInput(m) if m.contains("4097")));
    }
}
