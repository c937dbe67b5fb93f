//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! Every replica runs discovery, informers and plugin reloads, so a standby
//! keeps warm caches and a queue of what changed. Only the leader's workers
//! take work from the queue and apply intents; the others wait on the
//! [`LeaderGate`]. The gate is a deadline on this host's monotonic clock,
//! checked every time it is asked (by a worker before it applies, and by the
//! client's write fence, [`crate::cluster::client::fence`], before every write): a
//! leader applies only until `renew_deadline` after it *sent* its last
//! renewal the API server confirmed. No task has to run for the gate to
//! close, so a leader that was frozen (SIGSTOP, a stalled node, a long GC
//! pause) finds it closed the moment it runs again.
//!
//! The election follows client-go's `leaderelection` ([`record`] holds the
//! decisions):
//! - every write of the Lease (acquire, renew, take over, release) is an
//!   update carrying the resourceVersion this host last saw: if anyone else
//!   wrote it since, the API server answers 409 Conflict and this host is
//!   not the leader;
//! - a standby never reads the times another holder wrote (its wall clock
//!   may be skewed): it takes a Lease over only after the record stayed
//!   unchanged for a whole lease duration by the standby's own monotonic
//!   clock, counted from when it first read that version.
//!
//! As the renewal that opened the gate was sent before the API server wrote
//! it, and a standby first reads that version after it was written, the
//! leader's gate closes at least `lease_duration - renew_deadline` before
//! any standby may take over, whatever the wall clocks say. What remains is
//! the time a write needs from the fence's check to the API server (bounded
//! by the client's request timeout), and a write the process is frozen in
//! between the check and the socket, which no lease can fence.
//!
//! On shutdown the lease is released (the holder cleared, with the same
//! precondition), so a standby takes over without waiting for it to expire.

mod elect;
mod record;

pub(crate) use elect::{now as wall_clock, record as lease_record};
pub(crate) use record::{LONGEST_LEASE, Record as LeaseRecord};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ops::metrics::Metrics;
use elect::Elector;

pub use crate::cluster::gate::{LeaderGate, Leadership};

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("failed to build the client for the leader Lease")]
    Client(#[source] kube::Error),
    #[error("failed to read the leader Lease {namespace}/{name}")]
    Read {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl LeaderError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LeaderError::Client(_) => "client",
            LeaderError::Read { .. } => "read",
        }
    }
}

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct ElectionOptions {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
    /// How long a standby waits, after it last saw the Lease change, before
    /// it takes the Lease over (client-go's `LeaseDuration`).
    pub lease_duration: Duration,
    /// How long before expiry the holder renews: it renews every
    /// `lease_duration - renew_grace`.
    pub renew_grace: Duration,
    /// How long after it sent its last confirmed renewal the leader keeps
    /// applying (client-go's `RenewDeadline`); between the renewal interval
    /// and the lease duration.
    pub renew_deadline: Duration,
}

impl ElectionOptions {
    /// The default renew deadline: halfway between the time the holder
    /// renews and the time the lease expires.
    pub fn default_renew_deadline(lease_duration: Duration, renew_grace: Duration) -> Duration {
        lease_duration.saturating_sub(renew_grace / 2)
    }

    /// How often the leader renews.
    fn renew_interval(&self) -> Duration {
        renew_interval(self.lease_duration, self.renew_grace)
    }

    fn retry_period(&self) -> Duration {
        retry_period(self.renew_interval())
    }
}

/// How often a Lease's holder renews it: `renew_grace` before it expires.
pub(crate) fn renew_interval(lease_duration: Duration, renew_grace: Duration) -> Duration {
    lease_duration.saturating_sub(renew_grace)
}

/// How often a candidate reads a Lease, and a failed renewal is retried
/// (client-go's `RetryPeriod`): at most 2 s, at most the renewal interval.
pub(crate) fn retry_period(renew_interval: Duration) -> Duration {
    renew_interval
        .min(Duration::from_secs(2))
        .max(Duration::from_millis(100))
}

/// A running election; [`Election::release`] gives the lease up.
pub struct Election {
    stop: watch::Sender<bool>,
    task: JoinHandle<Elector>,
    leadership: Leadership,
    /// `kubewasm_leader`: 1 while this host leads.
    metrics: Arc<Metrics>,
}

impl Election {
    /// Starts competing for the lease; `leadership` opens the gate while
    /// this host leads, and `kubewasm_leader` in `metrics` says so. The
    /// election gets a client of its own (no write fence), whose requests
    /// time out by the renew deadline. Fails when the Lease cannot be read
    /// (the API server does not answer, or RBAC).
    pub async fn start(
        connection: &crate::cluster::client::Connection,
        options: ElectionOptions,
        leadership: Leadership,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LeaderError> {
        let timeout = connection
            .options()
            .request_timeout
            .min(options.renew_deadline);
        let client = connection
            .builder(timeout)
            .map_err(LeaderError::Client)?
            .build();
        let elector = Elector::new(client, options, leadership.clone(), metrics.clone());
        elector.check().await?;
        metrics.leader.set(0);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(elector.run(stopped));
        Ok(Self {
            stop,
            task,
            leadership,
            metrics,
        })
    }

    /// Stops leading and releases the lease (waiting at most `timeout`).
    pub async fn release(self, timeout: Duration) {
        self.leadership.stop();
        self.stop.send_replace(true);
        let released = tokio::time::timeout(timeout, async move {
            match self.task.await {
                Ok(elector) => elector.release().await,
                Err(_) => Ok(false),
            }
        })
        .await;
        match released {
            Ok(Ok(true)) => tracing::info!("released the leader lease"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::ops::error_chain(&error), "failed to release the leader lease; it expires on its own")
            }
            Err(_) => {
                tracing::warn!("releasing the leader lease timed out; it expires on its own")
            }
        }
        self.metrics.leader.set(0);
    }

    /// Stops leading without touching the lease (the API server does not
    /// answer: a release sent now could land after another host took the
    /// lease). The lease expires on its own.
    pub fn abandon(self) {
        self.leadership.stop();
        self.task.abort();
        self.metrics.leader.set(0);
        tracing::warn!("left the leader lease to expire: the API server does not answer");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_renew_deadline_lies_between_renewal_and_expiry() {
        let deadline = ElectionOptions::default_renew_deadline(
            Duration::from_secs(15),
            Duration::from_secs(5),
        );
        assert_eq!(deadline, Duration::from_millis(12_500));
    }

    #[test]
    fn the_retry_period_is_client_gos_at_most() {
        let options = |lease, grace| ElectionOptions {
            lease_name: "l".into(),
            namespace: "n".into(),
            identity: "i".into(),
            lease_duration: Duration::from_secs(lease),
            renew_grace: Duration::from_secs(grace),
            renew_deadline: Duration::from_secs(lease - 1),
        };
        assert_eq!(options(15, 5).retry_period(), Duration::from_secs(2));
        assert_eq!(options(6, 5).retry_period(), Duration::from_secs(1));
    }
}
