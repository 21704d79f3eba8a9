//! Unsharp-mask sharpening: `out = x + amount · (x − G₁ * x)`, with `G₁` the
//! Gaussian blur of σ = 1 px, on each colour channel; alpha is kept.

use crate::blur::{blur_plane, GaussianKernel};
use crate::raster::Image;

/// The σ, in pixels, of the blur whose difference is added back.
pub const UNSHARP_SIGMA: f32 = 1.0;

/// Sharpens every colour channel of `image` in place.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
pub fn sharpen(image: &mut Image, amount: f32) {
    let kernel = GaussianKernel::new(UNSHARP_SIGMA);
    for channel in 0..image.layout.colour_channels() {
        let mut plane = image.plane(channel);
        let blurred = blur_plane(&plane, image.width, image.height, &kernel);
        for (value, &smooth) in plane.iter_mut().zip(&blurred) {
            *value += amount * (*value - smooth);
        }
        image.store_plane(channel, &plane);
    }
}
