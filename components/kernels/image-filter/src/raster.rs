//! The decoded image: 8-bit samples, interleaved, row-major, in one of four
//! channel layouts, plus the conversions to and from single-channel `f32`
//! planes that the filters work on.

/// How the samples of one pixel are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One luma sample.
    Gray,
    /// Luma, then alpha.
    GrayAlpha,
    /// Red, green, blue.
    Rgb,
    /// Red, green, blue, then alpha.
    Rgba,
}

impl Layout {
    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            Layout::Gray => 1,
            Layout::GrayAlpha => 2,
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    /// Samples per pixel that carry colour (all but alpha).
    pub fn colour_channels(self) -> usize {
        match self {
            Layout::Gray | Layout::GrayAlpha => 1,
            Layout::Rgb | Layout::Rgba => 3,
        }
    }

    /// Whether the last sample of each pixel is alpha.
    pub fn has_alpha(self) -> bool {
        matches!(self, Layout::GrayAlpha | Layout::Rgba)
    }
}

/// An 8-bit image: `pixels.len() == width * height * layout.channels()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub layout: Layout,
    pub pixels: Vec<u8>,
}

impl Image {
    /// An image of `width × height` pixels of the given layout, all samples 0.
    pub fn blank(width: usize, height: usize, layout: Layout) -> Self {
        Image {
            width,
            height,
            layout,
            pixels: vec![0; width * height * layout.channels()],
        }
    }

    /// Channel `channel` of every pixel, as `f32` in row-major order.
    pub fn plane(&self, channel: usize) -> Vec<f32> {
        match self.layout.channels() {
            1 => extract::<1>(&self.pixels, channel),
            2 => extract::<2>(&self.pixels, channel),
            3 => extract::<3>(&self.pixels, channel),
            _ => extract::<4>(&self.pixels, channel),
        }
    }

    /// Writes `plane` (row-major, one value per pixel) into channel
    /// `channel`, rounded to the nearest level and clamped to 0–255.
    pub fn store_plane(&mut self, channel: usize, plane: &[f32]) {
        match self.layout.channels() {
            1 => store::<1>(&mut self.pixels, channel, plane),
            2 => store::<2>(&mut self.pixels, channel, plane),
            3 => store::<3>(&mut self.pixels, channel, plane),
            _ => store::<4>(&mut self.pixels, channel, plane),
        }
    }
}

/// [`Image::plane`] for `CHANNELS` samples per pixel (a constant stride,
/// so the loop compiles to straight-line code).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn extract<const CHANNELS: usize>(pixels: &[u8], channel: usize) -> Vec<f32> {
    let mut plane = vec![0.0f32; pixels.len() / CHANNELS];
    for (value, pixel) in plane.iter_mut().zip(pixels.chunks_exact(CHANNELS)) {
        *value = f32::from(pixel[channel]);
    }
    plane
}

/// [`Image::store_plane`] for `CHANNELS` samples per pixel.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn store<const CHANNELS: usize>(pixels: &mut [u8], channel: usize, plane: &[f32]) {
    for (pixel, &value) in pixels.chunks_exact_mut(CHANNELS).zip(plane) {
        pixel[channel] = to_level(value);
    }
}

/// Rounds a sample to the nearest 8-bit level (halves up), clamping to 0–255.
pub fn to_level(value: f32) -> u8 {
    // After the clamp the value is non-negative, so adding a half and
    // truncating rounds to nearest; this avoids a `roundf` call on wasm.
    (value.clamp(0.0, 255.0) + 0.5) as u8
}
