//! Leader election and sharding flags of `kubewasm run`.

use std::time::Duration;

use clap::Args;

/// Leader election among replicas.
#[derive(Debug, Args)]
pub struct LeaderArgs {
    /// Elect a leader among replicas on a Lease: only the leader applies
    /// intents; standbys keep warm caches.
    #[arg(long, env = "KUBEWASM_LEADER_ELECT")]
    pub leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, default_value = "kubewasm", env = "KUBEWASM_LEADER_ELECT_LEASE")]
    pub leader_elect_lease: String,

    /// Namespace of the Lease (default: `POD_NAMESPACE`, the pod's service
    /// account namespace, or `default`).
    #[arg(long, env = "KUBEWASM_LEADER_ELECT_NAMESPACE")]
    pub leader_elect_namespace: Option<String>,

    /// Seconds a standby waits after it last saw the Lease change (by its
    /// own monotonic clock) before it takes the Lease over: the longest a
    /// crashed leader blocks a standby.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(2..=3600))]
    pub leader_elect_lease_seconds: u64,

    /// Seconds before expiry at which the leader renews (less than the
    /// lease duration).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3599))]
    pub leader_elect_renew_grace_seconds: u64,

    /// Seconds after its last confirmed renewal at which a leader that
    /// cannot renew (e.g. the API server hangs) stops applying, before a
    /// standby may take the lease. Between the renewal interval (lease
    /// minus renew grace) and the lease duration [default: halfway].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub leader_elect_renew_deadline_seconds: Option<u64>,

    /// Split the work among replicas: each joins ring NAME (a Lease of its
    /// own in the lease namespace, with the --leader-elect-* timings) and
    /// reconciles only its share of the namespaces. Turns leader election
    /// on, which then only guards plugin-resource status writes.
    #[arg(long, value_name = "NAME", env = "KUBEWASM_SHARD_RING")]
    pub shard_ring: Option<String>,
}

impl LeaderArgs {
    /// The election settings, or `None` without `--leader-elect` (or
    /// `--shard-ring`).
    pub fn options(&self) -> Option<crate::cluster::leader::ElectionOptions> {
        (self.leader_elect || self.shard_ring.is_some()).then(|| {
            crate::cluster::leader::ElectionOptions {
                lease_name: self.leader_elect_lease.clone(),
                namespace: self
                    .leader_elect_namespace
                    .clone()
                    .unwrap_or_else(crate::cluster::leader::default_namespace),
                identity: crate::cluster::leader::default_identity(),
                lease_duration: Duration::from_secs(self.leader_elect_lease_seconds),
                renew_grace: Duration::from_secs(self.leader_elect_renew_grace_seconds),
                renew_deadline: self.renew_deadline(),
            }
        })
    }

    /// The ring membership, or `None` without `--shard-ring`; a handover
    /// waits at most `drain_limit` for reconciles of moving keys.
    pub fn shard_options(
        &self,
        drain_limit: Duration,
    ) -> Option<crate::cluster::shard::ShardOptions> {
        let election = self.options()?;
        let ring = self.shard_ring.clone()?;
        Some(crate::cluster::shard::ShardOptions {
            identity: crate::cluster::shard::member_identity(&election.identity),
            ring,
            namespace: election.namespace,
            lease_duration: election.lease_duration,
            renew_grace: election.renew_grace,
            renew_deadline: election.renew_deadline,
            drain_limit,
        })
    }

    fn renew_deadline(&self) -> Duration {
        self.leader_elect_renew_deadline_seconds
            .map(Duration::from_secs)
            .unwrap_or_else(|| {
                crate::cluster::leader::ElectionOptions::default_renew_deadline(
                    Duration::from_secs(self.leader_elect_lease_seconds),
                    Duration::from_secs(self.leader_elect_renew_grace_seconds),
                )
            })
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some(ring) = &self.shard_ring
            && let Err(error) = crate::contract::names::validate_namespace(ring)
        {
            // A DNS-1123 label: a label value and the start of a Lease name.
            return Err(format!("--shard-ring: {error}"));
        }
        if self.leader_elect_renew_grace_seconds >= self.leader_elect_lease_seconds {
            return Err(format!(
                "--leader-elect-renew-grace-seconds {} must be less than --leader-elect-lease-seconds {}",
                self.leader_elect_renew_grace_seconds, self.leader_elect_lease_seconds
            ));
        }
        if let Some(deadline) = self.leader_elect_renew_deadline_seconds {
            let renews_after =
                self.leader_elect_lease_seconds - self.leader_elect_renew_grace_seconds;
            if deadline <= renews_after || deadline >= self.leader_elect_lease_seconds {
                return Err(format!(
                    "--leader-elect-renew-deadline-seconds {deadline} must be more than the renewal interval \
                     ({renews_after} s: lease minus renew grace) and less than --leader-elect-lease-seconds {}",
                    self.leader_elect_lease_seconds
                ));
            }
        }
        Ok(())
    }
}
