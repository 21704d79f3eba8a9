//! Per-instance limits: wall-clock deadline (epochs) and linear memory.

use std::time::Duration;
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

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

impl Limits {
    /// The store limiter for these limits. Growth past the limit traps
    /// (rather than `memory.grow` returning -1) so the failure is reported
    /// as what it is.
    pub fn store_limits(&self) -> StoreLimits {
        StoreLimitsBuilder::new()
            .memory_size(self.max_memory_bytes)
            .trap_on_grow_failure(true)
            .build()
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
