//! The reputation component: exports `greenmesh:reputation/scores@0.1.0`.
//!
//! This file only wires the WIT interface to [`model`] (the formula) and to
//! two tables: `reputation_events`, one row per recorded event under the
//! caller's unique key, and `reputation_scores`, one row per (subject,
//! role) holding the decayed counts as of `updated_at` (ms since the Unix
//! epoch) and the last event folded into them (`folded_through`).
//!
//! Recording inserts the event (a key already present inserts nothing, so
//! an event is counted once however often the broker retries it), then
//! folds the subject's new events into its counts with a guarded update:
//! `UPDATE … WHERE folded_through = <what was read>`. If another call
//! folded in between, nothing is written and we read again; a crash between
//! the insert and the fold leaves the event to the next fold of that
//! subject. No transaction is held across calls, which Spin's SQLite API
//! does not promise. Storage errors are logged to stderr: `record-event`
//! then answers false, `get` the no-history score (0.5).

pub mod model;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:reputation/reputation@0.1.0",
});

use exports::greenmesh::reputation::scores::{Event, Guest, Role, Score};
use greenmesh_storage::{Connection, RowResult, Value};

/// Version 1: the decayed counts.
const V1: &[&str] = &["CREATE TABLE IF NOT EXISTS reputation_scores (
    subject TEXT NOT NULL,
    role TEXT NOT NULL,
    successes REAL NOT NULL,
    failures REAL NOT NULL,
    timeouts REAL NOT NULL,
    bad_signatures REAL NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subject, role)
)"];

/// Version 2: events recorded once per key, folded into the counts.
const V2: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS reputation_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        role TEXT NOT NULL,
        event TEXT NOT NULL,
        at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS reputation_events_by_subject ON reputation_events (subject, role, id)",
    "ALTER TABLE reputation_scores ADD COLUMN folded_through INTEGER NOT NULL DEFAULT 0",
];

/// Version 3: wrong results (a result shown wrong), weighed like bad signatures.
const V3: &[&str] =
    &["ALTER TABLE reputation_scores ADD COLUMN wrong_results REAL NOT NULL DEFAULT 0"];

/// Folded events are kept this long (ms) so that a retried key is still
/// recognised, then deleted.
const KEEP_EVENTS_MS: i64 = 7 * 86_400_000;

/// Old events are pruned by about one fold in this many (a fold whose last
/// event id is a multiple of it), not on every write.
const PRUNE_EVERY: i64 = 16;

/// Events folded per guarded update.
const FOLD_BATCH: u64 = 256;

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

/// The default database with the tables in place (one connection per instance).
fn open() -> Result<std::rc::Rc<Connection>, String> {
    greenmesh_storage::migrated("reputation", &[V1, V2, V3]).map_err(|e| format!("open: {e:?}"))
}

fn event_name(event: Event) -> &'static str {
    match event {
        Event::Success => "success",
        Event::Failure => "failure",
        Event::Timeout => "timeout",
        Event::BadSignature => "bad_signature",
        Event::WrongResult => "wrong_result",
    }
}

fn event_named(name: &str) -> Option<model::Event> {
    Some(match name {
        "success" => model::Event::Success,
        "failure" => model::Event::Failure,
        "timeout" => model::Event::Timeout,
        "bad_signature" => model::Event::BadSignature,
        "wrong_result" => model::Event::WrongResult,
        _ => return None,
    })
}

/// Records `event` under `key` (once) and folds it in; answers whether the
/// key was new.
fn record(event_key: &str, subject: &str, role: Role, event: Event) -> Result<bool, String> {
    let db = open()?;
    let [subject_value, role_value] = key(subject, role);
    // Folding reads a subject's events by id, so they must become visible
    // in id order. SQLite commits one writer at a time; on Postgres two
    // inserts for one subject could take ids 100 and 101 and commit 101
    // first, and a fold then would pass 100 by for good. There the insert
    // holds a per-subject lock from before its id is drawn until it
    // commits (one statement: a transaction-level advisory lock).
    let sql = if db.is_postgres() {
        "WITH turn AS (SELECT pg_advisory_xact_lock(hashtext('reputation'), hashtext(?2 || ':' || ?3)))
         INSERT OR IGNORE INTO reputation_events (key, subject, role, event, at)
         SELECT ?1, ?2, ?3, ?4, ?5 FROM turn RETURNING id"
    } else {
        "INSERT OR IGNORE INTO reputation_events (key, subject, role, event, at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id"
    };
    let inserted = db
        .execute(
            sql,
            &[
                Value::Text(event_key.to_string()),
                subject_value,
                role_value,
                Value::Text(event_name(event).to_string()),
                Value::Integer(now_ms()),
            ],
        )
        .map_err(|e| format!("insert event: {e:?}"))?;
    fold(&db, subject, role)?;
    Ok(!inserted.rows.is_empty())
}

/// Folds the subject's events after `folded_through` into its counts, in
/// order, each decayed for the time since the one before.
fn fold(db: &Connection, subject: &str, role: Role) -> Result<(), String> {
    let [subject_value, role_value] = key(subject, role);
    let mut attempts = 0;
    while attempts < MAX_ATTEMPTS {
        let read = db
            .execute(
                "SELECT successes, failures, timeouts, bad_signatures, updated_at, wrong_results,
                     folded_through
                 FROM reputation_scores WHERE subject = ? AND role = ?",
                &[subject_value.clone(), role_value.clone()],
            )
            .map_err(|e| format!("select: {e:?}"))?;
        let Some(row) = read.rows.first() else {
            // A first event: the subject's row starts empty, then fold.
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
            attempts += 1;
            continue;
        };
        let folded = integer(row, 6);
        let pending = db
            .execute(
                "SELECT id, event, at FROM reputation_events
                 WHERE subject = ? AND role = ? AND id > ? ORDER BY id LIMIT ?",
                &[
                    subject_value.clone(),
                    role_value.clone(),
                    Value::Integer(folded),
                    Value::Integer(FOLD_BATCH as i64),
                ],
            )
            .map_err(|e| format!("select events: {e:?}"))?;
        if pending.rows.is_empty() {
            return Ok(());
        }
        let read_at = integer(row, 4);
        let mut at = read_at;
        let mut counts = counts_of(row, 0, read_at);
        let mut last = folded;
        for e in &pending.rows {
            let when = integer(e, 2);
            if let Some(event) = e.values.get(1).and_then(|v| match v {
                Value::Text(name) => event_named(name),
                _ => None,
            }) {
                counts = counts.after(elapsed(at, when), event);
            }
            at = at.max(when);
            last = integer(e, 0);
        }
        let written = db
            .execute(
                "UPDATE reputation_scores SET successes = ?, failures = ?, timeouts = ?,
                     bad_signatures = ?, wrong_results = ?, updated_at = ?, folded_through = ?
                 WHERE subject = ? AND role = ? AND folded_through = ? RETURNING folded_through",
                &[
                    Value::Real(counts.successes),
                    Value::Real(counts.failures),
                    Value::Real(counts.timeouts),
                    Value::Real(counts.bad_signatures),
                    Value::Real(counts.wrong_results),
                    Value::Integer(at),
                    Value::Integer(last),
                    subject_value.clone(),
                    role_value.clone(),
                    Value::Integer(folded),
                ],
            )
            .map_err(|e| format!("update: {e:?}"))?;
        if written.rows.is_empty() {
            attempts += 1; // another call folded first: read again
            continue;
        }
        // A short batch was every event there was: done, without reading
        // the row and the events again to find nothing. (An event added
        // since is folded by the call that added it.)
        let all_folded = (pending.rows.len() as u64) < FOLD_BATCH;
        if last % PRUNE_EVERY != 0 {
            if all_folded {
                return Ok(());
            }
            continue;
        }
        db.execute(
            "DELETE FROM reputation_events WHERE subject = ? AND role = ? AND id <= ? AND at < ?",
            &[
                subject_value.clone(),
                role_value.clone(),
                Value::Integer(last),
                Value::Integer(now_ms() - KEEP_EVENTS_MS),
            ],
        )
        .map_err(|e| format!("prune: {e:?}"))?;
        if all_folded {
            return Ok(());
        }
    }
    Err(format!("gave up after {MAX_ATTEMPTS} concurrent folds"))
}

/// Decayed counts from a `successes, failures, timeouts, bad_signatures,
/// updated_at, wrong_results` row, as of `now`.
fn counts_of(row: &RowResult, first: usize, now: i64) -> model::Counts {
    model::Counts {
        successes: real(row, first),
        failures: real(row, first + 1),
        timeouts: real(row, first + 2),
        bad_signatures: real(row, first + 3),
        wrong_results: real(row, first + 5),
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
                "SELECT subject, successes, failures, timeouts, bad_signatures, updated_at, wrong_results
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
        wrong_results: counts.wrong_results,
    }
}

struct Reputation;

impl Guest for Reputation {
    fn configure(settings: Vec<(String, String)>) {
        greenmesh_storage::configure(&settings);
    }

    fn record_event(key: String, subject: String, role: Role, event: Event) -> bool {
        record(&key, &subject, role, event).unwrap_or_else(|e| {
            eprintln!(
                "reputation: {event:?} for {} {subject:?} not recorded ({e})",
                role_name(role)
            );
            false
        })
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
