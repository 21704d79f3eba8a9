//! Labelled boxes, their overlap (intersection over union) and greedy
//! non-maximum suppression.

/// An axis-aligned box, top-left corner and size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// Intersection over union, 0.0 for disjoint boxes, 1.0 for equal ones.
    pub fn iou(&self, other: &Rect) -> f32 {
        let intersection = self.intersection(other);
        let union = self.area() + other.area() - intersection;
        if union == 0 {
            0.0
        } else {
            (intersection as f64 / union as f64) as f32
        }
    }

    /// Intersection over the smaller box's area: 1.0 when one box lies
    /// inside the other.
    pub fn containment(&self, other: &Rect) -> f32 {
        let smaller = self.area().min(other.area());
        if smaller == 0 {
            0.0
        } else {
            (self.intersection(other) as f64 / smaller as f64) as f32
        }
    }

    fn intersection(&self, other: &Rect) -> u64 {
        let overlap = |a0: u32, a_len: u32, b0: u32, b_len: u32| {
            (a0 + a_len).min(b0 + b_len).saturating_sub(a0.max(b0)) as u64
        };
        overlap(self.x, self.width, other.x, other.width)
            * overlap(self.y, self.height, other.y, other.height)
    }

    fn area(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// A box the detector found: a digit label 0..=9 and its class probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub label: u8,
    pub score: f32,
    pub rect: Rect,
}

/// A detection that lies this much (intersection over the smaller box) inside
/// a better one, or contains it, is a part or a surrounding of the same
/// object and is dropped whatever its IoU.
pub const MAX_CONTAINMENT: f32 = 0.8;

/// Greedy, class-agnostic non-maximum suppression: visits the detections by
/// decreasing score (ties by position, then size, so the result does not
/// depend on input order), keeps one unless, with a kept one, its IoU is
/// above `max_iou` or its containment reaches [`MAX_CONTAINMENT`], and stops
/// after `limit` kept.
pub fn non_maximum_suppression(
    mut candidates: Vec<Detection>,
    max_iou: f32,
    limit: usize,
) -> Vec<Detection> {
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.rect.y.cmp(&b.rect.y))
            .then(a.rect.x.cmp(&b.rect.x))
            .then(a.rect.width.cmp(&b.rect.width))
    });
    let mut kept: Vec<Detection> = Vec::new();
    for candidate in candidates {
        if kept.len() == limit {
            break;
        }
        let distinct = |k: &Detection| {
            k.rect.iou(&candidate.rect) <= max_iou
                && k.rect.containment(&candidate.rect) < MAX_CONTAINMENT
        };
        if kept.iter().all(distinct) {
            kept.push(candidate);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u32, y: u32, size: u32) -> Rect {
        Rect {
            x,
            y,
            width: size,
            height: size,
        }
    }

    #[test]
    fn iou_of_known_overlaps() {
        assert_eq!(rect(0, 0, 10).iou(&rect(0, 0, 10)), 1.0);
        assert_eq!(rect(0, 0, 10).iou(&rect(10, 0, 10)), 0.0);
        // Half overlap: 50 / (100 + 100 - 50).
        assert!((rect(0, 0, 10).iou(&rect(5, 0, 10)) - 1.0 / 3.0).abs() < 1e-6);
        // Nested: 64 / 256.
        assert_eq!(rect(4, 4, 8).iou(&rect(0, 0, 16)), 0.25);
        assert_eq!(rect(4, 4, 8).containment(&rect(0, 0, 16)), 1.0);
        assert_eq!(rect(0, 0, 10).containment(&rect(5, 0, 20)), 0.5);
    }

    #[test]
    fn a_box_inside_a_better_one_is_suppressed_despite_a_low_iou() {
        let big = Detection {
            label: 8,
            score: 0.9,
            rect: rect(0, 0, 32),
        };
        let part = Detection {
            label: 7,
            score: 0.95,
            rect: rect(8, 8, 16),
        };
        assert_eq!(big.rect.iou(&part.rect), 0.25);
        assert_eq!(
            non_maximum_suppression(vec![big, part], 0.3, 10),
            vec![part]
        );
    }

    #[test]
    fn suppression_keeps_the_best_of_each_cluster() {
        let d = |score, x| Detection {
            label: 1,
            score,
            rect: rect(x, 0, 10),
        };
        let kept =
            non_maximum_suppression(vec![d(0.7, 0), d(0.9, 2), d(0.8, 30), d(0.6, 8)], 0.3, 10);
        // 0.9@2 beats 0.7@0 (IoU 0.67) and 0.6@8 (IoU 0.25 is kept: ≤ 0.3).
        let picked: Vec<(f32, u32)> = kept.iter().map(|k| (k.score, k.rect.x)).collect();
        assert_eq!(picked, vec![(0.9, 2), (0.8, 30), (0.6, 8)]);
        assert_eq!(
            non_maximum_suppression(vec![d(0.9, 0), d(0.8, 50)], 0.3, 1).len(),
            1
        );
    }
}
