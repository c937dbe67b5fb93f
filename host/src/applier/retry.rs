//! Retrying requests that failed for a reason that may pass: throttling,
//! unavailability, timeouts, dropped connections, and one unexplained
//! conflict.
//!
//! These are the host's only retries: the client is built without kube's
//! retry layer (see [`crate::cluster::client`]), so every retry follows this policy
//! and is counted in `kubewasm_write_retries_total{reason}`. A write the
//! client's fence refused ([`WriteRefused`]: not the leader, API server not
//! answering) is not retried here; the work queue backs its key off.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use super::error::is_ownership_conflict;
use crate::cluster::client::{RequestTimedOut, WriteRefused};
use crate::ops::metrics::Metrics;

/// How often and how long a failed request is retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// The first delay; each next one doubles (with jitter) up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The most time one request may take across its attempts and the
    /// waits between them; a retry that would start after it (e.g. after a
    /// long `Retry-After`, or an attempt that ran into the client's request
    /// timeout) is not made.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_delay: Duration::from_secs(10),
        }
    }
}

/// A request that failed for good, and how often it was tried.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) error: kube::Error,
    pub(super) attempts: usize,
}

pub(super) enum Retry {
    Transient {
        retry_after: Option<Duration>,
        reason: &'static str,
    },
    Conflict,
    No,
}

pub(super) fn retry_class(error: &kube::Error) -> Retry {
    match error {
        kube::Error::Api(status) => match status.code {
            429 | 500 | 502 | 503 | 504 => Retry::Transient {
                reason: match status.code {
                    429 => "throttled",
                    503 => "unavailable",
                    _ => "server_error",
                },
                retry_after: status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|&s| s > 0)
                    .map(|s| Duration::from_secs(s.into())),
            },
            409 if !status.is_already_exists() && !is_ownership_conflict(status) => Retry::Conflict,
            _ => Retry::No,
        },
        kube::Error::Service(error) if error.is::<WriteRefused>() => Retry::No,
        kube::Error::Service(error) if error.is::<RequestTimedOut>() => Retry::Transient {
            retry_after: None,
            reason: "timeout",
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => Retry::Transient {
            retry_after: None,
            reason: "connection",
        },
        _ => Retry::No,
    }
}

/// Runs `op` until it succeeds, fails for good, or the policy is spent.
/// Delays come from `policy` (exponential, with jitter) but are never
/// shorter than the server's `retryAfterSeconds`. Each retry is counted in
/// `metrics` (`kubewasm_write_retries_total{reason}`). `sleep` gets each
/// delay and its reason; it is a parameter so tests can observe the delays.
pub(super) async fn with_retries<T, F, Fut, S, SFut>(
    policy: &RetryPolicy,
    metrics: &Metrics,
    retry_conflict: bool,
    mut op: F,
    mut sleep: S,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
    S: FnMut(Duration, &'static str) -> SFut,
    SFut: Future<Output = ()>,
{
    let mut delays = ExponentialBuilder::new()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter()
        .build();
    let mut conflict_retried = !retry_conflict;
    // Time spent in attempts and in waits (the waits counted as asked for,
    // so tests with an instant `sleep` see the same budget).
    let mut spent = Duration::ZERO;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let started = tokio::time::Instant::now();
        let answer = op().await;
        spent += started.elapsed();
        let error = match answer {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let delay = match retry_class(&error) {
            Retry::Transient {
                retry_after,
                reason,
            } => delays
                .next()
                .map(|d| (retry_after.map_or(d, |after| after.max(d)), reason)),
            Retry::Conflict if !conflict_retried => {
                conflict_retried = true;
                Some((policy.min_delay, "conflict"))
            }
            Retry::Conflict | Retry::No => None,
        };
        match delay {
            Some((delay, reason)) if spent + delay <= policy.max_total_delay => {
                metrics.write_retries.with_label_values(&[reason]).inc();
                sleep(delay, reason).await;
                spent += delay;
            }
            _ => return Err(Failure { error, attempts }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::super::error::api_error;
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_total_delay: Duration::from_secs(10),
        }
    }

    /// Runs `with_retries` over `errors` (then success), returning the
    /// attempts made, the delays slept and whether it succeeded.
    async fn run(
        policy: &RetryPolicy,
        retry_conflict: bool,
        errors: Vec<kube::Error>,
    ) -> (usize, Vec<Duration>, Result<(), Failure>) {
        run_counted(policy, &Metrics::new(), retry_conflict, errors).await
    }

    /// [`run`], counting the retries in `metrics`.
    async fn run_counted(
        policy: &RetryPolicy,
        metrics: &Metrics,
        retry_conflict: bool,
        errors: Vec<kube::Error>,
    ) -> (usize, Vec<Duration>, Result<(), Failure>) {
        let errors = Mutex::new(errors.into_iter());
        let attempts = AtomicU64::new(0);
        let slept = Mutex::new(Vec::new());
        let result = with_retries(
            policy,
            metrics,
            retry_conflict,
            || {
                attempts.fetch_add(1, Ordering::Relaxed);
                let next = errors.lock().unwrap().next();
                async move { next.map_or(Ok(()), Err) }
            },
            |d, _| {
                slept.lock().unwrap().push(d);
                std::future::ready(())
            },
        )
        .await;
        let attempts = attempts.load(Ordering::Relaxed) as usize;
        (attempts, slept.into_inner().unwrap(), result)
    }

    #[tokio::test]
    async fn throttling_is_retried_with_growing_delays_honouring_retry_after() {
        let errors = vec![
            api_error(429, "TooManyRequests", 0),
            api_error(503, "ServiceUnavailable", 0),
            api_error(429, "TooManyRequests", 3),
        ];
        let (attempts, slept, result) = run(&policy(), false, errors).await;
        assert!(result.is_ok());
        assert_eq!(attempts, 4);
        assert!(slept[0] >= Duration::from_millis(100) && slept[0] < Duration::from_millis(200));
        assert!(slept[1] >= Duration::from_millis(200), "{slept:?}");
        assert_eq!(slept[2], Duration::from_secs(3), "Retry-After is honoured");
    }

    #[tokio::test]
    async fn a_plain_text_rejection_waits_as_long_as_its_retry_after_header_asks() {
        use bytes::Bytes;
        use http_body_util::Full;
        use tower::Layer;

        // API Priority and Fairness rejects in plain text, the delay in a
        // header only; the second attempt succeeds.
        let answered = std::sync::Arc::new(AtomicU64::new(0));
        let count = answered.clone();
        let server = tower::service_fn(move |_: http::Request<kube::client::Body>| {
            let first = count.fetch_add(1, Ordering::Relaxed) == 0;
            async move {
                let response = if first {
                    http::Response::builder()
                        .status(429)
                        .header("retry-after", "3")
                        .body(Full::new(Bytes::from_static(
                            b"Too many requests, please try again later.\n",
                        )))
                } else {
                    http::Response::builder().body(Full::new(Bytes::from_static(b"{}")))
                };
                Ok::<_, std::convert::Infallible>(response.unwrap())
            }
        });
        let service = crate::cluster::client::RetryAfterLayer.layer(server);
        let client = kube::client::ClientBuilder::new(service, "default").build();
        let slept = Mutex::new(Vec::new());
        let result = with_retries(
            &policy(),
            &Metrics::new(),
            false,
            || {
                let request = http::Request::get("/api/v1/namespaces/default/configmaps/a")
                    .body(Vec::new())
                    .unwrap();
                let client = client.clone();
                async move { client.request_text(request).await }
            },
            |d, _| {
                slept.lock().unwrap().push(d);
                std::future::ready(())
            },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(answered.load(Ordering::Relaxed), 2);
        assert_eq!(*slept.lock().unwrap(), [Duration::from_secs(3)]);
    }

    #[tokio::test]
    async fn retries_are_bounded_in_number_and_time() {
        let many = || {
            (0..10)
                .map(|_| api_error(500, "InternalError", 0))
                .collect()
        };
        let (attempts, _, result) = run(&policy(), false, many()).await;
        assert_eq!(attempts, 6, "one attempt and five retries");
        assert_eq!(result.unwrap_err().attempts, 6);

        let budget = RetryPolicy {
            max_total_delay: Duration::from_secs(5),
            ..policy()
        };
        let errors = vec![api_error(429, "TooManyRequests", 30)];
        let (attempts, slept, result) = run(&budget, false, errors).await;
        assert_eq!(
            (attempts, slept.len()),
            (1, 0),
            "a Retry-After past the budget ends it"
        );
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn conflicts_are_retried_once_without_a_precondition_and_never_with_one() {
        let conflicts = || vec![api_error(409, "Conflict", 0), api_error(409, "Conflict", 0)];
        let (attempts, _, result) = run(&policy(), true, conflicts()).await;
        assert_eq!(attempts, 2);
        assert!(result.is_err());
        let (attempts, _, _) = run(&policy(), false, conflicts()).await;
        assert_eq!(attempts, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_timed_out_counts_against_the_budget() {
        let timeouts = AtomicU64::new(0);
        let result: Result<(), Failure> = with_retries(
            &policy(),
            &Metrics::new(),
            false,
            || {
                timeouts.fetch_add(1, Ordering::Relaxed);
                async {
                    // The client's request timeout, as the API server hangs.
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    let timeout = RequestTimedOut(Duration::from_secs(30));
                    Err(kube::Error::Service(Box::new(timeout)))
                }
            },
            |d, _| tokio::time::sleep(d),
        )
        .await;
        assert_eq!(
            timeouts.load(Ordering::Relaxed),
            1,
            "30 s is past the 10 s budget"
        );
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn retries_are_counted_by_reason_and_refused_writes_not_retried() {
        let metrics = Metrics::new();
        let retries = |reason: &str| metrics.write_retries.with_label_values(&[reason]).get();
        let timeout = kube::Error::Service(Box::new(RequestTimedOut(Duration::from_millis(1))));
        let errors = vec![api_error(429, "TooManyRequests", 0), timeout];
        let (attempts, _, result) = run_counted(&policy(), &metrics, false, errors).await;
        assert!(result.is_ok() && attempts == 3);
        assert_eq!((retries("throttled"), retries("timeout")), (1, 1));

        let refused = kube::Error::Service(Box::new(WriteRefused::NotLeader));
        let (attempts, _, result) = run_counted(&policy(), &metrics, false, vec![refused]).await;
        assert_eq!(attempts, 1);
        assert!(result.is_err());
        assert_eq!(
            metrics
                .encode()
                .matches("kubewasm_write_retries_total{")
                .count(),
            2,
            "only the throttled and the timed-out attempt were retried"
        );
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        for error in [
            api_error(403, "Forbidden", 0),
            api_error(404, "NotFound", 0),
            api_error(409, "AlreadyExists", 0),
            api_error(422, "Invalid", 0),
        ] {
            let (attempts, _, result) = run(&policy(), true, vec![error]).await;
            assert_eq!(attempts, 1);
            assert!(result.is_err());
        }
    }
}
