//! Deterministic test inputs: scenes of optdigits digits scattered on a noisy
//! page (with their ground-truth boxes), the benchmark's sample input, and
//! the generated background patches training uses. No randomness crate: a
//! fixed-seed xorshift generator.

use crate::boxes::Rect;
use crate::codec::{encode_png, GrayImage};
use crate::dataset::{held_out_digits, Digit};
use crate::features::Features;
use greenmesh_kernel::Payload;

/// Seed of [`held_out_scenes`]' first scene.
pub const EVALUATION_SEED: u64 = 0x5EED_0D16;

/// A small xorshift64* generator: the same seed gives the same stream everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform integer in `low..=high`.
    pub fn range(&mut self, low: u32, high: u32) -> u32 {
        low + (self.next_u64() % (high - low + 1) as u64) as u32
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A digit placed in a scene: its label and box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacedDigit {
    pub label: u8,
    pub rect: Rect,
}

/// A generated page and the digits on it.
#[derive(Debug, Clone)]
pub struct Scene {
    pub image: GrayImage,
    pub digits: Vec<PlacedDigit>,
}

impl Scene {
    /// The page as an `image/png` payload.
    pub fn payload(&self) -> Payload {
        Payload::new("image/png", encode_png(&self.image))
    }
}

/// Composes a `width`×`height` page: light paper (gray 200–245) with light
/// noise (±8, triangular), and `count` digits drawn from `pool`, each
/// upscaled bilinearly from 8×8 to a random 24–32 px square (dataset digits
/// are centred and fill their box, so the square is the ground-truth box),
/// in dark ink (gray 10–70), at random positions at least 3 px apart. A
/// digit that finds no free spot in 200 tries is left out.
pub fn compose_scene(pool: &[Digit], width: u32, height: u32, count: usize, seed: u64) -> Scene {
    let mut rng = Rng::new(seed);
    let paper = rng.range(200, 245) as f32;
    let ink = rng.range(10, 70) as f32;
    let mut coverage = vec![0f32; width as usize * height as usize];
    let mut digits: Vec<PlacedDigit> = Vec::new();
    for _ in 0..count {
        let digit = &pool[rng.range(0, pool.len() as u32 - 1) as usize];
        let size = rng.range(24, 32);
        if size > width || size > height {
            continue;
        }
        let spot = (0..200).find_map(|_| {
            let rect = Rect {
                x: rng.range(0, width - size),
                y: rng.range(0, height - size),
                width: size,
                height: size,
            };
            let free = digits.iter().all(|d| apart(&d.rect, &rect, 3));
            free.then_some(rect)
        });
        if let Some(rect) = spot {
            draw_digit(&mut coverage, width as usize, digit, &rect);
            digits.push(PlacedDigit {
                label: digit.label,
                rect,
            });
        }
    }
    let pixels = coverage
        .iter()
        .map(|&c| {
            let noise = (rng.unit() + rng.unit() - 1.0) * 8.0;
            (paper - c * (paper - ink) + noise)
                .round()
                .clamp(0.0, 255.0) as u8
        })
        .collect();
    Scene {
        image: GrayImage {
            width,
            height,
            pixels,
        },
        digits,
    }
}

/// Whether two boxes are at least `gap` pixels apart horizontally or vertically.
fn apart(a: &Rect, b: &Rect, gap: u32) -> bool {
    a.x + a.width + gap <= b.x
        || b.x + b.width + gap <= a.x
        || a.y + a.height + gap <= b.y
        || b.y + b.height + gap <= a.y
}

/// Writes the digit's ink coverage (0..=1, bilinear from the 8×8 grid with
/// cell centres at `(i + 0.5) × size / 8`) into `rect` of `coverage`.
fn draw_digit(coverage: &mut [f32], width: usize, digit: &Digit, rect: &Rect) {
    let scale = 8.0 / rect.width as f32;
    let grid = |u: f32| {
        let u = u.clamp(0.0, 7.0);
        let i0 = (u.floor() as usize).min(6);
        (i0, u - i0 as f32)
    };
    for py in 0..rect.height as usize {
        let (r0, ty) = grid((py as f32 + 0.5) * scale - 0.5);
        for px in 0..rect.width as usize {
            let (c0, tx) = grid((px as f32 + 0.5) * scale - 0.5);
            let at = |r: usize, c: usize| digit.pixels[r * 8 + c] as f32 / 16.0;
            let top = at(r0, c0) * (1.0 - tx) + at(r0, c0 + 1) * tx;
            let bottom = at(r0 + 1, c0) * (1.0 - tx) + at(r0 + 1, c0 + 1) * tx;
            let index = (rect.y as usize + py) * width + rect.x as usize + px;
            coverage[index] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

/// `count` 128×96 scenes of 3–5 held-out digits each (never trained on),
/// seeds `EVALUATION_SEED + i`: the detection quality test set.
pub fn held_out_scenes(count: usize) -> Vec<Scene> {
    let pool = held_out_digits();
    (0..count as u64)
        .map(|i| {
            let seed = EVALUATION_SEED + i;
            let digits = 3 + (Rng::new(seed ^ 0x00C0_FFEE).next_u64() % 3) as usize;
            compose_scene(&pool, 128, 96, digits, seed)
        })
        .collect()
}

/// The scene of [`sample_input`]: a 256×192 page with 6 held-out digits.
pub fn sample_scene() -> Scene {
    compose_scene(&held_out_digits(), 256, 192, 6, 0xBE4C)
}

/// A `width`×`height` page of `digits` held-out digits (fewer when they do
/// not fit), seed `seed`: larger pages for benchmarks.
pub fn page(width: u32, height: u32, digits: usize, seed: u64) -> Scene {
    compose_scene(&held_out_digits(), width, height, digits, seed)
}

/// The benchmark's typical task: [`sample_scene`] as PNG, and the default
/// params `{}`.
pub fn sample_input() -> (Payload, String) {
    (sample_scene().payload(), "{}".into())
}

/// A generated background patch in the dataset's 8×8, 0..=16 form, as
/// training's examples of "no digit": kind 0 is blank, 1 is sparse noise
/// (values 0–3 in a quarter of the cells), 2 is one or two straight stroke
/// fragments drawn on a 32×32 bitmap and counted in 4×4 blocks like
/// optdigits, 3 is a training digit shifted by 3–5 cells so that only a part
/// of it shows.
pub fn background_patch(kind: u32, training_pool: &[Digit], rng: &mut Rng) -> Features {
    let mut patch = [0u8; 64];
    match kind {
        0 => {}
        1 => {
            for cell in patch.iter_mut() {
                if rng.range(0, 3) == 0 {
                    *cell = rng.range(0, 3) as u8;
                }
            }
        }
        2 => {
            let mut bitmap = [false; 32 * 32];
            for _ in 0..rng.range(1, 2) {
                let (x0, y0) = (rng.range(0, 31) as f32, rng.range(0, 31) as f32);
                let (x1, y1) = (rng.range(0, 31) as f32, rng.range(0, 31) as f32);
                let thickness = rng.range(2, 4) as i32;
                for step in 0..=64 {
                    let t = step as f32 / 64.0;
                    let (cx, cy) = ((x0 + (x1 - x0) * t) as i32, (y0 + (y1 - y0) * t) as i32);
                    for dy in 0..thickness {
                        for dx in 0..thickness {
                            let (x, y) = (cx + dx, cy + dy);
                            if (0..32).contains(&x) && (0..32).contains(&y) {
                                bitmap[(y * 32 + x) as usize] = true;
                            }
                        }
                    }
                }
            }
            for (i, cell) in patch.iter_mut().enumerate() {
                let (row, col) = (i / 8, i % 8);
                *cell = (0..16)
                    .filter(|k| bitmap[(row * 4 + k / 4) * 32 + col * 4 + k % 4])
                    .count() as u8;
            }
        }
        _ => {
            let digit = &training_pool[rng.range(0, training_pool.len() as u32 - 1) as usize];
            let shift = |rng: &mut Rng| {
                let magnitude = rng.range(3, 5) as i32;
                if rng.range(0, 1) == 0 {
                    magnitude
                } else {
                    -magnitude
                }
            };
            let (dx, dy) = match rng.range(0, 2) {
                0 => (shift(rng), 0),
                1 => (0, shift(rng)),
                _ => (shift(rng), shift(rng)),
            };
            for row in 0..8i32 {
                for col in 0..8i32 {
                    let (r, c) = (row + dy, col + dx);
                    if (0..8).contains(&r) && (0..8).contains(&c) {
                        patch[(row * 8 + col) as usize] = digit.pixels[(r * 8 + c) as usize];
                    }
                }
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenes_are_deterministic_and_place_separated_digits() {
        let a = held_out_scenes(3);
        let b = held_out_scenes(3);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.image, b.image);
            assert_eq!(a.digits, b.digits);
            assert!((3..=5).contains(&a.digits.len()));
            for (i, d) in a.digits.iter().enumerate() {
                assert!((24..=32).contains(&d.rect.width));
                for e in &a.digits[i + 1..] {
                    assert!(apart(&d.rect, &e.rect, 3));
                }
            }
        }
    }

    #[test]
    fn drawn_digits_are_dark_on_light_paper() {
        let scene = &held_out_scenes(1)[0];
        let image = &scene.image;
        let mean = |rect: &Rect| {
            let mut sum = 0u64;
            for y in rect.y..rect.y + rect.height {
                for x in rect.x..rect.x + rect.width {
                    sum += image.pixels[(y * image.width + x) as usize] as u64;
                }
            }
            sum as f64 / (rect.width * rect.height) as f64
        };
        let page = mean(&Rect {
            x: 0,
            y: 0,
            width: image.width,
            height: image.height,
        });
        for d in &scene.digits {
            assert!(
                mean(&d.rect) < page - 20.0,
                "a digit box is darker than the page"
            );
        }
    }

    #[test]
    fn sample_input_is_a_256_by_192_png_with_default_params() {
        let (payload, params) = sample_input();
        assert_eq!(payload.media_type, "image/png");
        let image = crate::codec::decode_png(&payload.bytes).unwrap();
        assert_eq!((image.width, image.height), (256, 192));
        assert_eq!(params, "{}");
        assert_eq!(sample_scene().digits.len(), 6);
    }

    #[test]
    fn background_patches_stay_in_the_dataset_range() {
        let pool = crate::dataset::training_digits();
        let mut rng = Rng::new(1);
        for kind in 0..4 {
            let patch = background_patch(kind, &pool, &mut rng);
            assert!(patch.iter().all(|&v| v <= 16));
            if kind == 0 {
                assert_eq!(patch, [0; 64]);
            }
        }
    }
}
