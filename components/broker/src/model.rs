//! The broker's shared types: what a task asks for, the service level it
//! runs under, who is calling, and how a matching decision came out.
//! Plain data (plus its JSON shape): no storage, no imports.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value};

/// Task types the API accepts: the seeds' generic types and the named micro-tasks.
pub const TASK_TYPES: &[&str] = &[
    "wasm_execution",
    "computation",
    "federated_learning",
    "zk_proof",
    "image-filter",
    "object-detect",
    "audio-denoise",
    "video-stabilize",
];

/// Seed 000's name for object detection.
pub const ALIASES: &[(&str, &str)] = &[("object_recognition", "object-detect")];

/// Importance levels, most important first.
pub const IMPORTANCE: &[&str] = &["critical", "high", "normal", "low", "non_critical"];

/// A service level (seed 001): how patient a task is and which energy it
/// may run on. The table of what each means is in `domain::schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sla {
    Urgent,
    High,
    Normal,
    Eco,
    SolarOnly,
    WindOnly,
}

impl Sla {
    /// Every level, in the API's order.
    pub const ALL: [Sla; 6] = [
        Sla::Urgent,
        Sla::High,
        Sla::Normal,
        Sla::Eco,
        Sla::SolarOnly,
        Sla::WindOnly,
    ];

    /// The API (and database) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Sla::Urgent => "urgent",
            Sla::High => "high",
            Sla::Normal => "normal",
            Sla::Eco => "eco",
            Sla::SolarOnly => "solar_only",
            Sla::WindOnly => "wind_only",
        }
    }

    /// The level named `name`, if any.
    pub fn parse(name: &str) -> Option<Sla> {
        Sla::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The names, comma-separated (for error messages).
    pub fn names() -> String {
        Sla::ALL.map(Sla::as_str).join(", ")
    }
}

impl std::fmt::Display for Sla {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Sla {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Sla {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Sla::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown sla {name:?}; known: {}", Sla::names()))
        })
    }
}

/// `requirements` of a task, with defaults (within every quota tier).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    #[serde(default = "one")]
    pub min_nodes: u32,
    #[serde(default = "thirty")]
    pub max_execution_time_sec: u32,
    #[serde(default)]
    pub require_gpu: bool,
    #[serde(default)]
    pub require_proof: bool,
    #[serde(default = "default_memory")]
    pub max_memory_mb: u64,
    /// Run in the sandbox's deterministic mode (bit-identical reruns, for
    /// requesters who verify by re-execution; float-heavy kernels run
    /// slower).
    #[serde(default)]
    pub deterministic: bool,
}

impl Default for Requirements {
    fn default() -> Self {
        Self {
            min_nodes: 1,
            max_execution_time_sec: 30,
            require_gpu: false,
            require_proof: false,
            max_memory_mb: default_memory(),
            deterministic: false,
        }
    }
}

fn one() -> u32 {
    1
}
fn thirty() -> u32 {
    30
}
/// The free tier's memory: a task asking for nothing more fits every tier.
fn default_memory() -> u64 {
    100
}
fn default_max_price() -> f64 {
    10.0
}

/// `POST /api/v1/tasks` body.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    pub task_type: String,
    #[serde(default)]
    pub capability: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Value,
    /// Base64 component for `wasm_execution`.
    #[serde(default)]
    pub wasm_module: Option<String>,
    #[serde(default)]
    pub requirements: Requirements,
    /// Credits the requester will pay at most (default 10).
    #[serde(default = "default_max_price")]
    pub max_price: f64,
    #[serde(default)]
    pub sla: Option<Sla>,
    #[serde(default)]
    pub importance: Option<String>,
}

impl TaskRequest {
    /// The names grants and allow-lists match this task by: its capability
    /// and, if it has one, its name.
    pub fn names<'a>(&'a self, capability: &'a str) -> Vec<&'a str> {
        let mut names = vec![capability];
        names.extend(self.name.as_deref());
        names
    }

    /// The dataset a federated task trains on (`inputs.dataset`): only
    /// nodes holding it are matched.
    pub fn dataset(&self) -> Option<&str> {
        (self.task_type == "federated_learning")
            .then(|| self.inputs.get("dataset").and_then(|d| d.as_str()))
            .flatten()
    }
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub name: String,
    pub public_key: Option<String>,
}

/// One priced, scored offer.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node_id: String,
    pub price: f64,
    pub reputation: f64,
    pub load: f32,
    /// The node's grid intensity (gCO2/kWh) and clean share when decided.
    pub intensity: f32,
    pub clean_share: f32,
    /// The node's owner (a lease to someone else's node is a delegation).
    pub owner: String,
    pub score: f64,
    pub factors: Vec<(String, f64)>,
    pub model: String,
    /// SHA-256 of the kernel the node advertised for the capability.
    pub kernel_sha256: Option<String>,
}

/// The outcome of matching one task.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub chosen: Option<Candidate>,
    /// Eligible offers that lost, best first.
    pub runners_up: Vec<Candidate>,
    /// Nodes that could not take the task, with why.
    pub declined: Vec<(String, String)>,
    /// Why nothing was chosen.
    pub reason: Option<String>,
    /// Ineligible nodes beyond the listed sample.
    pub more_declined: u32,
    /// The lowest quote refused for exceeding `max_price` (fed back to pricing).
    pub cheapest_refused: Option<f64>,
    /// Eligible nodes exist, but the task waits for cleaner energy.
    pub deferred: bool,
}

impl Decision {
    pub fn to_json(&self) -> Value {
        let cand = |c: &Candidate| {
            json!({
                "node_id": c.node_id, "price": c.price, "reputation": c.reputation, "load": c.load,
                "carbon_intensity": c.intensity, "clean_share": c.clean_share,
                "score": c.score, "price_factors": c.factors.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                "pricing_model": c.model,
            })
        };
        json!({
            "chosen": self.chosen.as_ref().map(|c| {
                let mut v = cand(c);
                v["why"] = json!(format!(
                    "highest score {:.3}: price {:.3} credits, reputation {:.2}, load {:.2}, {:.0} gCO2/kWh{}",
                    c.score, c.price, c.reputation, c.load, c.intensity,
                    if self.runners_up.is_empty() { String::from(", the only eligible offer") } else { format!(", ahead of {} other offer(s)", self.runners_up.len()) }
                ));
                v
            }),
            "runners_up": self.runners_up.iter().map(|c| {
                let mut v = cand(c);
                v["why_not"] = json!(format!("lower score {:.3}", c.score));
                v
            }).collect::<Vec<_>>(),
            "declined": self.declined.iter().map(|(n, r)| json!({ "node_id": n, "reason": r })).collect::<Vec<_>>(),
            "more_declined": self.more_declined,
            "reason": self.reason,
            "deferred": self.deferred,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slas_round_trip_and_unknown_names_say_what_is_known() {
        for sla in Sla::ALL {
            let wire = serde_json::to_string(&sla).unwrap();
            assert_eq!(serde_json::from_str::<Sla>(&wire).unwrap(), sla);
        }
        let err = serde_json::from_str::<Sla>("\"lazy\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown sla \"lazy\""), "{err}");
        assert!(err.contains("solar_only"), "{err}");
    }
}
