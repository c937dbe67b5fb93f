//! Leader election on a `coordination.k8s.io/v1` Lease, with
//! `kube-lease-manager`.
//!
//! Every replica runs discovery, informers and plugin reloads, so a standby
//! keeps warm caches and a queue of what changed. Only the leader's workers
//! take work from the queue and apply intents; the others wait on the
//! [`LeaderGate`]. When the lease is lost the gate closes at once: workers
//! stop taking work, and a reconcile already running does not apply its
//! intents (its key is retried, by whoever leads then). On shutdown the
//! lease is released, so a standby takes over without waiting for it to
//! expire.

use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether this host may apply intents now. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LeaderGate {
    state: watch::Receiver<bool>,
    /// For [`LeaderGate::always`]: keeps the channel open.
    _open: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl LeaderGate {
    /// A gate that is always open: no leader election.
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(true);
        Self {
            state: rx,
            _open: Some(std::sync::Arc::new(tx)),
        }
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Returns once this host leads (at once if it does).
    pub async fn wait(&mut self) {
        let _ = self.state.wait_for(|leader| *leader).await;
    }
}

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
}

/// A running election; [`Election::release`] gives the lease up.
pub struct Election {
    gate: LeaderGate,
    /// Dropping it tells the lease manager to release and stop.
    keep: Option<watch::Receiver<bool>>,
    task: JoinHandle<()>,
    manager: Option<JoinHandle<kube_lease_manager::Result<kube_lease_manager::LeaseManager>>>,
}

impl Election {
    /// Starts competing for the lease.
    pub async fn start(
        client: kube::Client,
        options: ElectionOptions,
    ) -> kube_lease_manager::Result<Self> {
        let manager = LeaseManagerBuilder::new(client, &options.lease_name)
            .with_namespace(&options.namespace)
            .with_identity(&options.identity)
            .with_field_manager(format!("kubewasm/leader/{}", options.identity))
            .with_duration(options.lease_duration.as_secs())
            .with_grace(options.renew_grace.as_secs())
            .build()
            .await?;
        let (mut changes, manager) = manager.watch().await;
        let (tx, rx) = watch::channel(false);
        let keep = changes.clone();
        let identity = options.identity.clone();
        let task = tokio::spawn(async move {
            loop {
                let leader = *changes.borrow_and_update();
                if tx.send_replace(leader) != leader {
                    crate::metrics::get().leader.set(i64::from(leader));
                    if leader {
                        tracing::info!(%identity, lease = %options.lease_name, "became the leader: applying intents");
                    } else {
                        tracing::warn!(%identity, lease = %options.lease_name, "not the leader: standing by, applying nothing");
                    }
                }
                if changes.changed().await.is_err() {
                    // The manager stopped: never lead without a lease.
                    tx.send_replace(false);
                    crate::metrics::get().leader.set(0);
                    return;
                }
            }
        });
        crate::metrics::get().leader.set(0);
        Ok(Self {
            gate: LeaderGate {
                state: rx,
                _open: None,
            },
            keep: Some(keep),
            task,
            manager: Some(manager),
        })
    }

    pub fn gate(&self) -> LeaderGate {
        self.gate.clone()
    }

    /// Stops leading and releases the lease (waiting at most `timeout`).
    pub async fn release(mut self, timeout: Duration) {
        self.task.abort();
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
