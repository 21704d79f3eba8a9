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
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

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
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM broker_tasks
                 WHERE status = 'queued' AND ready = 0 AND capability = ?1 LIMIT ?2))
              + (SELECT COUNT(*) FROM (SELECT 1 FROM broker_tasks
                 WHERE status = 'queued' AND ready = 1 AND capability = ?1 LIMIT ?2))",
        &[text(capability), int(QUEUE_COUNT_CAP)],
    )?;
    let n = (rows.rows.first().and_then(|r| r.get::<i64>(0)).unwrap_or(0) as u64)
        .min(QUEUE_COUNT_CAP) as u32;
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

/// What the market offers one kind of task, as one request sees it: the
/// marketplace's search, and each offer's quote and reputation. Nothing in
/// it depends on a task's price, SLA or history, so tasks asking the same
/// question in one dispatch pass share it (the database would answer each
/// of them the same within the pass).
struct Snapshot {
    declined: Vec<(String, String)>,
    more_declined: u32,
    offers: Vec<(mt::Offer, quotes::Quote)>,
    /// Provider reputations of `offers`, in order, looked up on first need.
    reputations: RefCell<Option<Vec<f64>>>,
}

/// The question a [`Snapshot`] answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Question {
    capability: String,
    require_gpu: bool,
    max_memory_mb: u64,
    max_execution_time_sec: u32,
    input_bytes: u64,
    granted_nodes: Vec<String>,
    owner: Option<String>,
    min_clean_share: u32,
    dataset: Option<String>,
}

thread_local! {
    static SNAPSHOTS: RefCell<HashMap<Question, Rc<Snapshot>>> = Default::default();
}

/// Forgets the market snapshots (and queue depths) taken so far: a long
/// request calls it before each dispatch pass, so every pass sees the
/// market as it is.
pub fn forget_snapshots() {
    SNAPSHOTS.with(|s| s.borrow_mut().clear());
    QUEUED.with(|q| q.borrow_mut().clear());
}

fn snapshot(db: &Db, question: &Question) -> Result<Rc<Snapshot>, ApiError> {
    if let Some(s) = SNAPSHOTS.with(|s| s.borrow().get(question).cloned()) {
        return Ok(s);
    }
    let found = registry::search(&mt::Requirements {
        capability: question.capability.clone(),
        require_gpu: question.require_gpu,
        max_memory_mb: question.max_memory_mb,
        input_bytes: question.input_bytes,
        limit: TOP_OFFERS,
        granted_nodes: question.granted_nodes.clone(),
        owner: question.owner.clone(),
        min_clean_share: f32::from_bits(question.min_clean_share),
        dataset: question.dataset.clone(),
    })
    .map_err(crate::domain::nodes::market_error)?;
    let queued = queued_count(db, &question.capability)?;
    let free = found.eligible_total;
    // One call to pricing for every offer.
    let quotes = quotes::get_quotes(
        &found
            .offers
            .iter()
            .map(|offer| quotes::QuoteRequest {
                capability: question.capability.clone(),
                base_price: offer.capability.price,
                input_bytes: question.input_bytes,
                max_execution_time_sec: question.max_execution_time_sec,
                max_memory_mb: question.max_memory_mb,
                queued_tasks: queued,
                free_nodes: free,
                provider_load: offer.node.load,
                latency_ms: offer.node.latency_ms,
            })
            .collect::<Vec<_>>(),
    );
    let snapshot = Rc::new(Snapshot {
        declined: found
            .declined
            .into_iter()
            .map(|d| (d.node_id, d.reason))
            .collect(),
        more_declined: found.more_declined,
        offers: found.offers.into_iter().zip(quotes).collect(),
        reputations: RefCell::new(None),
    });
    SNAPSHOTS.with(|s| s.borrow_mut().insert(question.clone(), snapshot.clone()));
    Ok(snapshot)
}

impl Snapshot {
    /// The reputation of offer `i` (one call to reputation for all offers).
    fn reputation(&self, i: usize) -> f64 {
        let mut cached = self.reputations.borrow_mut();
        let all = cached.get_or_insert_with(|| {
            scores::get_many(
                &self
                    .offers
                    .iter()
                    .map(|(o, _)| o.node.id.clone())
                    .collect::<Vec<_>>(),
                scores::Role::Provider,
            )
            .into_iter()
            .map(|s| s.value)
            .collect()
        });
        all.get(i).copied().unwrap_or(0.5)
    }
}

/// Nodes and owners a decision keeps off, and where it would rather not go.
#[derive(Debug, Default)]
pub struct Avoid<'a> {
    /// Nodes that may not have the task, with why (they let it expire,
    /// refused, stopped or interrupted it, or run another shard of its group).
    pub nodes: &'a [(String, String)],
    /// Owners whose nodes may not (they run a replica of the same shard).
    pub owners: &'a [(String, String)],
    /// Members of the task's group per node: among equals by rank, fewer first.
    pub load: &'a [(String, u32)],
}

/// Matches a task against the marketplace, keeping off what `avoid` says.
pub fn decide(
    db: &Db,
    capability: &str,
    request: &TaskRequest,
    input_bytes: u64,
    placement: &Placement,
    avoid: &Avoid,
) -> Result<Decision, ApiError> {
    let (exclude, exclude_owners) = (avoid.nodes, avoid.owners);
    let r = &request.requirements;

    let market = snapshot(
        db,
        &Question {
            capability: capability.to_string(),
            require_gpu: r.require_gpu,
            max_memory_mb: r.max_memory_mb,
            max_execution_time_sec: r.max_execution_time_sec,
            input_bytes,
            granted_nodes: placement.granted_nodes.clone(),
            owner: placement.owner.clone(),
            min_clean_share: placement.min_clean_share.to_bits(),
            dataset: request.dataset().map(str::to_string),
        },
    )?;
    let mut decision = Decision {
        declined: market.declined.clone(),
        more_declined: market.more_declined,
        ..Decision::default()
    };
    let mut priced = Vec::with_capacity(market.offers.len());
    for (i, (offer, quote)) in market.offers.iter().enumerate() {
        if let Some((_, why)) = exclude.iter().find(|(n, _)| *n == offer.node.id) {
            decision.declined.push((offer.node.id.clone(), why.clone()));
        } else if let Some((_, why)) = exclude_owners.iter().find(|(o, _)| *o == offer.node.owner) {
            decision.declined.push((offer.node.id.clone(), why.clone()));
        } else if quote.price > request.max_price {
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
            priced.push((i, offer, quote));
        }
    }
    let sla = placement.sla;
    // Only high and normal tasks may wait for a forecast slot: for them keep
    // each candidate's energy (the other SLAs skip the copies).
    let may_wait = crate::domain::schedule::may_wait(sla);
    let mut energies = Vec::new();
    let mut kept = Vec::with_capacity(priced.len());
    for (i, offer, quote) in priced {
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
        kept.push((offer, quote, market.reputation(i)));
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
            node_id: offer.node.id.clone(),
            owner: offer.node.owner.clone(),
            price: quote.price,
            reputation,
            load: offer.node.load,
            intensity: offer.node.energy.carbon_intensity,
            clean_share: offer.node.energy.clean_share,
            score,
            factors: quote.factors.clone(),
            model: quote.model.clone(),
            kernel_sha256: offer.capability.sha256.clone(),
        });
    }
    super::scoring::rank(&mut candidates);
    if !avoid.load.is_empty() {
        // Spread a group: nodes holding fewer of its members first (a
        // stable sort keeps the ranking among equals).
        let load = |c: &Candidate| {
            avoid
                .load
                .iter()
                .find(|(n, _)| *n == c.node_id)
                .map_or(0, |(_, k)| *k)
        };
        candidates.sort_by_key(load);
    }
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
        decision.reason = Some(why_none(capability, &decision, exclude));
    }
    Ok(decision)
}

/// Why no node was chosen, in words that stay the same while the market
/// does (quotes move; a task's reason is only rewritten when it changes):
/// how many nodes declined and for what kind of reason, and by name the
/// nodes this task may not go back to.
fn why_none(capability: &str, decision: &Decision, exclude: &[(String, String)]) -> String {
    if decision.declined.is_empty() {
        return format!("no node offers {capability}");
    }
    let total = decision.declined.len() as u32 + decision.more_declined;
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    let mut tried = Vec::new();
    for (node, why) in &decision.declined {
        let kind = if why.starts_with("quote ") {
            "quoted above max_price"
        } else if why.starts_with("offline") || why.starts_with("withdrawn") {
            "offline"
        } else if why.starts_with("does not hold dataset") {
            "without the dataset"
        } else if why.starts_with("its owner already runs")
            || why.starts_with("it already runs shard")
        {
            "already running part of this task"
        } else if exclude.iter().any(|(n, w)| n == node && w == why) {
            tried.push(format!("{node}: {why}"));
            continue;
        } else if why.contains("mode:") || why.contains("of its mix") {
            "without the clean energy it needs"
        } else {
            "beyond their limits or allow-lists"
        };
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let mut parts: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    parts.extend(tried);
    format!(
        "no eligible node for {capability}: {total} node(s) declined ({})",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_names_kinds_of_refusal_and_the_nodes_a_task_may_not_return_to() {
        let exclude = vec![(
            "node-b".to_string(),
            "its energy report interrupted this task".to_string(),
        )];
        let decision = Decision {
            declined: vec![
                (
                    "node-a".into(),
                    "quote 1.250 credits exceeds max_price 0.100".into(),
                ),
                (
                    "node-c".into(),
                    "quote 2.500 credits exceeds max_price 0.100".into(),
                ),
                ("node-d".into(), "offline: no heartbeat for 90 s".into()),
                exclude[0].clone(),
            ],
            more_declined: 3,
            ..Decision::default()
        };
        let why = why_none("image-filter", &decision, &exclude);
        assert_eq!(
            why,
            "no eligible node for image-filter: 7 node(s) declined (2 quoted above max_price; 1 offline; \
             node-b: its energy report interrupted this task)"
        );
        // Quotes moving does not change the words.
        let mut moved = decision.clone();
        moved.declined[0].1 = "quote 1.300 credits exceeds max_price 0.100".into();
        assert_eq!(why_none("image-filter", &moved, &exclude), why);
        assert_eq!(why_none("x", &Decision::default(), &[]), "no node offers x");
    }
}
