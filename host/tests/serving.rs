//! Serving calls (`Plugin::reconcile_async`) on the host's async workers:
//! WASI works there, a running call lets the worker serve other tasks, its
//! limits hold as in a blocking call, and a call waiting for the memory
//! budget does not hold its thread.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kubewasm::runtime::{CallError, Runtime, RuntimeConfig};
use support::{GROW_FOREVER, LOOP_FOREVER, OK_REQUEUE_RET, access, event, load};

fn runtime(call_timeout: Duration, memory_budget_bytes: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        call_timeout,
        memory_budget_bytes,
        pool_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// A plugin writing to stderr through WASI (as any `eprintln!` does) is
/// called on the worker itself: the synchronous WASI bindings panicked
/// there ("Cannot start a runtime from within a runtime").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_works_in_a_serving_call() {
    let runtime = runtime(Duration::from_secs(2), 1 << 30);
    let chatty = runtime
        .load("chatty.wasm", &support::chatty("chatty", true))
        .unwrap();
    let outcome = chatty.reconcile_async(&event(), access()).await.unwrap();
    assert_eq!(outcome.requeue_after_ms, Some(5000));

    let trapping = runtime
        .load("chatty-trap.wasm", &support::chatty("chatty-trap", false))
        .unwrap();
    let error = trapping
        .reconcile_async(&event(), access())
        .await
        .unwrap_err();
    let CallError::Trap { stderr, .. } = error else {
        panic!("expected a trap, got {error:?}");
    };
    assert_eq!(stderr.len(), kubewasm::runtime::STDERR_TAIL);
    assert!(stderr.ends_with("xxxxdone"));
}

/// The same component answers the same way whichever way it is called,
/// failures included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_and_blocking_calls_agree() {
    let runtime = runtime(Duration::from_millis(300), 1 << 30);
    let healthy = load(
        &runtime,
        "healthy",
        &format!("(i32.const {OK_REQUEUE_RET})"),
    );
    let served = healthy.reconcile_async(&event(), access()).await.unwrap();
    let blocking = tokio::task::spawn_blocking(move || healthy.reconcile(&event(), access()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(served, blocking);

    let trapper = load(&runtime, "trapper", "unreachable");
    let error = trapper
        .reconcile_async(&event(), access())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin trapper trapped: wasm `unreachable` instruction executed"
    );

    let grower = load(&runtime, "grower", GROW_FOREVER);
    let error = grower
        .reconcile_async(&event(), access())
        .await
        .unwrap_err();
    assert!(matches!(error, CallError::MemoryLimit { .. }), "{error:?}");

    let looper = load(&runtime, "looper", LOOP_FOREVER);
    let error = looper
        .reconcile_async(&event(), access())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin looper exceeded its time limit of 300ms"
    );
}

/// With one worker thread, a looping call still lets other tasks run on it
/// (it yields every epoch tick), and is stopped at its limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_running_call_lets_its_worker_serve_other_tasks() {
    let runtime = runtime(Duration::from_secs(2), 1 << 30);
    let (looping, healthy) = start_looping(&runtime).await;
    // Another plugin's call completes, on the only worker, while the loop
    // runs there.
    let other = tokio::spawn(async move { healthy.reconcile_async(&event(), access()).await });
    let outcome = within_10s(other).await.unwrap();
    assert_eq!(outcome.requeue_after_ms, Some(5000));
    assert!(!looping.is_finished(), "the loop runs for its whole limit");
    let error = looping.await.unwrap().unwrap_err();
    assert!(matches!(error, CallError::Timeout { .. }), "{error:?}");
}

/// A call waiting for the memory budget waits without holding its thread:
/// with one worker thread and one permit, held by a looping call, other
/// tasks keep running until the loop is stopped and the waiting call runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_call_waiting_for_the_budget_does_not_hold_its_thread() {
    // 16 MiB per call, 16 MiB budget: one call at a time.
    let runtime = runtime(Duration::from_millis(500), 16 << 20);
    let (looping, healthy) = start_looping(&runtime).await;
    let waiting = tokio::spawn(async move { healthy.reconcile_async(&event(), access()).await });
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let error = within_10s(looping).await.unwrap_err();
    assert!(matches!(error, CallError::Timeout { .. }), "{error:?}");
    let outcome = within_10s(waiting).await.unwrap();
    assert_eq!(outcome.requeue_after_ms, Some(5000));
    ticker.abort();
    assert!(
        ticks.load(Ordering::Relaxed) >= 5,
        "the worker ran other tasks while a call waited ({} ticks)",
        ticks.load(Ordering::Relaxed)
    );
    assert_eq!(runtime.memory_stats().peak_concurrent_calls, 1);
}

/// Starts a looping call on a task of its own (on a worker: the test's own
/// body runs on another thread) and waits until it holds its permit of the
/// memory budget; returns it and a healthy plugin.
async fn start_looping(
    runtime: &Runtime,
) -> (
    tokio::task::JoinHandle<Result<kubewasm::contract::intent::Outcome, CallError>>,
    kubewasm::runtime::Plugin,
) {
    let looper = load(runtime, "looper", LOOP_FOREVER);
    let healthy = load(runtime, "healthy", &format!("(i32.const {OK_REQUEUE_RET})"));
    let looping = tokio::spawn(async move { looper.reconcile_async(&event(), access()).await });
    while runtime.memory_stats().peak_concurrent_calls == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (looping, healthy)
}

/// The task's result; a test that hangs (a worker held) fails instead.
async fn within_10s<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("finished within 10 s")
        .expect("task did not panic")
}
