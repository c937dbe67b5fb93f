//! The work queue between the informers and the plugins.
//!
//! Events are added under a key (for the controller: plugin, kind, namespace
//! and name) with a payload (the event type and the newest object), and
//! workers take them with [`WorkQueue::next`]. The queue holds the rules:
//!
//! - **Coalescing, last write wins**: adding a payload for a key that is
//!   waiting replaces the waiting payload. Reconcile is level-triggered, so the
//!   newest state is all a plugin needs; a `deleted` after an `applied` (or an
//!   `applied` after a `deleted`, when a name is reused) simply replaces it.
//! - **One in flight per key**: a key added while a worker holds it waits
//!   until the worker reports, then runs once with the newest payload.
//! - **Fair across groups**: ready keys are handed out round-robin across
//!   groups ([`QueueKey::group`], the plugin), one key per group per turn, so
//!   a plugin with a thousand waiting keys cannot starve one with a single key.
//! - **Backoff**: each [`Outcome::Failure`] retries the key after a per-key
//!   exponential [`Backoff`]; success resets it. New events during a backoff
//!   replace the payload but run only when the backoff expires.
//! - **Requeue**: [`Outcome::Success`] with `requeue_after` runs the key again
//!   after the delay with its last payload. Any run that happens first (a new
//!   event) satisfies the request; the plugin asks again if it still needs to.
//!
//! The queue has no concurrency limit of its own: at most as many keys are in
//! flight as there are tasks calling `next` (the controller spawns
//! `--concurrency` workers). There is no background task either: the workers
//! waiting in `next` also wait for the earliest delayed key.

mod backoff;
mod fair;

pub use backoff::Backoff;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

use self::fair::Fair;

/// A queue key: identifies one unit of work and the group it is fair within.
pub trait QueueKey: Clone + Eq + Hash + fmt::Debug {
    type Group: Clone + Eq + Hash + fmt::Debug;

    /// The group the key belongs to (the controller uses the plugin name).
    fn group(&self) -> &Self::Group;
}

/// What a worker reports for an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Resets the key's backoff; `requeue_after` asks for another run.
    Success { requeue_after: Option<Duration> },
    /// Retries the key after its next backoff delay.
    Failure,
    /// The key was not run (its plugin is not ready for it yet): the same
    /// payload, or a newer one, runs after `after`; the backoff is untouched.
    Postponed { after: Duration },
}

/// A cheaply clonable handle to one queue; all clones share it.
///
/// ```
/// use std::time::Duration;
/// use kubewasm::queue::{Outcome, QueueKey, WorkQueue};
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// struct Key {
///     plugin: String,
///     name: String,
/// }
///
/// impl QueueKey for Key {
///     type Group = String;
///     fn group(&self) -> &String {
///         &self.plugin
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let queue = WorkQueue::<Key, &str>::default();
/// // Four workers: at most four keys in flight.
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let queue = queue.clone();
///         tokio::spawn(async move {
///             while let Some(item) = queue.next().await {
///                 println!("{:?}: {} after {:?}", item.key(), item.payload, item.waited);
///                 let requeue_after = Some(Duration::from_secs(30));
///                 item.done(Outcome::Success { requeue_after });
///             }
///         })
///     })
///     .collect();
///
/// let key = Key { plugin: "labeler".into(), name: "default/web".into() };
/// queue.add(key.clone(), "applied");
/// queue.add(key, "deleted"); // coalesced: one call, with "deleted"
/// tokio::task::yield_now().await;
///
/// queue.shutdown(); // on SIGTERM; then wait for the workers
/// for worker in workers {
///     worker.await.expect("worker panicked");
/// }
/// # }
/// ```
pub struct WorkQueue<K: QueueKey, V> {
    inner: Arc<Inner<K, V>>,
}

/// One unit of work handed to a worker. Report it with [`Item::done`];
/// dropping it unreported (a panicking worker) counts as a failure.
pub struct Item<K: QueueKey, V> {
    /// The newest payload added for the key.
    pub payload: V,
    /// How long the key was ready to run before a worker took it (queue
    /// latency; time spent in a delay or backoff does not count).
    pub waited: Duration,
    /// Consecutive failures of the key before this run (0 on a first try).
    pub failures: u32,
    lease: Lease<K, V>,
}

/// The right to report the outcome of one key; see [`Item::into_parts`].
#[must_use = "dropping a lease reports the item as failed"]
pub struct Lease<K: QueueKey, V> {
    key: K,
    queue: Option<Arc<Inner<K, V>>>,
}

struct Inner<K: QueueKey, V> {
    state: Mutex<State<K, V>>,
    /// Wakes workers waiting in `next`: one per newly ready or earlier
    /// delayed key, all on shutdown.
    notify: Notify,
    backoff: Backoff,
    /// Turns the payload of a run that asked for a requeue into the payload
    /// of the requeued run.
    requeued: fn(V) -> V,
    /// Becomes true on shutdown (for [`WorkQueue::closed`]).
    closed: tokio::sync::watch::Sender<bool>,
}

struct State<K: QueueKey, V> {
    entries: HashMap<K, Entry<V>>,
    ready: Fair<K>,
    /// Keys waiting for a delay or a backoff, by the time they become ready.
    timers: BTreeMap<Instant, Vec<K>>,
    shutdown: bool,
}

/// A key that is waiting, scheduled or in flight; forgotten once it
/// succeeds with nothing new waiting.
struct Entry<V> {
    /// The newest payload not yet handed to a worker.
    pending: Option<V>,
    /// When `pending` may run at the earliest, backoff aside.
    due: Instant,
    failures: u32,
    /// No run before this; new events do not move it.
    backoff_until: Option<Instant>,
    slot: Slot<V>,
}

enum Slot<V> {
    /// Not placed yet (only inside one operation).
    Idle,
    Ready {
        since: Instant,
    },
    Timer(Instant),
    /// Held by a worker; `payload` is kept for a retry or a requeue, and
    /// `forget` drops the outcome of a key removed meanwhile.
    Running {
        payload: V,
        forget: bool,
    },
}

impl<K: QueueKey, V: Clone> WorkQueue<K, V> {
    pub fn new(backoff: Backoff) -> Self {
        Self::with_requeue(backoff, std::convert::identity)
    }

    /// Like [`new`](Self::new), with `requeued` turning the payload of a run
    /// that asked for a requeue into the payload the requeued run gets (a
    /// requeue is not the event that caused the first run).
    pub fn with_requeue(backoff: Backoff, requeued: fn(V) -> V) -> Self {
        let state = State {
            entries: HashMap::new(),
            ready: Fair::default(),
            timers: BTreeMap::new(),
            shutdown: false,
        };
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                notify: Notify::new(),
                backoff,
                requeued,
                closed: tokio::sync::watch::Sender::new(false),
            }),
        }
    }

    /// Adds an event for `key`, replacing any payload still waiting for it.
    /// Ignored after [`shutdown`](Self::shutdown).
    pub fn add(&self, key: K, payload: V) {
        self.add_at(key, payload, Instant::now());
    }

    /// Like [`add`](Self::add), but the key runs no earlier than `delay` from
    /// now. If the key is already due sooner, the sooner time is kept.
    pub fn add_after(&self, key: K, payload: V, delay: Duration) {
        self.add_at(key, payload, later(Instant::now(), delay));
    }

    fn add_at(&self, key: K, payload: V, at: Instant) {
        let mut state = self.inner.lock();
        if state.shutdown {
            return;
        }
        let entry = state
            .entries
            .entry(key.clone())
            .or_insert_with(|| Entry::new(at));
        entry.due = match entry.pending.replace(payload) {
            Some(_) => entry.due.min(at),
            None => at,
        };
        state.place(&key, Instant::now());
        drop(state);
        self.inner.notify.notify_one();
    }

    /// Takes the next ready key, waiting for one if needed; `None` once the
    /// queue is shut down. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&self) -> Option<Item<K, V>> {
        loop {
            // Registered before looking, so a wake-up in between is not lost.
            let mut notified = pin!(self.inner.notify.notified());
            notified.as_mut().enable();
            let wake_at = {
                let mut state = self.inner.lock();
                if state.shutdown {
                    return None;
                }
                if let Some((key, payload, waited, failures)) = state.take(Instant::now()) {
                    if !state.ready.is_empty() {
                        self.inner.notify.notify_one();
                    }
                    let queue = Some(Arc::clone(&self.inner));
                    let lease = Lease { key, queue };
                    return Some(Item {
                        payload,
                        waited,
                        failures,
                        lease,
                    });
                }
                state.timers.first_key_value().map(|(at, _)| *at)
            };
            match wake_at {
                Some(at) => _ = timeout_at(at, notified).await,
                None => notified.await,
            }
        }
    }

    /// Drops whatever is waiting or scheduled for `key`, with its backoff. If
    /// the key is in flight, it finishes and its outcome is ignored.
    pub fn remove(&self, key: &K) {
        self.inner.lock().remove(key);
    }

    /// [`remove`](Self::remove) for every key of `group` (a plugin unloaded).
    pub fn remove_group(&self, group: &K::Group) {
        let mut state = self.inner.lock();
        state.ready.remove_group(group);
        for keys in state.timers.values_mut() {
            keys.retain(|k| k.group() != group);
        }
        state.timers.retain(|_, keys| !keys.is_empty());
        state
            .entries
            .retain(|key, entry| key.group() != group || entry.forget());
    }

    /// Keys with a payload not yet handed out: ready, delayed, backing off,
    /// or added again while in flight (the queue-depth metric).
    pub fn len(&self) -> usize {
        let state = self.inner.lock();
        state
            .entries
            .values()
            .filter(|e| e.pending.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`len`](Self::len) by group (per plugin, for the metric).
    pub fn len_by_group(&self) -> HashMap<K::Group, usize>
    where
        K::Group: Clone + Eq + std::hash::Hash,
    {
        let state = self.inner.lock();
        let mut depth = HashMap::new();
        for (key, entry) in &state.entries {
            if entry.pending.is_some() {
                *depth.entry(key.group().clone()).or_insert(0) += 1;
            }
        }
        depth
    }

    /// Keys held by workers.
    pub fn in_flight(&self) -> usize {
        let state = self.inner.lock();
        let running = |e: &&Entry<V>| matches!(e.slot, Slot::Running { .. });
        state.entries.values().filter(running).count()
    }

    /// Stops handing out work: every `next` caller, waiting or future, gets
    /// `None` at once, and later adds are ignored. Waiting keys are not
    /// drained: reconcile is level-triggered and the next start lists every
    /// object again. Items already handed out may still be reported; the
    /// caller waits for its workers to return (with a deadline).
    pub fn shutdown(&self) {
        self.inner.lock().shutdown = true;
        self.inner.notify.notify_waiters();
        self.inner.closed.send_replace(true);
    }

    /// Resolves once the queue is shut down.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }

    pub fn is_shutdown(&self) -> bool {
        self.inner.lock().shutdown
    }
}

impl<K: QueueKey, V: Clone> Default for WorkQueue<K, V> {
    fn default() -> Self {
        Self::new(Backoff::default())
    }
}

impl<K: QueueKey, V> Clone for WorkQueue<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: QueueKey, V> Item<K, V> {
    pub fn key(&self) -> &K {
        &self.lease.key
    }

    /// Reports the outcome; see [`Outcome`].
    pub fn done(self, outcome: Outcome) {
        self.lease.done(outcome);
    }

    /// Splits the payload from the lease, to move the payload elsewhere.
    pub fn into_parts(self) -> (V, Lease<K, V>) {
        (self.payload, self.lease)
    }
}

impl<K: QueueKey, V: fmt::Debug> fmt::Debug for Item<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", self.key())
            .field("payload", &self.payload)
            .field("waited", &self.waited)
            .field("failures", &self.failures)
            .finish()
    }
}

impl<K: QueueKey, V> Lease<K, V> {
    pub fn key(&self) -> &K {
        &self.key
    }

    pub fn done(mut self, outcome: Outcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(inner) = self.queue.take() {
            inner.finish(&self.key, outcome);
        }
    }
}

impl<K: QueueKey, V> Drop for Lease<K, V> {
    fn drop(&mut self) {
        if self.queue.is_some() {
            tracing::warn!(key = ?self.key, "work item dropped without an outcome; retrying it as failed");
            self.finish(Outcome::Failure);
        }
    }
}

impl<K: QueueKey, V> Inner<K, V> {
    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        // Nothing panics while holding the lock; a poisoned state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish(&self, key: &K, outcome: Outcome) {
        let mut state = self.lock();
        let now = Instant::now();
        let Some(entry) = state.entries.get_mut(key) else {
            return;
        };
        let (payload, forget) = match std::mem::replace(&mut entry.slot, Slot::Idle) {
            Slot::Running { payload, forget } => (payload, forget),
            other => {
                entry.slot = other;
                return;
            }
        };
        match outcome {
            _ if forget => {}
            Outcome::Success { requeue_after } => {
                entry.failures = 0;
                entry.backoff_until = None;
                if let Some(after) = requeue_after {
                    entry.retry((self.requeued)(payload), later(now, after));
                }
            }
            Outcome::Failure => {
                entry.failures = entry.failures.saturating_add(1);
                let delay = self.backoff.delay(entry.failures);
                entry.backoff_until = Some(later(now, delay));
                entry.retry(payload, now);
                tracing::debug!(?key, failures = entry.failures, ?delay, "backing off");
            }
            Outcome::Postponed { after } => entry.retry(payload, later(now, after)),
        }
        if entry.pending.is_none() {
            state.drop_entry(key);
            return;
        }
        state.place(key, now);
        drop(state);
        self.notify.notify_one();
    }
}

impl<K: QueueKey, V> State<K, V> {
    /// Puts a key that has a pending payload and is not running where it
    /// belongs: ready, or on a timer for `max(due, backoff_until)`.
    fn place(&mut self, key: &K, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let wake = entry.backoff_until.map_or(entry.due, |b| b.max(entry.due));
        match entry.slot {
            Slot::Ready { .. } | Slot::Running { .. } => return,
            Slot::Timer(at) if at == wake => return,
            Slot::Timer(at) => unschedule(&mut self.timers, at, key),
            Slot::Idle => {}
        }
        if wake <= now {
            entry.slot = Slot::Ready { since: now };
            self.ready.push(key.clone());
        } else {
            entry.slot = Slot::Timer(wake);
            self.timers.entry(wake).or_default().push(key.clone());
        }
    }

    fn remove(&mut self, key: &K) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        match entry.slot {
            Slot::Ready { .. } => self.ready.remove(key),
            Slot::Timer(at) => unschedule(&mut self.timers, at, key),
            Slot::Idle | Slot::Running { .. } => {}
        }
        if !entry.forget() {
            self.drop_entry(key);
        }
    }

    /// Forgets `key`'s entry. A map a burst grew keeps its buckets (a few
    /// hundred bytes a key) after the burst drains; once it is a quarter
    /// full it is shrunk, so it holds what is queued, not what once was.
    fn drop_entry(&mut self, key: &K) {
        self.entries.remove(key);
        let (len, capacity) = (self.entries.len(), self.entries.capacity());
        if capacity > SHRINK_ABOVE && len < capacity / 4 {
            self.entries.shrink_to(len * 2);
        }
    }
}

/// Entries the map keeps room for without shrinking.
const SHRINK_ABOVE: usize = 1024;

impl<K: QueueKey, V: Clone> State<K, V> {
    /// Moves due timers to ready, then hands out the next ready key.
    fn take(&mut self, now: Instant) -> Option<(K, V, Duration, u32)> {
        while let Some(first) = self.timers.first_entry() {
            if *first.key() > now {
                break;
            }
            let (at, keys) = first.remove_entry();
            for key in keys {
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.slot = Slot::Ready { since: at };
                    self.ready.push(key);
                }
            }
        }
        while let Some(key) = self.ready.pop() {
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            let (Slot::Ready { since }, Some(payload)) = (&entry.slot, entry.pending.take()) else {
                continue;
            };
            let waited = now.saturating_duration_since(*since);
            let forget = false;
            entry.slot = Slot::Running {
                payload: payload.clone(),
                forget,
            };
            return Some((key, payload, waited, entry.failures));
        }
        None
    }
}

impl<V> Entry<V> {
    fn new(due: Instant) -> Self {
        Self {
            pending: None,
            due,
            failures: 0,
            backoff_until: None,
            slot: Slot::Idle,
        }
    }

    /// Runs `payload` again at `at`, unless a newer payload is waiting (then
    /// that one runs, at the sooner of the two times).
    fn retry(&mut self, payload: V, at: Instant) {
        match self.pending {
            Some(_) => self.due = self.due.min(at),
            None => (self.pending, self.due) = (Some(payload), at),
        }
    }

    /// Drops the pending payload and the backoff; returns whether the entry
    /// must stay because a worker holds it (its outcome is then ignored).
    fn forget(&mut self) -> bool {
        self.pending = None;
        self.failures = 0;
        self.backoff_until = None;
        match &mut self.slot {
            Slot::Running { forget, .. } => {
                *forget = true;
                true
            }
            _ => false,
        }
    }
}

/// `now + delay`, with delays capped at a year so a huge requeue from a
/// plugin cannot overflow the clock.
fn later(now: Instant, delay: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now + delay.min(YEAR)
}

fn unschedule<K: PartialEq>(timers: &mut BTreeMap<Instant, Vec<K>>, at: Instant, key: &K) {
    if let Some(keys) = timers.get_mut(&at) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            timers.remove(&at);
        }
    }
}

#[cfg(test)]
mod tests;
