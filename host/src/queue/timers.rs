//! Delays and the timer wheel of keys waiting for them.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// `now + delay`, with delays capped at a year so a huge requeue from a
/// plugin cannot overflow the clock.
pub(super) fn later(now: Instant, delay: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now + delay.min(YEAR)
}

/// Takes `key` off the timer at `at`.
pub(super) fn unschedule<K: PartialEq>(
    timers: &mut BTreeMap<Instant, Vec<K>>,
    at: Instant,
    key: &K,
) {
    if let Some(keys) = timers.get_mut(&at) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            timers.remove(&at);
        }
    }
}
