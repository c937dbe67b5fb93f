//! Large components that miss the compile cache serve the baseline
//! compiler's (Winch) code first, and the optimizing compiler's (Cranelift)
//! code replaces it in every clone of the plugin when it is ready, for both
//! ways of calling; only the optimized artefact is cached. Winch is tier 1
//! on x86_64 only, so these run there.
#![cfg(target_arch = "x86_64")]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use kubewasm::runtime::{CacheStats, Plugin, Runtime, RuntimeConfig, Tier};
use support::{OK_REQUEUE_RET, access, event, load};

fn tiered_runtime(cache: &Path, baseline_min_bytes: Option<usize>) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        pool_instances: 8,
        cache_dir: Some(cache.to_path_buf()),
        baseline_min_bytes,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

fn healthy(runtime: &Runtime) -> Plugin {
    load(runtime, "tiered", &format!("(i32.const {OK_REQUEUE_RET})"))
}

/// Waits (at most a minute) for the optimized code to replace the baseline.
fn until_optimized(plugin: &Plugin) {
    let started = Instant::now();
    while plugin.tier() == Tier::Baseline {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the optimized code did not replace the baseline code within a minute"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn baseline_code_serves_until_the_optimized_code_replaces_it() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = tiered_runtime(cache.path(), Some(0));
    let plugin = healthy(&runtime);
    let serving = plugin.clone();
    assert_eq!(plugin.tier(), Tier::Baseline);
    let baseline = plugin.reconcile(&event(), access()).unwrap();
    assert_eq!(baseline.requeue_after_ms, Some(5000));

    until_optimized(&plugin);
    // Every clone runs the new code, with the same answers, both ways.
    assert_eq!(serving.tier(), Tier::Optimized);
    assert_eq!(serving.reconcile(&event(), access()).unwrap(), baseline);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let served = tokio
        .block_on(async { serving.reconcile_async(&event(), access()).await })
        .unwrap();
    assert_eq!(served, baseline);
    // Only the optimized compile went through the cache (and stored it).
    assert_eq!(
        runtime.compile_cache_stats(),
        CacheStats { hits: 0, misses: 1 }
    );

    // The next host finds the optimized artefact and serves it at once.
    let next = tiered_runtime(cache.path(), Some(0));
    assert_eq!(healthy(&next).tier(), Tier::Optimized);
    assert_eq!(
        next.compile_cache_stats(),
        CacheStats { hits: 1, misses: 0 }
    );
}

#[test]
fn small_components_and_never_compile_optimized_at_once() {
    let cache = tempfile::tempdir().unwrap();
    let large_only = tiered_runtime(cache.path(), Some(usize::MAX));
    assert_eq!(healthy(&large_only).tier(), Tier::Optimized);
    let never = tiered_runtime(tempfile::tempdir().unwrap().path(), None);
    assert_eq!(healthy(&never).tier(), Tier::Optimized);
}

/// A plugin dropped before its optimizing compile ends leaves nothing
/// running and nothing broken: the next load of it is served as usual.
#[test]
fn a_plugin_replaced_during_its_optimizing_compile_is_let_go() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = tiered_runtime(cache.path(), Some(0));
    drop(healthy(&runtime));
    let again = healthy(&runtime);
    assert_eq!(
        again
            .reconcile(&event(), access())
            .unwrap()
            .requeue_after_ms,
        Some(5000)
    );
    until_optimized(&again);
}
