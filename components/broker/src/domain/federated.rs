//! Federated training plans: what a `federated_learning` task across
//! several nodes asks for (model, rounds, DP budget, training settings),
//! checked and turned into each round's member inputs; and how a closed
//! round's results become the next global model (FedAvg weighted by row
//! counts). The members are a task group's (`groups`): round r is shard
//! r, its members are that shard's replicas, so they run on nodes of
//! distinct owners. How a round closes is `lifecycle::group`'s.
//!
//! Differential privacy: each member runs DP-SGD on its own rows with the
//! noise multiplier the accountant (`greenmesh_fl::accountant`) gives for
//! the task's (ε, δ) over every step it will take (rounds × steps at the
//! sampling rate). Every row belongs to one node, so the whole training is
//! (ε, δ)-DP for one record (`docs/federated.md`).

use crate::error::ApiError;
use crate::model::TaskRequest;
use greenmesh_fl::accountant;
use greenmesh_protocol::{Contribution, Masked};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Rounds a task may ask for.
pub const MAX_ROUNDS: u32 = 100;

/// Noise multipliers above this train nothing useful: such an (ε, δ) is refused.
pub const MAX_NOISE_MULTIPLIER: f64 = 200.0;

/// The model a task trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    Softmax,
    Mlp { hidden: u32 },
}

/// Local training per round (defaults: 10 steps, half the rows per step,
/// clip 1, learning rate 0.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSpec {
    #[serde(default = "half")]
    pub learning_rate: f64,
    #[serde(default = "ten")]
    pub steps: u32,
    #[serde(default = "half")]
    pub sampling_rate: f64,
    #[serde(default = "one")]
    pub clip: f64,
}

fn half() -> f64 {
    0.5
}
fn ten() -> u32 {
    10
}
fn one() -> f64 {
    1.0
}

impl Default for TrainingSpec {
    fn default() -> Self {
        Self {
            learning_rate: half(),
            steps: ten(),
            sampling_rate: half(),
            clip: one(),
        }
    }
}

/// A federated task's `inputs`, as the requester writes them (seed 002's
/// `model_name`, `rounds`, `epsilon`, `delta`, plus the dataset, model and
/// training).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inputs {
    dataset: String,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default = "one_round")]
    rounds: u32,
    /// Absent: no differential privacy (ε = ∞).
    #[serde(default)]
    epsilon: Option<f64>,
    #[serde(default = "default_delta")]
    delta: f64,
    #[serde(default = "softmax")]
    model: ModelSpec,
    #[serde(default)]
    training: TrainingSpec,
    /// Feature scaler every member applies (`{mean, std}`).
    #[serde(default)]
    scaler: Option<Value>,
    /// Share of each member's rows kept out to score the model.
    #[serde(default = "fifth")]
    holdout: f64,
    /// Starting parameters (default: the kernel's start).
    #[serde(default)]
    initial: Option<Vec<f64>>,
}

fn one_round() -> u32 {
    1
}
fn default_delta() -> f64 {
    1e-3
}
fn softmax() -> ModelSpec {
    ModelSpec::Softmax
}
fn fifth() -> f64 {
    0.2
}

/// A checked plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dataset: String,
    pub model_name: Option<String>,
    pub rounds: u32,
    pub members: u32,
    pub epsilon: Option<f64>,
    pub delta: f64,
    pub model: ModelSpec,
    pub training: TrainingSpec,
    /// σ for every member's DP-SGD (0 without DP).
    pub noise_multiplier: f64,
    pub scaler: Option<Value>,
    pub holdout: f64,
    pub initial: Option<Vec<f64>>,
    /// `require_proof`: the result carries each round's signed contributions.
    pub proof: bool,
}

impl Plan {
    /// The plan of a federated task on several nodes (`None` otherwise);
    /// refuses, naming the field, what cannot train.
    pub fn of(request: &TaskRequest) -> Result<Option<Plan>, ApiError> {
        if request.task_type != "federated_learning" || request.requirements.min_nodes < 2 {
            return Ok(None);
        }
        let inputs: Inputs = serde_json::from_value(request.inputs.clone()).map_err(|e| {
            ApiError::invalid("inputs", format!("not a federated training plan: {e}"))
        })?;
        if !(1..=MAX_ROUNDS).contains(&inputs.rounds) {
            return Err(ApiError::invalid(
                "inputs.rounds",
                format!("rounds must be 1 to {MAX_ROUNDS}"),
            ));
        }
        let t = &inputs.training;
        let sane = t.learning_rate > 0.0
            && t.learning_rate.is_finite()
            && (1..=1_000).contains(&t.steps)
            && t.sampling_rate > 0.0
            && t.sampling_rate <= 1.0
            && t.clip > 0.0
            && t.clip.is_finite();
        if !sane {
            return Err(ApiError::invalid(
                "inputs.training",
                "training needs learning_rate > 0, steps 1–1000, sampling_rate in (0, 1] and a finite clip > 0",
            ));
        }
        if let ModelSpec::Mlp { hidden } = inputs.model {
            if !(1..=256).contains(&hidden) {
                return Err(ApiError::invalid(
                    "inputs.model.hidden",
                    "hidden must be 1 to 256",
                ));
            }
        }
        if !(0.0..0.9).contains(&inputs.holdout) {
            return Err(ApiError::invalid(
                "inputs.holdout",
                "holdout must be in [0, 0.9)",
            ));
        }
        if !(inputs.delta > 0.0 && inputs.delta < 0.1) {
            return Err(ApiError::invalid(
                "inputs.delta",
                "delta must be in (0, 0.1): the chance the guarantee fails",
            ));
        }
        let steps = inputs.rounds as u64 * t.steps as u64;
        let noise_multiplier = match inputs.epsilon {
            None => 0.0,
            Some(eps) if !(eps > 0.0 && eps.is_finite()) => {
                return Err(ApiError::invalid(
                    "inputs.epsilon",
                    "epsilon must be a positive number (leave it out for no differential privacy)",
                ))
            }
            Some(eps) => accountant::noise_multiplier(
                eps,
                inputs.delta,
                t.sampling_rate,
                steps,
                MAX_NOISE_MULTIPLIER,
            )
            .ok_or_else(|| {
                ApiError::invalid(
                    "inputs.epsilon",
                    format!(
                        "ε = {eps} over {steps} steps at sampling rate {} would need noise beyond \
                         {MAX_NOISE_MULTIPLIER}× the clip: nothing useful could be trained; raise ε, \
                         or lower rounds, steps or the sampling rate",
                        t.sampling_rate
                    ),
                )
            })?,
        };
        Ok(Some(Plan {
            dataset: inputs.dataset,
            model_name: inputs.model_name,
            rounds: inputs.rounds,
            members: request.requirements.min_nodes,
            epsilon: inputs.epsilon,
            delta: inputs.delta,
            model: inputs.model,
            training: inputs.training,
            noise_multiplier,
            scaler: inputs.scaler,
            holdout: inputs.holdout,
            initial: inputs.initial,
            proof: request.requirements.require_proof,
        }))
    }

    /// What a member of any round runs (`global`: the round's starting
    /// parameters; the first round's are `initial`, or the kernel's).
    pub fn member_inputs(&self, global: Option<&[f64]>) -> Value {
        let mut training = serde_json::to_value(&self.training).unwrap_or_default();
        if self.noise_multiplier > 0.0 {
            training["noise_multiplier"] = json!(self.noise_multiplier);
        } else {
            // No DP: plain SGD, no clipping.
            training.as_object_mut().map(|t| t.remove("clip"));
        }
        let mut inputs = json!({
            "dataset": self.dataset,
            "model": self.model,
            "training": training,
            "holdout": self.holdout,
            // The node masks its update against the round's roster.
            "secure_aggregation": true,
        });
        if let Some(g) = global.map(<[f64]>::to_vec).or_else(|| self.initial.clone()) {
            inputs["global"] = json!(g);
        }
        if let Some(s) = &self.scaler {
            inputs["scaler"] = s.clone();
        }
        inputs
    }

    /// The member request of a round with `global`.
    pub fn member_request(&self, request: &TaskRequest, global: Option<&[f64]>) -> TaskRequest {
        let mut member = request.clone();
        member.inputs = self.member_inputs(global);
        member.requirements.min_nodes = 1;
        member.requirements.require_proof = false;
        // Training draws the node's own randomness: never deterministic.
        member.requirements.deterministic = false;
        member
    }

    /// ε spent by each member's rows after `rounds` rounds.
    pub fn epsilon_spent(&self, rounds: u32) -> Option<f64> {
        self.epsilon.map(|_| {
            accountant::epsilon(
                self.training.sampling_rate,
                self.noise_multiplier,
                rounds as u64 * self.training.steps as u64,
                self.delta,
            )
        })
    }

    /// How long a round waits for its stragglers once it has a quorum:
    /// twice a member's whole allowance (its time limit and the lease
    /// grace). Past it, the round closes with the members that reported.
    pub fn patience_ms(&self, max_execution_time_sec: u32, lease_grace_ms: u64) -> u64 {
        2 * (max_execution_time_sec as u64 * 1000 + lease_grace_ms)
    }

    /// Results a round needs: at least two, and two thirds of its members.
    pub fn quorum(&self) -> u32 {
        ((2 * self.members).div_ceil(3)).max(2).min(self.members)
    }
}

/// Attempts a round gets: the first, and a re-run for each of two losses
/// after its roster was fixed (a lost member's masks never cancel).
pub const ATTEMPTS: u32 = 3;

/// A federated member's shard: the round and the attempt at it.
pub fn shard_of(round: u32, attempt: u32) -> u32 {
    round * ATTEMPTS + attempt
}

/// The round a member's shard belongs to.
pub fn round_of(shard: u32) -> u32 {
    shard / ATTEMPTS
}

/// The attempt at its round a member's shard is.
pub fn attempt_of(shard: u32) -> u32 {
    shard % ATTEMPTS
}

/// A member's masked contribution, from its stored result (`{output,
/// receipt}`, the output being `{media_type, json: {masked}}`).
pub fn masked_of(result: &Value) -> Option<Masked> {
    let output: Value = serde_json::from_str(result["output"].as_str()?).ok()?;
    serde_json::from_value(output["json"]["masked"].clone()).ok()
}

/// A closed round: the new global model and what the round measured.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub global: Vec<f64>,
    pub samples: u64,
    /// Training loss, averaged by samples.
    pub loss: f64,
    /// Hold-out accuracy over all members' hold-outs together (only the sum
    /// is reported, never a member's own).
    pub holdout_accuracy: Option<f64>,
}

impl Aggregate {
    /// FedAvg from the summed masked contributions of a whole roster;
    /// `None` if the sum does not decode to plausible totals.
    pub fn of_sum(sum: &[u64]) -> Option<Aggregate> {
        let c = Contribution::of_sum(sum)?;
        Some(Aggregate {
            global: c.params,
            samples: c.samples as u64,
            loss: c.loss,
            holdout_accuracy: (c.total > 0.0).then(|| c.correct / c.total),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(inputs: Value, min_nodes: u32) -> TaskRequest {
        serde_json::from_value(json!({ "task_type": "federated_learning", "inputs": inputs,
                                       "requirements": { "min_nodes": min_nodes } }))
        .unwrap()
    }

    #[test]
    fn a_plan_calibrates_noise_to_the_budget_over_every_step() {
        let r = request(
            json!({ "dataset": "d", "rounds": 10, "epsilon": 1.0, "delta": 0.001 }),
            5,
        );
        let plan = Plan::of(&r).unwrap().unwrap();
        assert_eq!((plan.rounds, plan.members, plan.quorum()), (10, 5, 4));
        assert!(plan.noise_multiplier > 1.0);
        let spent = plan.epsilon_spent(10).unwrap();
        assert!(spent <= 1.0 && spent > 0.99, "{spent}");
        assert!(
            plan.epsilon_spent(5).unwrap() < spent,
            "fewer rounds spend less"
        );
        let inputs = plan.member_inputs(Some(&[0.5, 0.25]));
        assert_eq!(
            inputs["training"]["noise_multiplier"],
            plan.noise_multiplier
        );
        assert_eq!(inputs["global"], json!([0.5, 0.25]));
        // Without ε: no noise, no clipping.
        let plain = Plan::of(&request(json!({ "dataset": "d" }), 3))
            .unwrap()
            .unwrap();
        assert_eq!(plain.noise_multiplier, 0.0);
        assert!(plain.member_inputs(None)["training"].get("clip").is_none());
        assert_eq!(
            Plan::of(&request(json!({ "dataset": "d" }), 1))
                .unwrap()
                .is_none(),
            true
        );
    }

    #[test]
    fn plans_that_cannot_train_are_refused_naming_the_field() {
        let field = |inputs: Value| Plan::of(&request(inputs, 5)).unwrap_err().field.unwrap();
        assert_eq!(
            field(json!({ "dataset": "d", "epsilon": 1e-6, "rounds": 100 })),
            "inputs.epsilon"
        );
        assert_eq!(
            field(json!({ "dataset": "d", "epsilon": -1 })),
            "inputs.epsilon"
        );
        assert_eq!(
            field(json!({ "dataset": "d", "rounds": 0 })),
            "inputs.rounds"
        );
        assert_eq!(
            field(json!({ "dataset": "d", "training": { "steps": 0 } })),
            "inputs.training"
        );
        assert_eq!(
            field(json!({ "dataset": "d", "model": { "kind": "mlp", "hidden": 0 } })),
            "inputs.model.hidden"
        );
        assert_eq!(
            field(json!({ "dataset": "d", "delta": 0.5 })),
            "inputs.delta"
        );
        assert_eq!(field(json!({ "dataset": "d", "surprise": 1 })), "inputs");
    }

    #[test]
    fn a_round_s_masked_sum_is_fedavg_weighted_by_rows_with_the_holdout_pooled() {
        let c = |params: Vec<f64>, samples: f64, correct: f64, total: f64| Contribution {
            params,
            samples,
            loss: 1.0,
            correct,
            total,
        };
        let mut sum = c(vec![0.0, 4.0], 100.0, 9.0, 10.0).words();
        greenmesh_protocol::secure_sum::add(
            &mut sum,
            &c(vec![3.0, 1.0], 300.0, 20.0, 30.0).words(),
        );
        let a = Aggregate::of_sum(&sum).unwrap();
        let plain =
            greenmesh_fl::train::fedavg(&[(vec![0.0, 4.0], 100), (vec![3.0, 1.0], 300)]).unwrap();
        assert!(
            a.global
                .iter()
                .zip(&plain)
                .all(|(x, y)| (x - y).abs() < 1e-6),
            "{a:?}"
        );
        assert_eq!(a.samples, 400);
        assert_eq!(a.holdout_accuracy, Some(29.0 / 40.0));
        assert!((a.loss - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_round_s_attempts_are_shards_of_their_own() {
        for (round, attempt) in [(0, 0), (0, 2), (7, 1)] {
            let shard = shard_of(round, attempt);
            assert_eq!((round_of(shard), attempt_of(shard)), (round, attempt));
        }
        assert_ne!(shard_of(1, 0), shard_of(0, 1));
    }
}
