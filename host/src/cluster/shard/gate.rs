//! The shard gate: which keys this replica may reconcile now.
//!
//! The membership loop ([`super::members`]) moves the working set; the
//! dispatcher asks [`ShardGate::works`] before it queues a key, and a worker
//! holds an [`InFlight`] from before the plugin call until the reconcile
//! ends, asking again before it applies. Shrinking takes effect at once for
//! new work; [`ShardGate::drained`] says when no reconcile of a key outside
//! the working set is still running, which is what the replica acknowledges.
//!
//! The gate also says which namespaces the informers cache
//! ([`ShardGate::caches`]): those the newest ring gives this replica, set at
//! the shrink, so the keys it is about to receive are listed before it may
//! work them. The informers follow [`ShardGate::cache_changes`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, watch};

use super::ring::{MemberId, Ring};

/// The keys a replica may reconcile: those every ring of the list gives it
/// (a shrink adds the new ring, a grow replaces the list), or none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Working(Option<Vec<Ring>>);

impl Working {
    /// No keys (a replica that has not joined, or lost its lease).
    pub fn nothing() -> Self {
        Self(None)
    }

    /// The keys `ring` gives `me`.
    pub fn of(ring: Ring) -> Self {
        Self(Some(vec![ring]))
    }

    /// Whether `me` may reconcile keys hashing to `hash`.
    pub fn works(&self, me: &str, hash: u64) -> bool {
        self.0
            .as_ref()
            .is_some_and(|rings| rings.iter().all(|ring| ring.owns(me, hash)))
    }

    fn intersect(&mut self, ring: Ring) {
        if let Some(rings) = &mut self.0
            && !rings.contains(&ring)
        {
            rings.push(ring);
        }
    }
}

/// The working set grew: keys `after` gives and `before` did not were not
/// queued while outside it, so the controller resyncs them from the cache.
#[derive(Clone, Debug)]
pub struct Grown {
    pub before: Working,
    pub after: Working,
}

/// Whether this replica reconciles a key now. Cheap to clone; without
/// sharding every key is worked.
#[derive(Clone, Debug, Default)]
pub struct ShardGate {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    me: MemberId,
    working: RwLock<Working>,
    /// Reconciles running, by key hash.
    in_flight: Mutex<HashMap<u64, usize>>,
    /// The ring whose share of namespaces the informers cache (`None`:
    /// none yet).
    cached: RwLock<Option<Ring>>,
    /// Bumped when `cached` changes; `relist` says whether the new share
    /// has namespaces the old one lacked (they must be listed).
    cache_changed: watch::Sender<u64>,
    relist: Mutex<bool>,
    /// Informers re-listing for the cached share (see [`Listing`]).
    listing: std::sync::atomic::AtomicUsize,
    grown: mpsc::UnboundedSender<Grown>,
}

impl ShardGate {
    /// Every key is worked (no sharding).
    pub fn unsharded() -> Self {
        Self::default()
    }

    /// The gate of member `me`, working nothing until it joins; the receiver
    /// gets each growth of the working set.
    pub fn member(me: MemberId) -> (Self, mpsc::UnboundedReceiver<Grown>) {
        let (grown, receiver) = mpsc::unbounded_channel();
        let inner = Inner {
            me,
            working: RwLock::new(Working::nothing()),
            in_flight: Mutex::default(),
            cached: RwLock::new(None),
            cache_changed: watch::channel(0).0,
            relist: Mutex::new(false),
            listing: std::sync::atomic::AtomicUsize::new(0),
            grown,
        };
        (
            Self {
                inner: Some(Arc::new(inner)),
            },
            receiver,
        )
    }

    /// Whether sharding is on.
    pub fn is_sharded(&self) -> bool {
        self.inner.is_some()
    }

    /// This member's identity (`None` without sharding).
    pub fn me(&self) -> Option<&str> {
        self.inner.as_deref().map(|inner| &*inner.me)
    }

    /// Whether this replica may reconcile keys hashing to `hash` now.
    pub fn works(&self, hash: u64) -> bool {
        match &self.inner {
            None => true,
            Some(inner) => read(&inner.working).works(&inner.me, hash),
        }
    }

    /// Whether the informers keep namespaced objects whose key hashes to
    /// `hash` (always, unsharded).
    pub fn caches(&self, hash: u64) -> bool {
        match &self.inner {
            None => true,
            Some(inner) => read(&inner.cached)
                .as_ref()
                .is_some_and(|ring| ring.owns(&inner.me, hash)),
        }
    }

    /// Changes of what [`caches`](Self::caches) keeps (`None` unsharded).
    pub fn cache_changes(&self) -> Option<watch::Receiver<u64>> {
        self.inner
            .as_ref()
            .map(|inner| inner.cache_changed.subscribe())
    }

    /// Whether a change since the last call added namespaces to the cached
    /// share (the informers list again) or only removed some (they evict).
    pub fn take_relist(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| std::mem::take(&mut *lock(&inner.relist)))
    }

    /// Starts a reconcile of a key hashing to `hash` if this replica works
    /// it; the reconcile counts as running until the guard drops.
    pub fn begin(&self, hash: u64) -> Option<InFlight> {
        let Some(inner) = &self.inner else {
            return Some(InFlight(None));
        };
        // Counted under the read lock, so a shrink (the write lock) either
        // comes first and refuses this key, or sees it running.
        let working = read(&inner.working);
        if !working.works(&inner.me, hash) {
            return None;
        }
        *lock(&inner.in_flight).entry(hash).or_default() += 1;
        Some(InFlight(Some((inner.clone(), hash))))
    }

    /// The working set now.
    pub fn working(&self) -> Working {
        match &self.inner {
            None => Working::nothing(),
            Some(inner) => read(&inner.working).clone(),
        }
    }

    /// Stops working keys `ring` does not give this replica (new work at
    /// once; running reconciles finish, see [`drained`](Self::drained)).
    pub(super) fn shrink(&self, ring: Ring) {
        if let Some(inner) = &self.inner {
            write(&inner.working).intersect(ring.clone());
            let mut cached = write(&inner.cached);
            if cached.as_ref() != Some(&ring) {
                // A share grows only when a member left (consistent hashing).
                let grows = cached
                    .as_ref()
                    .is_none_or(|old| old.members().any(|m| !ring.has_member(m)));
                *cached = Some(ring);
                drop(cached);
                *lock(&inner.relist) |= grows;
                inner
                    .cache_changed
                    .send_modify(|generation| *generation += 1);
            }
        }
    }

    /// Works exactly the keys `ring` gives this replica.
    pub(super) fn grow(&self, ring: Ring) {
        if let Some(inner) = &self.inner {
            let after = Working::of(ring);
            let before = std::mem::replace(&mut *write(&inner.working), after.clone());
            if before != after {
                let _ = inner.grown.send(Grown { before, after });
            }
        }
    }

    /// Works nothing (the member lease was lost, or the replica leaves).
    pub(super) fn reset(&self) {
        if let Some(inner) = &self.inner {
            *write(&inner.working) = Working::nothing();
        }
    }

    /// An informer starts re-listing for the cached share: until the
    /// guard drops, this member does not acknowledge a view, so the keys it
    /// is about to receive are in its cache before anyone hands them over.
    pub fn listing(&self) -> Option<Listing> {
        let inner = self.inner.as_ref()?;
        inner
            .listing
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Some(Listing(inner.clone()))
    }

    /// Whether no reconcile of a key outside the working set is running
    /// and no informer is re-listing for the cached share.
    pub(super) fn drained(&self) -> bool {
        let Some(inner) = &self.inner else {
            return true;
        };
        if inner.listing.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return false;
        }
        let working = read(&inner.working);
        lock(&inner.in_flight)
            .keys()
            .all(|&hash| working.works(&inner.me, hash))
    }
}

/// An informer's re-list for the cached share, counted until dropped (at
/// the list's end, or when the informer stops).
#[derive(Debug)]
pub struct Listing(Arc<Inner>);

impl Drop for Listing {
    fn drop(&mut self) {
        self.0
            .listing
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A running reconcile, counted by the gate until dropped.
#[derive(Debug)]
pub struct InFlight(Option<(Arc<Inner>, u64)>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((inner, hash)) = self.0.take() {
            let mut running = lock(&inner.in_flight);
            if let Some(count) = running.get_mut(&hash) {
                *count -= 1;
                if *count == 0 {
                    running.remove(&hash);
                }
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::super::ring::shard_hash;
    use super::*;

    fn ring(members: &[&str]) -> Ring {
        let ids: Vec<MemberId> = members.iter().map(|m| MemberId::from(*m)).collect();
        Ring::new(&ids)
    }

    /// A namespace `ring` gives `member`.
    fn key_of(ring: &Ring, member: &str) -> u64 {
        (0..)
            .map(|i| shard_hash(&format!("ns-{i}")))
            .find(|&h| ring.owns(member, h))
            .unwrap()
    }

    #[test]
    fn without_sharding_every_key_is_worked() {
        let gate = ShardGate::unsharded();
        assert!(gate.works(1) && gate.begin(1).is_some() && gate.drained());
    }

    #[test]
    fn a_new_member_works_nothing_until_it_grows() {
        let (gate, mut grown) = ShardGate::member("a".into());
        let ab = ring(&["a", "b"]);
        let mine = key_of(&ab, "a");
        assert!(!gate.works(mine) && gate.begin(mine).is_none());
        gate.shrink(ab.clone());
        assert!(!gate.works(mine), "a shrink never adds keys");
        gate.grow(ab.clone());
        assert!(gate.works(mine) && !gate.works(key_of(&ab, "b")));
        let event = grown.try_recv().unwrap();
        assert_eq!(event.before, Working::nothing());
        assert_eq!(event.after, Working::of(ab));
    }

    #[test]
    fn a_shrink_is_drained_only_when_running_reconciles_outside_end() {
        let (gate, _grown) = ShardGate::member("a".into());
        let (a, ab) = (ring(&["a"]), ring(&["a", "b"]));
        gate.grow(a);
        let moving = key_of(&ab, "b");
        let staying = key_of(&ab, "a");
        let running_moving = gate.begin(moving).unwrap();
        let _running_staying = gate.begin(staying).unwrap();
        gate.shrink(ab.clone());
        // New work of the moved key is refused at once...
        assert!(gate.begin(moving).is_none() && !gate.works(moving));
        assert!(gate.works(staying));
        // ...and the shrink is drained when the running one ends.
        assert!(!gate.drained());
        drop(running_moving);
        assert!(gate.drained());
    }

    #[test]
    fn the_cached_share_follows_the_newest_ring_and_a_relist_holds_the_drain() {
        let (gate, _grown) = ShardGate::member("a".into());
        let mut changes = gate.cache_changes().unwrap();
        let (a, ab) = (ring(&["a"]), ring(&["a", "b"]));
        let theirs = key_of(&ab, "b");
        assert!(
            !gate.caches(theirs),
            "nothing is cached before the first ring"
        );
        gate.shrink(a.clone());
        assert!(gate.caches(theirs) && changes.has_changed().unwrap());
        assert!(gate.take_relist(), "a first share is listed");
        changes.mark_unchanged();
        // b joins: a's share only shrinks, so its informers evict.
        gate.shrink(ab.clone());
        assert!(!gate.caches(theirs) && changes.has_changed().unwrap());
        assert!(!gate.take_relist());
        // b leaves again: a's share grows, so its informers list it, and
        // the member does not acknowledge until they have.
        gate.shrink(a);
        assert!(gate.take_relist());
        let listing = gate.listing().unwrap();
        assert!(!gate.drained());
        drop(listing);
        assert!(gate.drained());
        assert!(ShardGate::unsharded().listing().is_none());
    }

    #[test]
    fn shrinks_intersect_until_a_grow_replaces_them() {
        let (gate, _grown) = ShardGate::member("a".into());
        let (ab, ac) = (ring(&["a", "b"]), ring(&["a", "c"]));
        gate.grow(ring(&["a"]));
        gate.shrink(ab.clone());
        gate.shrink(ac.clone());
        let only_ab = (0..)
            .map(|i| shard_hash(&format!("ns-{i}")))
            .find(|&h| ab.owns("a", h) && !ac.owns("a", h))
            .unwrap();
        assert!(!gate.works(only_ab));
        gate.grow(ab);
        assert!(gate.works(only_ab));
        gate.reset();
        assert!(!gate.works(only_ab));
    }
}
