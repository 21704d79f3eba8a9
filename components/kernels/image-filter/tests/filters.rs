//! What each filter does to generated PNGs: known values on tiny inputs,
//! preserved means and alpha, reduced variance, raised edge contrast, Sobel
//! edges where the shapes are and equivariance under flips and transposes.

use greenmesh_kernel::{Kernel, Payload};
use image_filter::codec::decode_png;
use image_filter::raster::{Image, Layout};
use image_filter::testdata::{
    png_payload, scene, solid, with_layout, SceneShapes, CIRCLE_COLOUR, RECTANGLE_COLOUR,
};
use image_filter::ImageFilter;

const ALL_LAYOUTS: [Layout; 4] = [Layout::Gray, Layout::GrayAlpha, Layout::Rgb, Layout::Rgba];

/// Runs the kernel on `image` and decodes its output.
fn filter(image: &Image, params: &str) -> Image {
    let output = ImageFilter::run(png_payload(image), params).expect("the filter runs");
    assert_eq!(output.media_type, "image/png");
    decode_png(&output.bytes).expect("the output decodes")
}

/// Mean and variance of channel `channel`.
fn mean_and_variance(image: &Image, channel: usize) -> (f64, f64) {
    let plane = image.plane(channel);
    let n = plane.len() as f64;
    let mean = plane.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let variance = plane
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, variance)
}

/// Sum of the squared 4-neighbour Laplacian of channel `channel` over the
/// interior pixels.
fn laplacian_energy(image: &Image, channel: usize) -> f64 {
    let plane = image.plane(channel);
    let w = image.width;
    let mut energy = 0.0;
    for y in 1..image.height - 1 {
        for x in 1..w - 1 {
            let at = |x: usize, y: usize| f64::from(plane[y * w + x]);
            let laplacian =
                at(x - 1, y) + at(x + 1, y) + at(x, y - 1) + at(x, y + 1) - 4.0 * at(x, y);
            energy += laplacian * laplacian;
        }
    }
    energy
}

fn alpha(image: &Image) -> Vec<u8> {
    let channels = image.layout.channels();
    image
        .pixels
        .chunks_exact(channels)
        .map(|p| p[channels - 1])
        .collect()
}

fn luma(rgb: [u8; 3]) -> f32 {
    0.2126 * f32::from(rgb[0]) + 0.7152 * f32::from(rgb[1]) + 0.0722 * f32::from(rgb[2])
}

#[test]
fn grayscale_of_a_pure_colour_is_its_rec709_luma() {
    // 0.2126·200 + 0.7152·100 + 0.0722·50 = 117.65 → 118.
    let out = filter(
        &solid(5, 3, Layout::Rgb, &[200, 100, 50]),
        r#"{"filter":"grayscale"}"#,
    );
    assert_eq!(out.layout, Layout::Gray);
    assert!(out.pixels.iter().all(|&v| v == 118));
    // Pure primaries: 0.2126·255 = 54.2, 0.7152·255 = 182.4, 0.0722·255 = 18.4.
    for (colour, expected) in [
        ([255, 0, 0], 54),
        ([0, 255, 0], 182),
        ([0, 0, 255], 18),
        ([255, 255, 255], 255),
    ] {
        let out = filter(
            &solid(2, 2, Layout::Rgba, &[colour[0], colour[1], colour[2], 77]),
            "{}",
        );
        assert_eq!(out.layout, Layout::GrayAlpha);
        assert_eq!(out.pixels, [expected, 77].repeat(4), "{colour:?}");
    }
}

#[test]
fn grayscale_keeps_gray_input_and_alpha() {
    let rgb = scene(64, 48, 0);
    let gray = with_layout(&rgb, Layout::GrayAlpha);
    assert_eq!(filter(&gray, "{}"), gray);
    let rgba = with_layout(&rgb, Layout::Rgba);
    let out = filter(&rgba, "{}");
    assert_eq!(alpha(&out), alpha(&rgba));
    assert_eq!(out.plane(0), with_layout(&rgb, Layout::Gray).plane(0));
}

#[test]
fn blur_keeps_the_mean_and_lowers_the_variance() {
    let image = scene(64, 48, 6);
    for sigma in ["0.5", "1.0", "3.0"] {
        let out = filter(
            &image,
            &format!(r#"{{"filter":"gaussian_blur","sigma":{sigma}}}"#),
        );
        for channel in 0..3 {
            let (mean_in, var_in) = mean_and_variance(&image, channel);
            let (mean_out, var_out) = mean_and_variance(&out, channel);
            assert!(
                (mean_in - mean_out).abs() <= 1.0,
                "σ={sigma} c{channel}: mean {mean_in} → {mean_out}"
            );
            assert!(
                var_out < 0.97 * var_in,
                "σ={sigma} c{channel}: variance {var_in} → {var_out}"
            );
        }
    }
    // A wider blur smooths more.
    let narrow = filter(&image, r#"{"filter":"gaussian_blur","sigma":1}"#);
    let wide = filter(&image, r#"{"filter":"gaussian_blur","sigma":4}"#);
    assert!(laplacian_energy(&wide, 1) < 0.2 * laplacian_energy(&narrow, 1));
}

#[test]
fn blur_of_a_constant_image_is_the_same_image() {
    for (layout, pixel) in
        ALL_LAYOUTS
            .into_iter()
            .zip([&[93][..], &[0, 200], &[12, 130, 255], &[255, 1, 77, 9]])
    {
        let image = solid(23, 17, layout, pixel);
        for sigma in ["0.1", "2.5", "10"] {
            let out = filter(
                &image,
                &format!(r#"{{"filter":"gaussian_blur","sigma":{sigma}}}"#),
            );
            assert_eq!(out, image, "{layout:?} σ={sigma}");
        }
    }
}

#[test]
fn blur_and_sharpen_keep_alpha_and_the_layout() {
    let rgb = scene(64, 48, 4);
    for layout in ALL_LAYOUTS {
        let image = with_layout(&rgb, layout);
        for params in [
            r#"{"filter":"gaussian_blur","sigma":2}"#,
            r#"{"filter":"sharpen","amount":2}"#,
        ] {
            let out = filter(&image, params);
            assert_eq!(
                (out.width, out.height, out.layout),
                (64, 48, layout),
                "{params}"
            );
            assert_ne!(out.pixels, image.pixels, "{params} changed nothing");
            if layout.has_alpha() {
                assert_eq!(alpha(&out), alpha(&image), "{layout:?} {params}");
            }
        }
    }
}

#[test]
fn sharpen_raises_edge_contrast_and_keeps_the_mean() {
    let image = scene(64, 48, 0);
    let mut previous = [0.0f64; 3];
    for (step, amount) in ["0", "0.5", "1", "2"].into_iter().enumerate() {
        let out = filter(
            &image,
            &format!(r#"{{"filter":"sharpen","amount":{amount}}}"#),
        );
        if step == 0 {
            assert_eq!(out, image, "amount 0 is the identity");
        }
        for (channel, previous_energy) in previous.iter_mut().enumerate() {
            let (mean_in, _) = mean_and_variance(&image, channel);
            let (mean_out, _) = mean_and_variance(&out, channel);
            assert!(
                (mean_in - mean_out).abs() <= 1.0,
                "amount {amount} c{channel}: mean {mean_in} → {mean_out}"
            );
            let energy = laplacian_energy(&out, channel);
            assert!(
                energy > 1.3 * *previous_energy,
                "amount {amount} c{channel}: {energy} vs {previous_energy}"
            );
            *previous_energy = energy;
        }
    }
    // Across the rectangle's left edge the step grows: the inside gets
    // brighter and the outside darker than before.
    let out = filter(&image, r#"{"filter":"sharpen","amount":1}"#);
    let [x0, y0, _, y1] = SceneShapes::for_size(64, 48).rectangle;
    let y = (y0 + y1) / 2;
    let green = |img: &Image, x: usize| img.pixels[(y * 64 + x) * 3 + 1];
    assert!(green(&out, x0) > green(&image, x0));
    assert!(green(&out, x0 - 1) < green(&image, x0 - 1));
}

#[test]
fn sobel_is_zero_on_flat_regions_and_high_on_the_edges() {
    let (width, height) = (64, 48);
    let image = scene(width, height, 0);
    let out = filter(&image, r#"{"filter":"sobel"}"#);
    assert_eq!(
        (out.width, out.height, out.layout),
        (width, height, Layout::Gray)
    );
    let at = |x: usize, y: usize| out.pixels[y * width + x];
    let [x0, y0, x1, y1] = SceneShapes::for_size(width, height).rectangle;
    // Inside the rectangle, a pixel away from its border: exactly flat.
    for y in y0 + 1..y1 - 1 {
        for x in x0 + 1..x1 - 1 {
            assert_eq!(at(x, y), 0, "({x}, {y})");
        }
    }
    // The gently sloping background away from the shapes: twice the slope,
    // a few levels at most.
    for y in 0..height {
        assert!(at(0, y) <= 4 && at(width - 1, y) <= 4, "row {y}");
    }
    // Each of the rectangle's four sides, both pixels of the step, away from
    // the corners: at least 80% of the luma step there (a step of h reads h).
    let background = |x: usize, y: usize| {
        let [r, g, b] = image_filter::testdata::background_colour(x, y, width, height);
        luma([r, g, b])
    };
    let inside = luma(RECTANGLE_COLOUR);
    for y in y0 + 2..y1 - 2 {
        for (edge_x, outside_x) in [(x0, x0 - 1), (x1 - 1, x1)] {
            let step = (inside - background(outside_x, y)).abs();
            assert!(
                f32::from(at(edge_x, y)) >= 0.8 * step && f32::from(at(outside_x, y)) >= 0.8 * step
            );
        }
    }
    for x in x0 + 2..x1 - 2 {
        for (edge_y, outside_y) in [(y0, y0 - 1), (y1 - 1, y1)] {
            let step = (inside - background(x, outside_y)).abs();
            assert!(
                f32::from(at(x, edge_y)) >= 0.8 * step && f32::from(at(x, outside_y)) >= 0.8 * step
            );
        }
    }
    // The circle's edge too: along its horizontal diameter, on its left.
    let [cx, cy, radius] = SceneShapes::for_size(width, height).circle;
    let left = (cx - radius).round() as usize;
    let step = background(left - 1, cy as usize) - luma(CIRCLE_COLOUR);
    assert!(f32::from(at(left, cy as usize)) >= 0.8 * step);
}

#[test]
fn sobel_of_a_step_of_h_levels_reads_h_on_both_sides() {
    let mut image = solid(6, 4, Layout::Gray, &[10]);
    for row in image.pixels.chunks_exact_mut(6) {
        row[3..].fill(110);
    }
    let out = filter(&image, r#"{"filter":"sobel"}"#);
    for row in out.pixels.chunks_exact(6) {
        assert_eq!(row, [0, 0, 100, 100, 0, 0]);
    }
}

#[test]
fn sobel_turns_and_flips_with_the_image() {
    let gray = with_layout(&scene(40, 28, 10), Layout::Gray);
    let transpose = |img: &Image| {
        let mut out = Image::blank(img.height, img.width, Layout::Gray);
        for y in 0..img.height {
            for x in 0..img.width {
                out.pixels[x * img.height + y] = img.pixels[y * img.width + x];
            }
        }
        out
    };
    let mirror = |img: &Image| {
        let mut out = img.clone();
        for row in out.pixels.chunks_exact_mut(img.width) {
            row.reverse();
        }
        out
    };
    let sobel = |img: &Image| filter(img, r#"{"filter":"sobel"}"#);
    let edges = sobel(&gray);
    assert_eq!(sobel(&transpose(&gray)), transpose(&edges));
    assert_eq!(sobel(&mirror(&gray)), mirror(&edges));
}

#[test]
fn the_output_png_has_the_expected_size_and_colour_type() {
    let rgb = scene(64, 48, 3);
    let expected = |layout: Layout, filter: &str| match (filter, layout) {
        ("sobel", _) => png::ColorType::Grayscale,
        ("grayscale", Layout::Rgb) => png::ColorType::Grayscale,
        ("grayscale", Layout::Rgba) => png::ColorType::GrayscaleAlpha,
        (_, Layout::Gray) => png::ColorType::Grayscale,
        (_, Layout::GrayAlpha) => png::ColorType::GrayscaleAlpha,
        (_, Layout::Rgb) => png::ColorType::Rgb,
        (_, Layout::Rgba) => png::ColorType::Rgba,
    };
    for layout in ALL_LAYOUTS {
        let input = png_payload(&with_layout(&rgb, layout));
        for name in ["grayscale", "gaussian_blur", "sharpen", "sobel"] {
            let out =
                ImageFilter::run(input.clone(), &format!(r#"{{"filter":"{name}"}}"#)).unwrap();
            let reader = png::Decoder::new(std::io::Cursor::new(&out.bytes))
                .read_info()
                .unwrap();
            let info = reader.info();
            assert_eq!((info.width, info.height), (64, 48));
            assert_eq!(
                (info.color_type, info.bit_depth),
                (expected(layout, name), png::BitDepth::Eight),
                "{layout:?} {name}"
            );
        }
    }
}

#[test]
fn palette_and_sixteen_bit_pngs_are_normalised_to_eight_bits() {
    // A 2×1 palette image (red, blue) becomes RGB.
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 2, 1);
    encoder.set_color(png::ColorType::Indexed);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_palette(vec![255, 0, 0, 0, 0, 255]);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0, 1]).unwrap();
    writer.finish().unwrap();
    let out = ImageFilter::run(Payload::new("image/png", bytes), "{}").unwrap();
    assert_eq!(decode_png(&out.bytes).unwrap().pixels, [54, 18]);

    // A 16-bit gray image keeps its high bytes.
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, 2, 1);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Sixteen);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0x12, 0x34, 0xAB, 0xCD]).unwrap();
    writer.finish().unwrap();
    let out = ImageFilter::run(Payload::new("image/png", bytes), "{}").unwrap();
    let image = decode_png(&out.bytes).unwrap();
    assert_eq!(
        (image.layout, image.pixels),
        (Layout::Gray, vec![0x12, 0xAB])
    );
}
