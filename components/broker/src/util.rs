//! Time from the WASI wall clock (dates with chrono), random ids from WASI
//! random, and the test-only fault points.

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

/// A random id with a prefix, e.g. `task-1f2e…`.
pub fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = random_bytes();
    format!("{prefix}-{}", greenmesh_protocol::to_hex(&bytes))
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
/// `2026-03-09T07:00:00Z`.
pub fn iso8601(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

/// Milliseconds since the Unix epoch of an RFC 3339 time such as
/// `2026-03-08T07:00:00Z` or `2026-03-08T07:00:00.5+01:00`; `None` if it is
/// not one (or is before 1970). Impossible dates (`2026-02-31`) are refused.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    u64::try_from(t.timestamp_millis()).ok()
}

/// The first instant (ms) of the UTC month holding `ms`.
pub fn month_start(ms: u64) -> u64 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        .and_then(|t| t.date_naive().with_day(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| u64::try_from(t.and_utc().timestamp_millis()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        for ms in [0, 1_772_953_200_000, 951_782_400_000, 1_609_459_199_000] {
            assert_eq!(parse_rfc3339(&iso8601(ms)), Some(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-03-08T08:00:00.5+01:00"),
            Some(1_772_953_200_500)
        );
        for bad in [
            "",
            "2026-03-08",
            "2026-13-01T00:00:00Z",
            "2026-03-08T07:00:00",
            "yesterday",
            // No 31 February, no 29 February in 2026.
            "2026-02-31T00:00:00Z",
            "2026-02-29T00:00:00Z",
            // Multi-byte characters where digits belong (once a panic).
            "2026-03-0€T07:00:00Z",
            "2026-03-08T07:00:00€",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_772_953_200_000), "2026-03-08T07:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn month_start_is_the_first_at_midnight_utc() {
        // 2026-03-08T07:00:00Z -> 2026-03-01T00:00:00Z
        assert_eq!(month_start(1_772_953_200_000), 1_772_323_200_000);
        assert_eq!(month_start(0), 0);
    }
}
