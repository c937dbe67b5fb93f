//! A deadline on every request: an API server that stops answering fails
//! the request after `--kube-request-timeout` instead of holding its caller
//! forever.
//!
//! kube's own read timeout works per socket read, on a connection that may
//! also carry a watch; it is off by default so that long watches survive.
//! This layer instead bounds each request: the answer's headers and, except
//! for a watch, its whole body must arrive before the deadline. A watch
//! streams for as long as the server keeps it open (kube-runtime's watcher
//! asks for `timeoutSeconds=290` and drops a stream idle for longer), so
//! only the start of a watch is bounded here.
//!
//! Dropping a request's future drops its connection: nothing stays in
//! flight on the client's side once the caller gave up.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower::{BoxError, Layer, Service};

/// A request that got no (complete) answer in time.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the API server within {0:?}")]
pub struct RequestTimedOut(pub Duration);

/// Whether a request is a watch, whose body streams without end.
pub(crate) fn is_watch<B>(request: &Request<B>) -> bool {
    request
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"))
}

/// See the module docs.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            timeout: self.timeout,
        }
    }
}

/// See [`DeadlineLayer`].
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Deadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Response<DeadlineBody<ResBody>>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let timeout = self.timeout;
        let deadline = Instant::now() + timeout;
        let streams = is_watch(&request);
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline, answer).await {
                Err(_) => Err(RequestTimedOut(timeout).into()),
                Ok(Err(error)) => Err(error.into()),
                Ok(Ok(response)) => Ok(response.map(|body| DeadlineBody {
                    inner: body,
                    deadline: (!streams).then(|| Box::pin(tokio::time::sleep_until(deadline))),
                    timeout,
                })),
            }
        })
    }
}

/// A response body that fails once the request's deadline passes.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Option<Pin<Box<Sleep>>>,
    timeout: Duration,
}

impl<B> Body for DeadlineBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let timeout = self.timeout;
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(RequestTimedOut(timeout).into())));
        }
        Pin::new(&mut self.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};
    use tower::ServiceExt;

    /// A server that answers at once with a body that never ends.
    type Endless = StreamBody<futures::stream::Pending<Result<Frame<&'static [u8]>, BoxError>>>;

    fn endless() -> Endless {
        StreamBody::new(futures::stream::pending())
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_without_an_answer_fails_at_its_deadline() {
        let hung = tower::service_fn(|_: Request<()>| {
            std::future::pending::<Result<Response<()>, BoxError>>()
        });
        let service = DeadlineLayer::new(Duration::from_secs(30)).layer(hung);
        let error = service
            .oneshot(Request::get("/api/v1/namespaces").body(()).unwrap())
            .await
            .err()
            .expect("timed out");
        assert!(error.is::<RequestTimedOut>(), "{error}");
        assert_eq!(
            error.to_string(),
            "no answer from the API server within 30s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_fails_but_a_watch_streams_on() {
        let answers = tower::service_fn(|_: Request<()>| async {
            Ok::<_, BoxError>(Response::new(endless()))
        });
        let service = DeadlineLayer::new(Duration::from_secs(30)).layer(answers);
        let list = service
            .clone()
            .oneshot(Request::get("/api/v1/configmaps").body(()).unwrap())
            .await
            .unwrap();
        let Err(error) = list.into_body().collect().await else {
            panic!("a body that never ends was collected")
        };
        assert!(error.is::<RequestTimedOut>(), "{error}");

        let watch = service
            .oneshot(
                Request::get("/api/v1/configmaps?watch=true&timeoutSeconds=290")
                    .body(())
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut body = watch.into_body();
        let waited = tokio::time::timeout(Duration::from_secs(600), body.frame()).await;
        assert!(
            waited.is_err(),
            "the watch's body ended: {:?}",
            waited.map(|f| f.is_some())
        );
    }

    #[test]
    fn watches_are_told_apart_by_their_query() {
        let request = |uri: &str| Request::get(uri).body(()).unwrap();
        assert!(is_watch(&request("/api/v1/pods?watch=true")));
        assert!(is_watch(&request("/api/v1/pods?labelSelector=a&watch=1")));
        assert!(!is_watch(&request(
            "/api/v1/pods?labelSelector=watch%3Dtrue"
        )));
        assert!(!is_watch(&request("/api/v1/pods")));
    }
}
