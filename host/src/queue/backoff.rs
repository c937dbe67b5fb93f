//! The per-key retry delay after failed reconciles.

use std::time::Duration;

/// Per-key exponential backoff: `base * factor^(failures - 1)`, at most `max`.
///
/// Integer arithmetic rather than `backon`'s `ExponentialBuilder`, whose f32
/// factor yields delays like 400.000006 ms and whose iterator would be one
/// more piece of state per key; no jitter, like client-go's per-item limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: u32,
    pub max: Duration,
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 5 minutes: a transient failure (a
    /// conflict, a restarting webhook) is retried within a second, and a key
    /// that keeps failing costs one call per 5 minutes, like client-go's
    /// default per-item limiter (5 ms to 1000 s) with a shorter ceiling so a
    /// fixed plugin catches up within minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            factor: 2,
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        self.factor
            .checked_pow(failures.saturating_sub(1))
            .and_then(|m| self.base.checked_mul(m))
            .map_or(self.max, |d| d.min(self.max))
    }
}
