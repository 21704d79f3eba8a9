//! The sliding-window scan: every window size, every `stride` pixels, each
//! window resampled to 8×8 features and classified; windows whose best class
//! is a digit with probability ≥ `min_score` are candidates, and
//! non-maximum suppression picks among them.
//!
//! [`detect`] is the CPU path and the reference. The GPU path (`gpu.rs`)
//! computes the same per-window classification as a dense *score map* (one
//! entry per window position, laid out by [`grids`]); [`score_map`] is the
//! CPU's version of that map and [`detections_from_score_map`] turns either
//! into the same detections [`detect`] returns.

use crate::boxes::{non_maximum_suppression, Detection, Rect};
use crate::codec::GrayImage;
use crate::features::{InkIntegral, FEATURES, MIN_INK};
use crate::model::{Mlp, BACKGROUND, CLASSES};

/// The most detections one image returns.
pub const MAX_DETECTIONS: usize = 256;

/// How to scan (validated by the kernel before it gets here).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanSettings {
    /// Smallest class probability a detection must have.
    pub min_score: f32,
    /// Largest IoU a kept detection may have with a better one.
    pub nms_iou: f32,
    /// Window sides in pixels, each a multiple of 8.
    pub window_sizes: Vec<u32>,
    /// Step between window positions, in pixels.
    pub stride: u32,
}

/// Number of windows [`detect`] classifies at most for an image this size.
pub fn window_count(width: u32, height: u32, settings: &ScanSettings) -> u64 {
    let positions = |side: u32, size: u32| {
        if size > side {
            0
        } else {
            ((side - size) / settings.stride + 1) as u64
        }
    };
    settings
        .window_sizes
        .iter()
        .map(|&size| positions(width, size) * positions(height, size))
        .sum()
}

/// One window size's part of a dense scan: `columns × rows` positions of a
/// `size`-pixel window, `stride` pixels apart, numbered row by row from
/// `first` in the score map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub size: u32,
    pub columns: u32,
    pub rows: u32,
    pub first: u64,
}

impl Grid {
    /// Number of window positions.
    pub fn windows(&self) -> u64 {
        self.columns as u64 * self.rows as u64
    }
}

/// The grids of a scan in the order [`detect`] visits windows (the sizes as
/// `settings` lists them, sizes larger than the image left out); their
/// windows add up to [`window_count`].
pub fn grids(width: u32, height: u32, settings: &ScanSettings) -> Vec<Grid> {
    let mut first = 0;
    settings
        .window_sizes
        .iter()
        .filter(|&&size| size <= width && size <= height)
        .map(|&size| {
            let grid = Grid {
                size,
                columns: (width - size) / settings.stride + 1,
                rows: (height - size) / settings.stride + 1,
                first,
            };
            first += grid.windows();
            grid
        })
        .collect()
}

/// A window's entry in a score map: the most probable digit and its
/// probability when that beats the background class, else `None` (also for
/// blank windows, which are not classified).
pub type WindowScore = Option<(u8, f32)>;

/// Working memory for [`classify`].
struct Scratch {
    w2_by_class: Vec<f32>,
    features: [u8; FEATURES],
    hidden: Vec<f32>,
    probabilities: [f32; CLASSES],
}

impl Scratch {
    fn new(model: &Mlp) -> Self {
        Self {
            w2_by_class: model.w2_by_class(),
            features: [0; FEATURES],
            hidden: vec![0.0; model.hidden],
            probabilities: [0.0; CLASSES],
        }
    }
}

/// Classifies the `size`-pixel window at `(x, y)`: blank windows (less ink
/// than [`MIN_INK`]) are skipped, the others run through the model.
fn classify(
    integral: &InkIntegral,
    model: &Mlp,
    (x, y, size): (usize, usize, usize),
    scratch: &mut Scratch,
) -> WindowScore {
    if integral.window_features(x, y, size, &mut scratch.features) < MIN_INK {
        return None;
    }
    model.forward_with(
        &scratch.w2_by_class,
        &scratch.features,
        &mut scratch.hidden,
        &mut scratch.probabilities,
    );
    let (label, score) = best_digit(&scratch.probabilities);
    (score > scratch.probabilities[BACKGROUND]).then_some((label, score))
}

/// Finds digits in `image`, best first.
pub fn detect(image: &GrayImage, model: &Mlp, settings: &ScanSettings) -> Vec<Detection> {
    let integral = InkIntegral::from_gray(image);
    let (width, height) = (integral.width(), integral.height());
    let stride = settings.stride as usize;
    let mut scratch = Scratch::new(model);
    let mut candidates = Vec::new();
    for &size in &settings.window_sizes {
        let size = size as usize;
        if size > width || size > height {
            continue;
        }
        for y in (0..=height - size).step_by(stride) {
            for x in (0..=width - size).step_by(stride) {
                let Some((label, score)) = classify(&integral, model, (x, y, size), &mut scratch)
                else {
                    continue;
                };
                if score >= settings.min_score {
                    candidates.push(Detection {
                        label,
                        score,
                        rect: Rect {
                            x: x as u32,
                            y: y as u32,
                            width: size as u32,
                            height: size as u32,
                        },
                    });
                }
            }
        }
    }
    non_maximum_suppression(candidates, settings.nms_iou, MAX_DETECTIONS)
}

/// The score map of `grids` computed on the CPU: what the GPU's shader
/// computes, entry for entry (up to float rounding).
pub fn score_map(
    integral: &InkIntegral,
    model: &Mlp,
    settings: &ScanSettings,
    grids: &[Grid],
) -> Vec<WindowScore> {
    let mut scratch = Scratch::new(model);
    let stride = settings.stride as usize;
    let mut map = Vec::with_capacity(grids.iter().map(Grid::windows).sum::<u64>() as usize);
    for grid in grids {
        for row in 0..grid.rows as usize {
            for column in 0..grid.columns as usize {
                let window = (column * stride, row * stride, grid.size as usize);
                map.push(classify(integral, model, window, &mut scratch));
            }
        }
    }
    map
}

/// The detections of a score map laid out by `grids`: windows whose digit
/// reaches `min_score`, then non-maximum suppression, as in [`detect`].
pub fn detections_from_score_map(
    map: &[WindowScore],
    grids: &[Grid],
    settings: &ScanSettings,
) -> Vec<Detection> {
    let mut candidates = Vec::new();
    for grid in grids {
        let windows = &map[grid.first as usize..(grid.first + grid.windows()) as usize];
        for (index, window) in windows.iter().enumerate() {
            let Some((label, score)) = *window else {
                continue;
            };
            if score >= settings.min_score {
                let (column, row) = (index as u32 % grid.columns, index as u32 / grid.columns);
                candidates.push(Detection {
                    label,
                    score,
                    rect: Rect {
                        x: column * settings.stride,
                        y: row * settings.stride,
                        width: grid.size,
                        height: grid.size,
                    },
                });
            }
        }
    }
    non_maximum_suppression(candidates, settings.nms_iou, MAX_DETECTIONS)
}

/// The most probable digit (lowest digit on ties) and its probability.
fn best_digit(probabilities: &[f32; CLASSES]) -> (u8, f32) {
    let mut best = (0u8, probabilities[0]);
    for (digit, &p) in probabilities[..BACKGROUND].iter().enumerate().skip(1) {
        if p > best.1 {
            best = (digit as u8, p);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(stride: u32, window_sizes: Vec<u32>) -> ScanSettings {
        ScanSettings {
            min_score: 0.6,
            nms_iou: 0.3,
            window_sizes,
            stride,
        }
    }

    #[test]
    fn window_count_covers_every_fitting_position() {
        // 128×96, stride 4: size 16 → 29×21, 24 → 27×19, 32 → 25×17.
        let s = settings(4, vec![16, 24, 32]);
        assert_eq!(window_count(128, 96, &s), 29 * 21 + 27 * 19 + 25 * 17);
        assert_eq!(window_count(20, 20, &s), 2 * 2);
    }

    #[test]
    fn grids_number_the_windows_in_scan_order() {
        let s = settings(4, vec![16, 24, 32, 128]);
        let g = grids(128, 96, &s);
        assert_eq!(
            g,
            vec![
                Grid {
                    size: 16,
                    columns: 29,
                    rows: 21,
                    first: 0
                },
                Grid {
                    size: 24,
                    columns: 27,
                    rows: 19,
                    first: 29 * 21
                },
                Grid {
                    size: 32,
                    columns: 25,
                    rows: 17,
                    first: 29 * 21 + 27 * 19
                },
            ]
        );
        let total: u64 = g.iter().map(Grid::windows).sum();
        assert_eq!(total, window_count(128, 96, &s));
        assert!(grids(8, 8, &s).is_empty());
    }

    #[test]
    fn the_score_map_gives_the_same_detections_as_the_scan() {
        let model = Mlp::embedded().unwrap();
        let mut scenes = crate::testdata::held_out_scenes(4);
        scenes.push(crate::testdata::sample_scene());
        let variants = [
            settings(4, vec![16, 24, 32]),
            ScanSettings {
                min_score: 0.0,
                ..settings(3, vec![8, 16, 40])
            },
            settings(2, vec![24]),
        ];
        for scene in &scenes {
            let integral = InkIntegral::from_gray(&scene.image);
            for s in &variants {
                let g = grids(scene.image.width, scene.image.height, s);
                let map = score_map(&integral, &model, s, &g);
                assert_eq!(
                    map.len() as u64,
                    window_count(scene.image.width, scene.image.height, s)
                );
                assert!(map.iter().any(Option::is_some));
                let reference = detect(&scene.image, &model, s);
                assert!(!reference.is_empty());
                assert_eq!(detections_from_score_map(&map, &g, s), reference);
            }
        }
    }

    #[test]
    fn a_blank_page_has_no_detections() {
        let page = GrayImage::filled(64, 64, 230);
        let model = Mlp::embedded().unwrap();
        assert!(detect(&page, &model, &settings(4, vec![16, 24, 32])).is_empty());
    }

    #[test]
    fn best_digit_ignores_background() {
        let mut p = [0.0; CLASSES];
        p[BACKGROUND] = 0.7;
        p[4] = 0.2;
        p[9] = 0.1;
        assert_eq!(best_digit(&p), (4, 0.2));
    }
}
