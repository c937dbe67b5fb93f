//! What a member does when the live set changes, with no clock and no
//! client (the caller passes times and what it read): drain-then-acknowledge.
//!
//! On a new live set `L` with view `V` (a digest of `L`) and ring `R`:
//! 1. **shrink** at once: work only keys both the old working set and `R`
//!    give this member;
//! 2. **acknowledge** `V` (written into the member's Lease) once no
//!    reconcile of a key outside the working set is running;
//! 3. **grow** to all of `R`'s keys once every member of `L` shows `V`.
//!
//! A key moves from member O to member N only after N saw O acknowledge a
//! view that does not give it to O, and O acknowledges only after draining
//! it; so no key is reconciled by two members at once. A member whose own
//! Lease lapses (its gate closes at the renew deadline, before anyone may
//! count it dead) works nothing and earns its share again from scratch.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::ring::{MemberId, Ring};
use crate::cluster::leader::LONGEST_LEASE;

/// The longest member identity counted: a pod name (253) is the longest a
/// kubewasm replica writes. A Lease naming a longer one is not a member, so
/// a hostile Lease cannot make every member hash megabytes per ring.
const MAX_IDENTITY_BYTES: usize = 253 + 9;

/// The digest of a live set members acknowledge: 16 hex digits of the
/// SHA-256 of the sorted identities, one per line.
pub fn view(live: &BTreeSet<MemberId>) -> String {
    let mut hasher = Sha256::new();
    for member in live {
        hasher.update(member.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(&hasher.finalize()[..8])
}

/// A peer's Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRecord {
    /// The Lease's name.
    pub lease: String,
    pub resource_version: String,
    /// `spec.holderIdentity`, `None` when empty.
    pub identity: Option<MemberId>,
    /// The view it acknowledged last.
    pub view: Option<String>,
    /// `spec.leaseDurationSeconds`.
    pub duration: Option<Duration>,
}

#[derive(Clone, Debug)]
struct Seen {
    record: PeerRecord,
    /// When this member first read this version of the record.
    since: Instant,
}

/// The peers' Leases as this member saw them, each version timed by its
/// own monotonic clock (never by the times peers write).
#[derive(Debug, Default)]
pub struct Peers {
    seen: HashMap<String, Seen>,
}

impl Peers {
    /// Takes a complete list of the ring's Leases (other than this
    /// member's), read at `now`; Leases gone from it are forgotten.
    pub fn observe(&mut self, records: Vec<PeerRecord>, now: Instant) {
        let mut seen = HashMap::with_capacity(records.len());
        for record in records {
            let since = match self.seen.remove(&record.lease) {
                Some(old) if old.record.resource_version == record.resource_version => old.since,
                _ => now,
            };
            seen.insert(record.lease.clone(), Seen { record, since });
        }
        self.seen = seen;
    }

    /// Peers alive at `now`: holding their Lease, which changed within a
    /// lease duration (`ours`, or the longer one the peer declares).
    pub fn live(&self, now: Instant, ours: Duration) -> impl Iterator<Item = &PeerRecord> {
        self.seen.values().filter_map(move |seen| {
            let valid = seen
                .record
                .duration
                .unwrap_or_default()
                .min(LONGEST_LEASE)
                .max(ours);
            let member = seen
                .record
                .identity
                .as_ref()
                .is_some_and(|id| id.len() <= MAX_IDENTITY_BYTES);
            (member && now < seen.since + valid).then_some(&seen.record)
        })
    }

    /// Leases unchanged for longer than `limit`: left by members that died,
    /// deleted (with their resourceVersion as precondition) to keep the
    /// list short.
    pub fn stale(&self, now: Instant, limit: Duration) -> Vec<(String, String)> {
        self.seen
            .values()
            .filter(|seen| now >= seen.since + limit)
            .map(|seen| {
                (
                    seen.record.lease.clone(),
                    seen.record.resource_version.clone(),
                )
            })
            .collect()
    }
}

/// What the member does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Stop working keys this ring does not give the member.
    Shrink(Ring),
    /// Write this view into the member's Lease.
    Acknowledge(String),
    /// Work every key this ring gives the member.
    Grow { ring: Ring, members: usize },
    /// Work nothing: the member's own Lease lapsed.
    Reset,
}

/// The member's progress through a handover.
#[derive(Debug)]
pub struct Handover {
    me: MemberId,
    /// How long a drain may take before the member acknowledges anyway (a
    /// reconcile stuck beyond its call and request timeouts).
    drain_limit: Duration,
    /// The view shrunk to, and when.
    target: Option<(String, Instant)>,
    acknowledged: Option<String>,
    grown: Option<String>,
}

impl Handover {
    pub fn new(me: MemberId, drain_limit: Duration) -> Self {
        Self {
            me,
            drain_limit,
            target: None,
            acknowledged: None,
            grown: None,
        }
    }

    /// The view this member acknowledged (what its Lease should say).
    pub fn acknowledged(&self) -> Option<&str> {
        self.acknowledged.as_deref()
    }

    /// Whether a shrink is waiting for running reconciles to end.
    pub fn draining(&self) -> bool {
        matches!((&self.target, &self.acknowledged), (Some((v, _)), a) if a.as_ref() != Some(v))
    }

    /// Decides at `now`: `holding` is whether the member's own Lease is
    /// fresh (its gate open), `peers` the live peers, `drained` whether no
    /// reconcile outside the working set runs.
    pub fn step(
        &mut self,
        holding: bool,
        peers: &[&PeerRecord],
        drained: bool,
        now: Instant,
    ) -> Vec<Step> {
        if !holding {
            let was_member = self.target.is_some() || self.grown.is_some();
            self.target = None;
            self.acknowledged = None;
            self.grown = None;
            return if was_member {
                vec![Step::Reset]
            } else {
                vec![]
            };
        }
        let mut live: BTreeSet<MemberId> =
            peers.iter().filter_map(|p| p.identity.clone()).collect();
        live.insert(self.me.clone());
        let view = view(&live);
        let ring = Ring::new(&live);
        let mut steps = Vec::new();
        if self.target.as_ref().is_none_or(|(v, _)| *v != view) {
            steps.push(Step::Shrink(ring.clone()));
            self.target = Some((view.clone(), now));
        }
        if self.acknowledged.as_ref() != Some(&view) {
            let since = self.target.as_ref().map_or(now, |(_, at)| *at);
            if !drained && now < since + self.drain_limit {
                return steps;
            }
            if !drained {
                tracing::warn!(
                    drain_limit = ?self.drain_limit,
                    "reconciles of keys moving to another replica still run after the drain limit; acknowledging anyway"
                );
            }
            self.acknowledged = Some(view.clone());
            steps.push(Step::Acknowledge(view.clone()));
        }
        let unanimous = peers.iter().all(|p| p.view.as_ref() == Some(&view));
        if unanimous && self.grown.as_ref() != Some(&view) {
            self.grown = Some(view);
            steps.push(Step::Grow {
                ring,
                members: live.len(),
            });
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(lease: &str, rv: &str, id: &str, view: Option<&str>) -> PeerRecord {
        PeerRecord {
            lease: lease.into(),
            resource_version: rv.into(),
            identity: Some(id.into()),
            view: view.map(Into::into),
            duration: Some(Duration::from_secs(6)),
        }
    }

    fn ids(names: &[&str]) -> BTreeSet<MemberId> {
        names.iter().map(|n| MemberId::from(*n)).collect()
    }

    const DRAIN: Duration = Duration::from_secs(30);

    #[test]
    fn a_lone_member_shrinks_acknowledges_and_grows_at_once() {
        let mut handover = Handover::new("a".into(), DRAIN);
        let steps = handover.step(true, &[], true, Instant::now());
        let ring = Ring::new(&ids(&["a"]));
        assert_eq!(
            steps,
            vec![
                Step::Shrink(ring.clone()),
                Step::Acknowledge(view(&ids(&["a"]))),
                Step::Grow { ring, members: 1 }
            ]
        );
        assert!(handover.step(true, &[], true, Instant::now()).is_empty());
    }

    #[test]
    fn a_member_acknowledges_only_when_drained_and_grows_only_on_unanimity() {
        let t0 = Instant::now();
        let mut a = Handover::new("a".into(), DRAIN);
        a.step(true, &[], true, t0);
        // b joins: a shrinks, but a reconcile of a moving key still runs.
        let ab = view(&ids(&["a", "b"]));
        let b_new = peer("ring-b", "1", "b", None);
        let steps = a.step(true, &[&b_new], false, t0);
        assert_eq!(steps, vec![Step::Shrink(Ring::new(&ids(&["a", "b"])))]);
        assert!(a.draining());
        assert!(
            a.step(true, &[&b_new], false, t0 + Duration::from_secs(1))
                .is_empty()
        );
        // Drained: acknowledged, but b has not acknowledged yet.
        assert_eq!(
            a.step(true, &[&b_new], true, t0 + Duration::from_secs(2)),
            vec![Step::Acknowledge(ab.clone())]
        );
        assert_eq!(a.acknowledged(), Some(ab.as_str()));
        // b acknowledges: a grows (to the two-member ring).
        let b_acked = peer("ring-b", "2", "b", Some(&ab));
        assert_eq!(
            a.step(true, &[&b_acked], true, t0 + Duration::from_secs(3)),
            vec![Step::Grow {
                ring: Ring::new(&ids(&["a", "b"])),
                members: 2
            }]
        );
    }

    #[test]
    fn a_stuck_drain_is_acknowledged_after_the_limit() {
        let t0 = Instant::now();
        let mut a = Handover::new("a".into(), DRAIN);
        let b = peer("ring-b", "1", "b", None);
        assert_eq!(a.step(true, &[&b], false, t0).len(), 1);
        assert!(
            a.step(true, &[&b], false, t0 + DRAIN - Duration::from_millis(1))
                .is_empty()
        );
        assert!(matches!(
            a.step(true, &[&b], false, t0 + DRAIN).as_slice(),
            [Step::Acknowledge(_)]
        ));
    }

    #[test]
    fn a_lapsed_lease_resets_and_the_member_earns_its_share_again() {
        let t0 = Instant::now();
        let mut a = Handover::new("a".into(), DRAIN);
        a.step(true, &[], true, t0);
        assert_eq!(a.step(false, &[], true, t0), vec![Step::Reset]);
        assert!(a.step(false, &[], true, t0).is_empty());
        assert_eq!(a.acknowledged(), None);
        // Back: the same view, but shrink, acknowledge and grow again.
        assert_eq!(a.step(true, &[], true, t0).len(), 3);
    }

    #[test]
    fn peers_are_live_until_their_record_stands_still_for_a_lease_duration() {
        let t0 = Instant::now();
        let lease = Duration::from_secs(6);
        let mut peers = Peers::default();
        peers.observe(vec![peer("ring-b", "1", "b", None)], t0);
        assert_eq!(peers.live(t0 + Duration::from_secs(5), lease).count(), 1);
        // The same version read again does not restart the clock.
        peers.observe(
            vec![peer("ring-b", "1", "b", None)],
            t0 + Duration::from_secs(5),
        );
        assert_eq!(peers.live(t0 + lease, lease).count(), 0);
        // A renewal does.
        peers.observe(vec![peer("ring-b", "2", "b", None)], t0 + lease);
        assert_eq!(peers.live(t0 + Duration::from_secs(11), lease).count(), 1);
        assert!(
            peers
                .stale(t0 + Duration::from_secs(11), lease * 10)
                .is_empty()
        );
        assert_eq!(
            peers.stale(t0 + lease * 11, lease * 10),
            vec![("ring-b".to_string(), "2".to_string())]
        );
        // A deleted Lease is gone at once; a released one is not live.
        let mut released = peer("ring-c", "1", "c", None);
        released.identity = None;
        peers.observe(vec![released], t0 + lease * 11);
        assert_eq!(peers.live(t0 + lease * 11, lease).count(), 0);
        // A Lease naming an identity no replica writes is no member.
        let hostile = peer("ring-x", "1", &"x".repeat(1 << 20), None);
        peers.observe(vec![hostile], t0);
        assert_eq!(peers.live(t0, lease).count(), 0);
    }

    #[test]
    fn views_name_the_set_not_its_order() {
        assert_eq!(view(&ids(&["b", "a"])), view(&ids(&["a", "b"])));
        assert_ne!(view(&ids(&["a"])), view(&ids(&["a", "b"])));
        assert_eq!(view(&ids(&["a"])).len(), 16);
    }
}
