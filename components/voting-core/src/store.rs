//! The ballot box: polls, ballots and settings in the default SQLite
//! database, shared by every voting implementation (same tables, so a
//! network can switch implementation without losing a poll).
//!
//! ```text
//! voting_polls    (task_id PK, opened_at, closes_at, closed, final_outcome JSON)
//! voting_ballots  (task_id, voter, level, standing JSON, credits, cast_at; PK (task_id, voter))
//! voting_settings (name PK, value)
//! ```
//!
//! Times are milliseconds since the Unix epoch. Ballots keep the voter's
//! standing, and open polls are tallied on every read with the
//! [`Weighting`] the component passes in, so switching the scheme re-weighs
//! ballots already cast. A closed poll answers the outcome stored when it
//! closed.
//!
//! Concurrency without transactions (Spin's SQLite API holds none across
//! calls): a ballot is written by statements that re-check, in the same
//! statement, that the poll is still open; `close_due` claims each poll
//! with `UPDATE … SET closed = 1 WHERE … AND closed = 0 RETURNING`, so of
//! concurrent callers exactly one gets it, and only then tallies it (no
//! ballot can land after the claim); the final outcome is written only
//! where none is stored yet.

use crate::ballot::{Ballot, Standing, StoredBallot};
use crate::clock::now_ms;
use crate::config;
use crate::error::Error;
use crate::level::Level;
use crate::outcome::Outcome;
use crate::poll::Poll;
use crate::weighting::Weighting;
use greenmesh_storage::{Connection, QueryResult, RowResult, Value};
use std::collections::HashMap;
use std::rc::Rc;

/// The tables and their indexes, created if missing.
pub const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS voting_polls (
        task_id TEXT PRIMARY KEY,
        opened_at INTEGER NOT NULL,
        closes_at INTEGER NOT NULL,
        closed INTEGER NOT NULL DEFAULT 0,
        final_outcome TEXT
    )",
    "CREATE INDEX IF NOT EXISTS voting_polls_by_closing ON voting_polls (closed, closes_at)",
    "CREATE TABLE IF NOT EXISTS voting_ballots (
        task_id TEXT NOT NULL,
        voter TEXT NOT NULL,
        level TEXT NOT NULL,
        standing TEXT NOT NULL,
        credits INTEGER NOT NULL,
        cast_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, voter)
    )",
    "CREATE INDEX IF NOT EXISTS voting_ballots_by_voter ON voting_ballots (voter)",
    "CREATE TABLE IF NOT EXISTS voting_settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )",
];

/// `list_open` returns at most this many polls, whatever the limit asked.
pub const LIST_CAP: u32 = 1000;

/// The default database with [`SCHEMA`] in place (one connection per instance).
fn db() -> Result<Rc<Connection>, Error> {
    greenmesh_storage::connection(&SCHEMA).map_err(|e| Error::Storage(format!("open: {e:?}")))
}

fn run(db: &Connection, what: &str, sql: &str, params: &[Value]) -> Result<QueryResult, Error> {
    db.execute(sql, params)
        .map_err(|e| Error::Storage(format!("{what}: {e:?}")))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn int(x: u64) -> Value {
    Value::Integer(i64::try_from(x).unwrap_or(i64::MAX))
}

fn integer(row: &RowResult, index: usize) -> i64 {
    match row.values.get(index) {
        Some(Value::Integer(x)) => *x,
        Some(Value::Real(x)) if x.is_finite() => *x as i64,
        _ => 0,
    }
}

fn unsigned(row: &RowResult, index: usize) -> u64 {
    u64::try_from(integer(row, index)).unwrap_or(0)
}

fn string(row: &RowResult, index: usize) -> Option<&str> {
    match row.values.get(index) {
        Some(Value::Text(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn check_task_id(task_id: &str) -> Result<(), Error> {
    if task_id.trim().is_empty() {
        Err(Error::Invalid("task id must not be empty".into()))
    } else {
        Ok(())
    }
}

fn not_found(task_id: &str) -> Error {
    Error::NotFound(format!("no poll on task {task_id}"))
}

/// A `voting_polls` row.
struct PollRow {
    task_id: String,
    opened_at: u64,
    closes_at: u64,
    closed: bool,
    final_outcome: Option<String>,
}

const POLL_COLUMNS: &str = "task_id, opened_at, closes_at, closed, final_outcome";

impl PollRow {
    fn read(row: &RowResult) -> Self {
        PollRow {
            task_id: string(row, 0).unwrap_or_default().to_string(),
            opened_at: unsigned(row, 1),
            closes_at: unsigned(row, 2),
            closed: integer(row, 3) != 0,
            final_outcome: string(row, 4).map(str::to_string),
        }
    }
}

fn read_poll(db: &Connection, task_id: &str) -> Result<Option<PollRow>, Error> {
    let read = run(
        db,
        "select poll",
        &format!("SELECT {POLL_COLUMNS} FROM voting_polls WHERE task_id = ?"),
        &[text(task_id)],
    )?;
    Ok(read.rows.first().map(PollRow::read))
}

/// The ballots on each of `task_ids` (voters in order). A row with an
/// unknown level is skipped and an unreadable standing counts as zero; both
/// are logged (only a foreign writer could produce them).
fn ballots(
    db: &Connection,
    task_ids: &[&str],
) -> Result<HashMap<String, Vec<StoredBallot>>, Error> {
    let mut found: HashMap<String, Vec<StoredBallot>> = HashMap::new();
    if task_ids.is_empty() {
        return Ok(found);
    }
    let placeholders = vec!["?"; task_ids.len()].join(", ");
    let params: Vec<Value> = task_ids.iter().map(|t| text(t)).collect();
    let read = run(
        db,
        "select ballots",
        &format!(
            "SELECT task_id, voter, level, standing, credits FROM voting_ballots
             WHERE task_id IN ({placeholders}) ORDER BY task_id, voter"
        ),
        &params,
    )?;
    for row in &read.rows {
        let (Some(task_id), Some(voter)) = (string(row, 0), string(row, 1)) else {
            continue;
        };
        let Some(level) = string(row, 2).and_then(Level::parse) else {
            eprintln!("voting: ballot of {voter:?} on {task_id:?} has an unknown level; skipped");
            continue;
        };
        let standing = serde_json::from_str::<Standing>(string(row, 3).unwrap_or_default())
            .unwrap_or_else(|e| {
                eprintln!("voting: standing of {voter:?} on {task_id:?} unreadable ({e}); zero");
                Standing::default()
            })
            .sanitized();
        found
            .entry(task_id.to_string())
            .or_default()
            .push(StoredBallot {
                voter: voter.to_string(),
                level,
                standing,
                credits: u32::try_from(integer(row, 4)).unwrap_or(0),
            });
    }
    Ok(found)
}

fn stored_outcome(task_id: &str, json: &str) -> Result<Outcome, Error> {
    let mut outcome = Outcome::from_json(json)
        .map_err(|e| Error::Storage(format!("final outcome of task {task_id} unreadable: {e}")))?;
    outcome.task_id = task_id.to_string();
    outcome.closed = true;
    Ok(outcome)
}

/// Tallies a closed poll and stores the result as its final outcome, unless
/// one is stored already (then that one is answered).
fn finalize(db: &Connection, task_id: &str, weighting: &Weighting) -> Result<Outcome, Error> {
    let cast = ballots(db, &[task_id])?.remove(task_id).unwrap_or_default();
    let outcome = Outcome::new(task_id, weighting.scheme, weighting.tally(&cast), true);
    let json = outcome
        .to_json()
        .map_err(|e| Error::Storage(format!("encode final outcome: {e}")))?;
    let written = run(
        db,
        "store final outcome",
        "UPDATE voting_polls SET final_outcome = ?
         WHERE task_id = ? AND final_outcome IS NULL RETURNING task_id",
        &[Value::Text(json), text(task_id)],
    )?;
    if !written.rows.is_empty() {
        return Ok(outcome);
    }
    match read_poll(db, task_id)? {
        Some(PollRow {
            final_outcome: Some(json),
            ..
        }) => stored_outcome(task_id, &json),
        Some(_) => Ok(outcome),
        None => Err(not_found(task_id)),
    }
}

/// A poll as answered: open ones tallied now with `weighting` (`cast`: its
/// ballots), closed ones with their final outcome.
fn answer(
    db: &Connection,
    row: PollRow,
    cast: Option<&[StoredBallot]>,
    weighting: &Weighting,
) -> Result<Poll, Error> {
    let outcome = match (&row.final_outcome, row.closed) {
        (Some(json), true) => stored_outcome(&row.task_id, json)?,
        (None, true) => finalize(db, &row.task_id, weighting)?,
        (_, false) => {
            let tally = match cast {
                Some(cast) => weighting.tally(cast),
                None => {
                    let cast = ballots(db, &[row.task_id.as_str()])?
                        .remove(&row.task_id)
                        .unwrap_or_default();
                    weighting.tally(&cast)
                }
            };
            Outcome::new(&row.task_id, weighting.scheme, tally, false)
        }
    };
    Ok(Poll {
        task_id: row.task_id,
        opened_at: row.opened_at,
        closes_at: row.closes_at,
        outcome,
    })
}

/// Opens a poll on `task_id` closing `window_ms` from now (0: the
/// configured default, see [`config::window_ms`]). Idempotent: if the task
/// has a poll already, open or closed, it is answered unchanged.
pub fn open(task_id: &str, window_ms: u64, weighting: &Weighting) -> Result<Poll, Error> {
    check_task_id(task_id)?;
    let window = if window_ms == 0 {
        config::window_ms()
    } else {
        window_ms
    };
    let now = now_ms();
    let db = db()?;
    run(
        &db,
        "insert poll",
        "INSERT INTO voting_polls (task_id, opened_at, closes_at) VALUES (?, ?, ?)
         ON CONFLICT (task_id) DO NOTHING",
        &[text(task_id), int(now), int(now.saturating_add(window))],
    )?;
    get(task_id, weighting)
}

/// Records `ballot` on `task_id`; `Ok(true)` when it replaced the voter's
/// earlier ballot there. `NotFound` without a poll, `Closed` once the
/// window has passed (even before `close_due` ran) or the poll is closed,
/// `Invalid` for a blank voter. Whether the voter may vote and whether the
/// credits are acceptable is the component's business, checked before.
pub fn cast(task_id: &str, ballot: &Ballot) -> Result<bool, Error> {
    check_task_id(task_id)?;
    if ballot.voter.trim().is_empty() {
        return Err(Error::Invalid("voter must not be empty".into()));
    }
    let db = db()?;
    let now = now_ms();
    let poll = read_poll(&db, task_id)?.ok_or_else(|| not_found(task_id))?;
    let closed = || Error::Closed(format!("the poll on task {task_id} has closed"));
    if poll.closed || now >= poll.closes_at {
        return Err(closed());
    }
    let standing = serde_json::to_string(&ballot.standing.sanitized())
        .map_err(|e| Error::Storage(format!("encode standing: {e}")))?;
    let params = [
        text(task_id),
        text(&ballot.voter),
        text(ballot.level.name()),
        Value::Text(standing),
        Value::Integer(i64::from(ballot.credits)),
        int(now),
    ];
    // A first ballot: inserted only while the poll is open.
    let inserted = run(
        &db,
        "insert ballot",
        "INSERT INTO voting_ballots (task_id, voter, level, standing, credits, cast_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 FROM voting_polls
         WHERE task_id = ?1 AND closed = 0 AND closes_at > ?6
         ON CONFLICT (task_id, voter) DO NOTHING
         RETURNING voter",
        &params,
    )?;
    if !inserted.rows.is_empty() {
        return Ok(false);
    }
    // The voter had voted (ballots are never deleted): replace it, again
    // only while the poll is open.
    let replaced = run(
        &db,
        "replace ballot",
        "UPDATE voting_ballots SET level = ?3, standing = ?4, credits = ?5, cast_at = ?6
         WHERE task_id = ?1 AND voter = ?2 AND EXISTS (
             SELECT 1 FROM voting_polls
             WHERE task_id = ?1 AND closed = 0 AND closes_at > ?6)
         RETURNING voter",
        &params,
    )?;
    if replaced.rows.is_empty() {
        // The poll closed between the check above and the write.
        return Err(closed());
    }
    Ok(true)
}

/// The poll on `task_id`, tallied with `weighting` unless it is closed.
pub fn get(task_id: &str, weighting: &Weighting) -> Result<Poll, Error> {
    let db = db()?;
    let row = read_poll(&db, task_id)?.ok_or_else(|| not_found(task_id))?;
    answer(&db, row, None, weighting)
}

/// Polls still taking ballots (not closed, window not passed), soonest to
/// close first; at most `limit` of them (at least 1, at most [`LIST_CAP`]).
pub fn list_open(limit: u32, weighting: &Weighting) -> Result<Vec<Poll>, Error> {
    let db = db()?;
    let read = run(
        &db,
        "select open polls",
        &format!(
            "SELECT {POLL_COLUMNS} FROM voting_polls
             WHERE closed = 0 AND closes_at > ? ORDER BY closes_at, task_id LIMIT ?"
        ),
        &[int(now_ms()), int(u64::from(limit.clamp(1, LIST_CAP)))],
    )?;
    let rows: Vec<PollRow> = read.rows.iter().map(PollRow::read).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
    let cast = ballots(&db, &ids)?;
    rows.into_iter()
        .map(|row| {
            let mine = cast.get(&row.task_id).map_or(&[][..], |b| b.as_slice());
            answer(&db, row, Some(mine), weighting)
        })
        .collect()
}

/// Closes one due poll if this call is the one to flip it; its final
/// outcome, or `None` when another call closed it first.
fn close_one(
    db: &Connection,
    task_id: &str,
    weighting: &Weighting,
) -> Result<Option<Outcome>, Error> {
    let claimed = run(
        db,
        "close poll",
        "UPDATE voting_polls SET closed = 1 WHERE task_id = ? AND closed = 0 RETURNING task_id",
        &[text(task_id)],
    )?;
    if claimed.rows.is_empty() {
        return Ok(None);
    }
    finalize(db, task_id, weighting).map(Some).inspect_err(|_| {
        // Give the poll back so a later call closes and reports it (best
        // effort: if this fails too, `get` still finalizes it on read).
        let _ = run(
            db,
            "reopen poll",
            "UPDATE voting_polls SET closed = 0 WHERE task_id = ? AND final_outcome IS NULL",
            &[text(task_id)],
        );
    })
}

/// Closes up to `limit` open polls whose window ended at or before `now`
/// and answers their final outcomes, soonest closed first. Each poll is answered by
/// exactly one call, however many run at once. If the database fails part
/// way, the polls closed so far are answered (and the failure logged); the
/// failed one is left for the next call.
pub fn close_due(now: u64, limit: u32, weighting: &Weighting) -> Result<Vec<Outcome>, Error> {
    let db = db()?;
    let due = run(
        &db,
        "select due polls",
        "SELECT task_id FROM voting_polls WHERE closed = 0 AND closes_at <= ?
         ORDER BY closes_at, task_id LIMIT ?",
        &[int(now), int(u64::from(limit.max(1)))],
    )?;
    let mut outcomes = Vec::new();
    for row in &due.rows {
        let Some(task_id) = string(row, 0) else {
            continue;
        };
        match close_one(&db, task_id, weighting) {
            Ok(Some(outcome)) => outcomes.push(outcome),
            Ok(None) => {}
            Err(e) if outcomes.is_empty() => return Err(e),
            Err(e) => {
                eprintln!("voting: closing task {task_id:?} failed ({e}); left for the next call");
                break;
            }
        }
    }
    Ok(outcomes)
}

/// Tasks `voter` has a ballot on (a replaced ballot counts once).
pub fn votes_cast(voter: &str) -> Result<u64, Error> {
    let db = db()?;
    let read = run(
        &db,
        "count ballots",
        "SELECT COUNT(DISTINCT task_id) FROM voting_ballots WHERE voter = ?",
        &[text(voter)],
    )?;
    Ok(read.rows.first().map_or(0, |row| unsigned(row, 0)))
}

/// The `voting_settings` value of `name`, if set.
pub fn setting(name: &str) -> Result<Option<String>, Error> {
    let db = db()?;
    let read = run(
        &db,
        "select setting",
        "SELECT value FROM voting_settings WHERE name = ?",
        &[text(name)],
    )?;
    Ok(read
        .rows
        .first()
        .and_then(|row| string(row, 0))
        .map(str::to_string))
}

/// Sets the `voting_settings` value of `name`.
pub fn set_setting(name: &str, value: &str) -> Result<(), Error> {
    let db = db()?;
    run(
        &db,
        "store setting",
        "INSERT INTO voting_settings (name, value) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        &[text(name), text(value)],
    )?;
    Ok(())
}
