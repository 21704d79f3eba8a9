//! The `quota_*` tables: users' tiers and timezones, and task reservations.
//!
//! Thin SQL only; the rules live in `tier`, `limits` and `day`. Each
//! statement that must not race is a single statement (the host runs one
//! statement at a time on its connection, and SQLite makes each atomic):
//! a reservation counts and inserts in one `INSERT … SELECT … WHERE count <
//! limit`, a promotion only ever raises the stored tier.

use crate::tier::Tier;
use chrono_tz::Tz;
use greenmesh_storage::{Connection, QueryResult, Value};
use std::rc::Rc;

const USERS: &str = "CREATE TABLE IF NOT EXISTS quota_users (
    user TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    timezone TEXT NOT NULL,
    updated_at INTEGER
)";

/// A timezone change waiting for the user's next reset (issue 21: changing
/// zone must not start a fresh day early).
const TIMEZONE_CHANGES: &str = "CREATE TABLE IF NOT EXISTS quota_timezone_changes (
    user TEXT PRIMARY KEY,
    timezone TEXT NOT NULL,
    from_ms INTEGER NOT NULL
)";

const RESERVATIONS: &str = "CREATE TABLE IF NOT EXISTS quota_reservations (
    task_id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    at INTEGER NOT NULL,
    released INTEGER NOT NULL DEFAULT 0
)";

const RESERVATIONS_BY_USER: &str =
    "CREATE INDEX IF NOT EXISTS quota_reservations_user_at ON quota_reservations (user, at)";

/// The rank of a stored tier name in SQL, to compare tiers there.
const RANK: &str =
    "CASE quota_users.tier WHEN 'contributor' THEN 2 WHEN 'supporter' THEN 1 ELSE 0 END";

/// The default database with the `quota_*` tables in place (one connection
/// per component instance).
pub fn open() -> Result<Rc<Connection>, String> {
    greenmesh_storage::connection(&[USERS, TIMEZONE_CHANGES, RESERVATIONS, RESERVATIONS_BY_USER])
        .map_err(|e| format!("open: {e:?}"))
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn run(db: &Connection, what: &str, sql: &str, params: &[Value]) -> Result<QueryResult, String> {
    db.execute(sql, params)
        .map_err(|e| format!("{what}: {e:?}"))
}

fn rank(tier: Tier) -> i64 {
    match tier {
        Tier::Free => 0,
        Tier::Supporter => 1,
        Tier::Contributor => 2,
    }
}

fn parse_tz(user: &str, value: Option<&Value>) -> Tz {
    match value {
        Some(Value::Text(name)) => name.parse::<Tz>().unwrap_or_else(|_| {
            eprintln!("quota: user {user:?} has unknown timezone {name:?}; reading it as UTC");
            Tz::UTC
        }),
        _ => Tz::UTC,
    }
}

/// A user's stored tier and the timezone in force at `now_ms` (a pending
/// change counts from its `from_ms`); free and UTC without a row. A name
/// that no longer parses (a corrupt row) reads as free or UTC, with a note
/// on stderr. `None` in the second place: the user has no row yet.
pub fn user_at(db: &Connection, user: &str, now_ms: i64) -> Result<Option<(Tier, Tz)>, String> {
    let read = run(
        db,
        "read user",
        "SELECT u.tier, u.timezone, c.timezone, c.from_ms FROM quota_users u
         LEFT JOIN quota_timezone_changes c ON c.user = u.user WHERE u.user = ?",
        &[text(user)],
    )?;
    let Some(row) = read.rows.first() else {
        return Ok(None);
    };
    let tier = match row.values.first() {
        Some(Value::Text(name)) => Tier::parse(name).unwrap_or_else(|| {
            eprintln!("quota: user {user:?} has unknown tier {name:?}; reading it as free");
            Tier::Free
        }),
        _ => Tier::Free,
    };
    let timezone = match row.values.get(3) {
        Some(Value::Integer(from)) if *from <= now_ms => parse_tz(user, row.values.get(2)),
        _ => parse_tz(user, row.values.get(1)),
    };
    Ok(Some((tier, timezone)))
}

/// [`user_at`], free and UTC for a user with no row.
pub fn user(db: &Connection, user: &str, now_ms: i64) -> Result<(Tier, Tz), String> {
    Ok(user_at(db, user, now_ms)?.unwrap_or((Tier::Free, Tz::UTC)))
}

/// The pending timezone change of `user`, if any: the zone and when it
/// takes effect.
pub fn pending_timezone(db: &Connection, user: &str) -> Result<Option<(String, i64)>, String> {
    let read = run(
        db,
        "read timezone change",
        "SELECT timezone, from_ms FROM quota_timezone_changes WHERE user = ?",
        &[text(user)],
    )?;
    Ok(read.rows.first().and_then(|r| match r.values.as_slice() {
        [Value::Text(tz), Value::Integer(from), ..] => Some((tz.clone(), *from)),
        _ => None,
    }))
}

/// Raises the user's stored tier to `tier` if it is lower (creating the
/// row, UTC, if none). Returns whether this call wrote it.
pub fn raise_tier(db: &Connection, user: &str, tier: Tier, now_ms: i64) -> Result<bool, String> {
    let written = run(
        db,
        "promote",
        &format!(
            "INSERT INTO quota_users (user, tier, timezone, updated_at) VALUES (?1, ?2, 'UTC', ?3)
             ON CONFLICT (user) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at
                 WHERE {RANK} < ?4
             RETURNING tier"
        ),
        &[
            text(user),
            text(tier.name()),
            Value::Integer(now_ms),
            Value::Integer(rank(tier)),
        ],
    )?;
    Ok(!written.rows.is_empty())
}

/// Sets the user's timezone now (creating the row, free, if none) and
/// drops any pending change.
pub fn set_timezone(db: &Connection, user: &str, timezone: Tz, now_ms: i64) -> Result<(), String> {
    run(
        db,
        "set timezone",
        "INSERT INTO quota_users (user, tier, timezone, updated_at) VALUES (?1, 'free', ?2, ?3)
         ON CONFLICT (user) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at",
        &[text(user), text(timezone.name()), Value::Integer(now_ms)],
    )?;
    run(
        db,
        "drop timezone change",
        "DELETE FROM quota_timezone_changes WHERE user = ?",
        &[text(user)],
    )?;
    Ok(())
}

/// Schedules `timezone` for `user` from `from_ms` (replacing any pending
/// change).
pub fn schedule_timezone(
    db: &Connection,
    user: &str,
    timezone: Tz,
    from_ms: i64,
) -> Result<(), String> {
    run(
        db,
        "schedule timezone",
        "INSERT INTO quota_timezone_changes (user, timezone, from_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (user) DO UPDATE SET timezone = excluded.timezone, from_ms = excluded.from_ms",
        &[text(user), text(timezone.name()), Value::Integer(from_ms)],
    )?;
    Ok(())
}

/// Whether `user` ever reserved a task.
pub fn has_reservations(db: &Connection, user: &str) -> Result<bool, String> {
    let read = run(
        db,
        "any reservation",
        "SELECT 1 FROM quota_reservations WHERE user = ? LIMIT 1",
        &[text(user)],
    )?;
    Ok(!read.rows.is_empty())
}

/// The user's reservations not released with `at` in `[from_ms, to_ms)`.
pub fn used(db: &Connection, user: &str, from_ms: i64, to_ms: i64) -> Result<u32, String> {
    let read = run(
        db,
        "count",
        "SELECT COUNT(*) FROM quota_reservations
         WHERE user = ? AND released = 0 AND at >= ? AND at < ?",
        &[text(user), Value::Integer(from_ms), Value::Integer(to_ms)],
    )?;
    Ok(match read.rows.first().and_then(|row| row.values.first()) {
        Some(Value::Integer(n)) => u32::try_from(*n).unwrap_or(if *n < 0 { 0 } else { u32::MAX }),
        _ => 0,
    })
}

/// What [`reserve`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// Counted now.
    Now,
    /// The user already holds this task's reservation: nothing changed.
    Already,
    /// The task id is another user's: nothing changed.
    OtherUser,
    /// `limit` reservations in the day already: nothing changed.
    Exhausted,
}

/// Reserves `task_id` for `user` at `at_ms` if fewer than `limit` of the
/// user's reservations fall in `[from_ms, to_ms)`, counting and inserting
/// in one statement so concurrent calls cannot overshoot. A released
/// reservation of the same user and task is taken again (at `at_ms`).
pub fn reserve(
    db: &Connection,
    user: &str,
    task_id: &str,
    at_ms: i64,
    (from_ms, to_ms): (i64, i64),
    limit: u32,
) -> Result<Reserved, String> {
    // One reservation per user at a time (across replicas, on Postgres):
    // the count and the insert are one statement, but a statement's
    // snapshot would not see a racing one's row.
    let reserve = || {
        Ok(run(
            db,
            "reserve",
            "INSERT INTO quota_reservations (task_id, user, at, released)
         SELECT ?1, ?2, ?3, 0
         WHERE (SELECT COUNT(*) FROM quota_reservations
                WHERE user = ?2 AND released = 0 AND at >= ?4 AND at < ?5) < ?6
         ON CONFLICT (task_id) DO UPDATE SET at = excluded.at, released = 0
             WHERE quota_reservations.released <> 0 AND quota_reservations.user = excluded.user
         RETURNING task_id",
            &[
                text(task_id),
                text(user),
                Value::Integer(at_ms),
                Value::Integer(from_ms),
                Value::Integer(to_ms),
                Value::Integer(limit.into()),
            ],
        ))
    };
    let written = greenmesh_storage::exclusive(db, "quota", user, reserve)
        .map_err(|e| format!("reserve: {e:?}"))??;
    if !written.rows.is_empty() {
        return Ok(Reserved::Now);
    }
    let read = run(
        db,
        "read reservation",
        "SELECT user, released FROM quota_reservations WHERE task_id = ?",
        &[text(task_id)],
    )?;
    Ok(match read.rows.first().map(|row| row.values.as_slice()) {
        Some([Value::Text(holder), ..]) if holder != user => Reserved::OtherUser,
        Some([_, Value::Integer(0), ..]) => Reserved::Already,
        _ => Reserved::Exhausted,
    })
}

/// Releases the user's reservation of `task_id`; whether one was released
/// by this call.
pub fn release(db: &Connection, user: &str, task_id: &str) -> Result<bool, String> {
    let written = run(
        db,
        "release",
        "UPDATE quota_reservations SET released = 1
         WHERE task_id = ? AND user = ? AND released = 0
         RETURNING task_id",
        &[text(task_id), text(user)],
    )?;
    Ok(!written.rows.is_empty())
}
