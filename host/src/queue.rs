//! The work queue between the informers and the plugins (DESIGN §3).
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

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
}

/// Per-key exponential backoff: `base * factor^(failures - 1)`, at most `max`.
///
/// Integer arithmetic rather than `backon`'s `ExponentialBuilder`, whose f32
/// factor yields delays like 400.000006 ms and whose iterator would be one
/// more piece of state per key; no jitter, like client-go's per-item limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: u32,
    pub max: Duration,
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 5 minutes.
    fn default() -> Self {
        Self {
            base: Duration::from_millis(200),
            factor: 2,
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 for the first).
    pub fn delay(&self, failures: u32) -> Duration {
        self.factor
            .checked_pow(failures.saturating_sub(1))
            .and_then(|m| self.base.checked_mul(m))
            .map_or(self.max, |d| d.min(self.max))
    }
}

/// A cheaply clonable handle to one queue; all clones share it.
pub struct WorkQueue<K: QueueKey, V> {
    inner: Arc<Inner<K, V>>,
}

/// One unit of work handed to a worker. Report it with [`Item::done`];
/// dropping it unreported (a panicking worker) counts as a failure.
pub struct Item<K: QueueKey, V: Clone> {
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
pub struct Lease<K: QueueKey, V: Clone> {
    key: K,
    queue: Option<Arc<Inner<K, V>>>,
}

struct Inner<K: QueueKey, V> {
    state: Mutex<State<K, V>>,
    /// Wakes workers waiting in `next`: one per newly ready or earlier
    /// delayed key, all on shutdown.
    notify: Notify,
    backoff: Backoff,
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

/// Ready keys, one FIFO per group, groups served round-robin.
struct Fair<K: QueueKey> {
    queues: HashMap<K::Group, VecDeque<K>>,
    rotation: VecDeque<K::Group>,
}

impl<K: QueueKey, V: Clone> WorkQueue<K, V> {
    pub fn new(backoff: Backoff) -> Self {
        let state = State {
            entries: HashMap::new(),
            ready: Fair {
                queues: HashMap::new(),
                rotation: VecDeque::new(),
            },
            timers: BTreeMap::new(),
            shutdown: false,
        };
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                notify: Notify::new(),
                backoff,
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
        self.add_at(key, payload, Instant::now() + delay);
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
                    if !state.ready.rotation.is_empty() {
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

impl<K: QueueKey, V: Clone> Item<K, V> {
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

impl<K: QueueKey, V: Clone + fmt::Debug> fmt::Debug for Item<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("key", self.key())
            .field("payload", &self.payload)
            .field("waited", &self.waited)
            .field("failures", &self.failures)
            .finish()
    }
}

impl<K: QueueKey, V: Clone> Lease<K, V> {
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

impl<K: QueueKey, V: Clone> Drop for Lease<K, V> {
    fn drop(&mut self) {
        if self.queue.is_some() {
            tracing::warn!(key = ?self.key, "work item dropped without an outcome; retrying it as failed");
            self.finish(Outcome::Failure);
        }
    }
}

impl<K: QueueKey, V: Clone> Inner<K, V> {
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
                    entry.retry(payload, now + after);
                }
            }
            Outcome::Failure => {
                entry.failures = entry.failures.saturating_add(1);
                let delay = self.backoff.delay(entry.failures);
                entry.backoff_until = Some(now + delay);
                entry.retry(payload, now);
                tracing::debug!(?key, failures = entry.failures, ?delay, "backing off");
            }
        }
        if entry.pending.is_none() {
            state.entries.remove(key);
            return;
        }
        state.place(key, now);
        drop(state);
        self.notify.notify_one();
    }
}

impl<K: QueueKey, V: Clone> State<K, V> {
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
            self.entries.remove(key);
        }
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

fn unschedule<K: PartialEq>(timers: &mut BTreeMap<Instant, Vec<K>>, at: Instant, key: &K) {
    if let Some(keys) = timers.get_mut(&at) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            timers.remove(&at);
        }
    }
}

impl<K: QueueKey> Fair<K> {
    fn push(&mut self, key: K) {
        let queue = self.queues.entry(key.group().clone()).or_default();
        if queue.is_empty() {
            self.rotation.push_back(key.group().clone());
        }
        queue.push_back(key);
    }

    fn pop(&mut self) -> Option<K> {
        let group = self.rotation.pop_front()?;
        let queue = self.queues.get_mut(&group)?;
        let key = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&group);
        } else {
            self.rotation.push_back(group);
        }
        key
    }

    fn remove(&mut self, key: &K) {
        if let Some(queue) = self.queues.get_mut(key.group()) {
            queue.retain(|k| k != key);
            if queue.is_empty() {
                self.remove_group(key.group());
            }
        }
    }

    fn remove_group(&mut self, group: &K::Group) {
        self.queues.remove(group);
        self.rotation.retain(|g| g != group);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use futures::FutureExt;
    use tokio::time::advance;

    use super::*;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Key(&'static str, u32);

    impl QueueKey for Key {
        type Group = &'static str;
        fn group(&self) -> &&'static str {
            &self.0
        }
    }

    type Queue = WorkQueue<Key, &'static str>;

    const OK: Outcome = Outcome::Success {
        requeue_after: None,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The next item if one is ready now, without waiting.
    fn ready(queue: &Queue) -> Option<Item<Key, &'static str>> {
        queue.next().now_or_never().flatten()
    }

    /// Waits (paused time auto-advances) for the next item; returns it with
    /// the time waited.
    async fn wait(queue: &Queue) -> (Item<Key, &'static str>, Duration) {
        let start = Instant::now();
        let item = queue.next().await.expect("queue is open");
        (item, start.elapsed())
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let backoff = Backoff::default();
        let delays: Vec<_> = [1, 2, 3, 11, 12, 40, u32::MAX]
            .map(|n| backoff.delay(n))
            .into();
        let expected = [200, 400, 800, 204_800, 300_000, 300_000, 300_000].map(ms);
        assert_eq!(delays, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_payloads_coalesce_and_the_newest_wins() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "applied");
        queue.add(Key("a", 2), "applied");
        queue.add(Key("a", 1), "deleted");
        queue.add(Key("a", 1), "applied again");
        assert_eq!(queue.len(), 2);
        advance(ms(30)).await;

        let first = ready(&queue).unwrap();
        assert_eq!(
            (first.key(), first.payload),
            (&Key("a", 1), "applied again")
        );
        assert_eq!((first.waited, first.failures), (ms(30), 0));
        let second = ready(&queue).unwrap();
        assert_eq!((second.key(), second.payload), (&Key("a", 2), "applied"));
        assert!(ready(&queue).is_none());
        assert_eq!((queue.len(), queue.in_flight()), (0, 2));
        first.done(OK);
        second.done(OK);
        assert_eq!((queue.len(), queue.in_flight()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_in_flight_waits_then_runs_once_with_the_newest_payload() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "v1");
        let item = ready(&queue).unwrap();
        queue.add(Key("a", 1), "v2");
        queue.add(Key("a", 1), "v3");
        assert!(ready(&queue).is_none(), "never two in flight for one key");
        assert_eq!(queue.len(), 1);

        advance(ms(50)).await;
        item.done(OK);
        let rerun = ready(&queue).unwrap();
        assert_eq!((rerun.payload, rerun.waited), ("v3", Duration::ZERO));
        rerun.done(OK);
        assert!(ready(&queue).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn ready_keys_are_handed_out_round_robin_across_groups() {
        let queue = Queue::default();
        for n in 1..=4 {
            queue.add(Key("busy", n), "");
        }
        queue.add(Key("b", 1), "");
        queue.add(Key("b", 2), "");
        queue.add(Key("c", 1), "");

        let order: Vec<_> = std::iter::from_fn(|| ready(&queue))
            .map(|item| item.key().clone())
            .collect();
        let expected = [("busy", 1), ("b", 1), ("c", 1), ("busy", 2), ("b", 2)]
            .into_iter()
            .chain([("busy", 3), ("busy", 4)])
            .map(|(g, n)| Key(g, n))
            .collect::<Vec<_>>();
        assert_eq!(order, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off_exponentially_and_success_resets() {
        let backoff = Backoff {
            max: ms(1000),
            ..Backoff::default()
        };
        let queue = Queue::new(backoff);
        queue.add(Key("a", 1), "v1");
        let mut item = ready(&queue).unwrap();
        let mut delays = Vec::new();
        for failures in 1..=5 {
            item.done(Outcome::Failure);
            let (next, waited) = wait(&queue).await;
            assert_eq!((next.payload, next.failures), ("v1", failures));
            delays.push(waited);
            item = next;
        }
        assert_eq!(delays, [200, 400, 800, 1000, 1000].map(ms));

        item.done(OK);
        queue.add(Key("a", 1), "v2");
        let item = ready(&queue).unwrap();
        assert_eq!(item.failures, 0);
        item.done(Outcome::Failure);
        let (item, waited) = wait(&queue).await;
        assert_eq!((item.payload, waited), ("v2", ms(200)));
    }

    #[tokio::test(start_paused = true)]
    async fn new_events_do_not_bypass_a_backoff() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "v1");
        ready(&queue).unwrap().done(Outcome::Failure);
        queue.add(Key("a", 1), "v2");
        queue.add(Key("b", 1), "other");
        assert_eq!(ready(&queue).unwrap().key(), &Key("b", 1));

        advance(ms(199)).await;
        assert!(ready(&queue).is_none());
        advance(ms(1)).await;
        let item = ready(&queue).unwrap();
        assert_eq!((item.payload, item.failures), ("v2", 1));
    }

    #[tokio::test(start_paused = true)]
    async fn requeue_after_reruns_the_last_payload() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "v1");
        let requeue = Outcome::Success {
            requeue_after: Some(Duration::from_secs(10)),
        };
        ready(&queue).unwrap().done(requeue);
        assert_eq!(queue.len(), 1);
        assert!(ready(&queue).is_none());

        let (item, waited) = wait(&queue).await;
        assert_eq!((item.payload, waited), ("v1", Duration::from_secs(10)));
        assert_eq!((item.waited, item.failures), (Duration::ZERO, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_newer_event_runs_promptly_and_satisfies_the_requeue() {
        let queue = Queue::default();
        let requeue = Outcome::Success {
            requeue_after: Some(Duration::from_secs(10)),
        };
        queue.add(Key("a", 1), "v1");
        ready(&queue).unwrap().done(requeue);
        advance(ms(100)).await;
        queue.add(Key("a", 1), "v2");
        let item = ready(&queue).unwrap();
        assert_eq!(item.payload, "v2");
        item.done(OK);

        advance(Duration::from_secs(60)).await;
        assert!(ready(&queue).is_none());
        assert!(queue.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_during_a_requeued_run_is_kept_over_the_requeue() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "v1");
        let item = ready(&queue).unwrap();
        queue.add(Key("a", 1), "v2");
        item.done(Outcome::Success {
            requeue_after: Some(Duration::from_secs(10)),
        });
        assert_eq!(ready(&queue).unwrap().payload, "v2");
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_delays_unless_an_immediate_add_comes() {
        let queue = Queue::default();
        queue.add_after(Key("a", 1), "late", ms(500));
        queue.add_after(Key("a", 2), "late", ms(500));
        queue.add_after(Key("a", 2), "sooner", ms(100));
        assert_eq!(queue.len(), 2);
        let (item, waited) = wait(&queue).await;
        assert_eq!(
            (item.key(), item.payload, waited),
            (&Key("a", 2), "sooner", ms(100))
        );

        queue.add(Key("a", 1), "now");
        let now = ready(&queue).unwrap();
        assert_eq!(now.payload, "now");
        item.done(OK);
        now.done(OK);
        advance(Duration::from_secs(1)).await;
        assert!(ready(&queue).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn remove_group_drops_waiting_keys_and_ignores_in_flight_outcomes() {
        let queue = Queue::default();
        queue.add(Key("gone", 1), "running");
        queue.add(Key("gone", 2), "backing off");
        let running = ready(&queue).unwrap();
        ready(&queue).unwrap().done(Outcome::Failure);
        queue.add(Key("gone", 1), "queued behind the running one");
        queue.add(Key("gone", 3), "ready");
        queue.add_after(Key("gone", 4), "scheduled", ms(100));
        queue.add(Key("kept", 1), "ready");
        assert_eq!(queue.len(), 5);

        queue.remove_group(&"gone");
        assert_eq!((queue.len(), queue.in_flight()), (1, 1));
        running.done(Outcome::Failure);
        let kept = ready(&queue).unwrap();
        assert_eq!(kept.key(), &Key("kept", 1));
        kept.done(OK);
        advance(Duration::from_secs(600)).await;
        assert!(ready(&queue).is_none());
        assert_eq!((queue.len(), queue.in_flight()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_after_its_removal_runs_after_the_old_run() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "old");
        let running = ready(&queue).unwrap();
        queue.remove(&Key("a", 1));
        queue.add(Key("a", 1), "resync");
        assert!(ready(&queue).is_none());
        running.done(Outcome::Failure);
        let item = ready(&queue).unwrap();
        assert_eq!((item.payload, item.failures), ("resync", 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_or_panicking_worker_counts_as_a_failure() {
        let queue = Queue::default();
        queue.add(Key("a", 1), "v1");
        drop(ready(&queue).unwrap());
        assert!(ready(&queue).is_none());
        let (item, waited) = wait(&queue).await;
        assert_eq!((item.payload, item.failures, waited), ("v1", 1, ms(200)));
        drop(item);

        let worker = queue.clone();
        let crashed = tokio::spawn(async move {
            let _item = worker.next().await;
            panic!("worker crashed");
        });
        assert!(crashed.await.unwrap_err().is_panic());
        let (item, waited) = wait(&queue).await;
        assert_eq!((item.failures, waited), (3, ms(800)));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_wakes_waiting_workers_with_none() {
        let queue = Queue::default();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move {
                let item = queue.next().await?;
                let payload = item.payload;
                item.done(OK);
                Some(payload)
            }
        });
        tokio::task::yield_now().await;
        queue.add_after(Key("a", 1), "scheduled", ms(100));
        queue.add(Key("a", 2), "in flight");
        assert_eq!(waiting.await.unwrap(), Some("in flight"));
        let holder = tokio::spawn({
            let queue = queue.clone();
            async move { queue.next().await.is_none() }
        });
        tokio::task::yield_now().await;

        queue.shutdown();
        assert!(holder.await.unwrap());
        queue.add(Key("a", 3), "late");
        assert!(queue.next().await.is_none());
        assert!(queue.is_shutdown());
    }

    #[tokio::test(start_paused = true)]
    async fn workers_never_share_a_key_and_end_with_the_newest_payload() {
        let queue = WorkQueue::<Key, u32>::default();
        let running = Arc::new(Mutex::new(HashSet::new()));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (queue, running, seen) = (queue.clone(), running.clone(), seen.clone());
                tokio::spawn(async move {
                    while let Some(item) = queue.next().await {
                        let key = item.key().clone();
                        assert!(running.lock().unwrap().insert(key.clone()), "{key:?} twice");
                        tokio::time::sleep(ms(7)).await;
                        seen.lock().unwrap().insert(key.clone(), item.payload);
                        running.lock().unwrap().remove(&key);
                        item.done(OK);
                    }
                })
            })
            .collect();
        for round in 1..=5 {
            for n in 0..6 {
                queue.add(Key(if n % 2 == 0 { "a" } else { "b" }, n), round);
            }
            tokio::time::sleep(ms(3)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((queue.len(), queue.in_flight()), (0, 0));
        queue.shutdown();
        for worker in workers {
            worker.await.unwrap();
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        assert!(seen.values().all(|&payload| payload == 5), "{seen:?}");
    }
}
