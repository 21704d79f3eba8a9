//! Retries with exponential backoff and jitter: for requests that are safe
//! to send again (a heartbeat, a receipt the coordinator records once).

use crate::{Error, Reply};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How often and how patiently a request is sent again.
///
/// A transport failure (cannot connect, timeout, connection reset) and the
/// busy answers `429`, `502`, `503` and `504` are retried; any other answer
/// is final. Waits double from `first_delay` up to `max_delay`, each with up
/// to half of it again as random jitter, so that nodes cut off together do
/// not come back in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included (1: no retry).
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// Send once.
    pub const NONE: Retry = Retry {
        attempts: 1,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// `attempts` tries, waiting 250 ms, 500 ms, … up to 4 s between them.
    pub const fn backoff(attempts: u32) -> Retry {
        Retry {
            attempts,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }

    /// The wait before retry number `n` (1 for the first retry), jitter
    /// excluded.
    pub fn delay(&self, n: u32) -> Duration {
        let doubled = self
            .first_delay
            .saturating_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(self.max_delay)
    }

    /// Runs `attempt` until it gives a final answer or the tries run out;
    /// returns the last outcome.
    pub async fn run<F, Fut>(&self, attempt: F) -> Result<Reply, Error>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Reply, Error>>,
    {
        let mut n = 0;
        loop {
            let outcome = attempt().await;
            n += 1;
            if n >= self.attempts.max(1) || !retryable(&outcome) {
                return outcome;
            }
            let wait = self.delay(n);
            let wait = wait + wait.mul_f64(jitter() / 2.0);
            match &outcome {
                Ok(r) => tracing::debug!(status = r.status, ?wait, "busy; retrying"),
                Err(e) => tracing::debug!(error = %e, ?wait, "retrying"),
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// Whether an outcome is worth another try.
pub fn retryable(outcome: &Result<Reply, Error>) -> bool {
    match outcome {
        Ok(reply) => matches!(reply.status, 429 | 502 | 503 | 504),
        Err(Error::Transport { .. }) => true,
        Err(_) => false,
    }
}

/// A number in [0, 1) from the standard library's per-process random keys.
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let r = Retry::backoff(10);
        let ms: Vec<u128> = (1..=7).map(|n| r.delay(n).as_millis()).collect();
        assert_eq!(ms, [250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(r.delay(200), Duration::from_secs(4), "no overflow");
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    fn reply(status: u16) -> Result<Reply, Error> {
        Ok(Reply {
            status,
            headers: Default::default(),
            body: Default::default(),
        })
    }

    // Millisecond waits rather than tokio's paused clock: `test-util` would
    // give tokio (and all that builds on it) a feature set of the tests' own,
    // a second build of the host in `cargo xtask test`.
    #[tokio::test]
    async fn busy_answers_are_retried_and_final_ones_are_not() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let retry = Retry {
            attempts: 4,
            first_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
        };
        let out = retry
            .run(|| {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async move { reply(if n < 2 { 503 } else { 200 }) }
            })
            .await
            .unwrap();
        assert_eq!(
            (out.status, calls.load(std::sync::atomic::Ordering::SeqCst)),
            (200, 3)
        );

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let out = retry
            .run(|| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { reply(409) }
            })
            .await
            .unwrap();
        assert_eq!(
            (out.status, calls.load(std::sync::atomic::Ordering::SeqCst)),
            (409, 1)
        );

        calls.store(0, std::sync::atomic::Ordering::SeqCst);
        let out = retry
            .run(|| {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { reply(503) }
            })
            .await
            .unwrap();
        assert_eq!(
            (out.status, calls.load(std::sync::atomic::Ordering::SeqCst)),
            (503, 4)
        );
    }
}
