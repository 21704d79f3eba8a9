//! Task groups: a task that asks for `min_nodes > 1`, `inputs.shards` or
//! `require_proof` runs as members, each a task of its own with the usual
//! lease lifecycle, queue place and retries (ADR 0018).
//!
//! - **Shards**: `inputs.shards: [ … ]` gives one member per entry, each
//!   with that entry's inputs (over the task's other inputs); the result
//!   lists the outputs in shard order.
//! - **Replicas**: without shards, `min_nodes = N` runs N replicas of the
//!   same input, in deterministic mode, and compares their outputs
//!   (`quorum`). `require_proof` asks for at least two replicas of every
//!   shard and a signed proof bundle of the agreement.
//!
//! Replicas of one shard run on nodes of distinct owners, and the shards'
//! first replicas on distinct nodes (so N shards need N nodes); both are
//! checked when a member is decided and again by the statement that leases
//! it (`tasks::mark_leased`). Further replicas prefer the nodes holding the
//! fewest members of the group. This module owns the
//! group's rows; how a member's end moves the group is
//! `lifecycle::group`'s.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use crate::model::{Sla, TaskRequest};
use serde_json::{json, Value};

/// Replicas a disagreement may add to a shard beyond those asked for.
pub const MAX_EXTRA_REPLICAS: u32 = 3;

/// An added replica may start this long from when it is added, even past
/// its siblings' deadline.
const REPLICA_START_MS: u64 = 30 * 60_000;

/// Shards a task may have (as `min_nodes`).
pub const MAX_SHARDS: usize = 100;

/// How a group is laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// One entry per shard; `None`: one shard, the task's own inputs.
    pub shards: Option<Vec<Value>>,
    /// Members per shard at first.
    pub replicas: u32,
    /// Members per shard at most, after disagreements.
    pub max_replicas: u32,
    /// A proof bundle is owed.
    pub proof: bool,
}

impl Shape {
    /// How many shards.
    pub fn shard_count(&self) -> u32 {
        self.shards.as_ref().map_or(1, |s| s.len() as u32)
    }

    /// The nodes of distinct owners a shard's replicas need.
    pub fn owners_needed(&self) -> u32 {
        self.replicas
    }
}

/// The group a request asks for, if any; a request no group can serve is
/// refused naming the field.
pub fn shape(request: &TaskRequest, sla: Sla) -> Result<Option<Shape>, ApiError> {
    let r = &request.requirements;
    // Federated members train on different data: they are rounds, not
    // replicas or shards (matching parks them until rounds run).
    if request.task_type == "federated_learning" {
        return Ok(None);
    }
    let shards = match request.inputs.get("shards") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            if list.is_empty() || list.len() > MAX_SHARDS {
                return Err(ApiError::invalid(
                    "inputs.shards",
                    format!("inputs.shards must list 1 to {MAX_SHARDS} shards"),
                ));
            }
            if let Some(i) = list.iter().position(|s| !s.is_object()) {
                return Err(ApiError::invalid(
                    format!("inputs.shards[{i}]"),
                    "each shard is a JSON object of inputs, in the task type's usual shape",
                ));
            }
            if r.min_nodes > 1 && r.min_nodes as usize != list.len() {
                return Err(ApiError::invalid(
                    "requirements.min_nodes",
                    format!(
                        "min_nodes is {} but inputs.shards has {} entries: each shard runs on its own node, \
                         so leave min_nodes out or make it the number of shards",
                        r.min_nodes,
                        list.len()
                    ),
                ));
            }
            Some(list.clone())
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "inputs.shards",
                "inputs.shards must be an array of input objects, one per node",
            ))
        }
    };
    let replicas = match &shards {
        Some(_) => 1,
        None => r.min_nodes,
    }
    .max(if r.require_proof { 2 } else { 1 });
    if shards.is_none() && replicas == 1 {
        return Ok(None);
    }
    if replicas > 1 && crate::domain::schedule::own_source(sla).is_some() {
        return Err(ApiError::invalid(
            "sla",
            format!(
                "{sla} runs only on your own nodes, but replicas (min_nodes or require_proof) \
                 must run on nodes of distinct owners"
            ),
        ));
    }
    Ok(Some(Shape {
        shards,
        replicas,
        max_replicas: if replicas > 1 {
            replicas + MAX_EXTRA_REPLICAS
        } else {
            1
        },
        proof: r.require_proof,
    }))
}

/// What member `shard` of a group of `request` is asked: the shard's
/// inputs over the task's other inputs, on one node, deterministic when
/// replicated (so honest replicas agree byte for byte).
pub fn member_request(request: &TaskRequest, shape: &Shape, shard: u32) -> TaskRequest {
    let mut member = request.clone();
    if let Some(shards) = &shape.shards {
        let mut inputs = request.inputs.as_object().cloned().unwrap_or_default();
        inputs.remove("shards");
        if let Some(Value::Object(own)) = shards.get(shard as usize) {
            inputs.extend(own.clone());
        }
        member.inputs = Value::Object(inputs);
    }
    member.requirements.min_nodes = 1;
    member.requirements.require_proof = false;
    member.requirements.deterministic |= shape.replicas > 1;
    member
}

/// Member ids: the group's, its shard and replica (replicas added after a
/// disagreement get the next number, so racing requests add one row).
pub fn member_id(group_id: &str, shard: u32, replica: u32) -> String {
    format!("{group_id}-s{shard}-r{replica}")
}

/// Records the group's shape.
pub fn insert(db: &Db, task_id: &str, shape: &Shape, capability: &str) -> Result<(), ApiError> {
    insert_row(
        db,
        task_id,
        (shape.shard_count(), shape.replicas, shape.max_replicas),
        shape.proof,
        capability,
        Kind::Replicas,
    )
}

/// Records a federated group: `rounds` rounds of `members` members.
pub fn insert_federated(
    db: &Db,
    task_id: &str,
    (rounds, members): (u32, u32),
    proof: bool,
    capability: &str,
) -> Result<(), ApiError> {
    insert_row(
        db,
        task_id,
        (rounds, members, members),
        proof,
        capability,
        Kind::Federated,
    )
}

fn insert_row(
    db: &Db,
    task_id: &str,
    (shards, replicas, max_replicas): (u32, u32, u32),
    proof: bool,
    capability: &str,
    kind: Kind,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT INTO broker_groups (task_id, shards, replicas, max_replicas, proof, capability, kind)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            text(task_id),
            int(shards as u64),
            int(replicas as u64),
            int(max_replicas as u64),
            int(proof as u64),
            text(capability),
            text(kind.as_str()),
        ],
    )
}

/// What a group's members are to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Shards and their replicas, compared by the quorum rule.
    Replicas,
    /// Rounds of federated training: attempt a at round r is shard
    /// `federated::shard_of(r, a)`; its members train on their own rows
    /// and their masked updates are summed.
    Federated,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Replicas => "replicas",
            Kind::Federated => "federated",
        }
    }
}

/// A stored group's shape (its shards' inputs are in the members).
#[derive(Debug, Clone)]
pub struct Spec {
    pub shards: u32,
    pub replicas: u32,
    pub max_replicas: u32,
    pub proof: bool,
    pub capability: String,
    pub kind: Kind,
}

/// The group task `task_id` is, if it is one.
pub fn spec(db: &Db, task_id: &str) -> Result<Option<Spec>, ApiError> {
    let rows = db.query(
        "SELECT shards, replicas, max_replicas, proof, capability, kind FROM broker_groups WHERE task_id = ?",
        &[text(task_id)],
    )?;
    Ok(rows.rows.first().map(|r| Spec {
        shards: r.get::<i64>(0).unwrap_or(1) as u32,
        replicas: r.get::<i64>(1).unwrap_or(1) as u32,
        max_replicas: r.get::<i64>(2).unwrap_or(1) as u32,
        proof: r.get::<i64>(3) == Some(1),
        capability: r.get::<&str>(4).unwrap_or_default().to_string(),
        kind: match r.get::<&str>(5) {
            Some("federated") => Kind::Federated,
            _ => Kind::Replicas,
        },
    }))
}

/// One member task, as the group sees it.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub shard: u32,
    pub status: String,
    pub reason: Option<String>,
    pub node_id: Option<String>,
    pub node_owner: Option<String>,
    pub lease_id: Option<String>,
    pub price: Option<f64>,
    /// `{output, receipt}` once it completed or failed with a receipt.
    pub result: Option<Value>,
    pub decision: Option<Value>,
    pub input_sha256: String,
    /// When it was added (a federated round opens when its members are).
    pub created_at: u64,
}

impl Member {
    /// The receipt's output hash, if it reported one.
    pub fn output_sha256(&self) -> Option<&str> {
        self.result.as_ref()?["receipt"]["output_sha256"].as_str()
    }
}

/// The members of group `group_id`, by shard, then in the order added.
pub fn members(db: &Db, group_id: &str) -> Result<Vec<Member>, ApiError> {
    let rows = db.query(
        "SELECT id, shard, status, reason, node_id, node_owner, lease_id, price, result, decision, input_sha256,
                created_at
         FROM broker_tasks WHERE group_id = ? ORDER BY shard, created_at, id",
        &[text(group_id)],
    )?;
    let parse = |r: &greenmesh_storage::RowResult, i: usize| {
        r.get::<&str>(i)
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
    };
    Ok(rows
        .rows
        .iter()
        .map(|r| Member {
            id: r.get::<&str>(0).unwrap_or_default().to_string(),
            shard: r.get::<i64>(1).unwrap_or(0).max(0) as u32,
            status: r.get::<&str>(2).unwrap_or_default().to_string(),
            reason: r.get::<&str>(3).map(str::to_string),
            node_id: r.get::<&str>(4).map(str::to_string),
            node_owner: r.get::<&str>(5).map(str::to_string),
            lease_id: r.get::<&str>(6).map(str::to_string),
            price: r.get::<f64>(7),
            result: parse(r, 8),
            decision: parse(r, 9),
            input_sha256: r.get::<&str>(10).unwrap_or_default().to_string(),
            created_at: r.get::<i64>(11).unwrap_or(0).max(0) as u64,
        })
        .collect())
}

/// The group and shard of member `task_id`, if it is a member.
pub fn of_member(db: &Db, task_id: &str) -> Result<Option<(String, u32)>, ApiError> {
    let rows = db.query(
        "SELECT group_id, shard FROM broker_tasks WHERE id = ? AND group_id IS NOT NULL",
        &[text(task_id)],
    )?;
    Ok(rows.rows.first().map(|r| {
        (
            r.get::<&str>(0).unwrap_or_default().to_string(),
            r.get::<i64>(1).unwrap_or(0).max(0) as u32,
        )
    }))
}

/// Where member `task_id` of `group_id` may go: what it must avoid and
/// where it would rather not be.
#[derive(Debug, Clone, Default)]
pub struct Spread {
    /// Owners already running (or having run) a replica of its shard, with why.
    pub owners: Vec<(String, String)>,
    /// Nodes it may not have, with why: for a shard's first replica, the
    /// nodes holding another shard's first replica (so N shards run on N
    /// distinct nodes, as `min_nodes` asks).
    pub nodes: Vec<(String, String)>,
    /// Members of the group each busy node holds: fewer is better, so
    /// further replicas spread over the nodes without a hard cap (a cap
    /// could deadlock placement when owners are unevenly spread).
    pub load: Vec<(String, u32)>,
}

/// Whether member id `task_id` is its shard's first replica.
fn is_first_replica(task_id: &str) -> bool {
    task_id.ends_with("-r0")
}

/// The [`Spread`] of member `task_id` of `group_id`, shard `shard`.
pub fn spread(db: &Db, group_id: &str, shard: u32, task_id: &str) -> Result<Spread, ApiError> {
    let Some(spec) = spec(db, group_id)? else {
        return Ok(Spread::default());
    };
    let mut out = Spread::default();
    // (Federated rounds reuse nodes round after round.)
    let first = is_first_replica(task_id) && spec.kind == Kind::Replicas;
    let busy = members(db, group_id)?
        .into_iter()
        .filter(|m| m.id != task_id && matches!(m.status.as_str(), "leased" | "completed"));
    for m in busy {
        if let (Some(owner), true) = (&m.node_owner, m.shard == shard && spec.replicas > 1) {
            if !out.owners.iter().any(|(o, _)| o == owner) {
                out.owners.push((
                    owner.clone(),
                    format!("its owner already runs a replica of shard {shard} of this task"),
                ));
            }
        }
        let Some(node) = m.node_id else { continue };
        if first && is_first_replica(&m.id) && !out.nodes.iter().any(|(n, _)| *n == node) {
            out.nodes.push((
                node.clone(),
                format!("it already runs shard {} of this task", m.shard),
            ));
        }
        match out.load.iter_mut().find(|(n, _)| *n == node) {
            Some((_, k)) => *k += 1,
            None => out.load.push((node, 1)),
        }
    }
    Ok(out)
}

/// Adds replica number `replica` to `shard` of group `group_id`, a copy of
/// the shard's first member, ready for the next dispatch pass at the
/// members' place in the queue. Answers whether this call added it (racing
/// judges add one row: the id is the replica's number).
pub fn add_replica(db: &Db, group_id: &str, shard: u32, replica: u32) -> Result<bool, ApiError> {
    let id = member_id(group_id, shard, replica);
    let now = crate::util::now_ms();
    let rows = db.query(
        "INSERT OR IGNORE INTO broker_tasks (id, owner, task_type, capability, status, reason, body, input_sha256,
             input_bytes, max_price, created_at, updated_at, deadline_at, ready, wake_at, kernel_sha256,
             group_id, shard, fair_key)
         SELECT ?1, owner, task_type, capability, 'queued', 'a replica added after its shard disagreed', body,
                input_sha256, input_bytes, max_price, ?2, ?2, MAX(deadline_at, ?2 + ?3), 1, NULL, kernel_sha256, group_id, shard, fair_key
         FROM broker_tasks WHERE group_id = ?4 AND shard = ?5 ORDER BY created_at LIMIT 1
         RETURNING id, owner",
        &[
            text(id.clone()),
            int(now),
            int(REPLICA_START_MS),
            text(group_id),
            int(shard as u64),
        ],
    )?;
    let Some(owner) = rows.rows.first().and_then(|r| r.get::<&str>(1)) else {
        return Ok(false);
    };
    crate::domain::carbon::record_baseline(db, &id, owner)?;
    Ok(true)
}

/// How the group shows its members: per member, its shard, status, node,
/// price, output hash and why its node was chosen.
pub fn members_json(members: &[Member]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| {
                json!({
                    "task_id": m.id,
                    "shard": m.shard,
                    "status": m.status,
                    "reason": m.reason,
                    "node_id": m.node_id,
                    "node_owner": m.node_owner,
                    "lease_id": m.lease_id,
                    "price": m.price,
                    "output_sha256": m.output_sha256(),
                    "why_chosen": m.decision.as_ref().map(|d| d["chosen"]["why"].clone()),
                    "declined": m.decision.as_ref().map(|d| d["declined"].clone()),
                })
            })
            .collect(),
    )
}

/// The status and reason a running group shows: `queued` while a member
/// waits for a node (saying how many owners' nodes it needs), `leased`
/// once every member has one.
pub fn progress(spec: &Spec, members: &[Member]) -> (&'static str, String) {
    // A federated group is as far as its latest round's latest attempt.
    let shard = members.iter().map(|m| m.shard).max().unwrap_or(0);
    let round = crate::domain::federated::round_of(shard);
    let members: Vec<Member> = match spec.kind {
        Kind::Federated => members
            .iter()
            .filter(|m| m.shard == shard)
            .cloned()
            .collect(),
        Kind::Replicas => members.to_vec(),
    };
    let members = &members[..];
    let waiting: Vec<&Member> = members.iter().filter(|m| m.status == "queued").collect();
    let done = members
        .iter()
        .filter(|m| crate::domain::tasks::is_terminal(&m.status))
        .count();
    let prefix = match spec.kind {
        Kind::Federated => format!("round {} of {}: ", round + 1, spec.shards),
        Kind::Replicas => String::new(),
    };
    let Some(first) = waiting.first() else {
        return (
            "leased",
            format!("{prefix}{done} of {} member run(s) reported", members.len()),
        );
    };
    let needs = if spec.replicas > 1 {
        format!(
            "needs nodes of {} distinct owners offering {} for each shard",
            spec.replicas, spec.capability
        )
    } else {
        format!(
            "needs {} distinct nodes offering {}",
            spec.shards, spec.capability
        )
    };
    (
        "queued",
        format!(
            "{prefix}{} of {} member(s) placed; {needs}; waiting: {}",
            members.len() - waiting.len(),
            members.len(),
            first.reason.as_deref().unwrap_or("awaiting dispatch")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(v: Value) -> TaskRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn min_nodes_replicates_shards_split_and_proof_doubles() {
        let r = request(json!({ "task_type": "computation" }));
        assert_eq!(shape(&r, Sla::Normal).unwrap(), None);
        let r = request(json!({ "task_type": "computation", "requirements": { "min_nodes": 3 } }));
        let s = shape(&r, Sla::Normal).unwrap().unwrap();
        assert_eq!((s.shard_count(), s.replicas, s.max_replicas), (1, 3, 6));
        let r = request(
            json!({ "task_type": "computation", "requirements": { "require_proof": true } }),
        );
        let s = shape(&r, Sla::Normal).unwrap().unwrap();
        assert_eq!((s.replicas, s.proof), (2, true));
        let r = request(json!({ "task_type": "computation",
            "inputs": { "steps": 5, "shards": [{ "x": 1 }, { "x": 2, "steps": 7 }] } }));
        let s = shape(&r, Sla::Normal).unwrap().unwrap();
        assert_eq!((s.shard_count(), s.replicas, s.max_replicas), (2, 1, 1));
        let m = member_request(&r, &s, 1);
        assert_eq!(m.inputs, json!({ "steps": 7, "x": 2 }));
        assert!(
            !m.requirements.deterministic,
            "an unreplicated shard runs as asked"
        );
    }

    #[test]
    fn shapes_no_group_can_serve_are_refused_naming_the_field() {
        let field = |v: Value, sla: Sla| shape(&request(v), sla).unwrap_err().field.unwrap();
        assert_eq!(
            field(
                json!({ "task_type": "computation", "inputs": { "shards": [{}, {}] },
                        "requirements": { "min_nodes": 3 } }),
                Sla::Normal
            ),
            "requirements.min_nodes"
        );
        assert_eq!(
            field(
                json!({ "task_type": "computation", "inputs": { "shards": [1] } }),
                Sla::Normal
            ),
            "inputs.shards[0]"
        );
        assert_eq!(
            field(
                json!({ "task_type": "computation", "inputs": { "shards": {} } }),
                Sla::Normal
            ),
            "inputs.shards"
        );
        assert_eq!(
            field(
                json!({ "task_type": "computation", "requirements": { "min_nodes": 2 } }),
                Sla::SolarOnly
            ),
            "sla"
        );
    }
}
