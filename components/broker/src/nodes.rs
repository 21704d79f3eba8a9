//! Node endpoints: register (by a user), heartbeat (signed by the node),
//! list/get (public), withdraw (owner).

use crate::api::{json_response, parse_body, ApiError, ApiResult};
use crate::auth::User;
use crate::db::Db;
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types as mt;
use serde::Deserialize;
use serde_json::{json, Value};

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

impl EnergyJson {
    /// The energy state, or which forecast timestamp could not be read.
    fn into_state(self) -> Result<mt::EnergyState, ApiError> {
        let mut forecast = Vec::with_capacity(self.forecast.len());
        for (i, p) in self.forecast.into_iter().enumerate() {
            let timestamp = match p.timestamp {
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

/// Maps a marketplace error to an HTTP error.
pub fn market_error(e: mt::Error) -> ApiError {
    match e {
        mt::Error::NotFound(m) => ApiError::not_found(m),
        mt::Error::Invalid(m) => ApiError::bad_request(m),
        mt::Error::Conflict(m) => ApiError::conflict(m),
        mt::Error::Storage(m) => ApiError::internal(m),
    }
}

/// A node as the API shows it.
pub fn node_json(n: &mt::Node) -> Value {
    json!({
        "id": n.id,
        "owner": n.owner,
        "name": n.name,
        "region": n.region,
        "public_key": n.public_key,
        "status": match n.status { mt::NodeStatus::Online => "online", mt::NodeStatus::Offline => "offline", mt::NodeStatus::Withdrawn => "withdrawn" },
        "capabilities": n.capabilities.iter().map(|c| json!({
            "name": c.name, "input_types": c.input_types, "output_types": c.output_types,
            "max_input_bytes": c.max_input_bytes, "price": c.price,
        })).collect::<Vec<_>>(),
        "capacity": { "cpu_cores": n.capacity.cpu_cores, "memory_mb": n.capacity.memory_mb, "gpu": n.capacity.gpu },
        "energy": {
            "sources": n.energy.sources, "clean_share": n.energy.clean_share, "carbon_intensity": n.energy.carbon_intensity,
            "forecast": n.energy.forecast.iter().map(|p| json!({
                "timestamp": crate::util::iso8601(p.timestamp), "duration": p.duration_min, "value": p.value,
            })).collect::<Vec<_>>(),
        },
        "allowed_tasks": n.allowed_tasks,
        "load": n.load,
        "running_tasks": n.running_tasks,
        "latency_ms": n.latency_ms,
        "registered_at": n.registered_at,
        "last_seen": n.last_seen,
    })
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
            })
            .collect(),
        capacity: mt::Capacity {
            cpu_cores: r.capacity.cpu_cores,
            memory_mb: r.capacity.memory_mb,
            gpu: r.capacity.gpu,
        },
        energy: r.energy.into_state()?,
        allowed_tasks: r.allowed_tasks,
    };
    let node = registry::register(&user.id, &registration).map_err(market_error)?;
    crate::events::record(
        db,
        "peer_online",
        Some(&node.id),
        None,
        Some(&user.id),
        json!({ "device_name": node.name, "region": node.region }),
    )?;
    crate::dispatch::dispatch_queued(db, 50)?;
    Ok(json_response(201, &node_json(&node)))
}

/// `PUT /api/v1/nodes/{id}/heartbeat` (signed by the node).
pub fn heartbeat(db: &Db, node_id: &str, body: &[u8]) -> ApiResult {
    let h: HeartbeatJson = parse_body(body)?;
    let beat = mt::Beat {
        energy: h.energy.map(EnergyJson::into_state).transpose()?,
        load: h.load,
        running_tasks: h.running_tasks,
        latency_ms: h.latency_ms,
    };
    let node = registry::heartbeat(node_id, &beat).map_err(market_error)?;
    if beat.energy.is_some() {
        crate::interrupt::check(db, &node)?;
    }
    crate::leases::expire(db)?;
    crate::dispatch::dispatch_queued(db, 50)?;
    Ok(json_response(200, &node_json(&node)))
}

/// `GET /api/v1/nodes`.
pub fn list() -> ApiResult {
    let nodes = registry::list_nodes().map_err(market_error)?;
    Ok(json_response(
        200,
        &json!({ "nodes": nodes.iter().map(node_json).collect::<Vec<_>>() }),
    ))
}

/// A reputation score as the API shows it.
pub fn reputation_json(s: &crate::greenmesh::reputation::scores::Score) -> Value {
    json!({
        "value": s.value, "successes": s.successes, "failures": s.failures,
        "timeouts": s.timeouts, "bad_signatures": s.bad_signatures,
    })
}

/// `GET /api/v1/nodes/{id}`, with the node's provider reputation.
pub fn get(node_id: &str) -> ApiResult {
    use crate::greenmesh::reputation::scores;
    let node = registry::get(node_id).map_err(market_error)?;
    let mut v = node_json(&node);
    v["reputation"] = reputation_json(&scores::get(node_id, scores::Role::Provider));
    Ok(json_response(200, &v))
}

/// `DELETE /api/v1/nodes/{id}[?capability=name]`: the owner withdraws an offer or the node.
pub fn withdraw(db: &Db, user: &User, node_id: &str, query: &str) -> ApiResult {
    let node = registry::get(node_id).map_err(market_error)?;
    if node.owner != user.id {
        return Err(ApiError::not_found(format!("no node {node_id}")));
    }
    let capability = crate::api::query_param(query, "capability").map(str::to_string);
    let node = registry::withdraw(node_id, capability.as_deref()).map_err(market_error)?;
    crate::events::record(
        db,
        "offer_withdrawn",
        Some(node_id),
        None,
        Some(&user.id),
        json!({ "capability": capability }),
    )?;
    Ok(json_response(200, &node_json(&node)))
}
