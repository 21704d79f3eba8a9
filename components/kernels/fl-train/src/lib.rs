//! The `fl-train` kernel: one member's round of federated training.
//!
//! Input (`application/json`): the model's shape, the global parameters,
//! the training settings (DP-SGD: learning rate, steps, sampling rate,
//! clip, noise multiplier), an optional feature scaler, and the share of
//! local rows kept out for evaluation. The rows come from the dataset the
//! lease names, through the host's read-only `greenmesh:kernel/dataset`:
//! the kernel never sees another dataset, and its output carries no row.
//!
//! Output (`application/json`): `{params, samples, loss, holdout: {correct,
//! total}}` (the new parameters, the rows trained on, the training loss
//! after the round, and the hold-out score as counts the broker only
//! reports summed over members).
//!
//! Privacy noise and batch sampling draw from the node's own randomness
//! (`wasi:random`), never from a seed the lease, coordinator or requester
//! knows: the node refuses deterministic mode for noisy training.

use greenmesh_fl::data::{Dataset, Scaler};
use greenmesh_fl::model::Model;
use greenmesh_fl::random::Random;
use greenmesh_fl::train::{local_train, Training};
use greenmesh_kernel::{Description, Kernel, KernelError, Payload};
use serde::Deserialize;

/// The media type read and written.
pub const MEDIA_TYPE: &str = "application/json";

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum ModelSpec {
    Softmax,
    Mlp { hidden: usize },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingSpec {
    learning_rate: f64,
    steps: u32,
    #[serde(default = "one")]
    sampling_rate: f64,
    #[serde(default = "infinite")]
    clip: f64,
    #[serde(default)]
    noise_multiplier: f64,
}

fn one() -> f64 {
    1.0
}
fn infinite() -> f64 {
    f64::INFINITY
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Round {
    model: ModelSpec,
    /// The global parameters (default: the model's start, zeros for softmax).
    #[serde(default)]
    global: Option<Vec<f64>>,
    training: TrainingSpec,
    #[serde(default)]
    scaler: Option<ScalerSpec>,
    /// Share of local rows kept out of training to score the model.
    #[serde(default = "fifth")]
    holdout: f64,
    /// The dataset (the node binds it; named here for the broker's match).
    #[serde(default)]
    #[allow(dead_code)]
    dataset: Option<String>,
    /// Whether the node masks the update (done by the provider, outside
    /// the sandbox, which never holds the node's key).
    #[serde(default)]
    #[allow(dead_code)]
    secure_aggregation: bool,
    /// The task's own settings (seed 002's shape), for the broker.
    #[serde(default)]
    #[allow(dead_code)]
    model_name: Option<String>,
}

fn fifth() -> f64 {
    0.2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalerSpec {
    mean: Vec<f64>,
    std: Vec<f64>,
}

/// The node's own randomness (`wasi:random` in the sandbox).
struct NodeRandom;

impl Random for NodeRandom {
    fn next_u64(&mut self) -> u64 {
        getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15)
    }
}

pub struct FlTrain;

impl FlTrain {
    fn round(round: Round) -> Result<serde_json::Value, KernelError> {
        let invalid = |m: String| KernelError::InvalidInput(m);
        let shape = greenmesh_kernel::dataset::describe()
            .ok_or_else(|| invalid("the lease names no dataset this node holds".into()))?;
        let (features, labels) = greenmesh_kernel::dataset::read_all();
        let data = Dataset {
            features,
            labels,
            classes: shape.classes as usize,
        };
        let width = shape.features as usize;
        let classes = shape.classes as usize;
        let model = match round.model {
            ModelSpec::Softmax => Model::Softmax {
                features: width,
                classes,
            },
            ModelSpec::Mlp { hidden } if (1..=256).contains(&hidden) => Model::Mlp {
                features: width,
                hidden,
                classes,
            },
            ModelSpec::Mlp { .. } => return Err(invalid("mlp.hidden must be 1 to 256".into())),
        };
        let data = match &round.scaler {
            Some(s) if s.mean.len() == width && s.std.len() == width => Scaler {
                mean: s.mean.clone(),
                std: s
                    .std
                    .iter()
                    .map(|v| if *v > 0.0 { *v } else { 1.0 })
                    .collect(),
            }
            .apply(&data),
            Some(_) => {
                return Err(invalid(format!(
                    "scaler needs {width} means and standard deviations"
                )))
            }
            None => data,
        };
        let global = match round.global {
            Some(g) if g.len() == model.params() => g,
            Some(g) => {
                return Err(invalid(format!(
                    "global has {} parameters; this model on this dataset has {}",
                    g.len(),
                    model.params()
                )))
            }
            None => model.init(&mut NodeRandom),
        };
        let t = &round.training;
        let valid = t.learning_rate > 0.0
            && t.learning_rate.is_finite()
            && (1..=10_000).contains(&t.steps)
            && t.sampling_rate > 0.0
            && t.sampling_rate <= 1.0
            && t.clip > 0.0
            && t.noise_multiplier >= 0.0
            && (0.0..0.9).contains(&round.holdout);
        if !valid {
            return Err(KernelError::InvalidParams(
                "training needs learning_rate > 0, steps 1–10000, sampling_rate in (0, 1], clip > 0, \
                 noise_multiplier ≥ 0, and holdout in [0, 0.9)"
                    .into(),
            ));
        }
        // Every k-th row is held out (the same rows each round).
        let k = if round.holdout > 0.0 {
            (1.0 / round.holdout).round().max(2.0) as usize
        } else {
            usize::MAX
        };
        let (held, kept): (Vec<usize>, Vec<usize>) =
            (0..data.features.len()).partition(|i| i % k == k - 1);
        let train = data.subset(&kept);
        let holdout = data.subset(&held);
        let training = Training {
            learning_rate: t.learning_rate,
            steps: t.steps,
            sampling_rate: t.sampling_rate,
            clip: t.clip,
            noise_multiplier: t.noise_multiplier,
        };
        let params = local_train(&model, &global, &train, &training, &mut NodeRandom);
        let correct =
            (model.accuracy(&params, &holdout) * holdout.features.len() as f64).round() as u64;
        Ok(serde_json::json!({
            "params": params,
            "samples": train.features.len(),
            "loss": model.loss(&params, &train),
            "holdout": { "correct": correct, "total": holdout.features.len() },
        }))
    }
}

impl Kernel for FlTrain {
    fn describe() -> Description {
        Description {
            name: "fl-train".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "One member's round of federated DP-SGD on the dataset its lease names."
                .into(),
            input_types: vec![MEDIA_TYPE.into()],
            output_types: vec![MEDIA_TYPE.into()],
            params: "{}".into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, _params: &str) -> Result<Payload, KernelError> {
        greenmesh_kernel::expect_media_type(&input, &[MEDIA_TYPE])?;
        let round: Round = serde_json::from_slice(&input.bytes)
            .map_err(|e| KernelError::InvalidInput(format!("not a training round: {e}")))?;
        let out = Self::round(round)?;
        Ok(Payload::new(MEDIA_TYPE, out.to_string().into_bytes()))
    }
}

greenmesh_kernel::export_kernel!(FlTrain);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn lend_breast_cancer() -> Dataset {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../data/ml/breast_cancer.csv"
        );
        let data = Dataset::parse_csv(&std::fs::read_to_string(path).unwrap()).unwrap();
        let data = Scaler::fit(&data).apply(&data);
        greenmesh_kernel::dataset::lend(Some((
            data.features.clone(),
            data.labels.iter().map(|&l| l as u32).collect(),
        )));
        data
    }

    fn run(round: Value) -> Result<Value, KernelError> {
        let out = FlTrain::run(
            Payload::new(MEDIA_TYPE, round.to_string().into_bytes()),
            "{}",
        )?;
        Ok(serde_json::from_slice(&out.bytes).unwrap())
    }

    #[test]
    fn a_round_learns_on_the_lent_rows_and_returns_no_row() {
        let data = lend_breast_cancer();
        let out = run(json!({ "model": { "kind": "softmax" },
                              "training": { "learning_rate": 0.5, "steps": 50 } }))
        .unwrap();
        assert_eq!(out["params"].as_array().unwrap().len(), 2 * 31);
        assert_eq!(out["samples"], 569 - 569 / 5, "{out}");
        let h = &out["holdout"];
        let acc = h["correct"].as_f64().unwrap() / h["total"].as_f64().unwrap();
        assert!(acc > 0.9, "{out}");
        // No feature value of any row is in the output.
        let text = out.to_string();
        for row in data.features.iter().take(20) {
            for v in row {
                assert!(!text.contains(&format!("{v}")), "{v} leaked");
            }
        }
        greenmesh_kernel::dataset::lend(None);
    }

    #[test]
    fn without_a_dataset_or_with_a_wrong_global_it_says_why() {
        greenmesh_kernel::dataset::lend(None);
        let err = run(json!({ "model": { "kind": "softmax" }, "training": { "learning_rate": 0.5, "steps": 5 } }))
            .unwrap_err();
        assert!(err.to_string().contains("no dataset"), "{err}");
        lend_breast_cancer();
        let err = run(
            json!({ "model": { "kind": "softmax" }, "global": [0.0, 1.0],
                              "training": { "learning_rate": 0.5, "steps": 5 } }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("62"), "{err}");
        let err = run(json!({ "model": { "kind": "softmax" }, "training": { "learning_rate": -1, "steps": 5 } }))
            .unwrap_err();
        assert!(matches!(err, KernelError::InvalidParams(_)), "{err}");
        greenmesh_kernel::dataset::lend(None);
    }
}
