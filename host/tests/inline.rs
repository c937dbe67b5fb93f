//! Calls on the caller's thread (`Plugin::reconcile_inline`): a quick
//! plugin runs there; a slow one is stopped at the inline limit, handed
//! back to run on a blocking thread, and kept off the caller's thread.

mod support;

use std::time::Duration;

use kubewasm::runtime::{CallError, ReadAccess, Runtime, RuntimeConfig};
use support::{OK_REQUEUE_RET, event};

fn runtime(call_timeout: Duration, memory_budget_bytes: usize) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        call_timeout,
        memory_budget_bytes,
        cache_dir: None,
        pool_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

fn load(runtime: &Runtime, name: &str, body: &str) -> kubewasm::runtime::Plugin {
    runtime
        .load(name, &support::plugin(name, body))
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

const LOOP: &str = "(loop $forever (br $forever)) unreachable";

fn access() -> ReadAccess {
    ReadAccess::offline("{}")
}

#[test]
fn a_quick_plugin_runs_on_the_callers_thread() {
    let runtime = runtime(Duration::from_millis(200), 1 << 30);
    let plugin = load(&runtime, "quick", &format!("(i32.const {OK_REQUEUE_RET})"));
    let outcome = plugin
        .reconcile_inline(&event(), &access())
        .expect("ran inline")
        .expect("reconciled");
    assert_eq!(outcome.requeue_after_ms, Some(5000));
    assert!(plugin.calls_inline());
}

#[test]
fn a_slow_call_is_handed_back_and_the_plugin_kept_off_the_callers_thread() {
    let runtime = runtime(Duration::from_millis(200), 1 << 30);
    let looper = load(&runtime, "looper", LOOP);
    assert!(looper.calls_inline());
    assert!(
        looper.reconcile_inline(&event(), &access()).is_none(),
        "stopped at the inline limit, not failed"
    );
    assert!(!looper.calls_inline(), "paused after outrunning the limit");
    assert!(looper.reconcile_inline(&event(), &access()).is_none());
    // On a blocking thread it gets the whole call timeout.
    let error = looper.reconcile(&event(), access()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin looper exceeded its time limit of 200ms"
    );
    // Another plugin of the same runtime still runs inline.
    let quick = load(&runtime, "quick", &format!("(i32.const {OK_REQUEUE_RET})"));
    assert!(matches!(
        quick.reconcile_inline(&event(), &access()),
        Some(Ok(_))
    ));
}

#[test]
fn a_call_timeout_within_the_inline_limit_is_the_calls_own() {
    let runtime = runtime(Duration::from_millis(5), 1 << 30);
    let looper = load(&runtime, "looper", LOOP);
    let result = looper.reconcile_inline(&event(), &access());
    assert!(
        matches!(result, Some(Err(CallError::Timeout { .. }))),
        "{result:?}"
    );
    assert!(
        looper.calls_inline(),
        "a timed-out call is no reason to pause"
    );
}

#[test]
fn without_a_free_memory_permit_the_call_is_handed_back_at_once() {
    // A budget of one call's memory: one permit.
    let runtime = runtime(Duration::from_millis(200), 16 << 20);
    let quick = load(&runtime, "quick", &format!("(i32.const {OK_REQUEUE_RET})"));
    let held = quick.session(access()).expect("a session holds the permit");
    assert!(quick.reconcile_inline(&event(), &access()).is_none());
    assert!(
        quick.calls_inline(),
        "waiting for memory is no reason to pause"
    );
    drop(held);
    assert!(matches!(
        quick.reconcile_inline(&event(), &access()),
        Some(Ok(_))
    ));
}
