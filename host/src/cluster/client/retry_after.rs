//! The API server's `Retry-After`, carried to the host's retry logic.
//!
//! kube turns an error answer into `kube::Error::Api(Status)` from its JSON
//! body, and the applier and the informers honour the Status's
//! `details.retryAfterSeconds`. The API server's own throttling, though,
//! answers in plain text: API Priority and Fairness (and the max-in-flight
//! filter) reject with `429` and `Too many requests, please try again
//! later.`, and say when to come back only in a `Retry-After` header, which
//! kube drops. A throttled write was then retried after the applier's own
//! 200 ms, while the server had asked for a second or more, as client-go's
//! REST client would have waited.
//!
//! This layer keeps the header: an answer of 429 or 5xx with `Retry-After:
//! N` (seconds) gets a JSON `Status` body whose `details.retryAfterSeconds`
//! is N (a `Status` the server sent keeps its fields; its own
//! `retryAfterSeconds` wins). Other answers pass untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, Limited};
use serde_json::{Value, json};
use tower::{BoxError, Layer, Service};

/// Error bodies longer than this are not read into the Status.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// See the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;
    fn layer(&self, inner: S) -> RetryAfter<S> {
        RetryAfter { inner }
    }
}

/// See [`RetryAfterLayer`].
#[derive(Clone, Debug)]
pub struct RetryAfter<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RetryAfter<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = BoxError;
    type Future = BoxFuture<Self::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await.map_err(Into::into)?;
            let Some(seconds) = retry_after(&response) else {
                return Ok(response.map(Either::Left));
            };
            let (mut parts, body) = response.into_parts();
            let text = match Limited::new(body, MAX_ERROR_BODY).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    Bytes::from_static(b"(an error answer longer than 64 KiB)")
                }
                Err(error) => return Err(error),
            };
            let status = with_retry_after(parts.status, &text, seconds);
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(Response::from_parts(
                parts,
                Either::Right(Full::new(Bytes::from(status.to_string()))),
            ))
        })
    }
}

/// The seconds of an error answer's `Retry-After`, when it is a 429 or a
/// 5xx and the header is a number of seconds (not an HTTP date).
fn retry_after<B>(response: &Response<B>) -> Option<u32> {
    let status = response.status();
    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
        return None;
    }
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The answer's body as a `Status` carrying `retryAfterSeconds`.
fn with_retry_after(code: StatusCode, body: &[u8], seconds: u32) -> Value {
    let mut status = match serde_json::from_slice::<Value>(body) {
        Ok(status @ Value::Object(_)) if status["kind"] == "Status" => status,
        _ => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code.as_u16(),
            "reason": match code {
                StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
                StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
                StatusCode::GATEWAY_TIMEOUT => "Timeout",
                _ => "InternalError",
            },
            "message": String::from_utf8_lossy(body).trim(),
        }),
    };
    if !status["details"].is_object() {
        status["details"] = json!({});
    }
    let details = &mut status["details"];
    if details["retryAfterSeconds"].as_u64().is_none_or(|s| s == 0) {
        details["retryAfterSeconds"] = json!(seconds);
    }
    status
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use tower::ServiceExt;

    type Server =
        tower::util::BoxService<Request<kube::client::Body>, Response<Full<Bytes>>, Infallible>;

    /// A server answering every request with `status`, `headers` and `body`.
    fn server(
        status: u16,
        headers: &'static [(&'static str, &'static str)],
        body: &'static str,
    ) -> Server {
        Server::new(tower::service_fn(
            move |_: Request<kube::client::Body>| async move {
                let mut response = Response::builder().status(status);
                for (name, value) in headers {
                    response = response.header(*name, *value);
                }
                Ok(response
                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                    .unwrap())
            },
        ))
    }

    /// What kube makes of the answer of `server` to a GET, through the layer.
    async fn kube_error(server: Server) -> kube::core::Status {
        let service = RetryAfterLayer.layer(server);
        let client = kube::client::ClientBuilder::new(service, "default").build();
        let request = Request::get("/api/v1/namespaces/default/configmaps/a")
            .body(Vec::new())
            .unwrap();
        match client.request_text(request).await {
            Err(kube::Error::Api(status)) => *status,
            other => panic!("expected an API error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_priority_and_fairness_rejection_keeps_its_retry_after() {
        // As kube-apiserver's APF filter writes it: plain text, the delay
        // in the header only.
        let rejection = server(
            429,
            &[
                ("retry-after", "3"),
                ("content-type", "text/plain; charset=utf-8"),
                ("content-length", "43"),
            ],
            "Too many requests, please try again later.\n",
        );
        let status = kube_error(rejection).await;
        assert_eq!(status.code, 429);
        assert_eq!(status.reason, "TooManyRequests");
        assert_eq!(status.message, "Too many requests, please try again later.");
        assert_eq!(status.details.map(|d| d.retry_after_seconds), Some(3));
    }

    #[tokio::test]
    async fn a_status_body_keeps_its_fields_and_its_own_retry_after() {
        let without = server(
            503,
            &[("retry-after", "5")],
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":503,"reason":"ServiceUnavailable","message":"shutting down","details":{"name":"a"}}"#,
        );
        let status = kube_error(without).await;
        assert_eq!(
            (status.code, status.message.as_str()),
            (503, "shutting down")
        );
        let details = status.details.unwrap();
        assert_eq!(
            (details.name.as_str(), details.retry_after_seconds),
            ("a", 5)
        );

        let with = server(
            429,
            &[("retry-after", "1")],
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","code":429,"reason":"TooManyRequests","message":"storage initializing","details":{"retryAfterSeconds":7}}"#,
        );
        let status = kube_error(with).await;
        assert_eq!(status.details.map(|d| d.retry_after_seconds), Some(7));
    }

    #[tokio::test]
    async fn other_answers_pass_untouched() {
        for (status, headers, body) in [
            // No header.
            (429, &[][..], "Too many requests"),
            // An HTTP date rather than seconds.
            (
                503,
                &[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")][..],
                "busy",
            ),
            // Not a status a delay belongs to.
            (404, &[("retry-after", "2")][..], "not found"),
            (200, &[("retry-after", "2")][..], "{}"),
        ] {
            let mut service = RetryAfterLayer.layer(server(status, headers, body));
            let response = service
                .ready()
                .await
                .unwrap()
                .call(Request::get("/").body(kube::client::Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(matches!(response.body(), Either::Left(_)), "{status}");
            let text = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(text, body.as_bytes());
        }
    }

    #[tokio::test]
    async fn a_long_error_body_is_not_read_whole() {
        let long: &'static str = Box::leak("x".repeat(100 * 1024).into_boxed_str());
        let status = kube_error(server(429, &[("retry-after", "2")], long)).await;
        assert_eq!(status.message, "(an error answer longer than 64 KiB)");
        assert_eq!(status.details.map(|d| d.retry_after_seconds), Some(2));
    }
}
