//! The membership loop: renews this member's Lease (carrying the view it
//! acknowledged), lists the ring's Leases, and moves the working set
//! through [`super::handover`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use tokio::sync::watch;
use tokio::time::Instant;

use super::gate::ShardGate;
use super::handover::{Handover, PeerRecord, Peers, Step};
use super::{RING_LABEL, ShardOptions, VIEW_ANNOTATION};
use crate::cluster::gate::Leadership;
use crate::cluster::leader::{LeaseRecord, lease_record, wall_clock};
use crate::ops::metrics::Metrics;

/// The field manager of the member Lease's writes.
const FIELD_MANAGER: &str = "kubewasm/shard";
/// How often the ring's Leases are listed at most, and how soon a drain
/// is checked again.
const POLL: Duration = Duration::from_secs(1);
const DRAIN_POLL: Duration = Duration::from_millis(50);
/// A Lease unchanged for this many lease durations is deleted.
const STALE_LEASES: u32 = 10;

pub(super) struct Member {
    leases: Api<Lease>,
    options: ShardOptions,
    lease_name: String,
    leadership: Leadership,
    gate: ShardGate,
    peers: Peers,
    handover: Handover,
    /// This member's Lease as last written: the next write's precondition.
    held: Option<Lease>,
    next_renewal: Instant,
    /// No acknowledgement is written out of turn before this (a write failed).
    failed_until: Instant,
    metrics: Arc<Metrics>,
}

impl Member {
    pub fn new(
        client: kube::Client,
        options: ShardOptions,
        leadership: Leadership,
        gate: ShardGate,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            leases: Api::namespaced(client, &options.namespace),
            lease_name: options.lease_name(),
            handover: Handover::new(options.identity.as_str().into(), options.drain_limit),
            options,
            leadership,
            gate,
            peers: Peers::default(),
            held: None,
            next_renewal: Instant::now(),
            failed_until: Instant::now(),
            metrics,
        }
    }

    /// Lists the ring's Leases once, so a start fails while RBAC forbids it.
    pub async fn check(&self) -> kube::Result<()> {
        self.leases.list(&self.selector()).await.map(drop)
    }

    fn selector(&self) -> ListParams {
        ListParams::default().labels(&format!("{RING_LABEL}={}", self.options.ring))
    }

    /// Runs until `stop` turns true; returns itself so it can leave.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> Self {
        loop {
            let now = Instant::now();
            if self.held.is_none() || now >= self.next_renewal || self.acknowledging() {
                self.renew().await;
            }
            self.observe().await;
            if self.acknowledging() {
                // Write the acknowledgement at once: peers wait for it.
                continue;
            }
            let wake = if self.handover.draining() {
                Instant::now() + DRAIN_POLL
            } else {
                self.next_renewal.min(Instant::now() + POLL)
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                _ = stop.wait_for(|stop| *stop) => return self,
            }
        }
    }

    /// Whether the Lease does not say the acknowledged view yet (and no
    /// write failed within the retry period).
    fn acknowledging(&self) -> bool {
        let written = self.held.as_ref().and_then(view_of);
        written.as_deref() != self.handover.acknowledged() && Instant::now() >= self.failed_until
    }

    /// Lists the peers and takes the handover's next steps.
    async fn observe(&mut self) {
        let list = match self.leases.list(&self.selector()).await {
            Ok(list) => list,
            Err(error) => {
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to list the shard ring's leases");
                // Without a list, nothing moves; a lapsed own lease still resets.
                if !self.leadership.is_leader() {
                    let steps = self.handover.step(false, &[], true, Instant::now());
                    self.apply(steps);
                }
                return;
            }
        };
        let now = Instant::now();
        let records = list
            .items
            .iter()
            .filter(|lease| lease.metadata.name.as_deref() != Some(self.lease_name.as_str()))
            .map(record)
            .collect();
        self.peers.observe(records, now);
        for (lease, version) in self
            .peers
            .stale(now, self.options.lease_duration * STALE_LEASES)
        {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: Some(version),
                    uid: None,
                }),
                ..DeleteParams::default()
            };
            match self.leases.delete(&lease, &params).await {
                Ok(_) => {
                    tracing::info!(%lease, "deleted the lease of a shard member gone for a long time")
                }
                Err(error) => {
                    tracing::debug!(%lease, error = %crate::ops::error_chain(&error), "failed to delete a stale shard lease")
                }
            }
        }
        let live: Vec<&PeerRecord> = self.peers.live(now, self.options.lease_duration).collect();
        let steps =
            self.handover
                .step(self.leadership.is_leader(), &live, self.gate.drained(), now);
        self.apply(steps);
    }

    fn apply(&mut self, steps: Vec<Step>) {
        let me = &self.options.identity;
        for step in steps {
            match step {
                Step::Shrink(ring) => {
                    tracing::debug!(%me, share = ring.share(me), "shard ring changed: stopped working keys that move");
                    self.gate.shrink(ring);
                }
                Step::Acknowledge(view) => {
                    tracing::debug!(%me, %view, "drained: acknowledging the shard view");
                }
                Step::Grow { ring, members } => {
                    let share = ring.share(me);
                    tracing::info!(%me, members, share = format!("{:.3}", share), "working this replica's share of the keys");
                    self.gate.grow(ring);
                    self.metrics.shard_members.set(members as i64);
                    self.metrics.shard_share.set(share);
                    self.metrics.shard_handovers.inc();
                }
                Step::Reset => {
                    tracing::warn!(%me, "the shard lease lapsed: working no keys until this replica rejoins");
                    self.gate.reset();
                    self.metrics.shard_share.set(0.0);
                }
            }
        }
    }

    /// Creates or renews this member's Lease with the acknowledged view.
    async fn renew(&mut self) {
        let view = self.handover.acknowledged().unwrap_or_default().to_string();
        let mut lease = self.held.clone().unwrap_or_else(|| self.new_lease());
        lease
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(VIEW_ANNOTATION.into(), view);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(self.options.identity.clone());
        spec.renew_time = Some(wall_clock());
        spec.lease_duration_seconds = Some(self.duration_seconds());
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        let sent = Instant::now();
        let written = if self.held.is_some() {
            self.leases.replace(&self.lease_name, &params, &lease).await
        } else {
            self.leases.create(&params, &lease).await
        };
        match written {
            Ok(written) => {
                if self.held.is_some() && !self.leadership.is_leader() {
                    // The gate closed since the last renewal (the process
                    // was frozen, or the API server did not answer): peers
                    // may have taken this member's keys meanwhile. Work
                    // nothing before the gate opens again; the share is
                    // earned anew through the handover.
                    let steps = self.handover.step(false, &[], true, Instant::now());
                    self.apply(steps);
                }
                self.held = Some(written);
                self.leadership
                    .lead_until(sent + self.options.renew_deadline);
                self.next_renewal = sent + self.options.renew_interval();
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.code == 409 => {
                // Someone else wrote (or created) this member's Lease: read
                // it and write on its version.
                self.held = self.leases.get_opt(&self.lease_name).await.ok().flatten();
                self.next_renewal = Instant::now();
                self.failed_until = Instant::now() + self.options.retry_period();
            }
            Err(error) => {
                if matches!(&error, kube::Error::Api(status) if status.code == 404) {
                    // Deleted under us: create it again.
                    self.held = None;
                }
                tracing::debug!(error = %crate::ops::error_chain(&error), "failed to renew the shard lease");
                self.next_renewal = Instant::now() + self.options.retry_period();
                self.failed_until = self.next_renewal;
            }
        }
    }

    fn new_lease(&self) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(self.lease_name.clone()),
                namespace: Some(self.options.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    RING_LABEL.to_string(),
                    self.options.ring.clone(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                acquire_time: Some(wall_clock()),
                ..LeaseSpec::default()
            }),
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.options.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Works nothing and deletes this member's Lease, so peers take its
    /// share without waiting for it to expire.
    pub async fn leave(mut self) -> kube::Result<()> {
        self.gate.reset();
        self.leadership.stop();
        self.metrics.shard_share.set(0.0);
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: held.metadata.resource_version.clone(),
                uid: None,
            }),
            ..DeleteParams::default()
        };
        self.leases
            .delete(&self.lease_name, &params)
            .await
            .map(drop)
    }
}

fn view_of(lease: &Lease) -> Option<String> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(VIEW_ANNOTATION)
        .filter(|v| !v.is_empty())
        .cloned()
}

/// The handover's view of a peer's Lease.
fn record(lease: &Lease) -> PeerRecord {
    let LeaseRecord {
        resource_version,
        holder,
        duration,
    } = lease_record(lease);
    PeerRecord {
        lease: lease.metadata.name.clone().unwrap_or_default(),
        resource_version,
        identity: holder.map(Into::into),
        view: view_of(lease),
        duration,
    }
}
