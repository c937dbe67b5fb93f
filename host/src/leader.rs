//! Leader election on a `coordination.k8s.io/v1` Lease, with
//! `kube-lease-manager`.
//!
//! Every replica runs discovery, informers and plugin reloads, so a standby
//! keeps warm caches and a queue of what changed. Only the leader's workers
//! take work from the queue and apply intents; the others wait on the
//! [`LeaderGate`]. When the lease is lost the gate closes at once: workers
//! stop taking work, a reconcile already running does not apply its
//! intents (its key is retried, by whoever leads then), and the client's
//! write fence ([`crate::client::fence`]) refuses any write still on its way.
//! On shutdown the lease is released, so a standby takes over without
//! waiting for it to expire.
//!
//! The leader also stops when it cannot renew: like client-go's
//! `RenewDeadline`, the gate closes once `renew_deadline` has passed since
//! the last renewal the API server confirmed (counted from when that
//! renewal was *sent*), even if the lease manager, waiting on a request to
//! a hung API server, still believes it holds the lease. The deadline is
//! shorter than the lease duration, so the leader stops before any standby
//! may take the lease over; it resumes only after a renewal succeeds again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service};

/// Whether this host may apply intents now. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderGate {
    state: watch::Receiver<bool>,
    /// For [`LeaderGate::always`]: keeps the channel open.
    _open: Option<Arc<watch::Sender<bool>>>,
}

impl LeaderGate {
    /// A gate that is always open: no leader election.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self {
            state: rx,
            _open: Some(Arc::new(tx)),
        }
    }

    /// A closed gate and the sender that opens it (an [`Election`]'s).
    pub fn pending() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (
            tx,
            Self {
                state: rx,
                _open: None,
            },
        )
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Returns once this host leads (at once if it does).
    pub async fn wait(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }
}

/// How often a leader reads its Lease to notice a takeover.
const VERIFY_PERIOD: Duration = Duration::from_millis(500);

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct ElectionOptions {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
    /// How long a lease is valid after its last renewal.
    pub lease_duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_grace: Duration,
    /// How long after its last confirmed renewal the leader keeps applying;
    /// between the renewal interval (`lease_duration - renew_grace`) and the
    /// lease duration.
    pub renew_deadline: Duration,
}

impl ElectionOptions {
    /// The default renew deadline: halfway between the time the holder
    /// renews and the time the lease expires.
    pub fn default_renew_deadline(lease_duration: Duration, renew_grace: Duration) -> Duration {
        lease_duration.saturating_sub(renew_grace / 2)
    }
}

/// A running election; [`Election::release`] gives the lease up.
pub struct Election {
    /// Dropping it tells the lease manager to release and stop.
    keep: Option<watch::Receiver<bool>>,
    task: JoinHandle<()>,
    verify: JoinHandle<()>,
    manager: Option<JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>>,
}

impl Election {
    /// Starts competing for the lease; `gate` opens while this host leads.
    /// The lease manager gets a client of its own, whose requests time out
    /// by the renew deadline.
    pub async fn start(
        connection: &crate::client::Connection,
        options: ElectionOptions,
        gate: watch::Sender<bool>,
    ) -> kube_lease_manager::Result<Self> {
        let renewed = Arc::new(watch::channel(None::<Instant>).0);
        let timeout = connection
            .options()
            .request_timeout
            .min(options.renew_deadline);
        let client = connection
            .builder(timeout)?
            .with_layer(&RenewalLayer {
                identity: options.identity.clone().into(),
                renewed: renewed.clone(),
            })
            .build();
        let manager = LeaseManagerBuilder::new(client.clone(), &options.lease_name)
            .with_namespace(&options.namespace)
            .with_identity(&options.identity)
            .with_field_manager(format!("kubewasm/leader/{}", options.identity))
            .with_duration(options.lease_duration.as_secs())
            .with_grace(options.renew_grace.as_secs())
            .build()
            .await?;
        let (changes, manager) = manager.watch().await;
        let keep = changes.clone();
        crate::metrics::get().leader.set(0);
        // The lease manager renews without a resourceVersion precondition and
        // reads the Lease only when it renews, so a standby that took the
        // Lease over is seen late; while leading, read it every
        // `VERIFY_PERIOD` (the response closes the gate if another holds it).
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(client.clone(), &options.namespace);
        let (name, mut watching) = (options.lease_name.clone(), gate.subscribe());
        let verify = tokio::spawn(async move {
            loop {
                let _ = watching.wait_for(|leading| *leading).await;
                let _ = leases.get(&name).await;
                tokio::time::sleep(VERIFY_PERIOD).await;
            }
        });
        let task = tokio::spawn(follow(changes, renewed.subscribe(), gate, options));
        Ok(Self {
            keep: Some(keep),
            task,
            verify,
            manager: Some(manager),
        })
    }

    /// Stops leading and releases the lease (waiting at most `timeout`).
    pub async fn release(mut self, timeout: Duration) {
        self.task.abort();
        self.verify.abort();
        drop(self.keep.take());
        if let Some(manager) = self.manager.take() {
            match tokio::time::timeout(timeout, manager).await {
                Ok(Ok(Ok(_))) => tracing::info!("released the leader lease"),
                Ok(Ok(Err(error))) => {
                    tracing::warn!(error = %error, "failed to release the leader lease; it expires on its own")
                }
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!("releasing the leader lease timed out; it expires on its own")
                }
            }
        }
        crate::metrics::get().leader.set(0);
    }

    /// Stops leading without touching the lease (the API server does not
    /// answer: a release sent now could land after another host took the
    /// lease). The lease expires on its own.
    pub fn abandon(mut self) {
        self.task.abort();
        self.verify.abort();
        if let Some(manager) = self.manager.take() {
            manager.abort();
        }
        crate::metrics::get().leader.set(0);
        tracing::warn!("left the leader lease to expire: the API server does not answer");
    }
}

/// Keeps `gate` open while the lease manager holds the lease and its last
/// confirmed renewal is within the renew deadline.
async fn follow(
    mut changes: watch::Receiver<bool>,
    mut renewed: watch::Receiver<Option<Instant>>,
    gate: watch::Sender<bool>,
    options: ElectionOptions,
) {
    let (identity, lease) = (&options.identity, &options.lease_name);
    loop {
        let held = *changes.borrow_and_update();
        let fresh_until = renewed
            .borrow_and_update()
            .map(|sent| sent + options.renew_deadline);
        let fresh = fresh_until.is_some_and(|until| Instant::now() < until);
        let leading = held && fresh;
        if gate.send_replace(leading) != leading {
            crate::metrics::get().leader.set(i64::from(leading));
            if leading {
                tracing::info!(%identity, %lease, "became the leader: applying intents");
            } else if held {
                tracing::warn!(
                    %identity,
                    %lease,
                    renew_deadline = ?options.renew_deadline,
                    "could not renew the leader lease within the renew deadline: stopped applying"
                );
            } else {
                tracing::warn!(%identity, %lease, "not the leader: standing by, applying nothing");
            }
        }
        let expiry = async {
            match fresh_until {
                Some(until) if leading => tokio::time::sleep_until(until).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() {
                // The manager stopped: never lead without a lease.
                gate.send_replace(false);
                crate::metrics::get().leader.set(0);
                return;
            },
            _ = renewed.changed() => {}
            () = expiry => {}
        }
    }
}

/// Records when the last write of the Lease that left this host holding it
/// was sent (the lease manager's client only talks to its Lease).
#[derive(Clone)]
struct RenewalLayer {
    identity: Arc<str>,
    renewed: Arc<watch::Sender<Option<Instant>>>,
}

impl<S> Layer<S> for RenewalLayer {
    type Service = Renewals<S>;
    fn layer(&self, inner: S) -> Renewals<S> {
        Renewals {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`RenewalLayer`].
#[derive(Clone)]
struct Renewals<S> {
    inner: S,
    layer: RenewalLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Renewals<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let sent = Instant::now();
        let write = matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH
        );
        let answer = self.inner.call(request);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = answer.await.map_err(Into::into)?.into_parts();
            let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
            if parts.status.is_success() {
                match holder(&bytes) {
                    Some(holder) if holder == &*layer.identity => {
                        if write {
                            layer.renewed.send_replace(Some(sent));
                        }
                    }
                    // Someone else holds it: stop at once, whatever the
                    // lease manager believes until its next sync.
                    _ => {
                        layer.renewed.send_replace(None);
                    }
                }
            }
            Ok(Response::from_parts(parts, Full::new(bytes)))
        })
    }
}

/// The holder named in a Lease's JSON.
fn holder(lease: &[u8]) -> Option<&str> {
    #[derive(serde::Deserialize)]
    struct Lease<'a> {
        #[serde(borrow)]
        spec: Option<Spec<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Spec<'a> {
        #[serde(rename = "holderIdentity", borrow)]
        holder_identity: Option<&'a str>,
    }
    serde_json::from_slice::<Lease<'_>>(lease)
        .ok()?
        .spec?
        .holder_identity
}

/// This instance's identity: the pod name when running in a pod, else the
/// host name and process id (unique on one machine).
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME") {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "kubewasm".into());
    format!("{host}-{}", std::process::id())
}

/// The namespace for the lease: `POD_NAMESPACE`, the service account's
/// namespace in a pod, else `default`.
pub fn default_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        })
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(renew_deadline: Duration) -> ElectionOptions {
        ElectionOptions {
            lease_name: "lease".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_grace: Duration::from_secs(5),
            renew_deadline,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_gate_closes_at_the_renew_deadline_and_reopens_on_renewal() {
        let (held_tx, held) = watch::channel(true);
        let renewed = watch::channel(Some(Instant::now()));
        let (gate_tx, mut gate) = LeaderGate::pending();
        tokio::spawn(follow(
            held,
            renewed.0.subscribe(),
            gate_tx,
            options(Duration::from_secs(10)),
        ));
        gate.wait().await;
        // No renewal confirmed for 10 s: the gate closes, although the lease
        // manager still believes it holds the lease.
        tokio::time::sleep(Duration::from_millis(9_900)).await;
        assert!(gate.is_leader());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!gate.is_leader());
        // A renewal the API server confirms opens it again.
        renewed.0.send_replace(Some(Instant::now()));
        gate.wait().await;
        // Losing the lease closes it at once.
        held_tx.send_replace(false);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!gate.is_leader());
        drop(held_tx);
    }

    #[test]
    fn the_holder_is_read_from_the_lease() {
        let lease = br#"{"kind":"Lease","spec":{"holderIdentity":"me","renewTime":"x"}}"#;
        assert_eq!(holder(lease), Some("me"));
        assert_eq!(holder(br#"{"kind":"Lease","spec":{}}"#), None);
        assert_eq!(holder(b"not json"), None);
    }

    #[test]
    fn the_default_renew_deadline_lies_between_renewal_and_expiry() {
        let deadline = ElectionOptions::default_renew_deadline(
            Duration::from_secs(15),
            Duration::from_secs(5),
        );
        assert_eq!(deadline, Duration::from_millis(12_500));
    }
}
