//! Bad input gives the right `KernelError`, never a panic: other media
//! types, bytes that are not a PNG, images past the size cap, and unknown,
//! misplaced or out-of-range parameters.

use greenmesh_kernel::{Kernel, KernelError, Payload};
use image_filter::codec::encode_png;
use image_filter::raster::Layout;
use image_filter::testdata::{png_payload, scene, solid};
use image_filter::ImageFilter;

/// The first bytes of a JFIF file.
const JPEG_START: [u8; 20] = [
    0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00,
];

fn small_png() -> Payload {
    png_payload(&scene(16, 12, 0))
}

fn invalid_params(params: &str) -> String {
    match ImageFilter::run(small_png(), params) {
        Err(KernelError::InvalidParams(message)) => message,
        other => panic!("{params}: expected InvalidParams, got {other:?}"),
    }
}

fn invalid_input(payload: Payload) -> String {
    match ImageFilter::run(payload, "{}") {
        Err(KernelError::InvalidInput(message)) => message,
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn other_media_types_are_refused() {
    let jpeg = Payload::new("image/jpeg", JPEG_START.to_vec());
    assert!(matches!(
        ImageFilter::run(jpeg, "{}"),
        Err(KernelError::UnsupportedMediaType(m)) if m.contains("image/jpeg") && m.contains("image/png")
    ));
}

#[test]
fn bytes_that_are_not_a_png_are_invalid_input() {
    assert!(
        invalid_input(Payload::new("image/png", JPEG_START.to_vec()))
            .contains("not a decodable PNG")
    );
    assert!(
        invalid_input(Payload::new("image/png", b"garbage, not an image".to_vec())).contains("PNG")
    );
    assert!(invalid_input(Payload::new("image/png", Vec::new())).contains("PNG"));
    // A real PNG cut short in its image data.
    let mut truncated = small_png();
    truncated.bytes.truncate(truncated.bytes.len() - 30);
    assert!(invalid_input(truncated).contains("PNG"));
}

#[test]
fn images_beyond_4096_pixels_a_side_are_refused() {
    for (width, height) in [(4097, 1), (1, 4097)] {
        let bytes = encode_png(&solid(width, height, Layout::Gray, &[0])).unwrap();
        let message = invalid_input(Payload::new("image/png", bytes));
        assert!(message.contains("4096"), "{message}");
    }
    let edge = encode_png(&solid(4096, 1, Layout::Gray, &[0])).unwrap();
    assert!(ImageFilter::run(Payload::new("image/png", edge), r#"{"filter":"sobel"}"#).is_ok());
}

#[test]
fn unknown_filters_and_options_are_invalid_params() {
    assert!(invalid_params(r#"{"filter":"emboss"}"#).contains("emboss"));
    assert!(invalid_params(r#"{"filter":"sobel","radius":3}"#).contains("radius"));
    assert!(invalid_params(r#"{"filter":"gaussian_blur","sigma":"wide"}"#).contains("wide"));
    assert!(invalid_params("not json").contains("expected"));
}

#[test]
fn options_outside_their_range_or_filter_are_invalid_params() {
    for params in [
        r#"{"filter":"gaussian_blur","sigma":0.05}"#,
        r#"{"filter":"gaussian_blur","sigma":10.5}"#,
        r#"{"filter":"gaussian_blur","sigma":-1}"#,
    ] {
        assert!(invalid_params(params).contains("sigma"), "{params}");
    }
    for params in [
        r#"{"filter":"sharpen","amount":-0.1}"#,
        r#"{"filter":"sharpen","amount":5.5}"#,
    ] {
        assert!(invalid_params(params).contains("amount"), "{params}");
    }
    assert!(invalid_params(r#"{"filter":"sobel","sigma":2}"#).contains("sigma"));
    assert!(invalid_params(r#"{"sigma":2}"#).contains("sigma"));
    assert!(invalid_params(r#"{"filter":"gaussian_blur","amount":2}"#).contains("amount"));
    assert!(invalid_params(r#"{"filter":"sharpen","sigma":2}"#).contains("sigma"));
    // The range ends themselves are accepted.
    for params in [
        r#"{"filter":"gaussian_blur","sigma":0.1}"#,
        r#"{"filter":"gaussian_blur","sigma":10}"#,
        r#"{"filter":"sharpen","amount":0}"#,
        r#"{"filter":"sharpen","amount":5}"#,
        "",
    ] {
        assert!(ImageFilter::run(small_png(), params).is_ok(), "{params}");
    }
}

#[test]
fn describe_names_the_capability_and_documents_every_param() {
    let description = ImageFilter::describe();
    assert_eq!(description.name, "image-filter");
    assert_eq!(description.input_types, ["image/png"]);
    assert_eq!(description.output_types, ["image/png"]);
    let params: serde_json::Value = serde_json::from_str(&description.params).unwrap();
    assert_eq!(params["filter"]["default"], "grayscale");
    assert_eq!(params["sigma"]["default"], 1.0);
    assert_eq!(params["amount"]["default"], 1.0);
    assert_eq!(params["device"]["default"], "auto");
    assert_eq!(params.as_object().unwrap().len(), 4);
    assert_eq!(description.gpu, greenmesh_kernel::GpuUse::Optional);
}
