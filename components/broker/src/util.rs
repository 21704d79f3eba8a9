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
