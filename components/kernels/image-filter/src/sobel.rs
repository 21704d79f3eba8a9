//! Sobel edge magnitude of the luma: `|∇| = √(Gx² + Gy²)` with the 3×3 Sobel
//! operators, edges clamped, written as 8-bit gray `min(255, round(|∇| / 4))`,
//! so a vertical or horizontal step of `h` levels reads `h` on both of its
//! sides.

use crate::grayscale::luma_plane;
use crate::raster::{to_level, Image, Layout};

/// Divisor from the Sobel magnitude to output levels: the operators' weights
/// on each side of a step sum to 4.
pub const SOBEL_NORMALISATION: f32 = 4.0;

/// The gradient-magnitude image of `image` (8-bit gray, no alpha).
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub fn sobel(image: &Image) -> Image {
    let (width, height) = (image.width, image.height);
    let luma = luma_plane(image);
    let padded = pad_by_one(&luma, width, height);
    let padded_width = width + 2;
    let mut out = Image::blank(width, height, Layout::Gray);
    // Per output row: the vertical smoothing [1 2 1]ᵀ and difference
    // [-1 0 1]ᵀ of the padded rows, then horizontal difference / smoothing.
    let mut smooth = vec![0.0f32; padded_width];
    let mut diff = vec![0.0f32; padded_width];
    for (y, out_row) in out.pixels.chunks_exact_mut(width).enumerate() {
        let above = &padded[y * padded_width..(y + 1) * padded_width];
        let middle = &padded[(y + 1) * padded_width..(y + 2) * padded_width];
        let below = &padded[(y + 2) * padded_width..(y + 3) * padded_width];
        for (((s, d), (&a, &m)), &b) in smooth
            .iter_mut()
            .zip(diff.iter_mut())
            .zip(above.iter().zip(middle))
            .zip(below)
        {
            *s = a + 2.0 * m + b;
            *d = b - a;
        }
        for (x, target) in out_row.iter_mut().enumerate() {
            let gx = smooth[x + 2] - smooth[x];
            let gy = diff[x] + 2.0 * diff[x + 1] + diff[x + 2];
            *target = to_level((gx * gx + gy * gy).sqrt() / SOBEL_NORMALISATION);
        }
    }
    out
}

/// Copies a plane into one a pixel larger on every side, repeating the
/// border pixels outwards.
/// The 8-bit gray image of an already normalised magnitude (the GPU path's).
pub fn from_magnitude(width: usize, height: usize, magnitude: &[f32]) -> Image {
    let mut out = Image::blank(width, height, Layout::Gray);
    for (target, &m) in out.pixels.iter_mut().zip(magnitude) {
        *target = to_level(m);
    }
    out
}

fn pad_by_one(plane: &[f32], width: usize, height: usize) -> Vec<f32> {
    let padded_width = width + 2;
    let mut padded = vec![0.0f32; padded_width * (height + 2)];
    for padded_y in 0..height + 2 {
        let source_y = padded_y.saturating_sub(1).min(height - 1);
        let source = &plane[source_y * width..(source_y + 1) * width];
        let target = &mut padded[padded_y * padded_width..(padded_y + 1) * padded_width];
        target[0] = source[0];
        target[1..=width].copy_from_slice(source);
        target[width + 1] = source[width - 1];
    }
    padded
}
