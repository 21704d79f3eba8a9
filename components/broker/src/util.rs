//! Time from the WASI wall clock, random ids from WASI random.

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
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
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

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_formats_known_instants() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_772_953_200_000), "2026-03-08T07:00:00Z");
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
