//! The election loop: reads and writes the Lease, decides with
//! [`super::record`], and opens the gate through [`Leadership`].

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::time::Instant;

use super::record::{Decision, Observer, Record};
use super::{ElectionOptions, LeaderError, Leadership};
use crate::ops::metrics::Metrics;

/// The field manager of the election's writes.
const FIELD_MANAGER: &str = "kubewasm/leader";

/// What the loop told the operator last (so each change is logged once).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Reported {
    Starting,
    Leading,
    Standing { holder: Option<String> },
}

/// One candidate's state.
pub(super) struct Elector {
    leases: Api<Lease>,
    options: ElectionOptions,
    observer: Observer,
    leadership: Leadership,
    /// The Lease as this host last wrote it while holding it: the next
    /// renewal's precondition.
    held: Option<Lease>,
    /// The holder a standby last saw.
    holder: Option<String>,
    reported: Reported,
    /// `kubewasm_leader` follows `reported`.
    metrics: Arc<Metrics>,
}

impl Elector {
    pub fn new(
        client: kube::Client,
        options: ElectionOptions,
        leadership: Leadership,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            leases: Api::namespaced(client, &options.namespace),
            observer: Observer::new(options.identity.clone(), options.lease_duration),
            options,
            leadership,
            held: None,
            holder: None,
            reported: Reported::Starting,
            metrics,
        }
    }

    /// Reads the Lease once, so a start fails while the API server does not
    /// answer or RBAC forbids the Lease.
    pub async fn check(&self) -> Result<(), LeaderError> {
        self.leases
            .get_opt(&self.options.lease_name)
            .await
            .map(drop)
            .map_err(|source| LeaderError::Read {
                namespace: self.options.namespace.clone(),
                name: self.options.lease_name.clone(),
                source,
            })
    }

    /// Competes for the lease until `stop` turns true; returns itself so
    /// the lease can be released.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Self {
        loop {
            let next = match self.held.clone() {
                Some(lease) => self.renew(lease).await,
                None => self.try_acquire().await,
            };
            self.report();
            // Sleep until the next attempt, waking at the gate's deadline
            // too, to say the leader stopped.
            loop {
                let wake = match self.leadership.until() {
                    Some(until) if Instant::now() < until && until < next => until,
                    _ => next,
                };
                tokio::select! {
                    () = tokio::time::sleep_until(wake) => {}
                    _ = stop.wait_for(|stop| *stop) => return self,
                }
                self.report();
                if wake >= next {
                    break;
                }
            }
        }
    }

    /// Writes the held Lease again; returns when to try next.
    async fn renew(&mut self, lease: Lease) -> Instant {
        let mut next = lease.clone();
        let spec = next.spec.get_or_insert_with(LeaseSpec::default);
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(self.duration_seconds());
        let sent = Instant::now();
        match self.write(&next).await {
            Ok(written) => {
                self.lead(written, sent);
                sent + self.options.renew_interval()
            }
            Err(kube::Error::Api(status)) if status.is_conflict() => {
                // Someone else wrote the Lease: whoever it is, this host no
                // longer holds it. Read it at once.
                self.held = None;
                self.leadership.stop();
                tracing::debug!(lease = %self.options.lease_name, "renewal conflicted: the Lease changed");
                Instant::now()
            }
            Err(error) => {
                // Still the holder as far as anyone knows; retry with the
                // same precondition. The gate closes by itself at the renew
                // deadline.
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to renew the leader lease");
                Instant::now() + self.options.retry_period()
            }
        }
    }

    /// Reads the Lease and takes it if the decision says so; returns when
    /// to try next.
    async fn try_acquire(&mut self) -> Instant {
        let retry = self.options.retry_period();
        let lease = match self.leases.get_opt(&self.options.lease_name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return self.create().await,
            Err(error) => {
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to read the leader lease");
                return Instant::now() + retry;
            }
        };
        let now = Instant::now();
        let decision = self.observer.observe(&record(&lease), now);
        match decision {
            Decision::Wait { holder, expires } => {
                self.holder = Some(holder);
                (now + retry).min(expires)
            }
            Decision::Renew => self.claim(lease, false).await,
            Decision::Acquire => self.claim(lease, true).await,
            Decision::TakeOver { holder } => {
                tracing::info!(
                    lease = %self.options.lease_name,
                    %holder,
                    lease_duration = ?self.options.lease_duration,
                    "taking the leader lease over: its holder has not renewed it for a lease duration"
                );
                self.claim(lease, true).await
            }
        }
    }

    /// Writes `lease` naming this host, on the version read.
    async fn claim(&mut self, mut lease: Lease, transition: bool) -> Instant {
        let identity = self.options.identity.clone();
        let duration = self.duration_seconds();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let changes_holder = spec.holder_identity.as_deref() != Some(identity.as_str());
        if transition || changes_holder {
            spec.acquire_time = Some(now());
            if spec
                .holder_identity
                .as_deref()
                .is_some_and(|h| !h.is_empty())
                && changes_holder
            {
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
        }
        spec.holder_identity = Some(identity);
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(duration);
        let sent = Instant::now();
        match self.write(&lease).await {
            Ok(written) => {
                self.lead(written, sent);
                sent + self.options.renew_interval()
            }
            Err(error) => {
                // A 409 means another candidate wrote first: read again.
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to take the leader lease");
                Instant::now() + self.options.retry_period()
            }
        }
    }

    /// Creates the Lease, held by this host.
    async fn create(&mut self) -> Instant {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.options.lease_name.clone()),
                namespace: Some(self.options.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.options.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let sent = Instant::now();
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        match self.leases.create(&params, &lease).await {
            Ok(written) => {
                self.lead(written, sent);
                sent + self.options.renew_interval()
            }
            Err(error) => {
                // 409 AlreadyExists: another candidate created it first.
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to create the leader lease");
                Instant::now() + self.options.retry_period()
            }
        }
    }

    /// An update carrying `lease`'s resourceVersion as its precondition.
    async fn write(&self, lease: &Lease) -> kube::Result<Lease> {
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        self.leases
            .replace(&self.options.lease_name, &params, lease)
            .await
    }

    /// The API server confirmed a write naming this host, sent at `sent`.
    fn lead(&mut self, written: Lease, sent: Instant) {
        self.held = Some(written);
        self.holder = None;
        self.observer.wrote();
        self.leadership
            .lead_until(sent + self.options.renew_deadline);
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.options.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Logs and counts a change of this host's role.
    fn report(&mut self) {
        let now = if self.leadership.is_leader() {
            Reported::Leading
        } else {
            Reported::Standing {
                holder: self.holder.clone(),
            }
        };
        if now == self.reported {
            return;
        }
        let (identity, lease) = (&self.options.identity, &self.options.lease_name);
        let was_leading = self.reported == Reported::Leading;
        match &now {
            Reported::Leading => {
                tracing::info!(%identity, %lease, "became the leader: applying intents");
            }
            Reported::Standing { .. } if was_leading && self.held.is_some() => {
                tracing::warn!(
                    %identity,
                    %lease,
                    renew_deadline = ?self.options.renew_deadline,
                    "could not renew the leader lease within the renew deadline: stopped applying"
                );
            }
            Reported::Standing { .. } if was_leading => {
                tracing::warn!(%identity, %lease, "another host wrote the leader lease: stopped applying");
            }
            Reported::Standing {
                holder: Some(holder),
            } => {
                tracing::info!(%identity, %lease, %holder, "not the leader: standing by, applying nothing");
            }
            Reported::Standing { holder: None } | Reported::Starting => {}
        }
        self.metrics.leader.set(i64::from(now == Reported::Leading));
        self.reported = now;
    }

    /// Clears the holder (with the precondition) if this host holds the
    /// lease; whether it did.
    pub async fn release(self) -> kube::Result<bool> {
        let Some(mut lease) = self.held.clone() else {
            return Ok(false);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = None;
        spec.renew_time = Some(now());
        spec.lease_duration_seconds = Some(1);
        self.write(&lease).await.map(|_| true)
    }
}

/// The decision's view of a Lease (also a shard ring member's view of its
/// peers' Leases).
pub(crate) fn record(lease: &Lease) -> Record {
    let spec = lease.spec.as_ref();
    Record {
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        holder: spec
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty()),
        duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs),
    }
}

/// The wall clock, for the Lease's informational times (never read back).
pub(crate) fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_read_into_a_record() {
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l", "resourceVersion": "42"},
            "spec": {"holderIdentity": "", "leaseDurationSeconds": -3},
        }))
        .unwrap();
        assert_eq!(
            record(&lease),
            Record {
                resource_version: "42".into(),
                holder: None,
                duration: None,
            }
        );
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l", "resourceVersion": "43"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 6},
        }))
        .unwrap();
        assert_eq!(record(&lease).holder.as_deref(), Some("a"));
        assert_eq!(record(&lease).duration, Some(Duration::from_secs(6)));
    }
}
