//! The gate for Winch as the first compiler of large components
//! (docs/design/performance.md §5.3): under `CompilerStrategy::Winch` the
//! call limits hold exactly as under Cranelift, the compile cache keeps the
//! two compilers' artefacts apart, and real plugins (Rust, the 12 MB
//! JavaScript and the 18 MB Python one) return what they return under
//! Cranelift.
//!
//! wasmtime 48's `Config::epoch_interruption` doc says it is "not compatible
//! with the Winch compiler"; winch-codegen 48 emits the epoch check at every
//! function entry and loop header (`CodeGen::maybe_emit_epoch_check`), and
//! the loop case below is what decides.
//!
//! Winch is tier 1 on x86_64 only.
#![cfg(target_arch = "x86_64")]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kubewasm::cmd::test::{Suite, Verdict, run_suite_on};
use kubewasm::runtime::{CallError, CompilerStrategy, ReadAccess, Runtime, RuntimeConfig};
use support::{OK_REQUEUE_RET, assert_still_serving, event, load};

const CALL_TIMEOUT: Duration = Duration::from_millis(200);

fn runtime(strategy: CompilerStrategy, cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        call_timeout: CALL_TIMEOUT,
        cache_dir,
        pool_instances: 8,
        strategy,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

#[test]
fn winch_stops_an_infinite_loop_at_the_time_limit() {
    let runtime = runtime(CompilerStrategy::Winch, None);
    let plugin = load(&runtime, "looper", support::LOOP_FOREVER);
    let started = Instant::now();
    let err = plugin
        .reconcile(&event(), ReadAccess::offline("{}"))
        .unwrap_err();
    let elapsed = started.elapsed();
    eprintln!("Winch: the loop was stopped after {elapsed:?} (limit {CALL_TIMEOUT:?})");
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin looper exceeded its time limit of 200ms"
    );
    // The limit counts from before instantiation; the epoch ticks every
    // 5 ms. A second of slack covers a loaded machine, not a missing check.
    assert!(
        elapsed >= CALL_TIMEOUT && elapsed < CALL_TIMEOUT + Duration::from_secs(1),
        "stopped after {elapsed:?}"
    );
    assert_still_serving(&runtime);
}

/// The same loop inside a function the loop calls: the check at function
/// entry alone would also stop it, and a loop of calls is how an
/// interpreter (the JS and Python plugins) spins.
#[test]
fn winch_stops_a_loop_of_calls_at_the_time_limit() {
    let runtime = runtime(CompilerStrategy::Winch, None);
    let bytes = support::componentize(
        &support::core_module(
            "caller",
            "",
            "(loop $forever (call $step) (br $forever)) unreachable",
            "(func $step (global.set $count (i64.add (global.get $count) (i64.const 1))))",
        ),
        "plugin",
        &[],
    );
    let plugin = runtime.load("caller", &bytes).expect("caller loads");
    let err = plugin
        .reconcile(&event(), ReadAccess::offline("{}"))
        .unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
}

#[test]
fn winch_holds_the_memory_limit() {
    let runtime = runtime(CompilerStrategy::Winch, None);
    let plugin = load(&runtime, "hog", support::GROW_FOREVER);
    let err = plugin
        .reconcile(&event(), ReadAccess::offline("{}"))
        .unwrap_err();
    support::assert_memory_limit(&err, "hog", 16 << 20);
    assert_still_serving(&runtime);
}

/// One cache directory shared by a Cranelift and a Winch runtime: neither
/// is served the other's artefact, and each finds its own on a restart.
#[test]
fn the_compile_cache_keeps_the_compilers_apart() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("compiled");
    let bytes = support::plugin("cached", &format!("(i32.const {OK_REQUEUE_RET})"));
    let stats_after_load = |strategy| {
        let rt = runtime(strategy, Some(dir.clone()));
        rt.load("cached", &bytes).expect("loads");
        let stats = rt.compile_cache_stats();
        (stats.hits, stats.misses, rt.compile_cache_rejections())
    };
    assert_eq!(stats_after_load(CompilerStrategy::Winch), (0, 1, 0));
    assert_eq!(stats_after_load(CompilerStrategy::Cranelift), (0, 1, 0));
    assert_eq!(stats_after_load(CompilerStrategy::Winch), (1, 0, 0));
    assert_eq!(stats_after_load(CompilerStrategy::Cranelift), (1, 0, 0));
    let entries = std::fs::read_dir(&dir).expect("cache dir").count();
    assert_eq!(entries, 2, "one entry per compiler");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs every fixture case of `plugin` under both compilers: every case must
/// return its expected outcome under each, so both return the same intents
/// for the same events.
fn same_outcomes_under_both(plugin: &str, fixtures: &str) {
    let dir = std::env::var_os("KUBEWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("plugins/dist"));
    let component = dir.join(format!("{plugin}.wasm"));
    assert!(
        component.exists(),
        "{} is missing: build the example plugins first with plugins/build.sh",
        component.display()
    );
    let suite = Suite {
        component,
        fixtures: repo().join(fixtures),
    };
    let mut verdicts = Vec::new();
    for strategy in [CompilerStrategy::Winch, CompilerStrategy::Cranelift] {
        let rt = Runtime::new(RuntimeConfig {
            // Generous, as in conformance.rs: a loaded 2-core machine.
            call_timeout: Duration::from_secs(10),
            strategy,
            ..RuntimeConfig::default()
        })
        .expect("runtime starts");
        let started = Instant::now();
        let report = run_suite_on(&rt, &suite, false, &mut |_| {}).unwrap_or_else(|e| {
            panic!("{plugin} under {strategy:?}: {}", kubewasm::error_chain(&e))
        });
        eprintln!(
            "{plugin} under {strategy:?}: {} in {:?} (load included)",
            report.summary(),
            started.elapsed()
        );
        let failures: Vec<String> = report
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
            .map(|c| c.render())
            .collect();
        assert!(
            failures.is_empty(),
            "{plugin} under {strategy:?}:\n{}",
            failures.join("\n")
        );
        let passed: Vec<String> = report
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Passed))
            .map(|c| c.name.clone())
            .collect();
        assert!(!passed.is_empty(), "{plugin}: no case passed");
        verdicts.push(passed);
    }
    assert_eq!(verdicts[0], verdicts[1], "{plugin}: cases passed differ");
}

#[test]
fn the_rust_plugin_returns_the_same_intents_under_winch() {
    same_outcomes_under_both("label-propagator", "plugins/label-propagator/fixtures");
}

#[test]
fn the_javascript_plugin_returns_the_same_intents_under_winch() {
    same_outcomes_under_both("configmap-hasher", "plugins/js/configmap-hasher/fixtures");
}

#[test]
fn the_python_plugin_returns_the_same_intents_under_winch() {
    same_outcomes_under_both(
        "configmap-validator",
        "plugins/python/configmap-validator/fixtures",
    );
}
