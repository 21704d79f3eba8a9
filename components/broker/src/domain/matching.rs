//! Matching one task against the market: search the marketplace, quote
//! each offer (pricing), look up reputations, score ([`super::scoring`]),
//! decide whether a patient task should wait for a cleaner slot
//! ([`super::schedule`]), and explain the outcome.
//!
//! Governance narrows the search first ([`Placement`]): nodes whose owners
//! granted the requester the task count as allowed, a vetoed task only sees
//! its owner's nodes, and an eco task only nodes with clean energy.
//! Nothing here writes: the queue acts on the [`Decision`].

use crate::db::{int, text, Db};
use crate::error::ApiError;
use crate::greenmesh::marketplace::registry;
use crate::greenmesh::marketplace::types as mt;
use crate::greenmesh::pricing::quotes;
use crate::greenmesh::reputation::scores;
use crate::model::{Candidate, Decision, Sla, TaskRequest};

/// Offers considered per decision: the cheapest, least-loaded eligible ones
/// (the marketplace finds them through an index, so a decision costs the same
/// with ten nodes or ten thousand).
const TOP_OFFERS: u32 = 16;

/// Queue depth is counted up to this many tasks (see `queued_count`).
const QUEUE_COUNT_CAP: u64 = 1024;

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
#[derive(Debug, Clone)]
pub struct Placement {
    pub granted_nodes: Vec<String>,
    /// Only this owner's nodes (a vetoed delegation).
    pub owner: Option<String>,
    /// Only nodes with at least this clean share (eco mode).
    pub min_clean_share: f32,
    /// The SLA the task runs under, when it was submitted, and how long it
    /// is expected to run (its time limit).
    pub sla: Sla,
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
        policy: &crate::domain::policy::Policy,
        created_at: u64,
    ) -> Result<Self, ApiError> {
        let own_node_only =
            policy.owner_only || crate::domain::schedule::own_source(policy.sla).is_some();
        Ok(Self {
            sla: policy.sla,
            created_at,
            expected_ms: request.requirements.max_execution_time_sec as u64 * 1000,
            granted_nodes: crate::domain::grants::granted_nodes(
                db,
                owner,
                &request.names(capability),
            )?,
            owner: own_node_only.then(|| owner.to_string()),
            min_clean_share: if policy.sla == Sla::Eco {
                crate::domain::policy::eco_min_clean_share()
            } else {
                0.0
            },
        })
    }
}

/// Matches a task against the marketplace; `exclude` are nodes that may
/// not have it again, with why (they let it expire, refused, stopped or
/// interrupted it).
pub fn decide(
    db: &Db,
    capability: &str,
    request: &TaskRequest,
    input_bytes: u64,
    placement: &Placement,
    exclude: &[(String, String)],
) -> Result<Decision, ApiError> {
    if let Some(why) = request.unsupported() {
        return Ok(Decision::none(why));
    }
    let mut decision = Decision::default();
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
    .map_err(crate::domain::nodes::market_error)?;
    decision.declined = found
        .declined
        .into_iter()
        .map(|d| (d.node_id, d.reason))
        .collect();
    decision.more_declined = found.more_declined;
    let queued = queued_count(db, capability)?;
    let free = found.eligible_total;
    let mut offers = Vec::with_capacity(found.offers.len());
    for offer in found.offers {
        match exclude.iter().find(|(n, _)| *n == offer.node.id) {
            Some((_, why)) => decision.declined.push((offer.node.id.clone(), why.clone())),
            None => offers.push(offer),
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
    let sla = placement.sla;
    // Only high and normal tasks may wait for a forecast slot: for them keep
    // each candidate's energy (the other SLAs skip the copies).
    let may_wait = crate::domain::schedule::may_wait(sla);
    let mut energies = Vec::new();
    let mut kept = Vec::with_capacity(priced.len());
    for ((offer, quote), reputation) in priced.into_iter().zip(reputations) {
        if let Some(source) = crate::domain::schedule::own_source(sla) {
            if !crate::domain::schedule::has_source(&offer.node.energy, source) {
                decision.declined.push((
                    offer.node.id.clone(),
                    format!(
                        "{sla}: {source} is under {:.0} % of its mix now",
                        crate::domain::schedule::OWN_SOURCE_SHARE * 100.0
                    ),
                ));
                continue;
            }
        }
        kept.push((offer, quote, reputation.value));
    }
    let terms: Vec<super::scoring::Terms> = kept
        .iter()
        .map(|(offer, quote, reputation)| super::scoring::Terms {
            price: quote.price,
            reputation: *reputation,
            load: offer.node.load,
            intensity: offer.node.energy.carbon_intensity,
        })
        .collect();
    let scores = super::scoring::score(sla, request.max_price, &terms);
    let mut candidates = Vec::with_capacity(kept.len());
    for ((offer, quote, reputation), score) in kept.into_iter().zip(scores) {
        if may_wait {
            energies.push((offer.node.id.clone(), offer.node.energy.clone()));
        }
        candidates.push(Candidate {
            node_id: offer.node.id,
            owner: offer.node.owner,
            price: quote.price,
            reputation,
            load: offer.node.load,
            intensity: offer.node.energy.carbon_intensity,
            clean_share: offer.node.energy.clean_share,
            score,
            factors: quote.factors,
            model: quote.model,
        });
    }
    super::scoring::rank(&mut candidates);
    // A patient task may wait for a cleaner slot the forecasts promise.
    let forecasts = energies.iter().any(|(_, e)| !e.forecast.is_empty());
    // With no forecast anywhere there is no later slot to wait for.
    let timing = if !forecasts {
        crate::domain::schedule::Timing::Now
    } else {
        crate::domain::schedule::timing(
            sla,
            placement.created_at,
            crate::util::now_ms(),
            placement.expected_ms,
            crate::domain::schedule::dispatch_tick_ms(),
            &energies
                .iter()
                .map(|(id, e)| crate::domain::schedule::NodeEnergy {
                    node_id: id,
                    energy: e,
                })
                .collect::<Vec<_>>(),
        )
    };
    if let crate::domain::schedule::Timing::Wait(why) = timing {
        decision.runners_up = candidates;
        decision.reason = Some(why);
        decision.deferred = true;
        return Ok(decision);
    }
    let mut candidates = candidates.into_iter();
    decision.chosen = candidates.next();
    decision.runners_up = candidates.collect();
    if decision.chosen.is_none() {
        decision.reason = Some(match decision.declined.first() {
            None => format!("no node offers {capability}"),
            Some((node, why)) => format!(
                "no eligible node for {capability}: {} node(s) declined (e.g. {node}: {why})",
                decision.declined.len() as u32 + decision.more_declined
            ),
        });
    }
    Ok(decision)
}
