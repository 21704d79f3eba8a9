//! The quality figures of the README, printed and held to thresholds:
//! how much of a σ = 1 blur the unsharp mask undoes (PSNR against the
//! original), and how well Sobel localises the scene's shape edges.
//!
//! `cargo test -p image-filter --release -- --nocapture quality_figures`

use greenmesh_kernel::Kernel;
use image_filter::codec::decode_png;
use image_filter::raster::Image;
use image_filter::testdata::{png_payload, scene, Region, SceneShapes};
use image_filter::ImageFilter;

const SIZE: usize = 256;

fn filter(image: &Image, params: &str) -> Image {
    decode_png(&ImageFilter::run(png_payload(image), params).unwrap().bytes).unwrap()
}

/// Peak signal-to-noise ratio over all samples, in dB.
fn psnr(a: &Image, b: &Image) -> f64 {
    let squared_error: f64 = a
        .pixels
        .iter()
        .zip(&b.pixels)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = squared_error / a.pixels.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// Pixels on a shape boundary: those with a 4-neighbour in another region
/// (a band two pixels wide, as Sobel answers on both sides of a step).
fn boundary_mask(width: usize, height: usize) -> Vec<bool> {
    let shapes = SceneShapes::for_size(width, height);
    let region: Vec<Region> = (0..width * height)
        .map(|i| shapes.region_at(i % width, i / width))
        .collect();
    (0..width * height)
        .map(|i| {
            let (x, y) = (i % width, i / width);
            let differs = |nx: usize, ny: usize| region[ny * width + nx] != region[i];
            (x > 0 && differs(x - 1, y))
                || (x + 1 < width && differs(x + 1, y))
                || (y > 0 && differs(x, y - 1))
                || (y + 1 < height && differs(x, y + 1))
        })
        .collect()
}

/// Fraction of the N strongest Sobel pixels that lie on the boundary band,
/// N being the band's size (ties broken by raster order).
fn edge_precision(edges: &Image, boundary: &[bool]) -> f64 {
    let n = boundary.iter().filter(|&&b| b).count();
    let mut order: Vec<usize> = (0..edges.pixels.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(edges.pixels[i]));
    order[..n].iter().filter(|&&i| boundary[i]).count() as f64 / n as f64
}

#[test]
fn quality_figures() {
    for noise in [0, 4] {
        let original = scene(SIZE, SIZE, noise);
        let blurred = filter(&original, r#"{"filter":"gaussian_blur","sigma":1}"#);
        let restored = filter(&blurred, r#"{"filter":"sharpen","amount":1}"#);
        let (psnr_blurred, psnr_restored) = (psnr(&original, &blurred), psnr(&original, &restored));
        println!(
            "unsharp mask, {SIZE}×{SIZE} RGB scene, noise ±{noise}: PSNR vs original {psnr_blurred:.2} dB after blur σ=1, \
             {psnr_restored:.2} dB after sharpen amount=1 (+{:.2} dB)",
            psnr_restored - psnr_blurred
        );
        assert!(psnr_restored > psnr_blurred + 1.2);
    }

    let boundary = boundary_mask(SIZE, SIZE);
    for (noise, least_precision) in [(4, 0.99), (16, 0.97), (32, 0.94), (64, 0.65)] {
        let edges = filter(&scene(SIZE, SIZE, noise), r#"{"filter":"sobel"}"#);
        let precision = edge_precision(&edges, &boundary);
        println!(
            "Sobel edge localisation, {SIZE}×{SIZE} RGB scene, noise ±{noise}: {:.1}% of the top-N gradient pixels \
             lie on the shapes' 2-px boundary band (N = band size)",
            100.0 * precision
        );
        assert!(precision >= least_precision);
    }
}
