//! UTC calendar arithmetic on milliseconds since the Unix epoch: dates to
//! instants and back, and the two text forms the traces and forecasts use.
//!
//! Self-contained (proleptic Gregorian calendar, H. Hinnant's day-count
//! algorithms) so that the carbon modules need no date crate.

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
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1–12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to `year-month-day` (negative before it).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of the day `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Civil {
    /// The calendar date and time of day of `ms`.
    pub fn from_ms(ms: u64) -> Self {
        let (year, month, day) = civil_from_days((ms / DAY_MS) as i64);
        Civil {
            year,
            month,
            day,
            time_ms: ms % DAY_MS,
        }
    }

    /// Back to milliseconds since the epoch; `None` before 1970 or for a
    /// date that does not exist (30 February) or a time past midnight.
    pub fn to_ms(self) -> Option<u64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.time_ms >= DAY_MS
        {
            return None;
        }
        let days = u64::try_from(days_from_civil(self.year, self.month, self.day)).ok()?;
        days.checked_mul(DAY_MS)?.checked_add(self.time_ms)
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS` (or with `T`, optional `.fff` and an
/// optional `Z` or `+00:00`), read as UTC. The error says what is wrong.
pub fn parse_utc(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let bad = || format!("{s:?} is not a time of the form YYYY-MM-DD HH:MM:SS");
    let s_body = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or(s);
    let b = s_body.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u64, String> {
        let part = s_body.get(range).ok_or_else(bad)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let year = num(0..4)? as i64;
    let month = num(5..7)? as u32;
    let day = num(8..10)? as u32;
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = match s_body.get(19..) {
        Some("") | None => 0,
        Some(frac) => {
            let digits = frac.strip_prefix('.').ok_or_else(bad)?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            // Milliseconds: the first three digits, padded.
            let mut ms = 0u64;
            for (i, c) in digits
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(3)
                .enumerate()
            {
                ms += u64::from(c - b'0') * 10u64.pow(2 - i as u32);
            }
            ms
        }
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("{s:?}: the time of day is out of range"));
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("{s:?}: there is no such date"));
    }
    let time_ms = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    Civil {
        year,
        month,
        day,
        time_ms,
    }
    .to_ms()
    .ok_or_else(|| format!("{s:?} is before 1970"))
}

/// RFC 3339 in UTC: `2020-03-01T12:00:00Z`, with `.mmm` only when the
/// instant is not a whole second.
pub fn format_rfc3339(ms: u64) -> String {
    let c = Civil::from_ms(ms);
    let secs = c.time_ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let frac = c.time_ms % 1000;
    if frac == 0 {
        format!(
            "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z",
            c.year, c.month, c.day
        )
    } else {
        format!(
            "{:04}-{:02}-{:02}T{h:02}:{m:02}:{s:02}.{frac:03}Z",
            c.year, c.month, c.day
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_across_leap_days_and_centuries() {
        for days in (0..200_000).step_by(7).chain([59, 60, 18_321, 18_322]) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2020-02-29 exists, 2021-02-29 does not.
        assert_eq!(parse_utc("2020-02-29 23:59:59").unwrap(), 1_583_020_799_000);
        assert!(parse_utc("2021-02-29 00:00:00").is_err());
        assert!(is_leap(2000) && !is_leap(1900) && is_leap(2020));
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
