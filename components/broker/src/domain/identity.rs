//! Identity that costs something and influence that is earned (ADR 0021):
//! who may register (`registration`: `open` with a per-address limit, or
//! `invite`), and when an account's ballot weighs (a minimum age and a
//! record of work or donations, never on its own task).
//!
//! Registration is counted per client address as the host reports it
//! (`spin-client-addr`, set by the host and never taken from the client):
//! IPv4 per address, IPv6 per /64 (one subscriber's usual allocation).

use crate::db::{int, text, Db};
use crate::domain::standing::Standing;
use crate::error::ApiError;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};

/// Accounts one address may register per day under `registration = open`,
/// unless `registrations_per_address_per_day` says otherwise.
pub const REGISTRATIONS_PER_ADDRESS_PER_DAY: i64 = 5;
/// Hours an account must exist before its ballots are accepted, unless
/// `ballot_min_age_hours` says otherwise.
pub const BALLOT_MIN_AGE_HOURS: f64 = 24.0;
/// Record (own tasks completed + tasks run for others, a donation counting
/// one) an account needs before its ballots are accepted, unless
/// `ballot_min_record` says otherwise.
pub const BALLOT_MIN_RECORD: u64 = 1;
/// How long an invite stays valid.
pub const INVITE_TTL_MS: u64 = 7 * 86_400_000;

const DAY_MS: u64 = 86_400_000;

fn variable<T: std::str::FromStr>(name: &str) -> Option<T> {
    spin_sdk::variables::get(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// How accounts are made on this network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Anyone, a few accounts per address per day.
    Open,
    /// Only with an unused invite an admin minted.
    Invite,
}

impl Registration {
    /// The `registration` variable (`open` unless it says `invite`).
    pub fn configured() -> Result<Self, ApiError> {
        match spin_sdk::variables::get("registration")
            .unwrap_or_default()
            .trim()
        {
            "" | "open" => Ok(Self::Open),
            "invite" => Ok(Self::Invite),
            other => Err(ApiError::internal(format!(
                "variable registration is {other:?}; expected open or invite"
            ))),
        }
    }
}

/// The address registrations are counted against: the IPv4 address, or the
/// IPv6 /64 (an IPv4-mapped IPv6 address counts as its IPv4 address).
pub fn address_key(client: Option<&str>) -> String {
    let ip = client.and_then(|c| {
        c.parse::<SocketAddr>()
            .map(|s| s.ip())
            .or_else(|_| c.parse::<IpAddr>())
            .ok()
    });
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        None => "unknown".to_string(),
    }
}

/// Admits one registration from `address` (with `invite`, when the network
/// needs one), or says why not. `by_admin` skips both checks: an admin
/// registering someone is the approval.
pub fn admit_registration(
    db: &Db,
    address: &str,
    invite: Option<&str>,
    by_admin: bool,
) -> Result<(), ApiError> {
    if by_admin {
        return Ok(());
    }
    let now = crate::util::now_ms();
    match Registration::configured()? {
        Registration::Invite => {
            let code = invite.ok_or_else(|| {
                ApiError::new(
                    403,
                    "invite_required",
                    "this network registers by invite: send the `invite` an admin gave you",
                )
            })?;
            let taken = db.query(
                "UPDATE broker_invites SET used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?
                 RETURNING code_hash",
                &[int(now), text(greenmesh_protocol::sha256_hex(code.trim().as_bytes())), int(now)],
            )?;
            if taken.rows.is_empty() {
                return Err(ApiError::new(
                    403,
                    "invalid_invite",
                    "that invite is unknown, used or expired",
                )
                .on_field("invite"));
            }
            Ok(())
        }
        Registration::Open => {
            let limit = variable("registrations_per_address_per_day")
                .unwrap_or(REGISTRATIONS_PER_ADDRESS_PER_DAY);
            // Counts and inserts in one statement, one registration per
            // address at a time, so concurrent registrations from one
            // address cannot overshoot (on any replica).
            let admitted = db.exclusive("registrations", address, || db.query(
                "INSERT INTO broker_registrations (address, at)
                 SELECT ?1, ?2 WHERE (SELECT COUNT(*) FROM broker_registrations WHERE address = ?1 AND at > ?3) < ?4
                 RETURNING at",
                &[text(address), int(now), int(now.saturating_sub(DAY_MS)), greenmesh_storage::Value::Integer(limit)],
            ))?;
            if admitted.rows.is_empty() {
                let first = db.query(
                    "SELECT MIN(at) FROM broker_registrations WHERE address = ? AND at > ?",
                    &[text(address), int(now.saturating_sub(DAY_MS))],
                )?;
                let oldest = first
                    .rows
                    .first()
                    .and_then(|r| r.get::<i64>(0))
                    .unwrap_or(now as i64) as u64;
                let retry_s = (oldest + DAY_MS).saturating_sub(now).div_ceil(1000);
                return Err(ApiError::new(
                    429,
                    "registration_limited",
                    format!(
                        "{limit} accounts were registered from your address in the last 24 hours; \
                         retry in {retry_s} s or ask the network's admin"
                    ),
                )
                .with_details(json!({ "limit": limit, "retry_after_s": retry_s })));
            }
            // Old rows are only ever counted within a day: drop them.
            db.exec(
                "DELETE FROM broker_registrations WHERE at <= ?",
                &[int(now.saturating_sub(DAY_MS))],
            )?;
            Ok(())
        }
    }
}

/// Mints a single-use invite (shown once; stored as its SHA-256).
pub fn mint_invite(db: &Db, note: Option<&str>) -> Result<Value, ApiError> {
    let secret: [u8; 16] = crate::util::random_bytes();
    let code = format!("inv_{}", greenmesh_protocol::to_hex(&secret));
    let now = crate::util::now_ms();
    let expires_at = now + INVITE_TTL_MS;
    db.exec(
        "INSERT INTO broker_invites (code_hash, note, created_at, expires_at) VALUES (?, ?, ?, ?)",
        &[
            text(greenmesh_protocol::sha256_hex(code.as_bytes())),
            crate::db::opt_text(note),
            int(now),
            int(expires_at),
        ],
    )?;
    Ok(json!({ "invite": code, "expires_at": expires_at, "note": note }))
}

/// The rule a ballot must meet, as configured.
#[derive(Debug, Clone, Copy)]
pub struct BallotRule {
    pub min_age_ms: u64,
    pub min_record: u64,
}

impl BallotRule {
    pub fn configured() -> Self {
        let hours: f64 = variable("ballot_min_age_hours")
            .filter(|h: &f64| h.is_finite() && *h >= 0.0)
            .unwrap_or(BALLOT_MIN_AGE_HOURS);
        Self {
            min_age_ms: (hours * 3_600_000.0) as u64,
            min_record: variable("ballot_min_record").unwrap_or(BALLOT_MIN_RECORD),
        }
    }

    /// What the rule asks, for `GET /governance`.
    pub fn to_json(self) -> Value {
        json!({
            "min_account_age_hours": self.min_age_ms as f64 / 3_600_000.0,
            "min_record": self.min_record,
            "record_counts": "own tasks completed + tasks run for others (+1 for any donation)",
            "own_task": "a requester does not vote on their own task; a declared importance is not a ballot",
        })
    }
}

/// A voter's record: own tasks completed, tasks run for others, and one
/// for any donation.
pub fn record(standing: &Standing) -> u64 {
    standing.tasks_completed + standing.tasks_executed + u64::from(standing.donations > 0.0)
}

/// Checks `voter` may vote on a task owned by `owner`: `403 own_task` on
/// their own, `403 not_eligible` (saying what is missing) before the
/// account is old enough and has the record.
pub fn check_ballot(
    standing: &Standing,
    owner: &str,
    rule: BallotRule,
    now_ms: u64,
) -> Result<(), ApiError> {
    if standing.user_id == owner {
        return Err(ApiError::new(
            403,
            "own_task",
            "you cannot vote on your own task: its importance is for others to weigh",
        ));
    }
    let age = now_ms.saturating_sub(standing.member_since);
    let record = record(standing);
    if age < rule.min_age_ms || record < rule.min_record {
        return Err(ApiError::new(
            403,
            "not_eligible",
            format!(
                "ballots count from accounts at least {:.1} h old with a record of {} \
                 (own tasks completed + tasks run for others + a donation); \
                 this account is {:.1} h old with a record of {record}",
                rule.min_age_ms as f64 / 3_600_000.0,
                rule.min_record,
                age as f64 / 3_600_000.0,
            ),
        )
        .with_details(json!({
            "account_age_hours": age as f64 / 3_600_000.0,
            "record": record,
            "rule": rule.to_json(),
        })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_per_ipv4_and_per_ipv6_64() {
        assert_eq!(address_key(Some("203.0.113.7:5123")), "203.0.113.7");
        assert_eq!(
            address_key(Some("[2001:db8:1:2:aaaa::1]:80")),
            address_key(Some("[2001:db8:1:2:bbbb::9]:443")),
            "one /64 is one subscriber"
        );
        assert_ne!(
            address_key(Some("[2001:db8:1:2::1]:80")),
            address_key(Some("[2001:db8:1:3::1]:80"))
        );
        assert_eq!(address_key(Some("[::ffff:198.51.100.4]:1")), "198.51.100.4");
        assert_eq!(address_key(None), "unknown");
        assert_eq!(address_key(Some("garbage")), "unknown");
    }

    fn standing(user: &str, age_h: u64, completed: u64, donated: f64) -> (Standing, u64) {
        let now = 1_000 * 3_600_000;
        (
            Standing {
                user_id: user.into(),
                member_since: now - age_h * 3_600_000,
                donations: donated,
                tasks_completed: completed,
                tasks_executed: 0,
            },
            now,
        )
    }

    #[test]
    fn ballots_need_age_and_record_and_never_count_on_ones_own_task() {
        let rule = BallotRule {
            min_age_ms: 24 * 3_600_000,
            min_record: 1,
        };
        let (fresh, now) = standing("u1", 1, 5, 0.0);
        assert_eq!(
            check_ballot(&fresh, "owner", rule, now).unwrap_err().code,
            "not_eligible"
        );
        let (idle, now) = standing("u1", 48, 0, 0.0);
        assert_eq!(
            check_ballot(&idle, "owner", rule, now).unwrap_err().code,
            "not_eligible"
        );
        let (worker, now) = standing("u1", 48, 1, 0.0);
        assert!(check_ballot(&worker, "owner", rule, now).is_ok());
        let (donor, now) = standing("u1", 48, 0, 3.0);
        assert!(check_ballot(&donor, "owner", rule, now).is_ok());
        assert_eq!(
            check_ballot(&worker, "u1", rule, now).unwrap_err().code,
            "own_task"
        );
    }
}
