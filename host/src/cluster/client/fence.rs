//! The write fence: the last check before a write leaves the host.
//!
//! A write (POST, PUT, PATCH, DELETE) is refused, unsent, when this host
//! does not hold the leader lease (so a leader that lost the lease mid
//! reconcile never writes, however late its intents come), or while the API
//! server does not answer (a request sent to a stopped server waits in its
//! kernel's buffer and lands when it resumes, after the host gave up on it
//! or even exited). A refusal is a [`WriteRefused`] error: the applier does
//! not retry it, and the work queue backs the key off. Reads, watches and
//! access reviews (POSTs that change nothing) pass.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Method, Request};
use tower::{BoxError, Layer, Service};

use super::ApiHealth;
use crate::cluster::gate::LeaderGate;

/// Why a write was not sent.
#[derive(Debug, thiserror::Error)]
pub enum WriteRefused {
    #[error("write not sent: this host does not hold the leader lease")]
    NotLeader,
    #[error("write not sent: the API server does not answer")]
    NotAnswering,
}

impl WriteRefused {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            WriteRefused::NotLeader => "not_leader",
            WriteRefused::NotAnswering => "apiserver_not_answering",
        }
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct FenceLayer {
    leader: LeaderGate,
    health: Option<ApiHealth>,
}

impl FenceLayer {
    /// Writes pass while `leader` is open and `health` says the API server
    /// answers.
    pub fn new(leader: LeaderGate, health: ApiHealth) -> Self {
        Self {
            leader,
            health: Some(health),
        }
    }

    /// A fence that lets everything through (offline commands).
    pub fn open() -> Self {
        Self {
            leader: LeaderGate::always(),
            health: None,
        }
    }

    fn check(&self, method: &Method, path: &str) -> Result<(), WriteRefused> {
        if !is_write(method, path) {
            return Ok(());
        }
        if !self.leader.is_leader() {
            return Err(WriteRefused::NotLeader);
        }
        if self.health.as_ref().is_some_and(|h| !h.answering()) {
            return Err(WriteRefused::NotAnswering);
        }
        Ok(())
    }
}

/// Whether a request changes the cluster. Access and token reviews are
/// POSTs that only ask a question.
fn is_write(method: &Method, path: &str) -> bool {
    let writes = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let review = path.starts_with("/apis/authorization.k8s.io/")
        || path.starts_with("/apis/authentication.k8s.io/");
    writes && !review
}

impl<S> Layer<S> for FenceLayer {
    type Service = Fence<S>;
    fn layer(&self, inner: S) -> Fence<S> {
        Fence {
            inner,
            fence: self.clone(),
        }
    }
}

/// See [`FenceLayer`].
#[derive(Clone, Debug)]
pub struct Fence<S> {
    inner: S,
    fence: FenceLayer,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, B> Service<Request<B>> for Fence<S>
where
    S: Service<Request<B>>,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if let Err(refused) = self.fence.check(request.method(), request.uri().path()) {
            tracing::debug!(method = %request.method(), path = request.uri().path(), reason = refused.metric_label(), "write refused");
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        let answer = self.inner.call(request);
        Box::pin(async move { answer.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::client::Health;
    use tower::ServiceExt;

    fn echo() -> impl Service<
        Request<()>,
        Response = (),
        Error = BoxError,
        Future = std::future::Ready<Result<(), BoxError>>,
    > + Clone {
        tower::service_fn(|_: Request<()>| std::future::ready(Ok(())))
    }

    async fn send(fence: &FenceLayer, method: Method, path: &str) -> Result<(), BoxError> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap();
        fence.layer(echo()).oneshot(request).await
    }

    #[tokio::test]
    async fn writes_wait_for_the_lease_and_an_answering_api_server() {
        let health = ApiHealth::new("https://127.0.0.1:6443", Default::default());
        let (leading, gate) = LeaderGate::pending();
        let fence = FenceLayer::new(gate, health.clone());
        let patch = "/api/v1/namespaces/a/configmaps/b";

        let refused = send(&fence, Method::PATCH, patch).await.unwrap_err();
        assert!(matches!(
            refused.downcast_ref::<WriteRefused>(),
            Some(WriteRefused::NotLeader)
        ));
        // Reads and access reviews pass regardless.
        send(&fence, Method::GET, patch).await.unwrap();
        let review = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        send(&fence, Method::POST, review).await.unwrap();

        leading.lead_until(tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        send(&fence, Method::DELETE, patch).await.unwrap();
        health.record(
            Health::NotAnswering {
                reason: "timed out".into(),
            },
            &mut std::time::Instant::now(),
        );
        let refused = send(&fence, Method::POST, "/api/v1/namespaces/a/events")
            .await
            .unwrap_err();
        assert!(matches!(
            refused.downcast_ref::<WriteRefused>(),
            Some(WriteRefused::NotAnswering)
        ));
        send(&fence, Method::GET, patch).await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_lease_past_its_renew_deadline_refuses_writes_without_anyone_closing_it() {
        // A leader frozen past its renew deadline: when it runs again, its
        // next write is refused before the election loop has run at all.
        let health = ApiHealth::new("https://127.0.0.1:6443", Default::default());
        let (leading, gate) = LeaderGate::pending();
        let fence = FenceLayer::new(gate, health);
        let patch = "/api/v1/namespaces/a/configmaps/b";
        leading.lead_until(tokio::time::Instant::now() + std::time::Duration::from_secs(4));
        send(&fence, Method::PATCH, patch).await.unwrap();
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        let refused = send(&fence, Method::PATCH, patch).await.unwrap_err();
        assert!(matches!(
            refused.downcast_ref::<WriteRefused>(),
            Some(WriteRefused::NotLeader)
        ));
    }
}
