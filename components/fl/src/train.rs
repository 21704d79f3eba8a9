//! Local training: DP-SGD (Abadi et al. 2016) on one node's rows, and
//! FedAvg (McMahan et al. 2017) over the members' results.
//!
//! Each step draws a Poisson batch (every row with probability
//! `sampling_rate`), clips each row's gradient to norm `clip`, sums them,
//! adds Gaussian noise of standard deviation `noise_multiplier × clip` to
//! every coordinate, and divides by the expected batch size. With
//! `noise_multiplier = 0` and `clip = ∞` it is plain minibatch SGD. The
//! privacy one node's training spends on its own rows is
//! `accountant::epsilon(sampling_rate, noise_multiplier, steps, δ)`.

use crate::data::Dataset;
use crate::model::Model;
use crate::random::Random;

/// How a node trains in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Training {
    pub learning_rate: f64,
    pub steps: u32,
    /// Probability each row is in a step's batch (1: full batch).
    pub sampling_rate: f64,
    /// Per-row gradient norm bound (∞: none).
    pub clip: f64,
    /// Noise standard deviation over `clip` (0: none).
    pub noise_multiplier: f64,
}

/// Trains `model` from `start` on `data`; answers the new parameters.
pub fn local_train(
    model: &Model,
    start: &[f64],
    data: &Dataset,
    t: &Training,
    rng: &mut impl Random,
) -> Vec<f64> {
    let n = data.features.len();
    let mut p = start.to_vec();
    let mut g = vec![0.0; p.len()];
    let mut sum = vec![0.0; p.len()];
    let expected = (t.sampling_rate * n as f64).max(1.0);
    for _ in 0..t.steps {
        sum.iter_mut().for_each(|s| *s = 0.0);
        for (x, &y) in data.features.iter().zip(&data.labels) {
            if t.sampling_rate < 1.0 && rng.unit() >= t.sampling_rate {
                continue;
            }
            model.example_grad(&p, x, y, &mut g);
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = if norm > t.clip { t.clip / norm } else { 1.0 };
            for (s, v) in sum.iter_mut().zip(&g) {
                *s += v * scale;
            }
        }
        if t.noise_multiplier > 0.0 {
            let sd = t.noise_multiplier * t.clip;
            for s in &mut sum {
                *s += sd * rng.gaussian();
            }
        }
        for (w, s) in p.iter_mut().zip(&sum) {
            *w -= t.learning_rate * s / expected;
        }
    }
    p
}

/// FedAvg: the members' parameters averaged, weighted by their row counts.
pub fn fedavg(members: &[(Vec<f64>, u64)]) -> Option<Vec<f64>> {
    let total: u64 = members.iter().map(|(_, n)| n).sum();
    let len = members.first()?.0.len();
    if total == 0 || members.iter().any(|(p, _)| p.len() != len) {
        return None;
    }
    let mut avg = vec![0.0; len];
    for (p, n) in members {
        let w = *n as f64 / total as f64;
        for (a, v) in avg.iter_mut().zip(p) {
            *a += w * v;
        }
    }
    Some(avg)
}
