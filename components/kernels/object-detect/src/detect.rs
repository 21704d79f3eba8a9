//! The sliding-window scan: every window size, every `stride` pixels, each
//! window resampled to 8×8 features and classified; windows whose best class
//! is a digit with probability ≥ `min_score` are candidates, and
//! non-maximum suppression picks among them.

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

/// Finds digits in `image`, best first.
pub fn detect(image: &GrayImage, model: &Mlp, settings: &ScanSettings) -> Vec<Detection> {
    let integral = InkIntegral::from_gray(image);
    let (width, height) = (integral.width(), integral.height());
    let stride = settings.stride as usize;
    let mut features = [0u8; FEATURES];
    let mut hidden = vec![0f32; model.hidden];
    let mut probabilities = [0f32; CLASSES];
    let mut candidates = Vec::new();
    for &size in &settings.window_sizes {
        let size = size as usize;
        if size > width || size > height {
            continue;
        }
        for y in (0..=height - size).step_by(stride) {
            for x in (0..=width - size).step_by(stride) {
                if integral.window_features(x, y, size, &mut features) < MIN_INK {
                    continue;
                }
                model.forward(&features, &mut hidden, &mut probabilities);
                let (label, score) = best_digit(&probabilities);
                if score >= settings.min_score && score > probabilities[BACKGROUND] {
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
