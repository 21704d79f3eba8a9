//! The camera trajectory: per-frame content positions accumulated from
//! frame-to-frame displacements, and their Gaussian smoothing.

use std::ops::{Add, Mul, Sub};

/// A 2-D displacement or position in luma pixels (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shift {
    /// Rightward, in pixels.
    pub x: f32,
    /// Downward, in pixels.
    pub y: f32,
}

impl Shift {
    /// A shift of `x` pixels right and `y` pixels down.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }

    /// Euclidean length.
    pub fn length(self) -> f32 {
        self.x.hypot(self.y)
    }
}

impl Add for Shift {
    type Output = Shift;
    fn add(self, other: Shift) -> Shift {
        Shift::new(self.x + other.x, self.y + other.y)
    }
}

impl Sub for Shift {
    type Output = Shift;
    fn sub(self, other: Shift) -> Shift {
        Shift::new(self.x - other.x, self.y - other.y)
    }
}

impl Mul<f32> for Shift {
    type Output = Shift;
    fn mul(self, factor: f32) -> Shift {
        Shift::new(self.x * factor, self.y * factor)
    }
}

/// Content positions: frame 0 at the origin, each next frame displaced by
/// the step from its predecessor.
pub fn accumulate(steps: &[Shift]) -> Vec<Shift> {
    let mut path = Vec::with_capacity(steps.len() + 1);
    let mut position = Shift::default();
    path.push(position);
    for &step in steps {
        position = position + step;
        path.push(position);
    }
    path
}

/// Gaussian-smooths `path` with σ = `radius`/3, truncated at ±`radius`
/// frames (3σ): each point becomes the value at its own frame of the
/// Gaussian-weighted least-squares line through its neighbourhood. Inside the
/// clip the window is symmetric and this is the plain Gaussian moving
/// average; near the ends, where the window is one-sided, the line keeps a
/// pan's slope instead of pulling it in, and no end frame's shake is pinned.
/// A constant-velocity pan is kept exactly. `radius` 0 returns the path.
pub fn smooth(path: &[Shift], radius: usize) -> Vec<Shift> {
    let n = path.len();
    if radius == 0 || n < 2 {
        return path.to_vec();
    }
    let sigma = radius as f32 / 3.0;
    let weights: Vec<f32> = (0..=radius)
        .map(|k| (-((k * k) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    (0..n)
        .map(|i| {
            let first = i.saturating_sub(radius);
            let last = (i + radius).min(n - 1);
            // Weighted sums over offsets t = j − i: Σw, Σwt, Σwt², Σwp, Σwtp.
            let (mut w_sum, mut wt_sum, mut wtt_sum) = (0.0f32, 0.0f32, 0.0f32);
            let (mut wp_sum, mut wtp_sum) = (Shift::default(), Shift::default());
            for (j, &p) in path.iter().enumerate().take(last + 1).skip(first) {
                let t = j as f32 - i as f32;
                let w = weights[j.abs_diff(i)];
                w_sum += w;
                wt_sum += w * t;
                wtt_sum += w * t * t;
                wp_sum = wp_sum + p * w;
                wtp_sum = wtp_sum + p * (w * t);
            }
            // The line's value at t = 0 (its intercept).
            let determinant = w_sum * wtt_sum - wt_sum * wt_sum;
            (wp_sum * wtt_sum - wtp_sum * wt_sum) * (1.0 / determinant)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_accumulate_from_the_origin() {
        let path = accumulate(&[Shift::new(1.0, -2.0), Shift::new(0.5, 0.5)]);
        assert_eq!(
            path,
            vec![
                Shift::new(0.0, 0.0),
                Shift::new(1.0, -2.0),
                Shift::new(1.5, -1.5)
            ]
        );
    }

    #[test]
    fn a_constant_velocity_pan_is_kept_exactly_ends_included() {
        let path: Vec<Shift> = (0..20)
            .map(|i| Shift::new(0.7 * i as f32, -0.3 * i as f32))
            .collect();
        for radius in [1, 5, 15, 40] {
            for (a, b) in smooth(&path, radius).iter().zip(&path) {
                assert!((*a - *b).length() < 1e-4, "radius {radius}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn alternating_jitter_is_strongly_damped() {
        let path: Vec<Shift> = (0..40)
            .map(|i| Shift::new(if i % 2 == 0 { 3.0 } else { -3.0 }, 0.0))
            .collect();
        let smoothed = smooth(&path, 9);
        for p in &smoothed[9..31] {
            assert!(p.x.abs() < 0.01, "{p:?}");
        }
        assert_eq!(smooth(&path, 0), path);
    }
}
