//! The coordinator's wall clock: real time, shifted by an offset the host
//! controls.
//!
//! Components read time only through WASI clocks, so the host decides what
//! "now" is. Tests move it across a day boundary (quota resets) or past a
//! voting window, and replays run a year of carbon data against it. Only the
//! wall clock moves: the monotonic clock stays real, so a component's
//! long-poll still sleeps for real milliseconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall clock shared by every component instance of an app; cloning it
/// shares the offset.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock {
    offset_ms: Arc<AtomicI64>,
}

impl VirtualClock {
    /// Real time (offset zero) until moved.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and runs at real speed from there.
    pub fn starting_at(start: SystemTime) -> Self {
        let clock = Self::new();
        clock.set(start);
        clock
    }

    /// What the components see now.
    pub fn now(&self) -> SystemTime {
        let offset = self.offset_ms.load(Ordering::SeqCst);
        let real = SystemTime::now();
        if offset >= 0 {
            real + Duration::from_millis(offset as u64)
        } else {
            real - Duration::from_millis(offset.unsigned_abs())
        }
    }

    /// Milliseconds since the Unix epoch, as the components see it.
    pub fn now_ms(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// Makes the clock read `at` now.
    pub fn set(&self, at: SystemTime) {
        let real = SystemTime::now();
        let offset = match at.duration_since(real) {
            Ok(ahead) => ahead.as_millis() as i64,
            Err(behind) => -(behind.duration().as_millis() as i64),
        };
        self.offset_ms.store(offset, Ordering::SeqCst);
    }
}

impl wasmtime_wasi::HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        VirtualClock::now(self)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone_and_setting_lands_where_asked() {
        let clock = VirtualClock::new();
        let shared = clock.clone();
        let before = clock.now_ms();
        clock.advance(Duration::from_secs(3600));
        let after = shared.now_ms();
        assert!((3_600_000..3_660_000).contains(&(after - before)));

        let target = UNIX_EPOCH + Duration::from_secs(1_772_956_800); // 2026-03-08T08:00:00Z
        shared.set(target);
        let read = clock.now_ms() as i64 - 1_772_956_800_000;
        assert!(
            (0..5_000).contains(&read),
            "read {read} ms after the target"
        );
    }
}
