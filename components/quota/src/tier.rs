//! Tiers and promotion: what a user's standing earns, and what the next
//! tier still takes.
//!
//! Promotion is sticky (a tier is never taken back) and goes one step at a
//! time, as far as the standing allows in one evaluation:
//!
//! - free → supporter: any donation, or 50 completed tasks, or 10 votes;
//! - supporter → contributor: 100 executed tasks and 50 votes and at least
//!   3 calendar months of membership (`member_since + 3 months <= now`, in
//!   UTC, with chrono's month arithmetic: Nov 30 + 3 months = Feb 28/29).

use chrono::{DateTime, Months, Utc};

/// A user's tier, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    Free,
    Supporter,
    Contributor,
}

/// Any donation promotes free to supporter.
pub const SUPPORTER_DONATION_OVER: f64 = 0.0;
/// Completed own tasks that promote free to supporter.
pub const SUPPORTER_TASKS_COMPLETED: u64 = 50;
/// Votes that promote free to supporter.
pub const SUPPORTER_VOTES: u64 = 10;
/// Tasks executed for the network a contributor needs.
pub const CONTRIBUTOR_TASKS_EXECUTED: u64 = 100;
/// Votes a contributor needs.
pub const CONTRIBUTOR_VOTES: u64 = 50;
/// Calendar months of membership a contributor needs.
pub const CONTRIBUTOR_MONTHS: u32 = 3;

impl Tier {
    /// The name stored in `quota_users.tier`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Supporter => "supporter",
            Tier::Contributor => "contributor",
        }
    }

    /// The tier a stored name names; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "free" => Some(Tier::Free),
            "supporter" => Some(Tier::Supporter),
            "contributor" => Some(Tier::Contributor),
            _ => None,
        }
    }

    /// The tier above this one; `None` at the top.
    pub fn next(self) -> Option<Self> {
        match self {
            Tier::Free => Some(Tier::Supporter),
            Tier::Supporter => Some(Tier::Contributor),
            Tier::Contributor => None,
        }
    }
}

/// What the broker knows about the user (the WIT `standing`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Standing {
    /// Registration time, ms since the Unix epoch.
    pub member_since_ms: u64,
    /// Donations in credits; any positive amount counts.
    pub donations: f64,
    pub tasks_completed: u64,
    pub tasks_executed: u64,
    pub votes_cast: u64,
}

/// The instant a member since `member_since_ms` has been one for
/// [`CONTRIBUTOR_MONTHS`] calendar months; `None` outside chrono's range.
pub fn membership_met_at(member_since_ms: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(i64::try_from(member_since_ms).ok()?)?
        .checked_add_months(Months::new(CONTRIBUTOR_MONTHS))
}

/// Whether `standing` at `now_ms` earns `tier` (one step up from the tier
/// below it). Free is earned by everyone.
pub fn earns(tier: Tier, standing: &Standing, now_ms: i64) -> bool {
    match tier {
        Tier::Free => true,
        Tier::Supporter => {
            standing.donations > SUPPORTER_DONATION_OVER
                || standing.tasks_completed >= SUPPORTER_TASKS_COMPLETED
                || standing.votes_cast >= SUPPORTER_VOTES
        }
        Tier::Contributor => {
            standing.tasks_executed >= CONTRIBUTOR_TASKS_EXECUTED
                && standing.votes_cast >= CONTRIBUTOR_VOTES
                && membership_met_at(standing.member_since_ms)
                    .is_some_and(|met| met.timestamp_millis() <= now_ms)
        }
    }
}

/// The tier a user at `current` holds after `standing` is evaluated at
/// `now_ms`: as many steps up as are earned in order, never down.
pub fn promote(current: Tier, standing: &Standing, now_ms: i64) -> Tier {
    let mut tier = current;
    while let Some(next) = tier.next() {
        if !earns(next, standing, now_ms) {
            break;
        }
        tier = next;
    }
    tier
}

/// What the tier above `current` takes, with the user's progress, e.g.
/// `supporter: a donation, or 50 completed tasks (12 so far), or 10 votes
/// (3 so far)`; `None` at the top.
pub fn next_tier(current: Tier, standing: &Standing) -> Option<String> {
    match current.next()? {
        Tier::Free => None,
        Tier::Supporter => Some(format!(
            "supporter: a donation, or {SUPPORTER_TASKS_COMPLETED} completed tasks ({} so far), \
             or {SUPPORTER_VOTES} votes ({} so far)",
            standing.tasks_completed, standing.votes_cast
        )),
        Tier::Contributor => {
            let membership = match membership_met_at(standing.member_since_ms) {
                Some(met) => format!("from {}", met.date_naive()),
                None => "membership date out of range".to_string(),
            };
            Some(format!(
                "contributor: {CONTRIBUTOR_TASKS_EXECUTED} executed tasks ({} so far), \
                 {CONTRIBUTOR_VOTES} votes ({} so far) and {CONTRIBUTOR_MONTHS} months of \
                 membership ({membership})",
                standing.tasks_executed, standing.votes_cast
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 24 * 60 * 60 * 1000;

    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("test instant")
            .timestamp_millis()
    }

    /// Joined 2026-01-15, evaluated long after: only counts matter.
    fn standing() -> Standing {
        Standing {
            member_since_ms: ms("2026-01-15T10:00:00Z") as u64,
            ..Standing::default()
        }
    }

    fn now() -> i64 {
        ms("2026-09-01T00:00:00Z")
    }

    /// Enough for contributor except what the test varies.
    fn veteran() -> Standing {
        Standing {
            tasks_executed: CONTRIBUTOR_TASKS_EXECUTED,
            votes_cast: CONTRIBUTOR_VOTES,
            ..standing()
        }
    }

    #[test]
    fn names_round_trip() {
        for tier in [Tier::Free, Tier::Supporter, Tier::Contributor] {
            assert_eq!(Tier::parse(tier.name()), Some(tier));
        }
        assert_eq!(Tier::parse("gold"), None);
        assert_eq!(Tier::parse("Free"), None);
    }

    #[test]
    fn nothing_keeps_a_user_free() {
        assert_eq!(promote(Tier::Free, &standing(), now()), Tier::Free);
    }

    #[test]
    fn fifty_completed_tasks_make_a_supporter_forty_nine_do_not() {
        let s = |n| Standing {
            tasks_completed: n,
            ..standing()
        };
        assert_eq!(promote(Tier::Free, &s(49), now()), Tier::Free);
        assert_eq!(promote(Tier::Free, &s(50), now()), Tier::Supporter);
    }

    #[test]
    fn ten_votes_make_a_supporter_nine_do_not() {
        let s = |n| Standing {
            votes_cast: n,
            ..standing()
        };
        assert_eq!(promote(Tier::Free, &s(9), now()), Tier::Free);
        assert_eq!(promote(Tier::Free, &s(10), now()), Tier::Supporter);
    }

    #[test]
    fn any_donation_makes_a_supporter() {
        let s = |d| Standing {
            donations: d,
            ..standing()
        };
        assert_eq!(promote(Tier::Free, &s(0.0), now()), Tier::Free);
        assert_eq!(promote(Tier::Free, &s(-5.0), now()), Tier::Free);
        assert_eq!(promote(Tier::Free, &s(f64::NAN), now()), Tier::Free);
        assert_eq!(promote(Tier::Free, &s(0.01), now()), Tier::Supporter);
        assert_eq!(promote(Tier::Free, &s(1e-300), now()), Tier::Supporter);
    }

    #[test]
    fn contributor_needs_three_calendar_months() {
        let joined = ms("2026-01-15T10:00:00Z");
        let met = ms("2026-04-15T10:00:00Z");
        assert_eq!(
            membership_met_at(joined as u64).map(|t| t.timestamp_millis()),
            Some(met)
        );
        assert_eq!(
            promote(Tier::Supporter, &veteran(), met - DAY_MS),
            Tier::Supporter
        );
        assert_eq!(
            promote(Tier::Supporter, &veteran(), met - 1),
            Tier::Supporter
        );
        assert_eq!(promote(Tier::Supporter, &veteran(), met), Tier::Contributor);
    }

    #[test]
    fn month_arithmetic_clamps_to_the_month_end() {
        let met = |since: &str| membership_met_at(ms(since) as u64).map(|t| t.to_rfc3339());
        assert_eq!(
            met("2025-11-30T12:00:00Z").as_deref(),
            Some("2026-02-28T12:00:00+00:00")
        );
        assert_eq!(
            met("2027-11-30T12:00:00Z").as_deref(),
            Some("2028-02-29T12:00:00+00:00")
        );
        assert_eq!(membership_met_at(u64::MAX), None);
    }

    #[test]
    fn contributor_needs_every_condition() {
        let at = now();
        assert_eq!(promote(Tier::Supporter, &veteran(), at), Tier::Contributor);
        let fewer_tasks = Standing {
            tasks_executed: 99,
            ..veteran()
        };
        assert_eq!(promote(Tier::Supporter, &fewer_tasks, at), Tier::Supporter);
        let fewer_votes = Standing {
            votes_cast: 49,
            ..veteran()
        };
        assert_eq!(promote(Tier::Supporter, &fewer_votes, at), Tier::Supporter);
        let future_member = Standing {
            member_since_ms: u64::MAX,
            ..veteran()
        };
        assert_eq!(
            promote(Tier::Supporter, &future_member, at),
            Tier::Supporter
        );
    }

    #[test]
    fn free_goes_straight_to_contributor_when_both_steps_are_earned() {
        assert_eq!(promote(Tier::Free, &veteran(), now()), Tier::Contributor);
    }

    #[test]
    fn promotion_is_never_a_demotion() {
        assert_eq!(
            promote(Tier::Contributor, &Standing::default(), 0),
            Tier::Contributor
        );
        assert_eq!(
            promote(Tier::Supporter, &Standing::default(), 0),
            Tier::Supporter
        );
    }

    #[test]
    fn next_tier_tells_what_it_takes() {
        let s = Standing {
            tasks_completed: 12,
            votes_cast: 3,
            tasks_executed: 40,
            ..standing()
        };
        assert_eq!(
            next_tier(Tier::Free, &s).as_deref(),
            Some(
                "supporter: a donation, or 50 completed tasks (12 so far), or 10 votes (3 so far)"
            )
        );
        assert_eq!(
            next_tier(Tier::Supporter, &s).as_deref(),
            Some(
                "contributor: 100 executed tasks (40 so far), 50 votes (3 so far) and 3 months \
                 of membership (from 2026-04-15)"
            )
        );
        assert_eq!(next_tier(Tier::Contributor, &s), None);
    }
}
