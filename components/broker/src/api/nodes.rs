//! Node endpoints: register (by a user), heartbeat (signed by the node),
//! list/get (public), withdraw (owner). The wire shapes of a registration
//! and a heartbeat live here; what they change is `domain::nodes`.

use super::{json_response, parse_body, query_param, ApiResult};
use crate::db::Db;
use crate::domain::nodes;
use crate::error::ApiError;
use crate::greenmesh::marketplace::types as mt;
use crate::model::User;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapabilityJson {
    name: String,
    #[serde(default)]
    input_types: Vec<String>,
    #[serde(default)]
    output_types: Vec<String>,
    #[serde(default = "default_max_input")]
    max_input_bytes: u64,
    price: f64,
    /// SHA-256 of the installed kernel.
    #[serde(default)]
    sha256: Option<String>,
}

fn default_max_input() -> u64 {
    16 << 20
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacityJson {
    cpu_cores: u32,
    memory_mb: u64,
    #[serde(default)]
    gpu: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EnergyJson {
    #[serde(default)]
    sources: Vec<(String, f32)>,
    #[serde(default)]
    clean_share: f32,
    #[serde(default)]
    carbon_intensity: f32,
    /// The grid's expected intensity, in the Carbon Aware SDK's shape.
    #[serde(default)]
    forecast: Vec<ForecastJson>,
}

/// One forecast interval: `{"timestamp": RFC 3339 or ms, "duration": minutes, "value": gCO2/kWh}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForecastJson {
    timestamp: Timestamp,
    duration: u32,
    value: f32,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Timestamp {
    Millis(u64),
    Text(String),
}

/// The last millisecond of 9999-12-31 (UTC): the latest forecast time an
/// RFC 3339 timestamp can show.
const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

impl EnergyJson {
    /// The energy state, or which forecast timestamp could not be read.
    fn into_state(self) -> Result<mt::EnergyState, ApiError> {
        let mut forecast = Vec::with_capacity(self.forecast.len());
        for (i, p) in self.forecast.into_iter().enumerate() {
            let timestamp = match p.timestamp {
                // Shown back as RFC 3339, which has four-digit years.
                Timestamp::Millis(ms) if ms > MAX_TIMESTAMP_MS => {
                    return Err(ApiError::invalid(
                        format!("energy.forecast[{i}].timestamp"),
                        format!("{ms} ms is past 9999-12-31T23:59:59Z"),
                    ))
                }
                Timestamp::Millis(ms) => ms,
                Timestamp::Text(t) => crate::util::parse_rfc3339(&t).ok_or_else(|| {
                    ApiError::invalid(
                        format!("energy.forecast[{i}].timestamp"),
                        format!("{t:?} is not an RFC 3339 time (e.g. 2026-03-08T07:00:00Z) or milliseconds"),
                    )
                })?,
            };
            forecast.push(mt::ForecastPoint {
                timestamp,
                duration_min: p.duration,
                value: p.value,
            });
        }
        Ok(mt::EnergyState {
            sources: self.sources,
            clean_share: self.clean_share,
            carbon_intensity: self.carbon_intensity,
            forecast,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationJson {
    name: String,
    region: String,
    public_key: String,
    capabilities: Vec<CapabilityJson>,
    capacity: CapacityJson,
    #[serde(default)]
    energy: EnergyJson,
    #[serde(default = "all_tasks")]
    allowed_tasks: Vec<String>,
    /// Datasets held for federated training: name and shape only.
    #[serde(default)]
    datasets: Vec<DatasetJson>,
    /// What the node declares about its power (ADR 0021).
    #[serde(default)]
    power: PowerJson,
}

/// `{"max_watts"?, "own_generation_watts"?}`: the most the device draws
/// (receipts' energy is bounded by it; 1.5 kW when undeclared) and its own
/// generation (needed to claim a cleaner share than its grid's).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PowerJson {
    #[serde(default)]
    max_watts: Option<f64>,
    #[serde(default)]
    own_generation_watts: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetJson {
    name: String,
    features: u32,
    classes: u32,
    rows: u64,
}

fn all_tasks() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatJson {
    #[serde(default)]
    energy: Option<EnergyJson>,
    #[serde(default)]
    load: f32,
    #[serde(default)]
    running_tasks: u32,
    /// Round trip the node measured to the coordinator, ms.
    #[serde(default)]
    latency_ms: Option<f32>,
}

/// `PUT /api/v1/admin/regions/{region}/signal` (admin): the region's
/// grid-intensity trace (`Time,Carbon Intensity` CSV) nodes there are held to.
pub fn region_signal(db: &Db, region: &str, body: &[u8]) -> ApiResult {
    if region.is_empty()
        || region.len() > 64
        || !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(crate::error::ApiError::bad_request(
            "a region is 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let csv = std::str::from_utf8(body)
        .map_err(|_| crate::error::ApiError::bad_request("the trace must be UTF-8 CSV text"))?;
    Ok(json_response(
        200,
        &crate::domain::energy_claims::load(db, region, csv)?,
    ))
}

/// `POST /api/v1/nodes`.
pub fn register(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let r: RegistrationJson = parse_body(body)?;
    let registration = mt::Registration {
        name: r.name,
        region: r.region,
        public_key: r.public_key,
        capabilities: r
            .capabilities
            .into_iter()
            .map(|c| mt::Capability {
                name: c.name,
                input_types: c.input_types,
                output_types: c.output_types,
                max_input_bytes: c.max_input_bytes,
                price: c.price,
                sha256: c.sha256,
            })
            .collect(),
        capacity: mt::Capacity {
            cpu_cores: r.capacity.cpu_cores,
            memory_mb: r.capacity.memory_mb,
            gpu: r.capacity.gpu,
        },
        energy: r.energy.into_state()?,
        allowed_tasks: r.allowed_tasks,
        datasets: r
            .datasets
            .into_iter()
            .map(|d| mt::Dataset {
                name: d.name,
                features: d.features,
                classes: d.classes,
                rows: d.rows,
            })
            .collect(),
    };
    let power = crate::domain::energy_claims::Power {
        max_watts: r.power.max_watts,
        own_generation_watts: r.power.own_generation_watts,
    };
    let node = nodes::register(db, user, &registration, power)?;
    Ok(json_response(201, &nodes::node_json(&node)))
}

/// `PUT /api/v1/nodes/{id}/heartbeat` (signed by the node `before`): the
/// node as it is now, and the leases it fetched that were revoked since
/// (signed: stop them and report).
pub fn heartbeat(db: &Db, before: &mt::Node, body: &[u8]) -> ApiResult {
    let h: HeartbeatJson = parse_body(body)?;
    let beat = mt::Beat {
        energy: h.energy.map(EnergyJson::into_state).transpose()?,
        load: h.load,
        running_tasks: h.running_tasks,
        latency_ms: h.latency_ms,
    };
    let node = nodes::heartbeat(db, before, &beat)?;
    let mut v = nodes::node_json(&node);
    v["revoked"] = json!(crate::domain::lifecycle::revocations(db, &node.id)?);
    Ok(json_response(200, &v))
}

/// `GET /api/v1/nodes`.
pub fn list() -> ApiResult {
    Ok(json_response(200, &json!({ "nodes": nodes::list()? })))
}

/// `GET /api/v1/nodes/{id}`, with the node's provider reputation.
pub fn get(db: &Db, node_id: &str) -> ApiResult {
    let mut node = nodes::get(db, node_id)?;
    // Its record of spot-checked results, and how likely the next is checked.
    node["verification"] = crate::domain::spot_checks::record_json(db, node_id)?;
    Ok(json_response(200, &node))
}

/// `DELETE /api/v1/nodes/{id}[?capability=name]`: the owner withdraws an offer or the node.
pub fn withdraw(db: &Db, user: &User, node_id: &str, query: &str) -> ApiResult {
    let capability = query_param(query, "capability");
    Ok(json_response(
        200,
        &nodes::withdraw(db, user, node_id, capability)?,
    ))
}
