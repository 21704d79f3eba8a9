//! The reputation component: exports `greenmesh:reputation/scores@0.1.0`.
//!
//! This file only wires the WIT interface to [`model`] (the formula) and to
//! the `reputation_scores` table: one row per (subject, role) holding the
//! decayed counts as of `updated_at` (ms since the Unix epoch).
//!
//! Recording is a guarded read-modify-write: read `updated_at`, compute the
//! decay for the time since, then `UPDATE … SET count = count × decay +
//! increment … WHERE updated_at = <what was read> RETURNING …`. If another
//! call moved `updated_at` in between, nothing is written and we retry, so
//! concurrent events for one subject are never lost or decayed twice (no
//! transaction is held across calls, which Spin's SQLite API does not
//! promise). Storage errors are logged to stderr: `record-event` then drops
//! the event, `get` answers the no-history score (0.5).

pub mod model;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:reputation/reputation@0.1.0",
});

use exports::greenmesh::reputation::scores::{Event, Guest, Role, Score};
use spin_sdk::sqlite::{Connection, RowResult, Value};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS reputation_scores (
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    successes REAL NOT NULL,
    failures REAL NOT NULL,
    timeouts REAL NOT NULL,
    bad_signatures REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subject, role)
)";

/// Attempts at the guarded update before an event is given up (only
/// reachable under sustained contention on one subject).
const MAX_ATTEMPTS: usize = 8;

/// Milliseconds since the Unix epoch, from the WASI wall clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Provider => "provider",
        Role::Requester => "requester",
    }
}

fn model_event(event: Event) -> model::Event {
    match event {
        Event::Success => model::Event::Success,
        Event::Failure => model::Event::Failure,
        Event::Timeout => model::Event::Timeout,
        Event::BadSignature => model::Event::BadSignature,
    }
}

/// Time from `then` to `now`; 0 if the clock went backwards.
fn elapsed(then: i64, now: i64) -> u64 {
    u64::try_from(now.saturating_sub(then)).unwrap_or(0)
}

fn real(row: &RowResult, index: usize) -> f64 {
    match row.values.get(index) {
        Some(Value::Real(x)) => *x,
        Some(Value::Integer(x)) => *x as f64,
        _ => 0.0,
    }
}

fn integer(row: &RowResult, index: usize) -> i64 {
    match row.values.get(index) {
        Some(Value::Integer(x)) => *x,
        Some(Value::Real(x)) if x.is_finite() => *x as i64,
        _ => 0,
    }
}

fn key(subject: &str, role: Role) -> [Value; 2] {
    [
        Value::Text(subject.to_string()),
        Value::Text(role_name(role).to_string()),
    ]
}

/// The default database with `reputation_scores` in place (one connection per instance).
fn open() -> Result<std::rc::Rc<Connection>, String> {
    greenmesh_storage::connection(&[SCHEMA]).map_err(|e| format!("open: {e:?}"))
}

fn record(subject: &str, role: Role, event: Event) -> Result<(), String> {
    let db = open()?;
    let [subject_value, role_value] = key(subject, role);
    db.execute(
        "INSERT OR IGNORE INTO reputation_scores
             (subject, role, successes, failures, timeouts, bad_signatures, updated_at)
         VALUES (?, ?, 0.0, 0.0, 0.0, 0.0, ?)",
        &[
            subject_value.clone(),
            role_value.clone(),
            Value::Integer(now_ms()),
        ],
    )
    .map_err(|e| format!("insert: {e:?}"))?;

    let increment = model::Counts::of(model_event(event));
    for _ in 0..MAX_ATTEMPTS {
        let read = db
            .execute(
                "SELECT updated_at FROM reputation_scores WHERE subject = ? AND role = ?",
                &[subject_value.clone(), role_value.clone()],
            )
            .map_err(|e| format!("select: {e:?}"))?;
        let Some(row) = read.rows.first() else {
            return Err("row vanished after insert".into());
        };
        let updated_at = integer(row, 0);
        let now = now_ms();
        let decay = model::decay_factor(elapsed(updated_at, now));
        let written = db
            .execute(
                "UPDATE reputation_scores SET
                     successes = successes * ?1 + ?2,
                     failures = failures * ?1 + ?3,
                     timeouts = timeouts * ?1 + ?4,
                     bad_signatures = bad_signatures * ?1 + ?5,
                     updated_at = ?6
                 WHERE subject = ?7 AND role = ?8 AND updated_at = ?9
                 RETURNING updated_at",
                &[
                    Value::Real(decay),
                    Value::Real(increment.successes),
                    Value::Real(increment.failures),
                    Value::Real(increment.timeouts),
                    Value::Real(increment.bad_signatures),
                    Value::Integer(now.max(updated_at)),
                    subject_value.clone(),
                    role_value.clone(),
                    Value::Integer(updated_at),
                ],
            )
            .map_err(|e| format!("update: {e:?}"))?;
        if !written.rows.is_empty() {
            return Ok(());
        }
    }
    Err(format!("gave up after {MAX_ATTEMPTS} concurrent updates"))
}

/// Decayed counts from a `successes, failures, timeouts, bad_signatures,
/// updated_at` row, as of `now`.
fn counts_of(row: &RowResult, first: usize, now: i64) -> model::Counts {
    model::Counts {
        successes: real(row, first),
        failures: real(row, first + 1),
        timeouts: real(row, first + 2),
        bad_signatures: real(row, first + 3),
    }
    .decayed(elapsed(integer(row, first + 4), now))
}

/// The counts of each subject as of now, in order; `None` without history.
fn current(subjects: &[String], role: Role) -> Result<Vec<Option<model::Counts>>, String> {
    if subjects.is_empty() {
        return Ok(Vec::new());
    }
    let db = open()?;
    let placeholders = vec!["?"; subjects.len()].join(", ");
    let mut params = vec![Value::Text(role_name(role).to_string())];
    params.extend(subjects.iter().map(|s| Value::Text(s.clone())));
    let read = db
        .execute(
            &format!(
                "SELECT subject, successes, failures, timeouts, bad_signatures, updated_at
                 FROM reputation_scores WHERE role = ? AND subject IN ({placeholders})"
            ),
            &params,
        )
        .map_err(|e| format!("select: {e:?}"))?;
    let now = now_ms();
    let found: Vec<(&str, model::Counts)> = read
        .rows
        .iter()
        .filter_map(|row| match row.values.first() {
            Some(Value::Text(subject)) => Some((subject.as_str(), counts_of(row, 1, now))),
            _ => None,
        })
        .collect();
    Ok(subjects
        .iter()
        .map(|s| found.iter().find(|(f, _)| f == s).map(|(_, c)| *c))
        .collect())
}

fn score(subject: String, role: Role, counts: model::Counts) -> Score {
    Score {
        subject,
        role,
        value: counts.value(),
        successes: counts.successes,
        failures: counts.failures,
        timeouts: counts.timeouts,
        bad_signatures: counts.bad_signatures,
    }
}

struct Reputation;

impl Guest for Reputation {
    fn record_event(subject: String, role: Role, event: Event) {
        if let Err(e) = record(&subject, role, event) {
            eprintln!(
                "reputation: {event:?} for {} {subject:?} not recorded ({e})",
                role_name(role)
            );
        }
    }

    fn get(subject: String, role: Role) -> Score {
        Self::get_many(vec![subject], role)
            .pop()
            .expect("one score per subject")
    }

    fn get_many(subjects: Vec<String>, role: Role) -> Vec<Score> {
        let counts = current(&subjects, role).unwrap_or_else(|e| {
            eprintln!(
                "reputation: scores of {} {} subject(s) unavailable ({e}); answering no history",
                subjects.len(),
                role_name(role)
            );
            vec![None; subjects.len()]
        });
        subjects
            .into_iter()
            .zip(counts)
            .map(|(subject, counts)| score(subject, role, counts.unwrap_or_default()))
            .collect()
    }
}

export!(Reputation);
