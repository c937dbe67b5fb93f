//! The Kubernetes client: configuration inferred as kube does (kubeconfig,
//! `KUBECONFIG`, or in-cluster service account), and a tower stack that
//! keeps an API server's faults from holding the host:
//!
//! - explicit timeouts: `--kube-connect-timeout` for a connection and
//!   `--kube-request-timeout` for each request ([`deadline`]); a watch is
//!   bounded until it starts streaming, then by kube-runtime's idle timeout.
//! - no hidden retries: kube's default retry layer (up to 15 retries on 429,
//!   503 and 504, invisible to the host) is turned off, so the only retries
//!   are the applier's ([`crate::applier::RetryPolicy`]), bounded and counted
//!   in `kubewasm_write_retries_total`.
//! - the server's `Retry-After` header kept in the error's Status
//!   ([`retry_after`]), so those retries wait as long as the server asks
//!   even when it throttles in plain text (API Priority and Fairness).
//! - optional client-side rate limiting (`--kube-qps`, `--kube-burst`). By
//!   default there is none, as in kube-rs: the API server protects itself
//!   with API Priority and Fairness (answering 429 with `Retry-After`, which
//!   the applier honours), and the host's own load is bounded by its
//!   workers (`--concurrency`), one write in flight each. A fixed client
//!   limit would cap a healthy server (20 per second made a burst of 1000
//!   objects take 50 s where the server took 500 per second). With the
//!   flags set, every request, a watch included, takes one token.
//! - a write fence ([`fence`]): writes are not sent while this host does not
//!   lead, or while the API server does not answer ([`health`]).

pub mod deadline;
pub mod fence;
pub mod health;
pub mod impersonate;
pub mod retry_after;

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::client::{ClientBuilder, DynBody};
use tower::{Layer, Service};

pub use deadline::{DeadlineLayer, RequestTimedOut};
pub use fence::{FenceLayer, WriteRefused};
pub use health::{ApiHealth, Health};
pub use impersonate::{Impersonation, ServiceAccount};
pub use retry_after::RetryAfterLayer;

/// kube's transport stack, as `ClientBuilder::try_from` builds it.
pub type Transport = tower::util::BoxService<
    http::Request<kube::client::Body>,
    http::Response<Box<DynBody>>,
    tower::BoxError,
>;

/// How the host talks to the API server.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientOptions {
    /// `None`: no client-side limit (the default).
    pub rate_limit: Option<RateLimit>,
    /// The longest a new connection may take (TCP and TLS).
    pub connect_timeout: Duration,
    /// The longest one request may take (a watch: until it streams).
    pub request_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            rate_limit: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientOptions {
    /// Checks the values, naming the flag that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(limit) = &self.rate_limit {
            limit.validate()?;
        }
        let range = Duration::from_millis(100)..=Duration::from_secs(3600);
        if !range.contains(&self.connect_timeout) {
            return Err(format!(
                "--kube-connect-timeout {:?} is not between 100ms and 1h",
                self.connect_timeout
            ));
        }
        if !range.contains(&self.request_timeout) {
            return Err(format!(
                "--kube-request-timeout {:?} is not between 100ms and 1h",
                self.request_timeout
            ));
        }
        Ok(())
    }
}

/// The inferred configuration and the host's client settings; builds the
/// clients the host uses (one per purpose, sharing nothing but settings).
#[derive(Clone)]
pub struct Connection {
    config: kube::Config,
    options: ClientOptions,
}

impl Connection {
    /// Infers the configuration (no request is made), with the host's
    /// timeouts and without kube's retry layer.
    pub async fn infer(options: ClientOptions) -> kube::Result<Self> {
        let mut config = kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?;
        config.connect_timeout = Some(options.connect_timeout);
        // Per request (see `deadline`) rather than per socket read, which
        // would also cut idle watches.
        config.read_timeout = None;
        config.write_timeout = Some(options.request_timeout);
        config.default_retry = false;
        Ok(Self { config, options })
    }

    /// The API server's URL.
    pub fn server(&self) -> String {
        self.config.cluster_url.to_string()
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// kube's transport stack (TLS, auth) with the connect timeout, a
    /// deadline of `timeout` per request and the server's `Retry-After`
    /// kept in error answers, to add layers to.
    pub fn builder(
        &self,
        timeout: Duration,
    ) -> kube::Result<ClientBuilder<retry_after::RetryAfter<deadline::Deadline<Transport>>>> {
        Ok(ClientBuilder::try_from(self.config.clone())?
            .with_layer(&DeadlineLayer::new(timeout))
            .with_layer(&RetryAfterLayer))
    }

    /// The host's client: request deadlines, rate limited, writes fenced.
    pub fn client(&self, fence: FenceLayer) -> kube::Result<kube::Client> {
        self.client_as(fence, &self.throttle(), None)
    }

    /// A rate limiter of `--kube-qps`/`--kube-burst`, to share between
    /// clients ([`Connection::client_as`]).
    pub fn throttle(&self) -> ThrottleLayer {
        match self.options.rate_limit {
            Some(limit) => ThrottleLayer::new(limit),
            None => ThrottleLayer::unlimited(),
        }
    }

    /// [`Connection::client`] taking its tokens from `throttle`, and acting
    /// as `user` if set (the `Impersonate-User` header; see [`impersonate`]).
    pub fn client_as(
        &self,
        fence: FenceLayer,
        throttle: &ThrottleLayer,
        user: Option<String>,
    ) -> kube::Result<kube::Client> {
        let mut config = self.config.clone();
        if user.is_some() {
            config.auth_info.impersonate = user;
        }
        Ok(ClientBuilder::try_from(config)?
            .with_layer(&DeadlineLayer::new(self.options.request_timeout))
            .with_layer(&RetryAfterLayer)
            .with_layer(throttle)
            .with_layer(&fence)
            .build())
    }
}

/// Builds the client from the inferred configuration, rate limited, with
/// the default timeouts and no write fence (for the offline commands).
pub async fn connect(limit: Option<RateLimit>) -> kube::Result<kube::Client> {
    let options = ClientOptions {
        rate_limit: limit,
        ..ClientOptions::default()
    };
    Connection::infer(options).await?.client(FenceLayer::open())
}

/// Client-side request rate limit: a token bucket refilled at `qps` per
/// second holding at most `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

impl RateLimit {
    /// `qps` with the burst given, else one and a half seconds' worth (at
    /// least 1), as client-go's 20/30 pair has it.
    pub fn new(qps: f64, burst: Option<u32>) -> Self {
        let default = (qps * 1.5).ceil().clamp(1.0, f64::from(u32::MAX)) as u32;
        Self {
            qps,
            burst: burst.unwrap_or(default),
        }
    }

    /// Checks the values, naming the flag that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.qps.is_finite() && self.qps > 0.0 && self.qps <= 100_000.0) {
            return Err(format!(
                "--kube-qps {} is not a rate between 0 (exclusive) and 100000 requests per second",
                self.qps
            ));
        }
        if self.burst == 0 {
            return Err("--kube-burst 0: the burst must allow at least 1 request".into());
        }
        Ok(())
    }

    fn quota(&self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.qps).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(burst)
    }
}

/// A tower layer holding requests until the rate limit lets them through
/// (or passing them at once, [`ThrottleLayer::unlimited`]).
#[derive(Clone)]
pub struct ThrottleLayer {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl ThrottleLayer {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limiter: Some(Arc::new(RateLimiter::direct(limit.quota()))),
        }
    }

    /// No client-side limit.
    pub fn unlimited() -> Self {
        Self { limiter: None }
    }
}

impl<S> Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;
    fn layer(&self, inner: S) -> Throttle<S> {
        Throttle {
            inner,
            limiter: self.limiter.clone(),
            waiting: None,
            permitted: false,
        }
    }
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// See [`ThrottleLayer`]. Readiness means a token was taken for the next
/// request, so the wait happens in `poll_ready`, as tower expects.
pub struct Throttle<S> {
    inner: S,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    waiting: Option<Wait>,
    permitted: bool,
}

impl<S, R> Service<R> for Throttle<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.permitted
            && let Some(limiter) = self.limiter.clone()
        {
            let wait = self
                .waiting
                .get_or_insert_with(|| Box::pin(async move { limiter.until_ready().await }));
            ready!(wait.as_mut().poll(cx));
            self.waiting = None;
            self.permitted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permitted = false;
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    #[test]
    fn invalid_limits_name_the_flag() {
        let qps = RateLimit { qps: 0.0, burst: 1 }.validate().unwrap_err();
        assert!(qps.contains("--kube-qps 0"), "{qps}");
        let nan = RateLimit {
            qps: f64::NAN,
            burst: 1,
        }
        .validate()
        .unwrap_err();
        assert!(nan.contains("--kube-qps NaN"), "{nan}");
        let burst = RateLimit { qps: 5.0, burst: 0 }.validate().unwrap_err();
        assert!(burst.contains("--kube-burst 0"), "{burst}");
        assert!(RateLimit::new(20.0, None).validate().is_ok());
        assert_eq!(RateLimit::new(20.0, None).burst, 30);
        assert_eq!(RateLimit::new(0.1, None).burst, 1);
        assert_eq!(RateLimit::new(5.0, Some(2)).burst, 2);
    }

    #[tokio::test]
    async fn requests_beyond_the_burst_wait_for_tokens() {
        // Three tokens at once, then one every 100 ms: six requests cannot
        // finish before three refills, however fast or slow the machine.
        let limit = RateLimit {
            qps: 10.0,
            burst: 3,
        };
        let layer = ThrottleLayer::new(limit);
        let echo = tower::service_fn(|n: u32| async move { Ok::<_, Infallible>(n) });
        let mut service = layer.layer(echo);
        let start = std::time::Instant::now();
        for n in 0..6 {
            assert_eq!(service.ready().await.unwrap().call(n).await.unwrap(), n);
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(290),
            "six requests took {elapsed:?}"
        );
    }
}
