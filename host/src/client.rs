//! The Kubernetes client: configuration inferred as kube does (kubeconfig,
//! `KUBECONFIG`, or in-cluster service account), with client-side rate
//! limiting (`--kube-qps`, `--kube-burst`) so a burst of reconciles cannot
//! flood the API server. Every request, a watch included, takes one token.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::client::ClientBuilder;
use tower::{Layer, Service};

/// Client-side request rate limit: a token bucket refilled at `qps` per
/// second holding at most `burst` tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub qps: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    /// controller-runtime's defaults: 20 requests per second, bursts of 30.
    fn default() -> Self {
        Self {
            qps: 20.0,
            burst: 30,
        }
    }
}

impl RateLimit {
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

/// Builds the client from the inferred configuration, rate limited.
pub async fn connect(limit: RateLimit) -> kube::Result<kube::Client> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    let builder = ClientBuilder::try_from(config)?;
    Ok(builder.with_layer(&ThrottleLayer::new(limit)).build())
}

/// A tower layer holding requests until the rate limit lets them through.
#[derive(Clone)]
pub struct ThrottleLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl ThrottleLayer {
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::direct(limit.quota())),
        }
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
    limiter: Arc<DefaultDirectRateLimiter>,
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
        if !self.permitted {
            let limiter = self.limiter.clone();
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
        assert!(RateLimit::default().validate().is_ok());
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
