//! Sharding: replicas split the keys instead of each reconciling all.
//!
//! With `--shard-ring NAME`, each replica is a member of a ring: it holds a
//! Lease of its own (`NAME-<identity>`, labelled `kubewasm.dev/shard-ring:
//! NAME`) and lists its peers' Leases. Keys are assigned by namespace (the
//! name for cluster-scoped objects) on a consistent hash ring of the live
//! members ([`ring`]), so owners, their children and the objects a mapped
//! watch reads in the same namespace stay on one replica; a replica that
//! joins takes about `1/n` of the keys, and a dead one's share moves once
//! its Lease stood still for a lease duration. Handovers drain before they
//! acknowledge ([`handover`]), so no key is reconciled by two replicas at
//! once; the member's own Lease gates its writes like the leader Lease does
//! without sharding ([`crate::cluster::gate`]).
//!
//! Each replica's informers cache only the namespaces the newest ring
//! gives it (namespaced kinds; cluster-scoped ones are cached whole and
//! only their reconciles split), filtered as objects arrive: a share that
//! grows is listed at the shrink, before the replica may work it. A
//! plugin's read of another namespace fails with
//! [`crate::cluster::cache::ReadError::OutsideShard`] instead of answering
//! from part of the cluster.

mod gate;
mod handover;
mod members;
mod ring;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::gate::Leadership;
use crate::ops::metrics::Metrics;

pub use gate::{Grown, InFlight, Listing, ShardGate, Working};
pub use handover::view;
pub use ring::{MemberId, POINTS, Ring, key_hash, shard_hash};

/// The label every member Lease of a ring carries (its value: the ring).
pub const RING_LABEL: &str = "kubewasm.dev/shard-ring";
/// The annotation with the view a member acknowledged.
pub const VIEW_ANNOTATION: &str = "kubewasm.dev/shard-view";

/// Settings of a ring member.
#[derive(Clone, Debug)]
pub struct ShardOptions {
    /// The ring's name (a label value).
    pub ring: String,
    /// Where the member Leases live.
    pub namespace: String,
    /// This process's identity: unique per process, so a restarted replica
    /// is a new member and never resumes a share it did not earn.
    pub identity: String,
    /// How long a member's Lease may stand still before peers count it dead.
    pub lease_duration: Duration,
    /// The member renews every `lease_duration - renew_grace`.
    pub renew_grace: Duration,
    /// How long after its last confirmed renewal the member keeps working.
    pub renew_deadline: Duration,
    /// How long a handover waits for reconciles of moving keys to end.
    pub drain_limit: Duration,
}

impl ShardOptions {
    /// The member's Lease: `<ring>-<identity>`, made a DNS subdomain.
    pub fn lease_name(&self) -> String {
        let raw = format!("{}-{}", self.ring, self.identity).to_ascii_lowercase();
        let name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        name.chars()
            .take(253)
            .collect::<String>()
            .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_string()
    }

    fn renew_interval(&self) -> Duration {
        crate::cluster::leader::renew_interval(self.lease_duration, self.renew_grace)
    }

    fn retry_period(&self) -> Duration {
        crate::cluster::leader::retry_period(self.renew_interval())
    }
}

/// A process identity for a ring: `base` and 8 random hex digits.
pub fn member_identity(base: &str) -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: the time still separates restarts.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes = nanos.to_be_bytes();
    }
    format!("{base}-{}", hex::encode(bytes))
}

/// Why sharding could not start.
#[derive(Debug, thiserror::Error)]
#[error("failed to list the shard ring's Leases in namespace {namespace}")]
pub struct ShardError {
    namespace: String,
    #[source]
    source: kube::Error,
}

/// A running ring membership; [`Sharding::leave`] hands the share over.
pub struct Sharding {
    stop: watch::Sender<bool>,
    task: JoinHandle<members::Member>,
}

impl Sharding {
    /// Joins the ring: `leadership` opens the member's gate (workers and
    /// the write fence) while its Lease is fresh, `gate` says which keys it
    /// works. Fails when the Leases cannot be listed (RBAC, no answer).
    pub async fn start(
        connection: &crate::cluster::client::Connection,
        options: ShardOptions,
        leadership: Leadership,
        gate: ShardGate,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ShardError> {
        let timeout = connection
            .options()
            .request_timeout
            .min(options.renew_deadline);
        let namespace = options.namespace.clone();
        let client = connection
            .builder(timeout)
            .map_err(|source| ShardError {
                namespace: namespace.clone(),
                source,
            })?
            .build();
        let member = members::Member::new(client, options, leadership, gate, metrics);
        member
            .check()
            .await
            .map_err(|source| ShardError { namespace, source })?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(member.run(stopped));
        Ok(Self { stop, task })
    }

    /// Stops working keys and deletes the member's Lease (waiting at most
    /// `timeout`), so peers take the share at once.
    pub async fn leave(self, timeout: Duration) {
        self.stop.send_replace(true);
        let left = tokio::time::timeout(timeout, async move {
            match self.task.await {
                Ok(member) => member.leave().await,
                Err(_) => Ok(()),
            }
        })
        .await;
        match left {
            Ok(Ok(())) => tracing::info!("left the shard ring: peers take this replica's share"),
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::ops::error_chain(&error), "failed to delete the shard lease; peers take the share when it expires")
            }
            Err(_) => tracing::warn!(
                "leaving the shard ring timed out; peers take the share when the lease expires"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_dns_subdomains() {
        let options = |identity: &str| ShardOptions {
            ring: "kubewasm".into(),
            namespace: "ns".into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_grace: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(12),
            drain_limit: Duration::from_secs(30),
        };
        assert_eq!(
            options("Host_A-12-ab12cd34").lease_name(),
            "kubewasm-host-a-12-ab12cd34"
        );
        let long = options(&"x".repeat(400)).lease_name();
        assert!(long.len() <= 253 && long.ends_with('x'));
        let id = member_identity("pod-0");
        assert!(
            id.starts_with("pod-0-") && id.len() == "pod-0-".len() + 8,
            "{id}"
        );
        assert_ne!(member_identity("pod-0"), member_identity("pod-0"));
    }
}
