//! Importance votes: opening a task's poll, casting ballots, listing open
//! polls, and settling polls whose window has closed. The ballot box and
//! its weighting are the voting component's (whichever `spin.toml` plugs
//! in); this module applies the outcomes to tasks and logs them.

use crate::db::{text, Db};
use crate::domain::identity;
use crate::domain::policy::{self, Policy};
use crate::error::ApiError;
use crate::greenmesh::voting::ballots;
use crate::greenmesh::voting::types::{self as vt, Level};
use crate::model::User;
use serde_json::{json, Value};

/// API names of the importance levels, most important first.
pub const LEVELS: &[(&str, Level)] = &[
    ("critical", Level::Critical),
    ("high", Level::High),
    ("normal", Level::Normal),
    ("low", Level::Low),
    ("non_critical", Level::NonCritical),
];

pub fn level_name(level: Level) -> &'static str {
    LEVELS
        .iter()
        .find(|(_, l)| *l == level)
        .map(|(n, _)| *n)
        .unwrap_or("normal")
}

pub fn parse_level(name: &str) -> Option<Level> {
    LEVELS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

fn decided_by_name(d: vt::DecidedBy) -> &'static str {
    match d {
        vt::DecidedBy::Consensus => policy::source::CONSENSUS,
        vt::DecidedBy::Unanimous => policy::source::UNANIMOUS,
        vt::DecidedBy::NoConsensus => policy::source::NO_CONSENSUS,
        vt::DecidedBy::NoVotes => policy::source::NO_VOTES,
    }
}

/// The voting component's errors as API errors.
pub fn voting_error(e: vt::Error) -> ApiError {
    match e {
        vt::Error::NotFound(m) => ApiError::not_found(m),
        vt::Error::Closed(m) => ApiError::new(409, "voting_closed", m),
        vt::Error::NotAllowed(m) => ApiError::forbidden(m),
        vt::Error::Invalid(m) => ApiError::bad_request(m),
        vt::Error::Storage(m) => ApiError::internal(format!("voting: {m}")),
    }
}

pub fn outcome_json(o: &vt::Outcome) -> Value {
    json!({
        "importance": o.importance.map(level_name),
        "decided_by": decided_by_name(o.decided_by),
        "confidence": o.confidence,
        "very_high_confidence": o.decided_by == vt::DecidedBy::Unanimous,
        "weights": o.weights.iter().map(|(l, w)| (level_name(*l).to_string(), json!(w))).collect::<serde_json::Map<_, _>>(),
        "total_weight": o.total_weight,
        "ballots": o.ballots,
        "scheme": o.scheme,
        "closed": o.closed,
    })
}

pub fn poll_json(p: &vt::Poll) -> Value {
    json!({
        "task_id": p.task_id,
        "opened_at": p.opened_at,
        "closes_at": p.closes_at,
        "closes_at_iso": crate::util::iso8601(p.closes_at),
        "outcome": outcome_json(&p.outcome),
    })
}

/// Opens the poll for a freshly submitted task. A requester's declared
/// (non-critical) importance is shown with the task but is not a ballot:
/// nobody votes on their own task (ADR 0021).
pub fn open_for(task_id: &str) -> Result<(), ApiError> {
    ballots::open(task_id, 0).map_err(voting_error)?;
    Ok(())
}

fn task_policy(db: &Db, task_id: &str) -> Result<Policy, ApiError> {
    policy::get(db, task_id)?.ok_or_else(|| ApiError::not_found(format!("no task {task_id}")))
}

/// `user`'s ballot of `importance` (with `credits`, for quadratic voting)
/// on `task_id`; answers whether it replaced an earlier one, and the poll.
pub fn cast(
    db: &Db,
    user: &User,
    task_id: &str,
    importance: &str,
    credits: u32,
) -> Result<vt::CastReceipt, ApiError> {
    let level = parse_level(importance).ok_or_else(|| {
        ApiError::invalid(
            "importance",
            format!(
                "unknown importance {importance:?}; known: {}",
                LEVELS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    settle(db)?;
    let p = task_policy(db, task_id)?;
    if !p.is_voted() {
        let why = match &p.keyword {
            Some(k) => format!("the public-health override (keyword {k:?})"),
            None => "its requester declaring it critical".to_string(),
        };
        return Err(ApiError::new(
            409,
            "not_voted",
            format!("task {task_id} is critical by {why}; there is no vote"),
        ));
    }
    let standing = crate::domain::standing::Standing::load(db, &user.id)?;
    let owner = db
        .text_of(
            "SELECT owner FROM broker_tasks WHERE id = ?",
            &[crate::db::text(task_id)],
        )?
        .unwrap_or_default();
    identity::check_ballot(
        &standing,
        &owner,
        identity::BallotRule::configured(),
        crate::util::now_ms(),
    )?;
    let receipt = ballots::cast(
        task_id,
        &vt::Ballot {
            voter: user.id.clone(),
            level,
            standing: standing.for_vote(),
            credits,
        },
    )
    .map_err(|e| match e {
        vt::Error::Invalid(m) if m.contains("credit") => ApiError::invalid("credits", m),
        other => voting_error(other),
    })?;
    crate::domain::events::record(
        db,
        if receipt.replaced {
            "vote_replaced"
        } else {
            "vote_cast"
        },
        None,
        Some(task_id),
        Some(&user.id),
        json!({ "importance": importance }),
    )?;
    Ok(receipt)
}

/// The task's importance policy and its poll (if it has one).
pub fn of_task(db: &Db, task_id: &str) -> Result<Value, ApiError> {
    settle(db)?;
    let p = task_policy(db, task_id)?;
    let poll = if p.is_voted() {
        Some(poll_json(&ballots::get(task_id).map_err(voting_error)?))
    } else {
        None
    };
    Ok(json!({ "task_id": task_id, "policy": p.to_json(), "poll": poll }))
}

/// Open polls, soonest to close first, with what each task is, so the
/// community can vote.
pub fn open_polls(db: &Db) -> Result<Vec<Value>, ApiError> {
    settle(db)?;
    let polls = ballots::list_open(100).map_err(voting_error)?;
    let mut out = Vec::with_capacity(polls.len());
    for p in &polls {
        let rows = db.query(
            "SELECT task_type, capability, body FROM broker_tasks WHERE id = ?",
            &[text(p.task_id.clone())],
        )?;
        let Some(r) = rows.rows.first() else { continue };
        let body: Value =
            serde_json::from_str(r.get::<&str>(2).unwrap_or("{}")).unwrap_or_default();
        let mut v = poll_json(p);
        v["task"] = json!({
            "task_type": r.get::<&str>(0),
            "capability": r.get::<&str>(1),
            "name": body["request"]["name"],
            "description": body["request"]["description"],
        });
        out.push(v);
    }
    Ok(out)
}

/// The importance the task's requester declared, if a known level.
fn declared(db: &Db, task_id: &str) -> Result<Option<&'static str>, ApiError> {
    let v = db.text_of(
        "SELECT json_extract(body, '$.request.importance') FROM broker_tasks WHERE id = ?",
        &[text(task_id)],
    )?;
    Ok(v.as_deref().and_then(parse_level).map(level_name))
}

/// Polls one request settles at most: a burst of closing polls is spread
/// over requests instead of stalling one.
const SETTLE_BATCH: u32 = 64;

/// Closes polls whose window has passed and applies their outcomes, once
/// per request (the check is one indexed query in the voting component).
pub fn settle(db: &Db) -> Result<(), ApiError> {
    thread_local! {
        static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if DONE.with(|d| d.replace(true)) {
        return Ok(());
    }
    for o in ballots::close_due(SETTLE_BATCH).map_err(voting_error)? {
        let mut decided_by = decided_by_name(o.decided_by);
        let mut importance = o.importance.map(level_name);
        if o.decided_by == vt::DecidedBy::NoVotes {
            // Nobody else voted: the requester's declared level stands
            // (it never weighs against ballots; ADR 0021).
            if let Some(level) = declared(db, &o.task_id)? {
                importance = Some(level);
                decided_by = policy::source::DECLARED;
            }
        }
        let Some((before, p)) =
            policy::apply_vote(db, &o.task_id, importance, decided_by, o.confidence)?
        else {
            continue;
        };
        if p.sla != before {
            // Its deadline follows, and it is decided again under the new level.
            crate::domain::queue::sla_changed(db, &o.task_id, p.sla)?;
        }
        let event = match o.decided_by {
            vt::DecidedBy::Consensus | vt::DecidedBy::Unanimous => "consensus_reached",
            vt::DecidedBy::NoConsensus => "consensus_failed",
            vt::DecidedBy::NoVotes => "no_votes",
        };
        crate::domain::events::record(
            db,
            event,
            None,
            Some(&o.task_id),
            None,
            json!({
                "importance": importance, "confidence": o.confidence, "decided_by": decided_by,
                "ballots": o.ballots, "scheme": o.scheme, "sla": p.sla,
            }),
        )?;
    }
    Ok(())
}
