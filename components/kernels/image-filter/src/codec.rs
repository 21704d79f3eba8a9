//! PNG in and out, through the `png` crate: any PNG is normalised to 8-bit
//! gray, gray+alpha, RGB or RGBA (palettes and `tRNS` expanded, 16-bit
//! samples stripped to their high byte), and refused beyond [`MAX_SIDE`].

use std::io::Cursor;

use greenmesh_kernel::KernelError;

use crate::raster::{Image, Layout};

/// The largest width or height accepted, in pixels.
pub const MAX_SIDE: u32 = 4096;

/// Bytes the PNG decoder may allocate for its own buffers (rows, chunks);
/// the decoded frame itself is bounded by [`MAX_SIDE`].
const DECODER_MEMORY_LIMIT: usize = 64 << 20;

/// Decodes the first frame of a PNG into an 8-bit [`Image`].
pub fn decode_png(bytes: &[u8]) -> Result<Image, KernelError> {
    let invalid =
        |e: png::DecodingError| KernelError::InvalidInput(format!("not a decodable PNG: {e}"));
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: DECODER_MEMORY_LIMIT,
        },
    );
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let header = decoder.read_header_info().map_err(invalid)?;
    let (width, height) = (header.width, header.height);
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(KernelError::InvalidInput(format!(
            "image is {width}×{height}; at most {MAX_SIDE}×{MAX_SIDE} is accepted"
        )));
    }
    let mut reader = decoder.read_info().map_err(invalid)?;
    let layout = match reader.output_color_type() {
        (png::ColorType::Grayscale, png::BitDepth::Eight) => Layout::Gray,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => Layout::GrayAlpha,
        (png::ColorType::Rgb, png::BitDepth::Eight) => Layout::Rgb,
        (png::ColorType::Rgba, png::BitDepth::Eight) => Layout::Rgba,
        (colour, depth) => {
            return Err(KernelError::InvalidInput(format!(
                "unsupported PNG pixel format {colour:?} at {depth:?} bits"
            )))
        }
    };
    let mut image = Image::blank(width as usize, height as usize, layout);
    reader.next_frame(&mut image.pixels).map_err(invalid)?;
    Ok(image)
}

/// Encodes an [`Image`] as an 8-bit PNG with the `Up` row filter and fast
/// DEFLATE compression (`fdeflate`): per-row adaptive filter choice costs
/// about 2× the encoding time (3× on wasm) for 0–7% smaller files.
pub fn encode_png(image: &Image) -> Result<Vec<u8>, KernelError> {
    let failed = |e: png::EncodingError| KernelError::Failed(format!("PNG encoding: {e}"));
    let width =
        u32::try_from(image.width).map_err(|_| KernelError::Failed("image too wide".into()))?;
    let height =
        u32::try_from(image.height).map_err(|_| KernelError::Failed("image too tall".into()))?;
    let mut out = Vec::with_capacity(image.pixels.len() / 2 + 1024);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(match image.layout {
        Layout::Gray => png::ColorType::Grayscale,
        Layout::GrayAlpha => png::ColorType::GrayscaleAlpha,
        Layout::Rgb => png::ColorType::Rgb,
        Layout::Rgba => png::ColorType::Rgba,
    });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&image.pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}
