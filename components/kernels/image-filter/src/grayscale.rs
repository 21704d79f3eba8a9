//! Grayscale conversion with Rec. 709 luma weights, applied to the stored
//! (gamma-encoded) samples: `Y' = 0.2126 R' + 0.7152 G' + 0.0722 B'`.

use crate::raster::{to_level, Image, Layout};

/// Rec. 709 weights of red, green and blue.
pub const REC709_WEIGHTS: [f32; 3] = [0.2126, 0.7152, 0.0722];

/// Luma of one RGB pixel, unrounded.
pub fn luma(red: u8, green: u8, blue: u8) -> f32 {
    REC709_WEIGHTS[0] * f32::from(red)
        + REC709_WEIGHTS[1] * f32::from(green)
        + REC709_WEIGHTS[2] * f32::from(blue)
}

/// The luma of every pixel as an `f32` plane (alpha ignored).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub fn luma_plane(image: &Image) -> Vec<f32> {
    match image.layout {
        Layout::Gray | Layout::GrayAlpha => image.plane(0),
        Layout::Rgb | Layout::Rgba => image
            .pixels
            .chunks_exact(image.layout.channels())
            .map(|pixel| luma(pixel[0], pixel[1], pixel[2]))
            .collect(),
    }
}

/// Converts to gray (or gray+alpha, alpha kept as is); gray input is
/// returned unchanged.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub fn grayscale(image: Image) -> Image {
    let layout = match image.layout {
        Layout::Gray | Layout::GrayAlpha => return image,
        Layout::Rgb => Layout::Gray,
        Layout::Rgba => Layout::GrayAlpha,
    };
    let mut out = Image::blank(image.width, image.height, layout);
    let source = image.pixels.chunks_exact(image.layout.channels());
    for (target, pixel) in out.pixels.chunks_exact_mut(layout.channels()).zip(source) {
        target[0] = to_level(luma(pixel[0], pixel[1], pixel[2]));
        if layout.has_alpha() {
            target[1] = pixel[3];
        }
    }
    out
}
