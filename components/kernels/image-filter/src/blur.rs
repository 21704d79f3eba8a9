//! Separable Gaussian blur, edges clamped (the border pixel is repeated
//! outwards), of an image's colour channels or of one `f32` plane.

use crate::raster::Image;

/// A normalised 1-D Gaussian: `weights[radius + i] ∝ exp(-i² / 2σ²)` for
/// `i` in `-radius..=radius`, `radius = ceil(3σ)`, summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianKernel {
    pub radius: usize,
    pub weights: Vec<f32>,
}

impl GaussianKernel {
    /// The kernel for standard deviation `sigma` (in pixels, > 0).
    pub fn new(sigma: f32) -> Self {
        let radius = (3.0 * sigma).ceil() as usize;
        let two_sigma_squared = 2.0 * f64::from(sigma) * f64::from(sigma);
        let raw: Vec<f64> = (0..=2 * radius)
            .map(|i| {
                let offset = i as f64 - radius as f64;
                (-offset * offset / two_sigma_squared).exp()
            })
            .collect();
        let total: f64 = raw.iter().sum();
        GaussianKernel {
            radius,
            weights: raw.iter().map(|w| (w / total) as f32).collect(),
        }
    }
}

/// Blurs every colour channel of `image` in place; alpha is kept.
pub fn gaussian_blur(image: &mut Image, sigma: f32) {
    let kernel = GaussianKernel::new(sigma);
    for channel in 0..image.layout.colour_channels() {
        let blurred = blur_plane(&image.plane(channel), image.width, image.height, &kernel);
        image.store_plane(channel, &blurred);
    }
}

/// Blurs a `width × height` row-major plane: a horizontal pass, then a
/// vertical one.
pub fn blur_plane(plane: &[f32], width: usize, height: usize, kernel: &GaussianKernel) -> Vec<f32> {
    let horizontal = blur_rows(plane, width, kernel);
    blur_columns(&horizontal, width, height, kernel)
}

/// Convolves each row with the kernel, clamping at the row's ends.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn blur_rows(plane: &[f32], width: usize, kernel: &GaussianKernel) -> Vec<f32> {
    let radius = kernel.radius;
    let mut out = vec![0.0f32; plane.len()];
    let mut padded = vec![0.0f32; width + 2 * radius];
    for (row, out_row) in plane.chunks_exact(width).zip(out.chunks_exact_mut(width)) {
        let (first, last) = (row[0], row[width - 1]);
        padded[..radius].fill(first);
        padded[radius..radius + width].copy_from_slice(row);
        padded[radius + width..].fill(last);
        // Tap-major order: each pass is a contiguous multiply-add that the
        // compiler vectorises.
        for (tap, &weight) in kernel.weights.iter().enumerate() {
            for (o, &p) in out_row.iter_mut().zip(&padded[tap..tap + width]) {
                *o += weight * p;
            }
        }
    }
    out
}

/// Convolves each column with the kernel, clamping at the top and bottom,
/// by accumulating whole weighted rows.
#[cfg_attr(target_arch = "wasm32", target_feature(enable = "simd128"))]
fn blur_columns(plane: &[f32], width: usize, height: usize, kernel: &GaussianKernel) -> Vec<f32> {
    let radius = kernel.radius as isize;
    let last_row = height as isize - 1;
    let mut out = vec![0.0f32; plane.len()];
    for (y, out_row) in out.chunks_exact_mut(width).enumerate() {
        for (tap, &weight) in kernel.weights.iter().enumerate() {
            let source_y = (y as isize + tap as isize - radius).clamp(0, last_row) as usize;
            let source = &plane[source_y * width..(source_y + 1) * width];
            for (o, &p) in out_row.iter_mut().zip(source) {
                *o += weight * p;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_is_normalised_symmetric_and_three_sigma_wide() {
        for sigma in [0.1f32, 0.5, 1.0, 2.0, 3.3, 10.0] {
            let kernel = GaussianKernel::new(sigma);
            assert_eq!(kernel.radius, (3.0 * sigma).ceil() as usize);
            assert_eq!(kernel.weights.len(), 2 * kernel.radius + 1);
            let total: f32 = kernel.weights.iter().sum();
            assert!((total - 1.0).abs() < 1e-5, "σ={sigma}: sum {total}");
            for i in 0..kernel.radius {
                assert_eq!(kernel.weights[i], kernel.weights[2 * kernel.radius - i]);
                assert!(kernel.weights[i] < kernel.weights[i + 1]);
            }
        }
    }

    #[test]
    fn an_impulse_spreads_into_the_kernel_and_keeps_its_mass() {
        let kernel = GaussianKernel::new(1.0);
        let (width, height) = (9, 9);
        let mut plane = vec![0.0f32; width * height];
        plane[4 * width + 4] = 1.0;
        let blurred = blur_plane(&plane, width, height, &kernel);
        let weight = |offset: isize| {
            usize::try_from(offset + kernel.radius as isize)
                .ok()
                .and_then(|index| kernel.weights.get(index).copied())
                .unwrap_or(0.0)
        };
        for y in 0..height {
            for x in 0..width {
                let expected = weight(y as isize - 4) * weight(x as isize - 4);
                assert!((blurred[y * width + x] - expected).abs() < 1e-7);
            }
        }
    }

    #[test]
    fn edges_are_clamped() {
        // A single row [10, 0, 0, 0]: the left edge pixel repeats outwards,
        // so the first output is 10 × (sum of the weights at offsets ≤ 0).
        let kernel = GaussianKernel::new(1.0);
        let blurred = blur_plane(&[10.0, 0.0, 0.0, 0.0], 4, 1, &kernel);
        let left_mass: f32 = kernel.weights[..=kernel.radius].iter().sum();
        assert!((blurred[0] - 10.0 * left_mass).abs() < 1e-5);
    }
}
