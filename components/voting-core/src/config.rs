//! Settings of the voting components, passed by the broker through
//! `ballots.configure` from its own Spin variables (plugins inherit none, so
//! they never see the broker's secrets; ADR 0021):
//!
//! - `voting_window_ms`: the poll window when `open` is given 0 (default
//!   [`DEFAULT_WINDOW_MS`], 5 minutes).
//! - `voting_scheme` (read by `voting`) and `voting_committee` (read by
//!   `voting-committee`) are read through [`variable`].

use std::cell::RefCell;
use std::collections::HashMap;

/// The poll window when neither the caller nor `voting_window_ms` sets one.
pub const DEFAULT_WINDOW_MS: u64 = 5 * 60 * 1000;

thread_local! {
    static SETTINGS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
}

/// Keeps the settings the broker passed for the rest of this instance's
/// life (one request).
pub fn configure(settings: Vec<(String, String)>) {
    greenmesh_storage::configure(&settings);
    SETTINGS.with(|s| s.borrow_mut().extend(settings));
}

/// The setting `name`, trimmed: as configured, else a Spin variable of
/// that name when the host grants variables (a manifest that still
/// inherits them); `None` when unset or blank.
pub fn variable(name: &str) -> Option<String> {
    let value = SETTINGS
        .with(|s| s.borrow().get(name).cloned())
        .or_else(|| spin_sdk::variables::get(name).ok())?;
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// A window setting as written in `voting_window_ms`: a positive whole
/// number of milliseconds, else `None`.
pub fn parse_window(value: &str) -> Option<u64> {
    value.trim().parse().ok().filter(|&ms: &u64| ms > 0)
}

/// The default poll window: `voting_window_ms` if it is a positive number,
/// else 5 minutes.
pub fn window_ms() -> u64 {
    variable("voting_window_ms")
        .and_then(|v| parse_window(&v))
        .unwrap_or(DEFAULT_WINDOW_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_values() {
        assert_eq!(parse_window(" 60000 "), Some(60_000));
        assert_eq!(parse_window("0"), None);
        assert_eq!(parse_window("-5"), None);
        assert_eq!(parse_window("five minutes"), None);
    }
}
