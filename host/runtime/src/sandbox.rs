//! Per-instance limits: wall-clock deadline (epochs) and linear memory.

use std::time::Duration;
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

/// Limits applied to one store (one request, or one task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget; running guest code past it traps.
    pub timeout: Duration,
    /// Largest total linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// How long a request's body may take to arrive.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_memory_bytes: 128 << 20,
            // Room for the largest blob (16 MiB) and its framing.
            max_body_bytes: 20 << 20,
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Counts all of an instance's linear memories against one cap. Growth
/// past it traps (rather than `memory.grow` returning -1) so the failure
/// is reported as what it is.
#[derive(Debug, Clone)]
pub struct MemoryLimiter {
    max_memory_bytes: usize,
    /// Bytes of every memory of the instance together.
    total: usize,
}

/// Elements a table may grow to (a table of a million functions is far
/// beyond any real component).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Called as each memory is created (from 0) and as it grows.
        let total = self.total.saturating_sub(current).saturating_add(desired);
        if total > self.max_memory_bytes {
            return Err(wasmtime::Error::msg(format!(
                "memory limit: {total} bytes across the instance's memories, {} allowed",
                self.max_memory_bytes
            )));
        }
        self.total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::msg(format!(
                "table limit: {desired} elements, {MAX_TABLE_ELEMENTS} allowed"
            )));
        }
        Ok(true)
    }
}

impl Limits {
    /// The store limiter for these limits: every linear memory of the
    /// instance counts together (a composed component has one per
    /// component inside it, each of which would pass a per-memory check).
    pub fn store_limits(&self) -> MemoryLimiter {
        MemoryLimiter {
            max_memory_bytes: self.max_memory_bytes,
            total: 0,
        }
    }

    /// Arms the deadline on `store`: the guest yields to the executor every
    /// epoch tick ([`crate::engine::EPOCH_TICK`]) (so a busy guest never starves other requests) and traps
    /// with an interrupt once the timeout has passed.
    pub fn arm<T>(&self, store: &mut Store<T>) {
        let deadline = std::time::Instant::now() + self.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if std::time::Instant::now() >= deadline {
                Err(wasmtime::Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_composed_instance_s_memories_count_together() {
        let mut limiter = Limits {
            max_memory_bytes: 128 << 20,
            ..Limits::default()
        }
        .store_limits();
        // Six components of 40 MiB: each alone under 128 MiB, not together.
        for _ in 0..3 {
            assert!(limiter.memory_growing(0, 40 << 20, None).unwrap());
        }
        assert!(limiter.memory_growing(0, 40 << 20, None).is_err());
        // Growth counts what is added.
        assert!(limiter.memory_growing(40 << 20, 48 << 20, None).unwrap());
        assert!(limiter.memory_growing(48 << 20, 49 << 20, None).is_err());
    }
}
