//! Whether the API server answers, from a cheap periodic probe of its
//! `/readyz` with a short timeout, on a client of its own (not rate
//! limited, so a reconcile storm cannot starve it).
//!
//! The host reports not ready while the API server does not answer or says
//! it is not ready, and its write fence ([`super::fence`]) holds writes
//! while it does not answer: a request sent to a server that stopped
//! (SIGSTOP, a hung process) is buffered by its kernel and would land
//! whenever it resumes, long after the caller gave up. The first failure is
//! logged at WARN, the recovery at INFO; `kubewasm_apiserver_answering`
//! follows the state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::ops::metrics::Metrics;

/// How often the API server is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How long a probe may take before the API server counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the last probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// `/readyz` answered 200 (or refused the host's credentials: the server
    /// answers, and that is what the host can tell).
    Ready,
    /// `/readyz` answered with an error status (e.g. 500 while etcd is down).
    NotReady { status: u16 },
    /// No answer in time, or no connection.
    NotAnswering { reason: String },
}

/// The API server's health as the probe sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiHealth {
    server: Arc<str>,
    state: Arc<watch::Sender<Health>>,
    metrics: Arc<Metrics>,
}

impl ApiHealth {
    /// The health of `server`, followed by `kubewasm_apiserver_answering`
    /// in `metrics`.
    pub fn new(server: impl Into<String>, metrics: Arc<Metrics>) -> Self {
        Self {
            server: server.into().into(),
            state: Arc::new(watch::channel(Health::Unknown).0),
            metrics,
        }
    }

    pub fn get(&self) -> Health {
        self.state.borrow().clone()
    }

    /// Whether the API server answered the last probe (or none was made
    /// yet). Writes are held while it is false.
    pub fn answering(&self) -> bool {
        !matches!(*self.state.borrow(), Health::NotAnswering { .. })
    }

    /// Why the host is not ready because of the API server, if it is not.
    pub fn not_ready(&self) -> Option<String> {
        match &*self.state.borrow() {
            Health::Unknown => Some(format!("waiting for the API server {}", self.server)),
            Health::Ready => None,
            Health::NotReady { status } => Some(format!(
                "the API server {} is not ready (its /readyz answered {status})",
                self.server
            )),
            Health::NotAnswering { reason } => Some(format!(
                "the API server {} does not answer: {reason}",
                self.server
            )),
        }
    }

    /// Changes of the state.
    pub fn subscribe(&self) -> watch::Receiver<Health> {
        self.state.subscribe()
    }

    /// Probes the API server every [`PROBE_INTERVAL`] with `client` (whose
    /// request timeout should be [`PROBE_TIMEOUT`]), forever.
    pub async fn probe(self, client: kube::Client) {
        let mut since = Instant::now();
        loop {
            let request = http::Request::get("/readyz").body(Vec::new());
            let health = match request {
                Ok(request) => classify(client.request_text(request).await),
                Err(error) => Health::NotAnswering {
                    reason: error.to_string(),
                },
            };
            self.record(health, &mut since);
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Stores `health`, logging and counting a change.
    pub fn record(&self, health: Health, since: &mut Instant) {
        let previous = self.state.send_replace(health.clone());
        self.metrics
            .apiserver_answering
            .set(i64::from(!matches!(health, Health::NotAnswering { .. })));
        if std::mem::discriminant(&previous) == std::mem::discriminant(&health) {
            return;
        }
        let server = &*self.server;
        let down_for = since.elapsed();
        *since = Instant::now();
        match (&previous, &health) {
            (_, Health::NotAnswering { reason }) => tracing::warn!(
                %server,
                %reason,
                "the API server does not answer: reporting not ready and holding writes until it does"
            ),
            (_, Health::NotReady { status }) => tracing::warn!(
                %server,
                status,
                "the API server answers but is not ready: reporting not ready"
            ),
            (Health::Unknown, Health::Ready) => {
                tracing::debug!(%server, "the API server answers")
            }
            (_, Health::Ready) => tracing::info!(
                %server,
                after = ?down_for,
                "the API server answers again: ready, writes resume"
            ),
            (_, Health::Unknown) => {}
        }
    }
}

fn classify(answer: kube::Result<String>) -> Health {
    match answer {
        Ok(_) => Health::Ready,
        Err(kube::Error::Api(status)) if matches!(status.code, 401 | 403) => Health::Ready,
        Err(kube::Error::Api(status)) => Health::NotReady {
            status: status.code,
        },
        // kube's `ServiceError: ...` repeats its source; the source says it.
        Err(kube::Error::Service(error)) => Health::NotAnswering {
            reason: crate::ops::error_chain(&*error),
        },
        Err(error) => Health::NotAnswering {
            reason: crate::ops::error_chain(&error),
        },
    }
}

impl crate::ops::admin::HostStatus for ApiHealth {
    fn not_ready(&self) -> Option<String> {
        ApiHealth::not_ready(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("no", "NotReady")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn probe_answers_become_health() {
        assert_eq!(classify(Ok("ok".into())), Health::Ready);
        assert_eq!(classify(Err(api_error(403))), Health::Ready);
        assert_eq!(
            classify(Err(api_error(500))),
            Health::NotReady { status: 500 }
        );
        let timeout = kube::Error::Service(Box::new(super::super::RequestTimedOut(PROBE_TIMEOUT)));
        let Health::NotAnswering { reason } = classify(Err(timeout)) else {
            panic!("a timeout is not an answer")
        };
        assert_eq!(reason, "no answer from the API server within 3s");
    }

    #[test]
    fn readiness_names_the_server_and_the_reason() {
        let metrics = Arc::new(Metrics::new());
        let health = ApiHealth::new("https://127.0.0.1:6443/", metrics.clone());
        assert!(health.answering());
        assert!(
            health
                .not_ready()
                .unwrap()
                .contains("waiting for the API server")
        );
        let mut since = Instant::now();
        health.record(
            Health::NotAnswering {
                reason: "timed out".into(),
            },
            &mut since,
        );
        assert!(!health.answering());
        assert_eq!(metrics.apiserver_answering.get(), 0);
        assert_eq!(
            health.not_ready().unwrap(),
            "the API server https://127.0.0.1:6443/ does not answer: timed out"
        );
        health.record(Health::Ready, &mut since);
        assert!(health.answering() && health.not_ready().is_none());
        assert_eq!(metrics.apiserver_answering.get(), 1);
    }
}
