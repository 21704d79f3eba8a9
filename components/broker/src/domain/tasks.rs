//! Task rows (`broker_tasks`): validation, the stored shape, the views the
//! API shows, and each status change as one compare-and-set statement.
//! Which task runs when is the queue's (`queue.rs`); how a lease ends the
//! lifecycle's (`lifecycle/`).

use crate::db::{int, opt_text, real, text, Db};
use crate::error::ApiError;
use crate::model::{TaskRequest, User, ALIASES, IMPORTANCE, TASK_TYPES};
use serde_json::{json, Value};

/// Largest inline `inputs` (serialized JSON) plus `wasm_module`, in bytes.
pub const MAX_INLINE_BYTES: usize = 256 * 1024;

/// Dispatch attempts (leases that expired, were refused or stopped by
/// their node) before a task fails for good.
pub const MAX_ATTEMPTS: i64 = 3;

/// A validated task, ready to store and dispatch.
#[derive(Clone)]
pub struct NewTask {
    pub request: TaskRequest,
    pub task_type: String,
    pub capability: String,
    pub input_text: String,
    pub input_sha256: String,
    /// Inline size plus referenced blobs: what the node must accept.
    pub input_bytes: u64,
    /// SHA-256 of a `wasm_execution` task's module: the kernel hash its
    /// receipts must carry.
    pub kernel_sha256: Option<String>,
}

fn is_task_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Checks a submission; errors name the field.
pub fn validate(db: &Db, request: TaskRequest) -> Result<NewTask, ApiError> {
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
        // Federated training runs the `fl-train` kernel.
        None if task_type == "federated_learning" => "fl-train".to_string(),
        // Verifiable computation runs the `zk-prover` kernel.
        None if task_type == "zk_proof" => crate::domain::zk::CAPABILITY.to_string(),
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
    if task_type == "zk_proof" {
        crate::domain::zk::statement(&request.inputs)?;
        // Proofs are verified for the zk-prover capability: another would
        // complete a zk_proof task with nothing checked.
        if capability != crate::domain::zk::CAPABILITY {
            return Err(ApiError::invalid(
                "capability",
                format!(
                    "zk_proof tasks run on the {} capability",
                    crate::domain::zk::CAPABILITY
                ),
            ));
        }
    }
    if task_type == "federated_learning" && !request.dataset().is_some_and(is_task_name) {
        return Err(ApiError::invalid(
            "inputs.dataset",
            "federated_learning needs inputs.dataset: the name of a dataset nodes hold              (lower-case letters, digits, '-' or '_')",
        ));
    }
    if task_type == "wasm_execution" && request.wasm_module.as_deref().unwrap_or("").is_empty() {
        return Err(ApiError::invalid(
            "wasm_module",
            "wasm_execution needs wasm_module: a base64-encoded component",
        ));
    }
    let kernel_sha256 = match &request.wasm_module {
        Some(m) if task_type == "wasm_execution" => {
            Some(module_sha256(m).map_err(|why| ApiError::invalid("wasm_module", why))?)
        }
        _ => None,
    };
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
    let blob_bytes = crate::domain::blobs::check_references(db, &request.inputs)?;
    let input_sha256 = greenmesh_protocol::sha256_hex(input_text.as_bytes());
    let input_bytes = input_text.len() as u64 + blob_bytes;
    Ok(NewTask {
        request,
        task_type,
        capability,
        input_text,
        input_sha256,
        input_bytes,
        kernel_sha256,
    })
}

/// SHA-256 of a base64 `wasm_module` as a node decodes it (standard
/// alphabet, surrounding white space ignored).
pub fn module_sha256(module: &str) -> Result<String, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(module.trim())
        .map_err(|e| format!("wasm_module is not base64: {e}"))?;
    Ok(greenmesh_protocol::sha256_hex(&bytes))
}

/// The request task `id` was submitted with.
pub fn request_of(db: &Db, id: &str) -> Result<Option<TaskRequest>, ApiError> {
    let Some(body) = db.text_of("SELECT body FROM broker_tasks WHERE id = ?", &[text(id)])? else {
        return Ok(None);
    };
    let body: Value = serde_json::from_str(&body).map_err(crate::error::storage)?;
    serde_json::from_value(body["request"].clone())
        .map(Some)
        .map_err(crate::error::storage)
}

/// The SHA-256 of a `wasm_execution` task's submitted module.
pub fn module_hash(db: &Db, task_id: &str) -> Result<Option<String>, ApiError> {
    db.text_of(
        "SELECT kernel_sha256 FROM broker_tasks WHERE id = ?",
        &[text(task_id)],
    )
}

/// The kernel hash a receipt for `lease` must carry, if one is known: the
/// one the lease pins, else (a lease from before pinning) the submitted
/// module's for `wasm_execution`, or the hash the node advertises now.
pub fn expected_kernel(
    db: &Db,
    lease: &greenmesh_protocol::Lease,
    node: &crate::greenmesh::marketplace::types::Node,
) -> Result<Option<String>, ApiError> {
    if lease.kernel_sha256.is_some() {
        return Ok(lease.kernel_sha256.clone());
    }
    // A lease made before kernels were pinned.
    if lease.capability == "wasm_execution" {
        return module_hash(db, &lease.task_id);
    }
    Ok(node
        .capabilities
        .iter()
        .find(|c| c.name == lease.capability)
        .and_then(|c| c.sha256.clone()))
}

/// How a new task enters the queue.
pub struct Entry<'a> {
    /// SQL for its fair-queue key, and the parameters it binds (`queue.rs`).
    pub fair_key: (&'a str, Vec<greenmesh_storage::Value>),
    pub deadline_at: u64,
    /// Ready for the next dispatch pass; otherwise waiting until `wake_at`.
    pub ready: bool,
    pub wake_at: Option<u64>,
    /// `queued`, or `running` for a group task (its members are queued).
    pub status: &'static str,
    /// A member's group and shard.
    pub group: Option<(&'a str, u32)>,
}

/// Stores a validated task as `queued`.
pub fn insert(
    db: &Db,
    user: &User,
    id: &str,
    task: &NewTask,
    entry: Entry<'_>,
) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    let stored = json!({
        "request": task.request,
        "input": task.input_text,
    });
    let (key_expr, key_params) = entry.fair_key;
    let mut params = vec![
        text(id),
        text(user.id.clone()),
        text(task.task_type.clone()),
        text(task.capability.clone()),
        text(stored.to_string()),
        text(task.input_sha256.clone()),
        int(task.input_bytes),
        real(task.request.max_price),
        int(now),
        int(now),
        int(entry.deadline_at),
        int(entry.ready as u64),
        entry
            .wake_at
            .map(int)
            .unwrap_or(greenmesh_storage::Value::Null),
        task.kernel_sha256
            .clone()
            .map(text)
            .unwrap_or(greenmesh_storage::Value::Null),
        text(entry.status),
        opt_text(entry.group.map(|(g, _)| g)),
        entry
            .group
            .map(|(_, shard)| int(shard as u64))
            .unwrap_or(greenmesh_storage::Value::Null),
    ];
    params.extend(key_params);
    db.exec(
        &format!(
            "INSERT OR IGNORE INTO broker_tasks (id, owner, task_type, capability, reason, body, input_sha256,
                 input_bytes, max_price, created_at, updated_at, deadline_at, ready, wake_at, kernel_sha256,
                 status, group_id, shard, fair_key)
             VALUES (?, ?, ?, ?, 'awaiting dispatch', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {key_expr})"
        ),
        &params,
    )
}

/// A task as the API shows it; `None` if absent.
pub fn view(db: &Db, id: &str) -> Result<Option<Value>, ApiError> {
    let rows = db.query(
        "SELECT id, owner, task_type, capability, status, reason, node_id, lease_id, price, decision, result,
                attempts, created_at, updated_at, ready, wake_at, deadline_at, decisions, group_id,
                verification, check_of
         FROM broker_tasks WHERE id = ?",
        &[text(id)],
    )?;
    let Some(r) = rows.rows.first() else {
        return Ok(None);
    };
    let policy = crate::domain::policy::get(db, id)?.map(|p| p.to_json());
    let parse = |i: usize| {
        r.get::<&str>(i)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    let mut status = r.get::<&str>(4).unwrap_or_default();
    let mut reason = r.get::<&str>(5).map(str::to_string);
    let capability = r.get::<&str>(3).unwrap_or_default();
    // A group shows its members, and while they run, how far they are.
    let group = crate::domain::groups::spec(db, id)?;
    let members = match &group {
        Some(_) => crate::domain::groups::members(db, id)?,
        None => Vec::new(),
    };
    if let (Some(spec), "running") = (&group, status) {
        let (shown, why) = crate::domain::groups::progress(spec, &members);
        status = shown;
        reason = Some(why);
    }
    let queue = (status == "queued" && group.is_none()).then(|| {
        let deadline = r.get::<i64>(16).unwrap_or(0).max(0) as u64;
        let wake_at = r.get::<i64>(15).map(|t| t.max(0) as u64);
        let (state, wakes_on) = match (r.get::<i64>(14), wake_at) {
            (Some(1), _) => ("ready", Value::Null),
            (_, Some(_)) => ("waiting", Value::Null),
            _ => (
                "parked",
                json!(format!(
                    "a node offering {capability} registers, changes its offers or energy, or frees capacity"
                )),
            ),
        };
        json!({
            "state": state,
            "decisions": r.get::<i64>(17).unwrap_or(0),
            "wake_at": wake_at,
            "wakes_on": wakes_on,
            "deadline_at": deadline,
            "deadline_at_iso": crate::util::iso8601(deadline),
        })
    });
    let mut v = json!({
        "id": r.get::<&str>(0),
        "owner": r.get::<&str>(1),
        "task_type": r.get::<&str>(2),
        "capability": capability,
        "status": status,
        "reason": reason,
        "node_id": r.get::<&str>(6),
        "lease_id": r.get::<&str>(7),
        "price": r.get::<f64>(8),
        "decision": parse(9),
        "result": parse(10),
        "attempts": r.get::<i64>(11),
        "created_at": r.get::<i64>(12),
        "updated_at": r.get::<i64>(13),
        "queue": queue,
        "governance": policy,
    });
    if let Some(spec) = &group {
        v["group"] = json!({
            "kind": spec.kind.as_str(),
            "shards": spec.shards,
            "replicas": spec.replicas,
            "max_replicas": spec.max_replicas,
            "require_proof": spec.proof,
            "members": crate::domain::groups::members_json(&members),
        });
    }
    if let Some(group_id) = r.get::<&str>(18) {
        v["group_id"] = json!(group_id);
    }
    // A deterministic result spot-checked on another owner's node.
    if let Some(verification) = parse(19) {
        v["verification"] = verification;
    }
    if let Some(checked) = r.get::<&str>(20) {
        v["check_of"] = json!(checked);
    }
    // A zk_proof task's proof as the broker verified it.
    if capability == crate::domain::zk::CAPABILITY {
        if let Some(zk) = crate::domain::zk::view(db, id)? {
            v["zk"] = zk;
        }
    }
    Ok(Some(v))
}

/// The task `id` if `user` owns it; someone else's task is
/// indistinguishable from a missing one.
pub fn owned_view(db: &Db, user: &User, id: &str) -> Result<Value, ApiError> {
    match view(db, id)? {
        Some(v) if v["owner"] == user.id.as_str() => Ok(v),
        _ => Err(ApiError::not_found(format!("no task {id}"))),
    }
}

/// Terminal states: the task will not change any more.
pub fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// `user`'s tasks (only those in `status`, unless empty), newest first.
pub fn list(db: &Db, user: &User, status: &str) -> Result<Vec<Value>, ApiError> {
    let rows = db.query(
        "SELECT id FROM broker_tasks WHERE owner = ? AND group_id IS NULL AND check_of IS NULL
             AND (? = '' OR status = ? OR (status = 'running' AND ? IN ('queued', 'leased')))
         ORDER BY created_at DESC LIMIT 200",
        &[
            text(user.id.clone()),
            text(status),
            text(status),
            text(status),
        ],
    )?;
    let mut tasks = Vec::new();
    for r in &rows.rows {
        if let Some(v) = view(db, r.get::<&str>(0).unwrap_or_default())? {
            // A running group shows as queued or leased: filter on that.
            if status.is_empty() || v["status"] == status {
                tasks.push(v);
            }
        }
    }
    Ok(tasks)
}

/// The columns the lifecycle reads to settle a task.
#[derive(Debug, Clone)]
pub struct State {
    pub status: String,
    pub owner: String,
    pub lease_id: Option<String>,
    pub reason: Option<String>,
    /// False while a broker-made end still has effects to apply.
    pub settled: bool,
}

/// The task's [`State`], if it exists.
pub fn state(db: &Db, id: &str) -> Result<Option<State>, ApiError> {
    let rows = db.query(
        "SELECT status, owner, lease_id, reason, settled FROM broker_tasks WHERE id = ?",
        &[text(id)],
    )?;
    Ok(rows.rows.first().map(|r| State {
        status: r.get::<&str>(0).unwrap_or_default().to_string(),
        owner: r.get::<&str>(1).unwrap_or_default().to_string(),
        lease_id: r.get::<&str>(2).map(str::to_string),
        reason: r.get::<&str>(3).map(str::to_string),
        settled: r.get::<i64>(4) != Some(0),
    }))
}

/// `queued` → `leased` under `lease_id` to `node_id` of `node_owner`, if
/// the task is still queued and, for a group member, its group still
/// running, no other replica of its shard on a node of the same owner, and
/// (for a shard's first replica) no other shard's first replica on the
/// node: the commit point of a new lease. Answers whether it happened.
pub fn mark_leased(
    db: &Db,
    id: &str,
    lease_id: &str,
    (node_id, node_owner): (&str, &str),
    price: f64,
    decision: &Value,
) -> Result<bool, ApiError> {
    let rows = db.query(
        "UPDATE broker_tasks SET status = 'leased', reason = NULL, node_id = ?1, node_owner = ?2, lease_id = ?3,
             price = ?4, decision = ?5, attempts = attempts + 1, ready = 0, wake_at = NULL, updated_at = ?6
         WHERE id = ?7 AND status = 'queued' AND (group_id IS NULL OR (
             EXISTS (SELECT 1 FROM broker_tasks g WHERE g.id = broker_tasks.group_id AND g.status = 'running')
             AND NOT EXISTS (SELECT 1 FROM broker_tasks s JOIN broker_groups gr ON gr.task_id = s.group_id
                 WHERE s.group_id = broker_tasks.group_id AND s.shard = broker_tasks.shard AND s.id != ?7
                   AND gr.replicas > 1 AND s.status IN ('leased', 'completed') AND s.node_owner = ?2)
             AND (broker_tasks.id NOT LIKE '%-r0'
                  OR (SELECT kind FROM broker_groups gr WHERE gr.task_id = broker_tasks.group_id) = 'federated'
                  OR NOT EXISTS (SELECT 1 FROM broker_tasks s
                 WHERE s.group_id = broker_tasks.group_id AND s.id != ?7 AND s.id LIKE '%-r0'
                   AND s.status IN ('leased', 'completed') AND s.node_id = ?1))))
         RETURNING id",
        &[
            text(node_id),
            text(node_owner),
            text(lease_id),
            real(price),
            text(decision.to_string()),
            int(crate::util::now_ms()),
            text(id),
        ],
    )?;
    Ok(!rows.rows.is_empty())
}

/// A running group → `completed` or `failed` with its result and what its
/// members' runs cost: the commit point of a group's end. Answers whether
/// this call made it (the group is left unsettled for its effects).
pub fn finish_group(
    db: &Db,
    id: &str,
    status: &str,
    reason: Option<&str>,
    result: &Value,
    price: f64,
) -> Result<bool, ApiError> {
    let rows = db.query(
        "UPDATE broker_tasks SET status = ?, reason = ?, result = ?, price = ?, settled = 0, updated_at = ?
         WHERE id = ? AND status = 'running' RETURNING id",
        &[
            text(status),
            opt_text(reason),
            text(result.to_string()),
            real(price),
            int(crate::util::now_ms()),
            text(id),
        ],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Marks task `id` as having effects to apply (a member's end owes its
/// group a look).
pub fn unsettle(db: &Db, id: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET settled = 0 WHERE id = ?",
        &[text(id)],
    )
}

/// `leased` under `lease_id` → `completed` or `failed` with the node's
/// result (a receipt). No-op once done, or if the task moved on.
pub fn finish(
    db: &Db,
    id: &str,
    lease_id: &str,
    status: &str,
    reason: Option<&str>,
    result: &str,
) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET status = ?, reason = ?, result = ?, updated_at = ?
         WHERE id = ? AND lease_id = ? AND status = 'leased'",
        &[
            text(status),
            opt_text(reason),
            text(result),
            int(crate::util::now_ms()),
            text(id),
            text(lease_id),
        ],
    )
}

/// How a lease that ended without a result counts against its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The node took the attempt (expired, refused, stopped): after
    /// [`MAX_ATTEMPTS`] the task fails.
    Counted,
    /// The broker stopped it (interrupted, vetoed): the attempt is given back.
    GivenBack,
}

/// `leased` under `lease_id` → back in the queue, ready, for a retry that
/// may start up to `retry_ms` from now even past the original deadline;
/// or `failed` (unsettled, for the lifecycle to give its quota back) once
/// a counted attempt was the last. No-op if the task moved on.
pub fn requeue(
    db: &Db,
    id: &str,
    lease_id: &str,
    reason: &str,
    attempt: Attempt,
    retry_ms: u64,
) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    let gives_up = match attempt {
        Attempt::Counted => format!("attempts >= {MAX_ATTEMPTS}"),
        Attempt::GivenBack => "1 = 0".to_string(),
    };
    let attempts = match attempt {
        Attempt::Counted => "attempts",
        Attempt::GivenBack => "MAX(attempts - 1, 0)",
    };
    db.exec(
        &format!(
            "UPDATE broker_tasks SET
                 status = CASE WHEN {gives_up} THEN 'failed' ELSE 'queued' END,
                 reason = CASE WHEN {gives_up} THEN ?1 || ' (gave up after ' || attempts || ' attempts)' ELSE ?1 END,
                 settled = CASE WHEN {gives_up} THEN 0 ELSE 1 END,
                 lease_id = CASE WHEN {gives_up} THEN lease_id END,
                 node_id = CASE WHEN {gives_up} THEN node_id END,
                 attempts = {attempts}, ready = 1, wake_at = NULL, claim_until = NULL,
                 deadline_at = MAX(COALESCE(deadline_at, 0), ?2), updated_at = ?3
             WHERE id = ?4 AND lease_id = ?5 AND status = 'leased'"
        ),
        &[
            text(reason),
            int(now + retry_ms),
            int(now),
            text(id),
            text(lease_id),
        ],
    )
}

/// `queued`, `leased` or (a group) `running` → `cancelled` for `reason`
/// (unsettled: the lifecycle ends its lease, or its members, and gives its
/// quota back). Answers whether it happened.
pub fn cancel(db: &Db, id: &str, reason: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        "UPDATE broker_tasks SET status = 'cancelled', reason = ?, settled = 0,
             ready = 0, wake_at = NULL, updated_at = ?
         WHERE id = ? AND status IN ('queued', 'leased', 'running') RETURNING id",
        &[text(reason), int(crate::util::now_ms()), text(id)],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Queued tasks whose deadline passed → `failed` (unsettled); answers their ids.
pub fn fail_overdue(db: &Db, now: u64, limit: u32) -> Result<Vec<String>, ApiError> {
    let overdue = db.query(
        "SELECT id FROM broker_tasks WHERE status = 'queued' AND deadline_at < ? LIMIT ?",
        &[int(now), int(limit as u64)],
    )?;
    let mut failed = Vec::new();
    for r in &overdue.rows {
        let id = r.get::<&str>(0).unwrap_or_default();
        let rows = db.query(
            "UPDATE broker_tasks SET status = 'failed', settled = 0, ready = 0, wake_at = NULL, updated_at = ?1,
                 reason = 'not started by its deadline (' || COALESCE(reason, 'no node took it') || ')'
             WHERE id = ?2 AND status = 'queued' AND deadline_at < ?1 RETURNING id",
            &[int(now), text(id)],
        )?;
        if !rows.rows.is_empty() {
            failed.push(id.to_string());
        }
    }
    Ok(failed)
}

/// Tasks whose broker-made end still has effects to apply.
pub fn unsettled(db: &Db, limit: u32) -> Result<Vec<String>, ApiError> {
    let rows = db.query(
        "SELECT id FROM broker_tasks WHERE settled = 0 ORDER BY updated_at LIMIT ?",
        &[int(limit as u64)],
    )?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| r.get::<&str>(0).map(str::to_string))
        .collect())
}

/// Records that a task's effects are applied.
pub fn mark_settled(db: &Db, id: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET settled = 1 WHERE id = ? AND settled = 0",
        &[text(id)],
    )
}

#[cfg(test)]
mod tests {
    use super::module_sha256;

    #[test]
    fn a_module_hashes_as_a_node_decodes_it() {
        // "AGFzbQ==" is the four bytes "\0asm".
        assert_eq!(
            module_sha256(" AGFzbQ==\n"),
            Ok(greenmesh_protocol::sha256_hex(b"\0asm"))
        );
        assert!(module_sha256("not base64!").is_err());
    }
}
