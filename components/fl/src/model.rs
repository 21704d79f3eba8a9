//! The models federated tasks train: softmax (multinomial logistic)
//! regression and a small MLP (one `tanh` hidden layer), with parameters
//! as one flat vector, so updates are summed, masked and averaged
//! coordinate by coordinate.

use crate::data::Dataset;
use crate::random::Random;

/// A model's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// `W` (classes × features) then `b` (classes).
    Softmax { features: usize, classes: usize },
    /// `W1` (hidden × features), `b1`, `W2` (classes × hidden), `b2`.
    Mlp {
        features: usize,
        hidden: usize,
        classes: usize,
    },
}

impl Model {
    /// How many parameters.
    pub fn params(&self) -> usize {
        match *self {
            Model::Softmax { features, classes } => classes * (features + 1),
            Model::Mlp {
                features,
                hidden,
                classes,
            } => hidden * (features + 1) + classes * (hidden + 1),
        }
    }

    /// The model a trained parameter vector of `params` values belongs to,
    /// for rows of `features` features: softmax (`hidden` = None) or an MLP
    /// with `hidden` units; `None` if the count fits no class number ≥ 2.
    pub fn fitting(features: usize, hidden: Option<usize>, params: usize) -> Option<Model> {
        let model = match hidden {
            None => {
                let classes = params / (features + 1);
                Model::Softmax { features, classes }
            }
            Some(h) => {
                let rest = params.checked_sub(h * (features + 1))?;
                Model::Mlp {
                    features,
                    hidden: h,
                    classes: rest / (h + 1),
                }
            }
        };
        (model.classes() >= 2 && model.params() == params).then_some(model)
    }

    /// Starting parameters: zeros for softmax; small Glorot-scaled weights
    /// for the MLP (it cannot start symmetric).
    pub fn init(&self, rng: &mut impl Random) -> Vec<f64> {
        match *self {
            Model::Softmax { .. } => vec![0.0; self.params()],
            Model::Mlp {
                features,
                hidden,
                classes,
            } => {
                let mut p = vec![0.0; self.params()];
                let s1 = (2.0 / (features + hidden) as f64).sqrt();
                let s2 = (2.0 / (hidden + classes) as f64).sqrt();
                let w2 = hidden * (features + 1);
                for (i, w) in p.iter_mut().enumerate() {
                    let in_w1 = i < hidden * features;
                    let in_w2 = i >= w2 && i < w2 + classes * hidden;
                    if in_w1 {
                        *w = rng.gaussian() * s1;
                    } else if in_w2 {
                        *w = rng.gaussian() * s2;
                    }
                }
                p
            }
        }
    }

    /// How many classes it tells apart.
    pub fn classes(&self) -> usize {
        match *self {
            Model::Softmax { classes, .. } | Model::Mlp { classes, .. } => classes,
        }
    }

    /// Class probabilities for `x`, and the hidden layer's activations.
    fn forward(&self, p: &[f64], x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let dense = |w: &[f64], b: &[f64], input: &[f64], out: usize| -> Vec<f64> {
            (0..out)
                .map(|o| {
                    let row = &w[o * input.len()..(o + 1) * input.len()];
                    b[o] + row.iter().zip(input).map(|(a, b)| a * b).sum::<f64>()
                })
                .collect()
        };
        let (logits, hidden) = match *self {
            Model::Softmax { features, classes } => {
                let (w, b) = p.split_at(classes * features);
                (dense(w, b, x, classes), Vec::new())
            }
            Model::Mlp {
                features,
                hidden,
                classes,
            } => {
                let (w1, rest) = p.split_at(hidden * features);
                let (b1, rest) = rest.split_at(hidden);
                let (w2, b2) = rest.split_at(classes * hidden);
                let h: Vec<f64> = dense(w1, b1, x, hidden)
                    .into_iter()
                    .map(f64::tanh)
                    .collect();
                (dense(w2, b2, &h, classes), h)
            }
        };
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        (exp.into_iter().map(|e| e / sum).collect(), hidden)
    }

    /// The most likely class of `x`.
    pub fn predict(&self, p: &[f64], x: &[f64]) -> usize {
        let (probs, _) = self.forward(p, x);
        (0..probs.len())
            .max_by(|&a, &b| probs[a].total_cmp(&probs[b]))
            .unwrap_or(0)
    }

    /// Share of `data` predicted right.
    pub fn accuracy(&self, p: &[f64], data: &Dataset) -> f64 {
        let right = data
            .features
            .iter()
            .zip(&data.labels)
            .filter(|(x, &y)| self.predict(p, x) == y)
            .count();
        right as f64 / data.features.len().max(1) as f64
    }

    /// Mean cross-entropy on `data`.
    pub fn loss(&self, p: &[f64], data: &Dataset) -> f64 {
        let total: f64 = data
            .features
            .iter()
            .zip(&data.labels)
            .map(|(x, &y)| -self.forward(p, x).0[y].max(1e-300).ln())
            .sum();
        total / data.features.len().max(1) as f64
    }

    /// The gradient of `x`'s cross-entropy with label `y` into `grad`
    /// (overwritten); answers the loss.
    pub fn example_grad(&self, p: &[f64], x: &[f64], y: usize, grad: &mut [f64]) -> f64 {
        let (probs, hidden) = self.forward(p, x);
        let classes = self.classes();
        // d loss / d logit = p − onehot(y)
        let dlogit: Vec<f64> = (0..classes)
            .map(|c| probs[c] - if c == y { 1.0 } else { 0.0 })
            .collect();
        match *self {
            Model::Softmax { features, classes } => {
                for c in 0..classes {
                    for f in 0..features {
                        grad[c * features + f] = dlogit[c] * x[f];
                    }
                    grad[classes * features + c] = dlogit[c];
                }
            }
            Model::Mlp {
                features,
                hidden: h,
                classes,
            } => {
                let w2_at = h * (features + 1);
                let b2_at = w2_at + classes * h;
                let mut dh = vec![0.0; h];
                for c in 0..classes {
                    for j in 0..h {
                        grad[w2_at + c * h + j] = dlogit[c] * hidden[j];
                        dh[j] += dlogit[c] * p[w2_at + c * h + j];
                    }
                    grad[b2_at + c] = dlogit[c];
                }
                for j in 0..h {
                    let dz = dh[j] * (1.0 - hidden[j] * hidden[j]);
                    for f in 0..features {
                        grad[j * features + f] = dz * x[f];
                    }
                    grad[h * features + j] = dz;
                }
            }
        }
        -probs[y].max(1e-300).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SplitMix64;

    #[test]
    fn a_parameter_count_names_its_model() {
        assert_eq!(
            Model::fitting(30, None, 62),
            Some(Model::Softmax {
                features: 30,
                classes: 2
            })
        );
        assert_eq!(
            Model::fitting(64, Some(16), 16 * 65 + 10 * 17),
            Some(Model::Mlp {
                features: 64,
                hidden: 16,
                classes: 10
            })
        );
        assert_eq!(Model::fitting(30, None, 63), None);
        assert_eq!(
            Model::fitting(30, None, 31),
            None,
            "one class is no classifier"
        );
    }

    /// The analytic gradient against central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = SplitMix64(5);
        let x = [0.3, -1.2, 0.8];
        for model in [
            Model::Softmax {
                features: 3,
                classes: 3,
            },
            Model::Mlp {
                features: 3,
                hidden: 4,
                classes: 3,
            },
        ] {
            let p: Vec<f64> = (0..model.params()).map(|_| rng.gaussian() * 0.5).collect();
            let mut g = vec![0.0; model.params()];
            model.example_grad(&p, &x, 1, &mut g);
            let data = Dataset {
                features: vec![x.to_vec()],
                labels: vec![1],
                classes: 3,
            };
            for i in 0..model.params() {
                let (mut up, mut down) = (p.clone(), p.clone());
                up[i] += 1e-6;
                down[i] -= 1e-6;
                let numeric = (model.loss(&up, &data) - model.loss(&down, &data)) / 2e-6;
                assert!(
                    (numeric - g[i]).abs() < 1e-6,
                    "{model:?} param {i}: {numeric} vs {}",
                    g[i]
                );
            }
        }
    }
}
