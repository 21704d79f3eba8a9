//! Deterministic test and benchmark inputs: a generated scene (a smooth
//! colour gradient with a filled rectangle and a filled circle, plus optional
//! seeded noise), its shapes' geometry for checking edges, layout
//! conversions and PNG wrapping. Compiled in every build so that the node's
//! end-to-end tests and the host benchmark can reuse it.

use greenmesh_kernel::Payload;

use crate::codec::encode_png;
use crate::raster::{to_level, Image, Layout};
use crate::PNG;

/// The rectangle's fill colour (RGB).
pub const RECTANGLE_COLOUR: [u8; 3] = [230, 210, 40];

/// The circle's fill colour (RGB).
pub const CIRCLE_COLOUR: [u8; 3] = [20, 30, 120];

/// Which shape of the scene a pixel belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    Background,
    Rectangle,
    Circle,
}

/// Where the scene's shapes lie for a given image size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneShapes {
    /// The rectangle's columns `x0..x1` and rows `y0..y1` (ends exclusive).
    pub rectangle: [usize; 4],
    /// The circle's centre (x, y) and radius, in pixels; a pixel belongs to
    /// it when its centre lies strictly inside.
    pub circle: [f32; 3],
}

impl SceneShapes {
    /// The shapes of a `width × height` scene: the rectangle spans
    /// x ∈ [w/8, 7w/16), y ∈ [5h/24, 17h/24); the circle is centred at
    /// (23w/32, h/2) with radius min(w, h)/4.
    pub fn for_size(width: usize, height: usize) -> Self {
        SceneShapes {
            rectangle: [width / 8, 5 * height / 24, 7 * width / 16, 17 * height / 24],
            circle: [
                23.0 * width as f32 / 32.0,
                height as f32 / 2.0,
                width.min(height) as f32 / 4.0,
            ],
        }
    }

    /// The shape under pixel (x, y); the circle is drawn over the rectangle.
    pub fn region_at(&self, x: usize, y: usize) -> Region {
        let [cx, cy, radius] = self.circle;
        let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
        let [x0, y0, x1, y1] = self.rectangle;
        if dx * dx + dy * dy < radius * radius {
            Region::Circle
        } else if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            Region::Rectangle
        } else {
            Region::Background
        }
    }
}

/// The background colour at (x, y): red rises 90→190 and blue falls 160→80
/// left to right, green rises 70→180 top to bottom.
pub fn background_colour(x: usize, y: usize, width: usize, height: usize) -> [u8; 3] {
    let u = x as f32 / (width.max(2) - 1) as f32;
    let v = y as f32 / (height.max(2) - 1) as f32;
    [
        to_level(90.0 + 100.0 * u),
        to_level(70.0 + 110.0 * v),
        to_level(160.0 - 80.0 * u),
    ]
}

/// The RGB scene of `width × height` pixels (see [`SceneShapes`] and
/// [`background_colour`]); each sample then gets uniform noise in
/// `-noise..=noise` from a fixed-seed xorshift generator (0: clean).
pub fn scene(width: usize, height: usize, noise: u8) -> Image {
    let shapes = SceneShapes::for_size(width, height);
    let mut image = Image::blank(width, height, Layout::Rgb);
    let mut random = XorShift32(0x9E37_79B9);
    for (index, pixel) in image.pixels.chunks_exact_mut(3).enumerate() {
        let (x, y) = (index % width, index / width);
        let colour = match shapes.region_at(x, y) {
            Region::Background => background_colour(x, y, width, height),
            Region::Rectangle => RECTANGLE_COLOUR,
            Region::Circle => CIRCLE_COLOUR,
        };
        for (sample, base) in pixel.iter_mut().zip(colour) {
            let jitter = if noise == 0 {
                0
            } else {
                (random.next() % (2 * u32::from(noise) + 1)) as i32 - i32::from(noise)
            };
            *sample = (i32::from(base) + jitter).clamp(0, 255) as u8;
        }
    }
    image
}

/// An image of one colour: `pixel` holds `layout.channels()` samples.
pub fn solid(width: usize, height: usize, layout: Layout, pixel: &[u8]) -> Image {
    assert_eq!(pixel.len(), layout.channels(), "one sample per channel");
    Image {
        width,
        height,
        layout,
        pixels: pixel.repeat(width * height),
    }
}

/// The alpha that [`with_layout`] gives pixel (x, y): a diagonal ramp
/// 255 → 32, so that alpha varies across every edge of the scene.
pub fn alpha_at(x: usize, y: usize, width: usize, height: usize) -> u8 {
    let t = (x + y) as f32 / (width + height).max(2) as f32;
    to_level(255.0 - 223.0 * t)
}

/// Re-lays an RGB image out as `layout`: gray is the Rec. 709 luma, alpha
/// is [`alpha_at`].
pub fn with_layout(rgb: &Image, layout: Layout) -> Image {
    assert_eq!(rgb.layout, Layout::Rgb, "converts from RGB");
    let mut out = Image::blank(rgb.width, rgb.height, layout);
    let source = rgb.pixels.chunks_exact(3);
    for (index, (target, pixel)) in out
        .pixels
        .chunks_exact_mut(layout.channels())
        .zip(source)
        .enumerate()
    {
        let colour_channels = layout.colour_channels();
        if colour_channels == 1 {
            target[0] = to_level(crate::grayscale::luma(pixel[0], pixel[1], pixel[2]));
        } else {
            target[..3].copy_from_slice(pixel);
        }
        if layout.has_alpha() {
            target[colour_channels] =
                alpha_at(index % rgb.width, index / rgb.width, rgb.width, rgb.height);
        }
    }
    out
}

/// `image` encoded as an `image/png` payload.
pub fn png_payload(image: &Image) -> Payload {
    Payload::new(PNG, encode_png(image).expect("generated images encode"))
}

/// The benchmark's typical task: a 512×512 RGB scene with noise ±8,
/// Gaussian-blurred with σ = 2.
pub fn sample_input() -> (Payload, String) {
    (
        png_payload(&scene(512, 512, 8)),
        r#"{"filter":"gaussian_blur","sigma":2.0}"#.to_string(),
    )
}

/// Marsaglia's xorshift32: a tiny fixed-seed generator for the noise.
struct XorShift32(u32);

impl XorShift32 {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}
