//! Time from the WASI wall clock, random ids from WASI random, hex, and
//! the test-only fault points.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `n` random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // WASI random never fails in practice; a zeroed buffer would only make ids collide.
    let _ = getrandom::fill(&mut buf);
    buf
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random id with a prefix, e.g. `task-1f2e…`.
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = random_bytes();
    format!("{prefix}-{}", hex(&bytes))
}

/// Crashes the request here when the `GREENMESH_FAULT_POINT` environment
/// variable (set for the component in a test's manifest) names `point`:
/// how the tests show that a crash between two steps of a state change
/// leaves a state the next request repairs. Unset in every real manifest.
pub fn fault_point(point: &str) {
    thread_local! {
        static FAULT: Option<String> = std::env::var("GREENMESH_FAULT_POINT").ok();
    }
    if FAULT.with(|f| f.as_deref() == Some(point)) {
        panic!("fault injected at {point} (GREENMESH_FAULT_POINT)");
    }
}

/// Sleeps (WASI monotonic clock) for long-polls.
pub fn sleep_ms(ms: u64) {
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// `ms` since the Unix epoch as an RFC 3339 UTC timestamp, e.g.
/// `2026-03-09T07:00:00Z` (days to civil date: Howard Hinnant's algorithm).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Milliseconds since the Unix epoch of an RFC 3339 time such as
/// `2026-03-08T07:00:00Z`, `2026-03-08T07:00:00.5+01:00` (seconds optional
/// fraction; `Z` or an offset); `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let m = rest[1..3].parse::<i64>().ok()? * 60 + rest[4..6].parse::<i64>().ok()?;
            if rest.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant), inverse of `iso8601`.
    let (yy, mm) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + millis;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        for ms in [0, 1_772_953_200_000, 951_782_400_000, 1_609_459_199_000] {
            assert_eq!(super::parse_rfc3339(&super::iso8601(ms)), Some(ms));
        }
        assert_eq!(
            super::parse_rfc3339("2026-03-08T08:00:00.5+01:00"),
            Some(1_772_953_200_500)
        );
        for bad in [
            "",
            "2026-03-08",
            "2026-13-01T00:00:00Z",
            "2026-03-08T07:00:00",
            "yesterday",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_772_953_200_000), "2026-03-08T07:00:00Z");
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
