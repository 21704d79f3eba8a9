//! Choosing a provider: search the marketplace, quote each offer, weigh
//! cost, reputation and availability, and explain the choice.
//!
//! score = 0.5 · (1 − price / max_price) + 0.3 · reputation + 0.2 · (1 − load)
//! over offers whose quote is within `max_price` for urgent tasks; for every
//! other SLA clean energy weighs in:
//! 0.3 · price + 0.2 · reputation + 0.1 · (1 − load) + 0.4 · (1 − intensity / dirtiest),
//! and patient SLAs may wait for a cleaner slot ([`crate::schedule`]).
//!
//! Governance narrows the search first ([`Placement`]): nodes whose owners
//! granted the requester the task count as allowed, a vetoed task only sees
//! its owner's nodes, and an eco task only nodes with clean energy.

use crate::api::ApiError;
use crate::db::{int, text, Db};
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types as mt;
use crate::greenmesh::pricing::quotes;
use crate::greenmesh::reputation::scores;
use crate::tasks::TaskRequest;
use serde_json::{json, Value};

/// Score weights (price, reputation, availability, clean energy) for urgent
/// tasks, and for every SLA that prefers clean energy.
const WEIGHTS_URGENT: [f64; 4] = [0.5, 0.3, 0.2, 0.0];
const WEIGHTS_CLEAN: [f64; 4] = [0.3, 0.2, 0.1, 0.4];

/// Offers considered per decision: the cheapest, least-loaded eligible ones
/// (the marketplace finds them through an index, so a decision costs the same
/// with ten nodes or ten thousand).
const TOP_OFFERS: u32 = 16;

/// Queue depth is counted up to this many tasks (see `queued_count`).
const QUEUE_COUNT_CAP: u64 = 1024;

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

thread_local! {
    /// Queue depth per capability, counted once per request: a heartbeat
    /// re-decides up to 50 tasks and the depth barely moves meanwhile.
    static QUEUED: std::cell::RefCell<std::collections::HashMap<String, u32>> = Default::default();
}

fn queued_count(db: &Db, capability: &str) -> Result<u32, ApiError> {
    if let Some(n) = QUEUED.with(|q| q.borrow().get(capability).copied()) {
        return Ok(n);
    }
    // Counted up to a cap: pricing's demand factor saturates long before it,
    // and an uncapped count would cost O(queue) per decision.
    let rows = db.query(
        "SELECT COUNT(*) FROM (SELECT 1 FROM broker_tasks WHERE status = 'queued' AND capability = ? LIMIT ?)",
        &[text(capability), int(QUEUE_COUNT_CAP)],
    )?;
    let n = rows.rows.first().and_then(|r| r.get::<i64>(0)).unwrap_or(0) as u32;
    QUEUED.with(|q| q.borrow_mut().insert(capability.to_string(), n));
    Ok(n)
}

/// Where a task may go, from its policy and its owner's grants.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    pub granted_nodes: Vec<String>,
    /// Only this owner's nodes (a vetoed delegation).
    pub owner: Option<String>,
    /// Only nodes with at least this clean share (eco mode).
    pub min_clean_share: f32,
    /// The SLA the task runs under, when it was submitted, and how long it
    /// is expected to run (its time limit).
    pub sla: String,
    pub created_at: u64,
    pub expected_ms: u64,
}

impl Placement {
    /// For a task of `owner` named by `capability` (and `name`) under
    /// `policy`, submitted at `created_at`.
    pub fn new(
        db: &Db,
        owner: &str,
        request: &TaskRequest,
        capability: &str,
        policy: &crate::policy::Policy,
        created_at: u64,
    ) -> Result<Self, ApiError> {
        let mut names = vec![capability];
        names.extend(request.name.as_deref());
        let own_node_only = policy.owner_only || crate::schedule::own_source(&policy.sla).is_some();
        Ok(Self {
            sla: policy.sla.clone(),
            created_at,
            expected_ms: request.requirements.max_execution_time_sec as u64 * 1000,
            granted_nodes: crate::grants::granted_nodes(db, owner, &names)?,
            owner: own_node_only.then(|| owner.to_string()),
            min_clean_share: if policy.sla == "eco" {
                crate::policy::eco_min_clean_share()
            } else {
                0.0
            },
        })
    }
}

/// Matches a task against the marketplace; `exclude` are nodes that already failed it.
pub fn decide_excluding(
    db: &Db,
    capability: &str,
    request: &TaskRequest,
    input_bytes: u64,
    placement: &Placement,
    exclude: &[String],
) -> Result<Decision, ApiError> {
    let mut decision = Decision::default();
    if request.requirements.min_nodes > 1 {
        decision.reason = Some(format!(
            "tasks needing {} nodes are not dispatched yet (multi-node leases arrive with federated learning)",
            request.requirements.min_nodes
        ));
        return Ok(decision);
    }
    if request.requirements.require_proof {
        decision.reason = Some("no node offers verifiable results (require_proof) yet".into());
        return Ok(decision);
    }
    let found = registry::search(&mt::Requirements {
        capability: capability.to_string(),
        require_gpu: request.requirements.require_gpu,
        max_memory_mb: request.requirements.max_memory_mb,
        input_bytes,
        limit: TOP_OFFERS,
        granted_nodes: placement.granted_nodes.clone(),
        owner: placement.owner.clone(),
        min_clean_share: placement.min_clean_share,
    })
    .map_err(crate::nodes::market_error)?;
    decision.declined = found
        .declined
        .into_iter()
        .map(|d| (d.node_id, d.reason))
        .collect();
    let queued = queued_count(db, capability)?;
    let free = found.eligible_total;
    let mut offers = Vec::with_capacity(found.offers.len());
    for offer in found.offers {
        if exclude.contains(&offer.node.id) {
            decision.declined.push((
                offer.node.id.clone(),
                "already failed or refused this task".into(),
            ));
        } else {
            offers.push(offer);
        }
    }
    // One call each to pricing and reputation for the whole decision.
    let quotes = quotes::get_quotes(
        &offers
            .iter()
            .map(|offer| quotes::QuoteRequest {
                capability: capability.to_string(),
                base_price: offer.capability.price,
                input_bytes,
                max_execution_time_sec: request.requirements.max_execution_time_sec,
                max_memory_mb: request.requirements.max_memory_mb,
                queued_tasks: queued,
                free_nodes: free,
                provider_load: offer.node.load,
                latency_ms: offer.node.latency_ms,
            })
            .collect::<Vec<_>>(),
    );
    let mut priced = Vec::with_capacity(offers.len());
    for (offer, quote) in offers.into_iter().zip(quotes) {
        if quote.price > request.max_price {
            decision.cheapest_refused = Some(
                decision
                    .cheapest_refused
                    .map_or(quote.price, |p: f64| p.min(quote.price)),
            );
            decision.declined.push((
                offer.node.id.clone(),
                format!(
                    "quote {:.3} credits exceeds max_price {:.3}",
                    quote.price, request.max_price
                ),
            ));
        } else {
            priced.push((offer, quote));
        }
    }
    let reputations = if priced.is_empty() {
        Vec::new()
    } else {
        scores::get_many(
            &priced
                .iter()
                .map(|(offer, _)| offer.node.id.clone())
                .collect::<Vec<_>>(),
            scores::Role::Provider,
        )
    };
    let sla = placement.sla.as_str();
    let weights = if crate::schedule::prefers_clean(sla) {
        WEIGHTS_CLEAN
    } else {
        WEIGHTS_URGENT
    };
    let dirtiest = priced
        .iter()
        .map(|(o, _)| o.node.energy.carbon_intensity)
        .fold(0.0f32, f32::max);
    let mut candidates = Vec::with_capacity(priced.len());
    // Only high and normal tasks may wait for a forecast slot: for them keep
    // each candidate's energy (the other SLAs skip the copies).
    let may_wait = crate::schedule::may_wait(sla);
    let mut energies = Vec::new();
    for ((offer, quote), reputation) in priced.into_iter().zip(reputations) {
        if let Some(source) = crate::schedule::own_source(sla) {
            if !crate::schedule::has_source(&offer.node.energy, source) {
                decision.declined.push((
                    offer.node.id.clone(),
                    format!(
                        "{sla}: {source} is under {:.0} % of its mix now",
                        crate::schedule::OWN_SOURCE_SHARE * 100.0
                    ),
                ));
                continue;
            }
        }
        let reputation = reputation.value;
        let price_term = if request.max_price > 0.0 {
            1.0 - quote.price / request.max_price
        } else {
            1.0
        };
        let intensity = offer.node.energy.carbon_intensity;
        let clean_term = if dirtiest > 0.0 {
            1.0 - (intensity / dirtiest) as f64
        } else {
            1.0
        };
        let score = weights[0] * price_term
            + weights[1] * reputation
            + weights[2] * (1.0 - offer.node.load as f64)
            + weights[3] * clean_term;
        if may_wait {
            energies.push((offer.node.id.clone(), offer.node.energy.clone()));
        }
        candidates.push(Candidate {
            node_id: offer.node.id,
            owner: offer.node.owner,
            price: quote.price,
            reputation,
            load: offer.node.load,
            intensity,
            clean_share: offer.node.energy.clean_share,
            score,
            factors: quote.factors,
            model: quote.model,
        });
    }
    candidates.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.node_id.cmp(&b.node_id))
    });
    // A patient task may wait for a cleaner slot the forecasts promise.
    let forecasts = energies.iter().any(|(_, e)| !e.forecast.is_empty());
    // With no forecast anywhere there is no later slot to wait for.
    let timing = if !forecasts {
        crate::schedule::Timing::Now
    } else {
        crate::schedule::timing(
            sla,
            placement.created_at,
            crate::util::now_ms(),
            placement.expected_ms,
            crate::schedule::dispatch_tick_ms(),
            &energies
                .iter()
                .map(|(id, e)| crate::schedule::NodeEnergy {
                    node_id: id,
                    energy: e,
                })
                .collect::<Vec<_>>(),
        )
    };
    if let crate::schedule::Timing::Wait(why) = timing {
        decision.runners_up = candidates;
        decision.reason = Some(why);
        decision.deferred = true;
        return Ok(decision);
    }
    let mut candidates = candidates.into_iter();
    decision.chosen = candidates.next();
    decision.runners_up = candidates.collect();
    if decision.chosen.is_none() {
        decision.reason = Some(if decision.declined.is_empty() {
            format!("no node offers {capability}")
        } else {
            format!(
                "no eligible node for {capability}: {} node(s) declined",
                decision.declined.len()
            )
        });
    }
    Ok(decision)
}

/// Matches without exclusions (precheck).
pub fn decide(
    db: &Db,
    capability: &str,
    request: &TaskRequest,
    input_bytes: u64,
    placement: &Placement,
) -> Result<Decision, ApiError> {
    decide_excluding(db, capability, request, input_bytes, placement, &[])
}

/// Tries to lease one queued task; leaves it queued with the reason otherwise.
/// On a task's first attempt (`first`), a requester turning down every quote
/// is reported to pricing once; re-dispatches of queued tasks do not repeat it.
pub fn dispatch_one(db: &Db, task_id: &str, first: bool) -> Result<(), ApiError> {
    let rows = db.query(
        "SELECT t.capability, t.body, t.input_sha256, t.input_bytes, t.owner, t.reason, p.sla, p.owner_only,
                t.created_at
         FROM broker_tasks t LEFT JOIN broker_task_policy p ON p.task_id = t.id
         WHERE t.id = ? AND t.status = 'queued'",
        &[text(task_id)],
    )?;
    let Some(row) = rows.rows.first() else {
        return Ok(());
    };
    let capability = row.get::<&str>(0).unwrap_or_default().to_string();
    let body: Value =
        serde_json::from_str(row.get::<&str>(1).unwrap_or("{}")).map_err(crate::api::storage)?;
    let request: TaskRequest =
        serde_json::from_value(body["request"].clone()).map_err(crate::api::storage)?;
    let input_sha256 = row.get::<&str>(2).unwrap_or_default().to_string();
    let input_bytes = row.get::<i64>(3).unwrap_or(0) as u64;
    let owner = row.get::<&str>(4).unwrap_or_default().to_string();
    let previous_reason = row.get::<&str>(5).map(str::to_string);
    let exclude = crate::leases::failed_nodes(db, task_id)?;
    let policy = crate::policy::Policy {
        sla: row
            .get::<&str>(6)
            .or(request.sla.as_deref())
            .unwrap_or("normal")
            .to_string(),
        owner_only: row.get::<i64>(7).unwrap_or(0) != 0,
        ..crate::policy::Policy::at_submission(None, None, request.sla.as_deref())
    };
    let created_at = row.get::<i64>(8).unwrap_or(0) as u64;
    let placement = Placement::new(db, &owner, &request, &capability, &policy, created_at)?;
    let decision = decide_excluding(db, &capability, &request, input_bytes, &placement, &exclude)?;
    let now = crate::util::now_ms();
    match &decision.chosen {
        None => {
            if let (true, Some(quoted)) = (first, decision.cheapest_refused) {
                quotes::record_outcome(&quotes::Outcome {
                    capability: capability.clone(),
                    quoted,
                    accepted: false,
                    succeeded: false,
                    duration_ms: 0,
                });
            }
            // A re-dispatch that changes nothing a requester would read (the
            // reason) leaves the row alone: no write per retry per queued task.
            if first || previous_reason != decision.reason {
                db.exec(
                    "UPDATE broker_tasks SET reason = ?, decision = ?, updated_at = ? WHERE id = ? AND status = 'queued'",
                    &[text(decision.reason.clone().unwrap_or_default()), text(decision.to_json().to_string()), int(now), text(task_id)],
                )?;
            }
        }
        Some(chosen) => {
            crate::leases::create(
                db,
                task_id,
                &owner,
                &capability,
                &request,
                &input_sha256,
                chosen,
                &decision,
            )?;
        }
    }
    Ok(())
}

/// Dispatches up to `limit` of the oldest queued tasks (after applying the
/// outcomes of polls that have closed).
pub fn dispatch_queued(db: &Db, limit: u32) -> Result<(), ApiError> {
    crate::votes::settle(db)?;
    let rows = db.query(
        // The (status, created_at) index serves the ORDER BY; without the hint
        // the planner may pick (status, capability) and sort the whole queue.
        "SELECT id FROM broker_tasks INDEXED BY broker_tasks_by_status
         WHERE status = 'queued' ORDER BY created_at LIMIT ?",
        &[int(limit as u64)],
    )?;
    let ids: Vec<String> = rows
        .rows
        .iter()
        .filter_map(|r| r.get::<&str>(0).map(str::to_string))
        .collect();
    for id in ids {
        dispatch_one(db, &id, false)?;
    }
    Ok(())
}
