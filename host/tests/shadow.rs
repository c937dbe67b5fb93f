//! The shadow runner with real (hand-written) components and no cluster:
//! a full queue drops and counts, an equal shadow counts equal, a
//! differing one keeps the difference, and a failing one is aborted and
//! no longer offered work.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kubewasm::cluster::cache::StaticObjects;
use kubewasm::contract::intent::Outcome;
use kubewasm::ops::metrics::Metrics;
use kubewasm::plugins::grant::Grant;
use kubewasm::plugins::loader::load_component;
use kubewasm::runtime::{Runtime, RuntimeConfig};
use kubewasm::shadow::runner::{Job, QUEUE};
use kubewasm::shadow::state::State;
use kubewasm::shadow::{ShadowReport, Shadows};
use support::{ERR_RET, OK_REQUEUE_RET};

fn shadows(metrics: &Arc<Metrics>) -> Shadows {
    Shadows::new(
        Arc::new(StaticObjects::default()),
        Arc::new(|_, _, _| false),
        metrics.clone(),
    )
}

fn install(shadows: &Shadows, runtime: &Runtime, returns: u32) {
    let bytes = support::plugin("p", &format!("(i32.const {returns})"));
    let loaded =
        load_component(runtime, "p", &bytes, "{}".into(), Grant::unconfined()).expect("loads");
    shadows.install(loaded, None);
}

/// A reconcile whose serving outcome asked for a requeue after `requeue_ms`.
fn job(requeue_ms: Option<u64>) -> Job {
    Job {
        event: support::event(),
        now_ms: 0,
        reads: Vec::new(),
        serving: Outcome {
            intents: Vec::new(),
            requeue_after_ms: requeue_ms,
        },
        serving_digest: "serving".into(),
    }
}

fn report(shadows: &Shadows) -> ShadowReport {
    shadows
        .report()
        .shadows
        .into_iter()
        .next()
        .expect("a shadow")
}

async fn until(shadows: &Shadows, done: impl Fn(&ShadowReport) -> bool) -> ShadowReport {
    for _ in 0..3000 {
        let report = report(shadows);
        if done(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not reached: {:?}", report(shadows));
}

fn metric(metrics: &Metrics, result: &str) -> u64 {
    metrics
        .shadow_reconciles
        .with_label_values(&["p", result])
        .get()
}

// A current-thread runtime: the runner only runs when the test yields, so
// the offers below fill the queue before any is taken.
#[tokio::test]
async fn a_full_queue_drops_and_counts_and_equal_and_different_are_told_apart() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let shadows = shadows(&metrics);
    assert!(shadows.tap("p").is_none(), "no shadow, nothing to tap");
    // The shadow asks for a requeue after 5 s, like the serving outcome below.
    install(&shadows, &runtime, OK_REQUEUE_RET);
    let tap = shadows.tap("p").expect("a running shadow");
    for _ in 0..QUEUE + 44 {
        tap.offer(job(Some(5000)));
    }
    assert_eq!(report(&shadows).counts.dropped, 44);
    assert_eq!(metric(&metrics, "dropped"), 44);
    let done = until(&shadows, |r| r.counts.equal == QUEUE as u64).await;
    assert_eq!(done.state, State::Running);
    assert_eq!(metric(&metrics, "equal"), QUEUE as u64);
    assert!(done.recent_differences.is_empty());

    tap.offer(job(None));
    let done = until(&shadows, |r| r.counts.different == 1).await;
    let sample = &done.recent_differences[0];
    assert_eq!(sample.object, "ConfigMap b/a");
    assert_eq!(sample.differences["requeue"]["actual"], 5000);
    assert!(
        sample.summary.contains("requeue after"),
        "{}",
        sample.summary
    );
    assert_eq!(done.streak, 0);
}

#[tokio::test]
async fn a_failing_shadow_is_aborted_and_offered_nothing_more() {
    let runtime = Runtime::new(RuntimeConfig::default()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let shadows = shadows(&metrics);
    install(&shadows, &runtime, ERR_RET);
    assert_eq!(metrics.shadow_running.with_label_values(&["p"]).get(), 1);
    shadows.tap("p").unwrap().offer(job(Some(5000)));
    let done = until(&shadows, |r| r.state != State::Running).await;
    let State::Aborted(reason) = &done.state else {
        panic!("{:?}", done.state);
    };
    assert!(reason.contains("not ready"), "{reason}");
    assert_eq!(done.counts.failed, 1);
    assert_eq!(metric(&metrics, "failed"), 1);
    assert_eq!(metrics.shadow_running.with_label_values(&["p"]).get(), 0);
    assert!(
        shadows.tap("p").is_none(),
        "an aborted shadow is not called"
    );

    // A new version of the shadow starts over.
    install(&shadows, &runtime, OK_REQUEUE_RET);
    let fresh = report(&shadows);
    assert_eq!(fresh.state, State::Running);
    assert_eq!(fresh.counts.failed, 0);
    shadows.remove("p");
    assert!(shadows.tap("p").is_none());
    assert!(shadows.report().shadows.is_empty());
}
