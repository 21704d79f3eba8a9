//! UTC calendar arithmetic on milliseconds since the Unix epoch, on chrono:
//! dates to instants and back, and the two text forms the traces and
//! forecasts use (`2020-03-01 12:00:00` and RFC 3339).

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// A UTC calendar instant, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    /// 1–12.
    pub month: u32,
    /// 1–31.
    pub day: u32,
    /// Milliseconds since midnight.
    pub time_ms: u64,
}

/// Whether `year` has a 29 February.
pub fn is_leap(year: i64) -> bool {
    i32::try_from(year)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, 2, 29))
        .is_some()
}

fn utc(ms: u64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .unwrap_or(DateTime::<chrono::Utc>::MAX_UTC)
}

impl Civil {
    /// The calendar date and time of day of `ms`.
    pub fn from_ms(ms: u64) -> Self {
        let t = utc(ms);
        Civil {
            year: i64::from(t.year()),
            month: t.month(),
            day: t.day(),
            time_ms: ms % DAY_MS,
        }
    }

    /// Back to milliseconds since the epoch; `None` before 1970 or for a
    /// date that does not exist (30 February) or a time past midnight.
    pub fn to_ms(self) -> Option<u64> {
        if self.time_ms >= DAY_MS {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(i32::try_from(self.year).ok()?, self.month, self.day)?;
        let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        u64::try_from(midnight).ok()?.checked_add(self.time_ms)
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or with `T`, optional `.fff` and an
/// optional `Z` or `+00:00`), read as UTC. The error says what is wrong.
pub fn parse_utc(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let body = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let parsed = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|form| NaiveDateTime::parse_from_str(body, form).ok())
        .ok_or_else(|| format!("{s:?} is not a time of the form YYYY-MM-DD HH:MM:SS"))?;
    // `%.f` accepts a lone dot; a fraction must have digits.
    if body.ends_with('.') {
        return Err(format!(
            "{s:?} is not a time of the form YYYY-MM-DD HH:MM:SS"
        ));
    }
    u64::try_from(parsed.and_utc().timestamp_millis()).map_err(|_| format!("{s:?} is before 1970"))
}

/// RFC 3339 in UTC: `2020-03-01T12:00:00Z`, with `.mmm` only when the
/// instant is not a whole second.
pub fn format_rfc3339(ms: u64) -> String {
    let t = utc(ms);
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_across_leap_days_and_centuries() {
        for days in (0..200_000u64).step_by(7).chain([59, 60, 18_321, 18_322]) {
            let ms = days * DAY_MS + 12_345;
            assert_eq!(Civil::from_ms(ms).to_ms(), Some(ms), "{days}");
        }
        assert_eq!(
            Civil::from_ms(0),
            Civil {
                year: 1970,
                month: 1,
                day: 1,
                time_ms: 0
            }
        );
        // 2020-02-29 exists, 2021-02-29 does not.
        assert_eq!(parse_utc("2020-02-29 23:59:59").unwrap(), 1_583_020_799_000);
        assert!(parse_utc("2021-02-29 00:00:00").is_err());
        assert!(is_leap(2000) && !is_leap(1900) && is_leap(2020));
        let feb30 = Civil {
            year: 2020,
            month: 2,
            day: 30,
            time_ms: 0,
        };
        assert_eq!(feb30.to_ms(), None);
    }

    #[test]
    fn parses_the_trace_form_and_rfc3339() {
        let t = parse_utc("2020-03-01 12:00:00").unwrap();
        assert_eq!(format_rfc3339(t), "2020-03-01T12:00:00Z");
        assert_eq!(parse_utc("2020-03-01T12:00:00Z").unwrap(), t);
        assert_eq!(parse_utc("2020-03-01T12:00:00+00:00").unwrap(), t);
        assert_eq!(parse_utc("2020-03-01T12:00:00.25Z").unwrap(), t + 250);
        assert_eq!(format_rfc3339(t + 250), "2020-03-01T12:00:00.250Z");
        for bad in [
            "",
            "2020-03-01",
            "2020/03/01 12:00:00",
            "2020-13-01 12:00:00",
            "2020-03-01 24:00:00",
            "1969-12-31 23:00:00",
            "2020-03-01 12:00:00.",
            "2020-03-01 12:00:00 +01:00",
            "20é0-03-01 12:00:00",
        ] {
            assert!(parse_utc(bad).is_err(), "{bad:?} accepted");
        }
    }
}
