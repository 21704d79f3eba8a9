//! The quota component: exports `greenmesh:quota/tiers@0.1.0`.
//!
//! This file only wires the WIT interface to the rules ([`tier`]: promotion,
//! [`limits`]: the tier table, [`day`]: the user's local day) and to the
//! `quota_*` tables ([`store`]). Every call reads the time afresh from the
//! WASI wall clock (the host may move a virtual clock between calls) and the
//! timezone in force: counts are of reservation instants within today's
//! bounds, not of day keys. A user's first timezone applies at once; a
//! change applies from their next reset, so switching zones never starts a
//! fresh day early (issue 21).

pub mod day;
pub mod limits;
pub mod store;
pub mod tier;

wit_bindgen::generate!({
    path: "../../wit",
    world: "greenmesh:quota/quota@0.1.0",
});

use chrono_tz::Tz;
use exports::greenmesh::quota::tiers::Guest;
use greenmesh::quota::types::{Error, Limits, Need, Over, Standing, Tier as WitTier, Usage};
use greenmesh_storage::Connection;
use tier::Tier;

/// Longest input echoed back in an error message.
const ECHO_MAX_CHARS: usize = 80;

/// Milliseconds since the Unix epoch, from the WASI wall clock.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An instant for the WIT (`u64` ms): before the epoch reads as 0.
fn instant(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

fn to_wit(tier: Tier) -> WitTier {
    match tier {
        Tier::Free => WitTier::Free,
        Tier::Supporter => WitTier::Supporter,
        Tier::Contributor => WitTier::Contributor,
    }
}

fn from_wit(tier: WitTier) -> Tier {
    match tier {
        WitTier::Free => Tier::Free,
        WitTier::Supporter => Tier::Supporter,
        WitTier::Contributor => Tier::Contributor,
    }
}

fn wit_limits(limits: limits::Limits) -> Limits {
    Limits {
        tasks_per_day: limits.tasks_per_day,
        max_duration_sec: limits.max_duration_sec,
        max_memory_mb: limits.max_memory_mb,
    }
}

fn standing(s: &Standing) -> tier::Standing {
    tier::Standing {
        member_since_ms: s.member_since,
        donations: s.donations,
        tasks_completed: s.tasks_completed,
        tasks_executed: s.tasks_executed,
        votes_cast: s.votes_cast,
    }
}

/// `input`, cut to [`ECHO_MAX_CHARS`], for an error message.
fn echo(input: &str) -> String {
    match input.char_indices().nth(ECHO_MAX_CHARS) {
        Some((end, _)) => format!("{:?}…", &input[..end]),
        None => format!("{input:?}"),
    }
}

fn non_empty(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        Err(Error::Invalid(format!("{what} must not be empty")))
    } else {
        Ok(())
    }
}

fn open() -> Result<std::rc::Rc<Connection>, Error> {
    store::open().map_err(Error::Storage)
}

/// A user's tier and timezone after `standing` is evaluated now, with
/// what this call promoted from.
struct Current {
    tier: Tier,
    timezone: Tz,
    promoted_from: Option<Tier>,
    standing: tier::Standing,
    now_ms: i64,
}

/// Reads the user and applies any promotion `standing` earns (stored, so
/// it sticks).
fn current(db: &Connection, user: &str, standing: &Standing) -> Result<Current, Error> {
    let standing = self::standing(standing);
    let now_ms = now_ms();
    let (stored, timezone) = store::user(db, user, now_ms).map_err(Error::Storage)?;
    let earned = tier::promote(stored, &standing, now_ms);
    let mut current = Current {
        tier: stored,
        timezone,
        promoted_from: None,
        standing,
        now_ms,
    };
    if earned > stored {
        if store::raise_tier(db, user, earned, now_ms).map_err(Error::Storage)? {
            current.tier = earned;
            current.promoted_from = Some(stored);
        } else {
            // A concurrent call promoted the user as far or further.
            let (tier, timezone) = store::user(db, user, now_ms).map_err(Error::Storage)?;
            current.tier = tier.max(earned);
            current.timezone = timezone;
        }
    }
    Ok(current)
}

/// Today's usage of `user` as `current` stands.
fn usage_of(db: &Connection, user: String, current: &Current) -> Result<Usage, Error> {
    let limits = limits::of(current.tier);
    let (started, next) = day::bounds(current.timezone, current.now_ms);
    let used = store::used(db, &user, started, next).map_err(Error::Storage)?;
    Ok(Usage {
        user,
        tier: to_wit(current.tier),
        limits: wit_limits(limits),
        used_today: used,
        remaining: limits.remaining(used),
        timezone: current.timezone.name().to_string(),
        day_started_at: instant(started),
        next_reset_at: instant(next),
        promoted_from: current.promoted_from.map(to_wit),
        next_tier: tier::next_tier(current.tier, &current.standing),
    })
}

struct Quota;

impl Guest for Quota {
    fn configure(settings: Vec<(String, String)>) {
        greenmesh_storage::configure(&settings);
    }

    fn limits_of(tier: WitTier) -> Limits {
        wit_limits(limits::of(from_wit(tier)))
    }

    fn set_timezone(user: String, timezone: String) -> Result<(), Error> {
        non_empty("user", &user)?;
        let tz: Tz = timezone.parse().map_err(|_| {
            Error::Invalid(format!(
                "unknown IANA timezone {} (expected a name such as \"America/Los_Angeles\" or \"UTC\")",
                echo(&timezone)
            ))
        })?;
        let db = open()?;
        let now = now_ms();
        match store::user_at(&db, &user, now).map_err(Error::Storage)? {
            // A new user's first zone applies at once (one who has
            // reserved without setting a zone is in UTC).
            None if !store::has_reservations(&db, &user).map_err(Error::Storage)? => {
                store::set_timezone(&db, &user, tz, now)
            }
            None => store::set_timezone(&db, &user, Tz::UTC, now).and_then(|()| {
                store::schedule_timezone(&db, &user, tz, day::bounds(Tz::UTC, now).1)
            }),
            // Back to the zone in force: nothing changes.
            Some((_, current)) if current == tz => store::set_timezone(&db, &user, tz, now),
            // Otherwise from the next reset of the day in force.
            // Otherwise from the next reset of the day in force (a change
            // already in force is written down first).
            Some((_, current)) => {
                let (_, next_reset) = day::bounds(current, now);
                store::set_timezone(&db, &user, current, now)
                    .and_then(|()| store::schedule_timezone(&db, &user, tz, next_reset))
            }
        }
        .map_err(Error::Storage)
    }

    /// WIT `usage` (wit-bindgen names it `get-usage` beside the `usage` type).
    fn get_usage(user: String, standing: Standing) -> Result<Usage, Error> {
        non_empty("user", &user)?;
        let db = open()?;
        let current = current(&db, &user, &standing)?;
        usage_of(&db, user, &current)
    }

    fn reserve(
        user: String,
        task_id: String,
        standing: Standing,
        need: Need,
    ) -> Result<Usage, Error> {
        non_empty("user", &user)?;
        non_empty("task id", &task_id)?;
        let db = open()?;
        let current = current(&db, &user, &standing)?;
        let limits = limits::of(current.tier);
        limits
            .admit(need.duration_sec, need.memory_mb)
            .map_err(|over| {
                Error::OverLimit(Over {
                    limit: over.limit.to_string(),
                    requested: over.requested,
                    allowed: over.allowed,
                    tier: to_wit(current.tier),
                })
            })?;
        let today = day::bounds(current.timezone, current.now_ms);
        let reserved = store::reserve(
            &db,
            &user,
            &task_id,
            current.now_ms,
            today,
            limits.tasks_per_day,
        )
        .map_err(Error::Storage)?;
        match reserved {
            store::Reserved::Now | store::Reserved::Already => usage_of(&db, user, &current),
            store::Reserved::Exhausted => Err(Error::Exhausted(usage_of(&db, user, &current)?)),
            store::Reserved::OtherUser => Err(Error::Invalid(format!(
                "task {} is reserved by another user",
                echo(&task_id)
            ))),
        }
    }

    fn release(user: String, task_id: String) -> Result<bool, Error> {
        non_empty("user", &user)?;
        non_empty("task id", &task_id)?;
        let db = open()?;
        store::release(&db, &user, &task_id).map_err(Error::Storage)
    }
}

export!(Quota);
