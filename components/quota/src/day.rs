//! The user's day: from one local midnight to the next in an IANA timezone.
//!
//! Daily counts reset at local midnight, so a day is 24 hours long except
//! across DST changes (23 hours in spring, 25 in autumn, other lengths for
//! odd zones). When local midnight does not exist (a DST gap at midnight,
//! e.g. America/Havana in March) the day starts at the first local instant
//! that exists after midnight; when it happens twice (a fall-back at
//! midnight, America/Havana in November) the earliest one counts.
//!
//! Pure functions of `(timezone, now)`: the component stores instants, not
//! day keys, so a timezone change applies to every count made after it.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeDelta, TimeZone};
use chrono_tz::Tz;

/// Milliseconds in 24 hours (the fallback day, see [`bounds`]).
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How far past a missing midnight to look for the first local time that
/// exists: a gap is at most a day (Pacific/Apia skipped 2011-12-30).
const GAP_SEARCH_MINUTES: u32 = 48 * 60;

/// The earliest instant (ms since the Unix epoch) the local time `local`
/// names in `tz`; `None` if it falls in a gap.
fn earliest(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.timestamp_millis()),
        LocalResult::Ambiguous(a, b) => Some(a.timestamp_millis().min(b.timestamp_millis())),
        LocalResult::None => None,
    }
}

/// The first instant whose local time exists at or after `midnight`, which
/// falls in a gap: the instant the gap ends (tz transitions are whole
/// seconds, so minutes then seconds find it exactly).
fn first_after_gap(tz: Tz, midnight: NaiveDateTime) -> Option<i64> {
    let mut before = midnight;
    for _ in 0..GAP_SEARCH_MINUTES {
        let probe = before.checked_add_signed(TimeDelta::minutes(1))?;
        if earliest(tz, probe).is_some() {
            // The gap ends in (before, probe]: find its first second.
            for s in 1..=60 {
                let local = before.checked_add_signed(TimeDelta::seconds(s))?;
                if let Some(t) = earliest(tz, local) {
                    return Some(t);
                }
            }
        }
        before = probe;
    }
    None
}

/// The instant (ms since the Unix epoch) the local day `date` starts in
/// `tz`: its midnight, the earliest if there are two, or the first instant
/// after it if there is none. `None` outside chrono's range.
pub fn start_of(tz: Tz, date: NaiveDate) -> Option<i64> {
    let midnight = date.and_hms_opt(0, 0, 0)?;
    earliest(tz, midnight).or_else(|| first_after_gap(tz, midnight))
}

/// The local day containing `now_ms` by the calendar; `None` only outside
/// chrono's range.
fn calendar_bounds(tz: Tz, now_ms: i64) -> Option<(i64, i64)> {
    let now = DateTime::from_timestamp_millis(now_ms)?;
    let mut date = now.with_timezone(&tz).date_naive();
    // The local date of `now` names its day except in the repeated hour
    // of a fall-back across midnight (e.g. 23:30 for the second time after
    // the next day began), so step to the day whose bounds hold `now`.
    for _ in 0..4 {
        let start = start_of(tz, date)?;
        let next = start_of(tz, date.succ_opt()?)?;
        if now_ms < start {
            date = date.pred_opt()?;
        } else if now_ms >= next {
            date = date.succ_opt()?;
        } else {
            return Some((start, next));
        }
    }
    None
}

/// The day containing `now_ms` (ms since the Unix epoch) in `tz`, as
/// `(day_started_at_ms, next_reset_at_ms)`: the local midnight that started
/// it and the next one, so `day_started_at_ms <= now_ms < next_reset_at_ms`.
///
/// Never panics: an instant outside chrono's range (hundreds of thousands
/// of years away) gets the UTC day by plain arithmetic.
pub fn bounds(tz: Tz, now_ms: i64) -> (i64, i64) {
    calendar_bounds(tz, now_ms).unwrap_or_else(|| {
        let start = now_ms.saturating_sub(now_ms.rem_euclid(DAY_MS));
        (start, start.saturating_add(DAY_MS))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 60 * 60 * 1000;

    /// `2026-03-08T08:00:00Z` as ms since the Unix epoch.
    fn ms(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("test instant")
            .timestamp_millis()
    }

    fn tz(name: &str) -> Tz {
        name.parse().expect("test timezone")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("test date")
    }

    #[test]
    fn utc_days_are_24_hours_from_midnight() {
        assert_eq!(
            bounds(Tz::UTC, ms("2026-06-15T13:45:10Z")),
            (ms("2026-06-15T00:00:00Z"), ms("2026-06-16T00:00:00Z"))
        );
        // Midnight itself starts the new day.
        assert_eq!(
            bounds(Tz::UTC, ms("2026-06-16T00:00:00Z")),
            (ms("2026-06-16T00:00:00Z"), ms("2026-06-17T00:00:00Z"))
        );
        assert_eq!(
            bounds(Tz::UTC, ms("2026-06-15T23:59:59.999Z")).1,
            ms("2026-06-16T00:00:00Z")
        );
    }

    #[test]
    fn los_angeles_spring_forward_day_is_23_hours() {
        let la = tz("America/Los_Angeles");
        let (start, next) = bounds(la, ms("2026-03-08T12:00:00Z"));
        assert_eq!(start, ms("2026-03-08T08:00:00Z"));
        assert_eq!(next, ms("2026-03-09T07:00:00Z"));
        assert_eq!(next - start, 23 * HOUR_MS);
        // The day before is a plain 24 hours (PST throughout).
        assert_eq!(
            bounds(la, ms("2026-03-07T20:00:00Z")),
            (ms("2026-03-07T08:00:00Z"), ms("2026-03-08T08:00:00Z"))
        );
    }

    #[test]
    fn instants_either_side_of_a_reset_belong_to_different_days() {
        let la = tz("America/Los_Angeles");
        let reset = ms("2026-03-09T07:00:00Z");
        let before = bounds(la, reset - 1);
        let after = bounds(la, reset);
        assert_eq!(before, (ms("2026-03-08T08:00:00Z"), reset));
        assert_eq!(after, (reset, ms("2026-03-10T07:00:00Z")));
        assert_ne!(before, after);
    }

    #[test]
    fn los_angeles_fall_back_day_is_25_hours() {
        let la = tz("America/Los_Angeles");
        // 01:30 local happens twice on 2026-11-01 (08:30Z PDT, 09:30Z PST).
        for now in ["2026-11-01T08:30:00Z", "2026-11-01T09:30:00Z"] {
            let (start, next) = bounds(la, ms(now));
            assert_eq!(start, ms("2026-11-01T07:00:00Z"), "{now}");
            assert_eq!(next, ms("2026-11-02T08:00:00Z"), "{now}");
            assert_eq!(next - start, 25 * HOUR_MS);
        }
    }

    #[test]
    fn havana_missing_midnight_starts_the_day_when_the_gap_ends() {
        let havana = tz("America/Havana");
        let midnight = date(2026, 3, 8).and_hms_opt(0, 0, 0).expect("midnight");
        assert!(matches!(
            havana.from_local_datetime(&midnight),
            LocalResult::None
        ));
        // 00:00 CST (-05) jumps to 01:00 CDT (-04) at 05:00Z.
        assert_eq!(
            start_of(havana, date(2026, 3, 8)),
            Some(ms("2026-03-08T05:00:00Z"))
        );
        let (start, next) = bounds(havana, ms("2026-03-08T05:00:00Z"));
        assert_eq!(start, ms("2026-03-08T05:00:00Z"));
        assert_eq!(next, ms("2026-03-09T04:00:00Z"));
        assert_eq!(next - start, 23 * HOUR_MS);
        // The day before ends at the gap, a whole 24 hours.
        assert_eq!(
            bounds(havana, ms("2026-03-08T04:59:59.999Z")),
            (ms("2026-03-07T05:00:00Z"), ms("2026-03-08T05:00:00Z"))
        );
    }

    #[test]
    fn santiago_missing_midnight_starts_the_day_at_one() {
        // Chile springs forward at 00:00 (-04) on 2026-09-06 to 01:00 (-03).
        let santiago = tz("America/Santiago");
        let (start, next) = bounds(santiago, ms("2026-09-06T12:00:00Z"));
        assert_eq!(start, ms("2026-09-06T04:00:00Z"));
        assert_eq!(next, ms("2026-09-07T03:00:00Z"));
        assert_eq!(next - start, 23 * HOUR_MS);
    }

    #[test]
    fn havana_twice_midnight_starts_the_day_at_the_first() {
        let havana = tz("America/Havana");
        let midnight = date(2026, 11, 1).and_hms_opt(0, 0, 0).expect("midnight");
        assert!(matches!(
            havana.from_local_datetime(&midnight),
            LocalResult::Ambiguous(..)
        ));
        // 00:00 CDT (-04) at 04:00Z, and again as CST (-05) at 05:00Z.
        for now in ["2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"] {
            let (start, next) = bounds(havana, ms(now));
            assert_eq!(start, ms("2026-11-01T04:00:00Z"), "{now}");
            assert_eq!(next, ms("2026-11-02T05:00:00Z"), "{now}");
            assert_eq!(next - start, 25 * HOUR_MS);
        }
        assert_eq!(
            bounds(havana, ms("2026-11-01T03:59:59.999Z")).1,
            ms("2026-11-01T04:00:00Z")
        );
    }

    #[test]
    fn a_repeated_hour_before_midnight_counts_in_the_new_day() {
        // Santiago falls back at 00:00 (-03) on 2026-04-05 to 23:00 (-04) on
        // 04-04: 23:xx on 04-04 happens twice, the second time before the
        // midnight that starts 04-05 (04:00Z). The local date says 04-04.
        let santiago = tz("America/Santiago");
        let (start, next) = bounds(santiago, ms("2026-04-05T03:30:00Z"));
        assert_eq!(start, ms("2026-04-04T03:00:00Z"));
        assert_eq!(next, ms("2026-04-05T04:00:00Z"));
        assert_eq!(next - start, 25 * HOUR_MS);
    }

    #[test]
    fn a_skipped_calendar_day_leaves_no_empty_day() {
        // Samoa went from 2011-12-29 23:59:59 (-10) to 2011-12-31 00:00 (+14).
        let apia = tz("Pacific/Apia");
        let jump = ms("2011-12-30T10:00:00Z");
        assert_eq!(bounds(apia, jump - 1), (ms("2011-12-29T10:00:00Z"), jump));
        assert_eq!(bounds(apia, jump), (jump, ms("2011-12-31T10:00:00Z")));
    }

    #[test]
    fn every_instant_lies_in_its_day() {
        for name in [
            "UTC",
            "America/Los_Angeles",
            "America/Havana",
            "America/Santiago",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
        ] {
            let zone = tz(name);
            let mut now = ms("2026-01-01T00:00:00Z");
            while now < ms("2027-01-01T00:00:00Z") {
                let (start, next) = bounds(zone, now);
                assert!(start <= now && now < next, "{name} {now}");
                assert!(
                    next - start >= 22 * HOUR_MS && next - start <= 26 * HOUR_MS,
                    "{name} {now}"
                );
                now += 17 * 60 * 1000 + 13;
            }
        }
    }

    #[test]
    fn out_of_range_instants_do_not_panic() {
        for now in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let (start, next) = bounds(tz("America/Los_Angeles"), now);
            assert!(start <= now && (now < next || next == i64::MAX));
        }
    }
}
