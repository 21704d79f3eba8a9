//! The task API: submit, precheck, get (with `?wait`), list, cancel.

use crate::api::{json_response, parse_body, ApiError, ApiResult};
use crate::auth::User;
use crate::db::{int, text, Db};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Largest inline `inputs` (serialized JSON) plus `wasm_module`, in bytes.
pub const MAX_INLINE_BYTES: usize = 256 * 1024;

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
const ALIASES: &[(&str, &str)] = &[("object_recognition", "object-detect")];

pub const SLAS: &[&str] = &["urgent", "high", "normal", "eco", "solar_only", "wind_only"];
pub const IMPORTANCE: &[&str] = &["critical", "high", "normal", "low", "non_critical"];

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
            max_memory_mb: 100,
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
    pub sla: Option<String>,
    #[serde(default)]
    pub importance: Option<String>,
}

/// A validated task, ready to store and dispatch.
pub struct NewTask {
    pub request: TaskRequest,
    pub task_type: String,
    pub capability: String,
    pub input_text: String,
    pub input_sha256: String,
    /// Inline size plus referenced blobs: what the node must accept.
    pub input_bytes: u64,
}

fn is_task_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks a submission; errors name the field.
pub fn validate(db: &Db, body: &[u8]) -> Result<NewTask, ApiError> {
    let request: TaskRequest = parse_body(body)?;
    let task_type = ALIASES
        .iter()
        .find(|(alias, _)| *alias == request.task_type)
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| request.task_type.clone());
    if !TASK_TYPES.contains(&task_type.as_str()) {
        return Err(ApiError::invalid(
            "task_type",
            format!(
                "unknown task_type {:?}; known: {}",
                request.task_type,
                TASK_TYPES.join(", ")
            ),
        ));
    }
    let capability = match &request.capability {
        Some(c) if !is_task_name(c) => {
            return Err(ApiError::invalid(
                "capability",
                "capability must be lower-case letters, digits, '-' or '_'",
            ))
        }
        Some(c) => c.clone(),
        None => task_type.clone(),
    };
    let r = &request.requirements;
    if !(1..=100).contains(&r.min_nodes) {
        return Err(ApiError::invalid(
            "requirements.min_nodes",
            "min_nodes must be between 1 and 100",
        ));
    }
    if !(1..=86_400).contains(&r.max_execution_time_sec) {
        return Err(ApiError::invalid(
            "requirements.max_execution_time_sec",
            "max_execution_time_sec must be between 1 and 86400",
        ));
    }
    if !(1..=65_536).contains(&r.max_memory_mb) {
        return Err(ApiError::invalid(
            "requirements.max_memory_mb",
            "max_memory_mb must be between 1 and 65536",
        ));
    }
    if !request.max_price.is_finite() || request.max_price < 0.0 {
        return Err(ApiError::invalid(
            "max_price",
            "max_price must be a non-negative number of credits",
        ));
    }
    if let Some(sla) = &request.sla {
        if !SLAS.contains(&sla.as_str()) {
            return Err(ApiError::invalid(
                "sla",
                format!("unknown sla {sla:?}; known: {}", SLAS.join(", ")),
            ));
        }
    }
    if let Some(importance) = &request.importance {
        if !IMPORTANCE.contains(&importance.as_str()) {
            return Err(ApiError::invalid(
                "importance",
                format!(
                    "unknown importance {importance:?}; known: {}",
                    IMPORTANCE.join(", ")
                ),
            ));
        }
    }
    if !(request.inputs.is_object() || request.inputs.is_null()) {
        return Err(ApiError::invalid("inputs", "inputs must be a JSON object"));
    }
    if task_type == "wasm_execution" && request.wasm_module.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::invalid(
            "wasm_module",
            "wasm_execution needs wasm_module: a base64-encoded component",
        ));
    }
    let input_text =
        json!({ "inputs": request.inputs, "wasm_module": request.wasm_module }).to_string();
    if input_text.len() > MAX_INLINE_BYTES {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!(
                "inputs are {} bytes; the inline limit is {MAX_INLINE_BYTES}: upload large data with \
                 POST /api/v1/blobs and refer to it as {{\"blob\": \"sha256:<hex>\"}}",
                input_text.len()
            ),
        ));
    }
    let blob_bytes = crate::blobs::check_references(db, &request.inputs)?;
    let input_sha256 = greenmesh_protocol::sha256_hex(input_text.as_bytes());
    let input_bytes = input_text.len() as u64 + blob_bytes;
    Ok(NewTask {
        request,
        task_type,
        capability,
        input_text,
        input_sha256,
        input_bytes,
    })
}

/// `POST /api/v1/tasks`: counts the task against the owner's quota, fixes
/// or opens the vote on its importance, stores it, then tries to lease it.
pub fn submit(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let task = validate(db, body)?;
    let id = crate::util::new_id("task");
    let quota = crate::quota::reserve(db, user, &id, &task.request.requirements)?;
    let stored = store(db, user, &id, &task);
    if stored.is_err() {
        // Nothing was accepted: give the day's count back.
        let _ = crate::quota::release(db, &user.id, &id);
    }
    stored?;
    crate::dispatch::dispatch_one(db, &id, true)?;
    let mut view =
        view(db, &id)?.ok_or_else(|| ApiError::internal("task vanished after insert"))?;
    if let Some(usage) = quota {
        view["quota"] = crate::quota::usage_json(&usage);
    }
    Ok(json_response(201, &view))
}

/// The public-health keyword a request mentions, if any, and the policy it
/// starts with.
fn policy_at_submission(r: &TaskRequest) -> (Option<&'static str>, crate::policy::Policy) {
    let keyword = crate::public_health::matched_keyword(
        [r.name.as_deref(), r.description.as_deref()]
            .into_iter()
            .flatten(),
    );
    let policy =
        crate::policy::Policy::at_submission(keyword, r.importance.as_deref(), r.sla.as_deref());
    (keyword, policy)
}

/// Inserts a validated task with its importance policy, and logs it.
fn store(db: &Db, user: &User, id: &str, task: &NewTask) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    let r = &task.request;
    let (keyword, policy) = policy_at_submission(r);
    let stored = json!({
        "request": task.request,
        "input": task.input_text,
    });
    db.exec(
        "INSERT INTO broker_tasks (id, owner, task_type, capability, status, reason, body, input_sha256, input_bytes,
             max_price, created_at, updated_at) VALUES (?, ?, ?, ?, 'queued', 'awaiting dispatch', ?, ?, ?, ?, ?, ?)",
        &[
            text(id),
            text(user.id.clone()),
            text(task.task_type.clone()),
            text(task.capability.clone()),
            text(stored.to_string()),
            text(task.input_sha256.clone()),
            int(task.input_bytes),
            spin_sdk::sqlite::Value::Real(task.request.max_price),
            int(now),
            int(now),
        ],
    )?;
    crate::policy::insert(db, id, &policy)?;
    crate::carbon::record_baseline(db, id, &user.id)?;
    crate::events::record(
        db,
        "task_submitted",
        None,
        Some(id),
        Some(&user.id),
        json!({ "task_type": task.task_type, "capability": task.capability, "sla": policy.sla }),
    )?;
    if let Some(keyword) = keyword {
        crate::events::record(
            db,
            "public_health_override",
            None,
            Some(id),
            Some(&user.id),
            json!({ "keyword": keyword, "name": r.name, "importance": "critical", "sla": policy.sla }),
        )?;
    }
    if policy.is_voted() {
        crate::votes::open_for(db, id, user, r.importance.as_deref())?;
    }
    Ok(())
}

/// `POST /api/v1/tasks/precheck`: the dispatch decision, without submitting.
pub fn precheck(db: &Db, user: &User, body: &[u8]) -> ApiResult {
    let task = validate(db, body)?;
    let r = &task.request;
    let (_, policy) = policy_at_submission(r);
    let placement = crate::dispatch::Placement::new(
        db,
        &user.id,
        r,
        &task.capability,
        &policy,
        crate::util::now_ms(),
    )?;
    let decision = crate::dispatch::decide(
        db,
        &task.capability,
        &task.request,
        task.input_bytes,
        &placement,
    )?;
    Ok(json_response(
        200,
        &json!({
            "eligible": decision.chosen.is_some(),
            "capability": task.capability,
            "policy": policy.to_json(),
            "decision": decision.to_json(),
        }),
    ))
}

/// A task as the API shows it; `None` if absent.
pub fn view(db: &Db, id: &str) -> Result<Option<Value>, ApiError> {
    let rows = db.query(
        "SELECT id, owner, task_type, capability, status, reason, node_id, lease_id, price, decision, result,
                attempts, created_at, updated_at FROM broker_tasks WHERE id = ?",
        &[text(id)],
    )?;
    let policy = match rows.rows.first() {
        Some(_) => crate::policy::get(db, id)?.map(|p| p.to_json()),
        None => None,
    };
    Ok(rows.rows.first().map(|r| {
        let parse = |i: usize| {
            r.get::<&str>(i)
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
        };
        json!({
            "id": r.get::<&str>(0),
            "owner": r.get::<&str>(1),
            "task_type": r.get::<&str>(2),
            "capability": r.get::<&str>(3),
            "status": r.get::<&str>(4),
            "reason": r.get::<&str>(5),
            "node_id": r.get::<&str>(6),
            "lease_id": r.get::<&str>(7),
            "price": r.get::<f64>(8),
            "decision": parse(9),
            "result": parse(10),
            "attempts": r.get::<i64>(11),
            "created_at": r.get::<i64>(12),
            "updated_at": r.get::<i64>(13),
            "governance": policy,
        })
    }))
}

fn owned_view(db: &Db, user: &User, id: &str) -> Result<Value, ApiError> {
    match view(db, id)? {
        Some(v) if v["owner"] == user.id.as_str() => Ok(v),
        // Someone else's task is indistinguishable from a missing one.
        _ => Err(ApiError::not_found(format!("no task {id}"))),
    }
}

/// Terminal states: the task will not change any more.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// `GET /api/v1/tasks/{id}[?wait=SECONDS]`: long-polls until the task ends.
pub fn get(db: &Db, user: &User, id: &str, query: &str) -> ApiResult {
    let wait = crate::api::wait_param(query)?;
    let deadline = crate::util::now_ms() + wait * 1000;
    crate::votes::settle(db)?;
    loop {
        let v = owned_view(db, user, id)?;
        let done = v["status"].as_str().is_some_and(is_terminal);
        if done || crate::util::now_ms() >= deadline {
            return Ok(json_response(200, &v));
        }
        crate::leases::expire(db)?;
        crate::util::sleep_ms(25);
    }
}

/// `GET /api/v1/tasks[?status=..]`: the caller's tasks, newest first.
pub fn list(db: &Db, user: &User, query: &str) -> ApiResult {
    let status = crate::api::query_param(query, "status").unwrap_or("");
    let rows = db.query(
        "SELECT id FROM broker_tasks WHERE owner = ? AND (? = '' OR status = ?) ORDER BY created_at DESC LIMIT 200",
        &[text(user.id.clone()), text(status), text(status)],
    )?;
    let mut tasks = Vec::new();
    for r in &rows.rows {
        if let Some(v) = view(db, r.get::<&str>(0).unwrap_or_default())? {
            tasks.push(v);
        }
    }
    Ok(json_response(200, &json!({ "tasks": tasks })))
}

/// `DELETE /api/v1/tasks/{id}`: cancels a task that has not finished.
pub fn cancel(db: &Db, user: &User, id: &str) -> ApiResult {
    let v = owned_view(db, user, id)?;
    let status = v["status"].as_str().unwrap_or_default();
    if is_terminal(status) {
        return Err(ApiError::conflict(format!("task {id} is already {status}")));
    }
    let now = crate::util::now_ms();
    if status == "leased" {
        // A node may already be working on it: cancelling wastes its work.
        crate::greenmesh::reputation::scores::record_event(
            &user.id,
            crate::greenmesh::reputation::scores::Role::Requester,
            crate::greenmesh::reputation::scores::Event::Failure,
        );
    }
    db.exec(
        "UPDATE broker_tasks SET status = 'cancelled', reason = 'cancelled by requester', updated_at = ? WHERE id = ?",
        &[int(now), text(id)],
    )?;
    // Cancelled before any node fetched it: the day's count is given back.
    // (A fetched lease may be running, so that task stays counted.)
    let fetched = db.query(
        "SELECT 1 FROM broker_leases WHERE task_id = ? AND status IN ('delivered', 'completed')",
        &[text(id)],
    )?;
    if fetched.rows.is_empty() {
        crate::quota::release(db, &user.id, id)?;
    }
    db.exec(
        "UPDATE broker_leases SET status = 'cancelled' WHERE task_id = ? AND status = 'offered'",
        &[text(id)],
    )?;
    crate::events::record(
        db,
        "task_cancelled",
        None,
        Some(id),
        Some(&user.id),
        json!({ "previous_status": status }),
    )?;
    Ok(json_response(200, &owned_view(db, user, id)?))
}
