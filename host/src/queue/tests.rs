//! Tests for the queue rules, on paused time: `advance` moves the clock, and
//! a task waiting on an empty runtime jumps it to the next timer.

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
        .map(|item| {
            let key = item.key().clone();
            item.done(OK);
            key
        })
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
async fn a_postponed_key_keeps_its_payload_and_its_backoff() {
    let queue = Queue::default();
    queue.add(Key("a", 1), "v1");
    ready(&queue).unwrap().done(Outcome::Failure);
    let (item, _) = wait(&queue).await;
    item.done(Outcome::Postponed { after: ms(50) });
    assert!(ready(&queue).is_none());

    let (item, waited) = wait(&queue).await;
    assert_eq!((item.payload, item.failures, waited), ("v1", 1, ms(50)));
    // A newer event that arrives meanwhile replaces the postponed payload.
    queue.add(Key("a", 1), "v2");
    item.done(Outcome::Postponed { after: ms(50) });
    let (item, _) = wait(&queue).await;
    assert_eq!(item.payload, "v2");
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
async fn a_huge_requeue_or_delay_does_not_overflow_the_clock() {
    let queue = Queue::default();
    queue.add(Key("a", 1), "v1");
    let never = Some(Duration::MAX);
    ready(&queue).unwrap().done(Outcome::Success {
        requeue_after: never,
    });
    queue.add_after(Key("a", 2), "v1", Duration::MAX);
    advance(Duration::from_secs(3600)).await;
    assert!(ready(&queue).is_none());
    assert_eq!(queue.len(), 2);
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

#[tokio::test(start_paused = true)]
async fn a_requeued_run_gets_the_requeue_payload_and_a_retry_the_original() {
    let queue: Queue = WorkQueue::with_requeue(Backoff::default(), |_| "requeued");
    queue.add(Key("a", 1), "applied");
    ready(&queue).unwrap().done(Outcome::Failure);
    let (item, _) = wait(&queue).await;
    assert_eq!(item.payload, "applied", "a retry after a failure");
    item.done(Outcome::Success {
        requeue_after: Some(Duration::from_secs(1)),
    });
    let (item, _) = wait(&queue).await;
    assert_eq!(item.payload, "requeued");
}

#[tokio::test(start_paused = true)]
async fn a_drained_burst_gives_its_room_back() {
    let queue = Queue::default();
    let capacity = || queue.inner.lock().entries.capacity();
    for n in 0..20_000 {
        queue.add(Key("a", n), "applied");
    }
    let full = capacity();
    assert!(full >= 20_000);
    while let Some(item) = ready(&queue) {
        item.done(OK);
    }
    assert_eq!(queue.len(), 0);
    assert!(
        capacity() <= 2 * SHRINK_ABOVE,
        "{} buckets kept of {full}",
        capacity()
    );
}
