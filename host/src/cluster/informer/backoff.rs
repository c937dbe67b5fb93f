//! What an informer does after a watch error: how long it waits before the
//! next attempt, and what it tells the operator.
//!
//! kube-runtime's `default_backoff()` grows one exponential delay (0.8 s to
//! 30 s) across consecutive errors and resets it only on a successful event.
//! After an API server restart that is the wrong answer twice over: the
//! errors while it was down pushed the delay towards 30 s, and the first
//! answer once it is back is `410 Gone` (the new server's watch cache starts
//! at the current revision), which is one more error; the re-list then waits
//! the longest delay of all (measured: 22.6 s after the server was ready).
//!
//! Here the delay depends on what failed:
//!
//! - `410 Gone`: the watcher re-lists at once, nothing is wrong with the
//!   server;
//! - the server cannot be reached (connection refused or reset, timeout):
//!   250 ms doubling to at most 1 s, so a server that comes back is found
//!   within about a second. Such attempts cost the server nothing;
//! - the server answered with an error (5xx, 429, 404...): 500 ms doubling to
//!   at most 30 s, so a struggling server is not hammered.
//!
//! Each delay is jittered (between half and all of it) so informers do not
//! reconnect in lockstep, and is never shorter than the server's
//! `Retry-After` (see [`server_delay`]). Both sequences reset on the first
//! successful event.

use std::time::{Duration, Instant};

use kube::runtime::watcher;

/// Why a watch failed, as a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchFailure {
    /// `410 Gone`: the resourceVersion is too old; the informer re-lists.
    Gone,
    /// The server could not be reached or did not answer.
    Unreachable,
    /// `403 Forbidden`: missing RBAC.
    Forbidden,
    /// `429 Too Many Requests`.
    Throttled,
    /// A 5xx answer.
    ServerError,
    /// Any other error status (e.g. `404` for a version no longer served).
    ApiError,
    /// An answer the host could not decode.
    Decode,
}

impl WatchFailure {
    pub fn of(error: &watcher::Error) -> Self {
        let client_error = match error {
            watcher::Error::WatchError(status) => return Self::of_status(status.code),
            watcher::Error::NoResourceVersion => return Self::ApiError,
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => e,
        };
        match client_error {
            kube::Error::Api(status) => Self::of_status(status.code),
            kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => Self::Decode,
            _ => Self::Unreachable,
        }
    }

    fn of_status(code: u16) -> Self {
        match code {
            410 => Self::Gone,
            403 => Self::Forbidden,
            429 => Self::Throttled,
            500..=599 => Self::ServerError,
            _ => Self::ApiError,
        }
    }

    /// The `reason` label of `kubewasm_watch_errors_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Gone => "gone",
            Self::Unreachable => "unreachable",
            Self::Forbidden => "forbidden",
            Self::Throttled => "throttled",
            Self::ServerError => "server_error",
            Self::ApiError => "api_error",
            Self::Decode => "decode",
        }
    }
}

/// How long the server asked the client to wait (`Retry-After`, kept in
/// the Status by [`crate::cluster::client::retry_after`]), e.g. when priority and
/// fairness rejected the list or watch.
pub fn server_delay(error: &watcher::Error) -> Option<Duration> {
    let status = match error {
        watcher::Error::WatchError(status) => status,
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status,
        _ => return None,
    };
    let seconds = status.details.as_ref()?.retry_after_seconds;
    (seconds > 0).then(|| Duration::from_secs(seconds.into()))
}

const UNREACHABLE_FIRST: Duration = Duration::from_millis(250);
const UNREACHABLE_MAX: Duration = Duration::from_secs(1);
const ANSWERED_FIRST: Duration = Duration::from_millis(500);
const ANSWERED_MAX: Duration = Duration::from_secs(30);
/// While a watch keeps failing, how often the operator hears about it.
const REPORT_EVERY: Duration = Duration::from_secs(30);

/// The delays of one informer.
#[derive(Debug, Default)]
pub struct WatchBackoff {
    unreachable: u32,
    answered: u32,
}

impl WatchBackoff {
    /// How long to wait before the next attempt after `failure`, without
    /// jitter.
    pub fn next_delay(&mut self, failure: WatchFailure) -> Duration {
        let (count, first, max) = match failure {
            WatchFailure::Gone => return Duration::ZERO,
            WatchFailure::Unreachable => {
                (&mut self.unreachable, UNREACHABLE_FIRST, UNREACHABLE_MAX)
            }
            _ => (&mut self.answered, ANSWERED_FIRST, ANSWERED_MAX),
        };
        let delay = first.saturating_mul(1 << (*count).min(16)).min(max);
        *count = count.saturating_add(1);
        delay
    }

    /// A watch event arrived: the next error starts from the shortest delay.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// Between half and all of `delay`, so informers spread their retries.
pub fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(Instant::now());
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    delay.mul_f64(fraction)
}

/// What the operator has been told about one informer's current outage.
#[derive(Debug, Default)]
pub struct Outage {
    /// When the first error of the outage happened, and how many since.
    since: Option<(Instant, u64)>,
    last_report: Option<Instant>,
}

/// What to log about an error or a recovery.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Nothing (the outage was reported recently).
    Quiet,
    /// The first error of an outage, or a reminder that it goes on.
    Failing { errors: u64, for_: Duration },
    /// The watch works again after an outage.
    Recovered { errors: u64, after: Duration },
}

impl Outage {
    /// An error (other than `410 Gone`, which is routine) at `now`.
    pub fn on_error(&mut self, now: Instant) -> Report {
        let (since, errors) = self.since.get_or_insert((now, 0));
        *errors += 1;
        let (since, errors) = (*since, *errors);
        let due = self
            .last_report
            .is_none_or(|last| now.duration_since(last) >= REPORT_EVERY);
        if !due {
            return Report::Quiet;
        }
        self.last_report = Some(now);
        Report::Failing {
            errors,
            for_: now.duration_since(since),
        }
    }

    /// A successful event at `now`.
    pub fn on_success(&mut self, now: Instant) -> Report {
        self.last_report = None;
        match self.since.take() {
            Some((since, errors)) => Report::Recovered {
                errors,
                after: now.duration_since(since),
            },
            None => Report::Quiet,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(delays: &[Duration]) -> Vec<f64> {
        delays.iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn an_unreachable_server_is_retried_at_least_every_second() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<_> = (0..8)
            .map(|_| backoff.next_delay(WatchFailure::Unreachable))
            .collect();
        assert_eq!(secs(&delays), [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn gone_after_an_outage_relists_at_once() {
        let mut backoff = WatchBackoff::default();
        for _ in 0..20 {
            backoff.next_delay(WatchFailure::Unreachable);
        }
        assert_eq!(backoff.next_delay(WatchFailure::Gone), Duration::ZERO);
        // A server that answers with errors after the outage starts short.
        assert_eq!(
            backoff.next_delay(WatchFailure::ServerError),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn errors_from_the_server_back_off_to_thirty_seconds_and_reset_on_success() {
        let mut backoff = WatchBackoff::default();
        let delays: Vec<_> = (0..8)
            .map(|_| backoff.next_delay(WatchFailure::Throttled))
            .collect();
        assert_eq!(secs(&delays), [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]);
        backoff.reset();
        assert_eq!(
            backoff.next_delay(WatchFailure::ServerError),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn jitter_keeps_between_half_and_all_of_the_delay() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(1));
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(1));
        }
    }

    #[test]
    fn classifies_errors() {
        let status = |code| {
            watcher::Error::WatchError(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        assert_eq!(WatchFailure::of(&status(410)), WatchFailure::Gone);
        assert_eq!(WatchFailure::of(&status(503)), WatchFailure::ServerError);
        assert_eq!(WatchFailure::of(&status(404)), WatchFailure::ApiError);
        let serde = serde_json::from_str::<u8>("x").unwrap_err();
        let decode = watcher::Error::InitialListFailed(kube::Error::SerdeError(serde));
        assert_eq!(WatchFailure::of(&decode), WatchFailure::Decode);
    }

    #[test]
    fn the_servers_retry_after_is_read_from_list_and_watch_errors() {
        let throttled = |seconds| {
            let status =
                serde_json::json!({"code": 429, "details": {"retryAfterSeconds": seconds}});
            kube::Error::Api(Box::new(serde_json::from_value(status).unwrap()))
        };
        let list = watcher::Error::InitialListFailed(throttled(4));
        assert_eq!(server_delay(&list), Some(Duration::from_secs(4)));
        let watch = watcher::Error::WatchStartFailed(throttled(2));
        assert_eq!(server_delay(&watch), Some(Duration::from_secs(2)));
        let unset = watcher::Error::WatchFailed(throttled(0));
        assert_eq!(server_delay(&unset), None);
    }

    #[test]
    fn an_outage_is_reported_once_then_every_thirty_seconds_then_its_end() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut outage = Outage::default();
        assert_eq!(outage.on_success(t0), Report::Quiet);
        assert_eq!(
            outage.on_error(t0),
            Report::Failing {
                errors: 1,
                for_: s(0)
            }
        );
        for i in 1..10 {
            assert_eq!(outage.on_error(t0 + s(i)), Report::Quiet);
        }
        assert_eq!(
            outage.on_error(t0 + s(30)),
            Report::Failing {
                errors: 11,
                for_: s(30)
            }
        );
        assert_eq!(
            outage.on_success(t0 + s(31)),
            Report::Recovered {
                errors: 11,
                after: s(31)
            }
        );
        assert_eq!(outage.on_success(t0 + s(32)), Report::Quiet);
    }
}
