//! The runtime against hostile and broken components: each case fails with
//! its own named error, and the runtime keeps serving other calls.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kubewasm::ops::metrics::Metrics;
use kubewasm::runtime::{CacheStats, CallError, LoadError, ReadAccess, Runtime, RuntimeConfig};
use support::{
    ERR_RET, MALFORMED_RET, OK_REQUEUE_RET, OVERSIZED_RET, SlowReader, access,
    assert_still_serving, event, load,
};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        call_timeout: Duration::from_millis(200),
        max_result_bytes: 64 << 10,
        cache_dir: None,
        pool_instances: 8,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

#[test]
fn a_well_behaved_plugin_describes_itself_and_reconciles() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        "healthy",
        &format!("(i32.const {OK_REQUEUE_RET})"),
    );
    assert_eq!(plugin.info().name, "healthy");
    assert_eq!(plugin.info().version, "1.0.0");
    assert_eq!(plugin.digest().len(), 64);
    let outcome = plugin.reconcile(&event(), access()).unwrap();
    assert!(outcome.intents.is_empty());
    assert_eq!(outcome.requeue_after_ms, Some(5000));
    plugin.validate_settings("{}").unwrap();
}

#[test]
fn a_trap_fails_only_that_call() {
    let runtime = runtime();
    let plugin = load(&runtime, "trapper", "unreachable");
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin trapper trapped: wasm `unreachable` instruction executed"
    );
    assert_eq!(err.metric_label(), "trap");
    // The same plugin is called again, and fails the same way, not worse.
    assert!(matches!(
        plugin.reconcile(&event(), access()),
        Err(CallError::Trap { .. })
    ));
    assert_still_serving(&runtime);
}

#[test]
fn an_infinite_loop_is_interrupted_at_the_time_limit() {
    let runtime = runtime();
    let plugin = load(&runtime, "looper", support::LOOP_FOREVER);
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin looper exceeded its time limit of 200ms"
    );
    assert_still_serving(&runtime);
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let runtime = runtime();
    let plugin = load(&runtime, "hog", support::GROW_FOREVER);
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    support::assert_memory_limit(&err, "hog", 16 << 20);
    assert_still_serving(&runtime);
}

#[test]
fn an_oversized_result_is_refused() {
    let runtime = runtime();
    let plugin = load(
        &runtime,
        "chatty",
        &format!("(drop (memory.grow (i32.const 20))) (i32.const {OVERSIZED_RET})"),
    );
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin chatty returned 1048576 bytes of intents, over the limit of 65536"
    );
    assert_eq!(err.metric_label(), "result_too_large");
    assert_still_serving(&runtime);
}

#[test]
fn a_malformed_intent_refuses_the_outcome() {
    let runtime = runtime();
    let plugin = load(&runtime, "sloppy", &format!("(i32.const {MALFORMED_RET})"));
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    let CallError::MalformedIntent { source, .. } = &err else {
        panic!("expected a malformed intent, got {err:?}");
    };
    assert!(
        source
            .to_string()
            .starts_with("intent 0 (create): object is not valid JSON"),
        "{source}"
    );
    assert_still_serving(&runtime);
}

#[test]
fn a_plugin_error_is_reported_with_its_message() {
    let runtime = runtime();
    let plugin = load(&runtime, "picky", &format!("(i32.const {ERR_RET})"));
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    assert_eq!(err.to_string(), "plugin picky reported an error: not ready");
    assert_eq!(err.metric_label(), "error");
}

#[test]
fn fresh_instances_share_no_state_between_calls() {
    // Each reconcile bumps a global counter and returns it as the requeue delay.
    let body = format!(
        "(global.set $count (i64.add (global.get $count) (i64.const 1)))
         (i64.store (i32.const {value}) (global.get $count))
         (i32.const {OK_REQUEUE_RET})",
        value = OK_REQUEUE_RET + 24
    );
    let runtime = runtime();
    let plugin = load(&runtime, "counter", &body);
    for _ in 0..3 {
        let outcome = plugin.reconcile(&event(), access()).unwrap();
        assert_eq!(
            outcome.requeue_after_ms,
            Some(1),
            "state leaked between calls"
        );
    }
    // A reused instance (what the host does not do) would carry state over.
    let mut session = plugin.session(access()).unwrap();
    let counts: Vec<_> = (0..3)
        .map(|_| session.reconcile(&event()).unwrap().requeue_after_ms)
        .collect();
    assert_eq!(counts, [Some(1), Some(2), Some(3)]);
}

#[test]
fn a_capability_that_is_not_granted_fails_to_load() {
    let runtime = runtime();
    let net = r#"
        package wasi:sockets@0.2.6;
        interface tcp { connect: func(address: string) -> u32; }
        world networked-plugin {
            import tcp;
            export kubewasm:plugin/reconciler@0.1.0;
        }
    "#;
    let core = support::core_module(
        "networked",
        r#"(import "wasi:sockets/tcp@0.2.6" "connect" (func $connect (param i32 i32) (result i32)))"#,
        &format!(
            "(drop (call $connect (i32.const 0x100) (i32.const 4))) (i32.const {OK_REQUEUE_RET})"
        ),
        "",
    );
    let bytes = support::componentize(&core, "networked-plugin", &[net]);
    let err = runtime.load("net.wasm", &bytes).unwrap_err();
    assert!(matches!(err, LoadError::NotGranted { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(
            "net.wasm: imports `wasi:sockets/tcp@0.2.6`, which kubewasm does not grant"
        ),
        "{err}"
    );
    assert_eq!(err.metric_label(), "not_granted");
    assert_still_serving(&runtime);
}

#[test]
fn a_component_of_another_world_fails_to_load() {
    let runtime = runtime();
    let other = r#"
        package acme:tool@1.0.0;
        world tool { export run: func() -> u32; }
    "#;
    let core = r#"(module
        (memory (export "memory") 1)
        (func (export "run") (result i32) (i32.const 7)))"#;
    let bytes = support::componentize(core, "tool", &[other]);
    let err = runtime.load("tool.wasm", &bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tool.wasm: does not export `kubewasm:plugin/reconciler@0.2.0` or `kubewasm:plugin/reconciler@0.1.0`, so it targets another world (it exports: run)"
    );
    assert_eq!(err.metric_label(), "wrong_world");
    assert_still_serving(&runtime);
}

#[test]
fn a_file_that_is_not_wasm_fails_to_load() {
    let runtime = runtime();
    let err = runtime
        .load("notes.wasm", b"#!/bin/sh\necho hi\n")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "notes.wasm: not a WebAssembly file (it does not start with the \\0asm magic bytes)"
    );
    assert_still_serving(&runtime);
}

#[test]
fn a_core_module_is_not_a_component() {
    let runtime = runtime();
    let core = wat::parse_str("(module)").unwrap();
    let err = runtime.load("core.wasm", &core).unwrap_err();
    assert!(matches!(err, LoadError::NotComponent { .. }), "{err:?}");
    assert_still_serving(&runtime);
}

#[test]
fn a_truncated_file_fails_to_compile() {
    let runtime = runtime();
    let bytes = support::plugin("whole", &format!("(i32.const {OK_REQUEUE_RET})"));
    let half = &bytes[..bytes.len() / 2];
    let err = runtime.load("half.wasm", half).unwrap_err();
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
    assert!(
        kubewasm::error_chain(&err).starts_with("half.wasm: failed to compile:"),
        "{err}"
    );
    assert_still_serving(&runtime);
}

#[test]
fn an_invalid_description_is_refused() {
    let runtime = runtime();
    let bytes = support::plugin("Not_A_Label", &format!("(i32.const {OK_REQUEUE_RET})"));
    let err = runtime.load("bad-name.wasm", &bytes).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("bad-name.wasm: invalid description: plugin name \"Not_A_Label\""),
        "{err}"
    );
    assert_still_serving(&runtime);
}

#[test]
fn compiled_artefacts_are_reused_across_runtimes() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        pool_instances: 0,
        ..RuntimeConfig::default()
    };
    let bytes = support::plugin("cached", &format!("(i32.const {OK_REQUEUE_RET})"));
    let first = Runtime::new(config.clone()).unwrap();
    first.load("cached.wasm", &bytes).unwrap();
    assert_eq!(
        first.compile_cache_stats(),
        CacheStats { hits: 0, misses: 1 }
    );
    // A restart: a new engine with the same configuration finds the artefact.
    let second = Runtime::new(config).unwrap();
    let plugin = second.load("cached.wasm", &bytes).unwrap();
    assert_eq!(
        second.compile_cache_stats(),
        CacheStats { hits: 1, misses: 0 }
    );
    assert_eq!(
        plugin
            .reconcile(&event(), access())
            .unwrap()
            .requeue_after_ms,
        Some(5000)
    );
}

/// The compiled artefacts (`*.cwasm`) in a cache directory.
fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn a_cache_entry_copied_over_another_plugins_is_not_executed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let config = RuntimeConfig {
        cache_dir: Some(cache.clone()),
        pool_instances: 0,
        ..RuntimeConfig::default()
    };
    let alpha = support::plugin("alpha", &format!("(i32.const {OK_REQUEUE_RET})"));
    let bravo = support::plugin("bravo", &format!("(i32.const {ERR_RET})"));
    let first = Runtime::new(config.clone()).unwrap();
    first.load("alpha.wasm", &alpha).unwrap();
    let [alpha_entry] = cache_entries(&cache).try_into().unwrap();
    first.load("bravo.wasm", &bravo).unwrap();
    let bravo_entry = cache_entries(&cache)
        .into_iter()
        .find(|p| *p != alpha_entry)
        .unwrap();
    // The secret sits outside the cache directory, private to the host's user.
    let key = dir.path().join("compiled.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Someone with write access to the cache puts alpha's code under bravo's name.
    std::fs::copy(&alpha_entry, &bravo_entry).unwrap();
    let metrics = Arc::new(Metrics::new());
    let second = Runtime::with_metrics(config.clone(), metrics.clone()).unwrap();
    let plugin = second.load("bravo.wasm", &bravo).unwrap();
    assert_eq!(plugin.info().name, "bravo");
    assert_eq!(
        plugin
            .reconcile(&event(), access())
            .unwrap_err()
            .to_string(),
        "plugin bravo reported an error: not ready",
        "alpha's artefact ran in bravo's place"
    );
    assert_eq!(second.compile_cache_rejections(), 1);
    assert_eq!(
        second.compile_cache_stats(),
        CacheStats { hits: 0, misses: 1 }
    );
    assert!(
        metrics
            .encode()
            .lines()
            .any(|l| l == "kubewasm_compile_cache_rejected_total 1")
    );

    // A garbled entry is refused the same way; the recompiled entry is
    // written back and serves the next restart.
    std::fs::write(&alpha_entry, b"KWCWASM1 not an artefact").unwrap();
    let third = Runtime::new(config.clone()).unwrap();
    assert_eq!(
        third.load("alpha.wasm", &alpha).unwrap().info().name,
        "alpha"
    );
    third.load("bravo.wasm", &bravo).unwrap();
    assert_eq!(
        third.compile_cache_stats(),
        CacheStats { hits: 1, misses: 1 }
    );
    assert_eq!(third.compile_cache_rejections(), 1);
    let fourth = Runtime::new(config).unwrap();
    fourth.load("alpha.wasm", &alpha).unwrap();
    fourth.load("bravo.wasm", &bravo).unwrap();
    assert_eq!(
        fourth.compile_cache_stats(),
        CacheStats { hits: 2, misses: 0 }
    );
    assert_eq!(fourth.compile_cache_rejections(), 0);
}

#[test]
fn a_cache_key_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("compiled");
    let key = dir.path().join("compiled.key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let err = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        pool_instances: 0,
        ..RuntimeConfig::default()
    })
    .err()
    .expect("an exposed key is refused");
    assert_eq!(
        kubewasm::error_chain(&err),
        format!(
            "failed to open the compiled-artefact cache at {}: the key file has mode 644: others may read or write it (it must be 600)",
            key.display()
        )
    );
}

#[test]
fn too_many_intents_refuse_the_outcome() {
    let runtime = Runtime::new(RuntimeConfig {
        pool_instances: 0,
        ..RuntimeConfig::default()
    })
    .unwrap();
    // 1001 `create` intents (variant size 68: discriminant 3, string at +4)
    // of one small object, in an array at 0x50000; outcome at 0x1300.
    let body = "(local $i i32)
        (drop (memory.grow (i32.const 10)))
        (block $done (loop $fill
          (br_if $done (i32.ge_u (local.get $i) (i32.const 1001)))
          (i32.store (i32.add (i32.const 0x50000) (i32.mul (local.get $i) (i32.const 68))) (i32.const 3))
          (i32.store (i32.add (i32.const 0x50004) (i32.mul (local.get $i) (i32.const 68))) (i32.const 0x1400))
          (i32.store (i32.add (i32.const 0x50008) (i32.mul (local.get $i) (i32.const 68))) (i32.const 76))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $fill)))
        (i32.store (i32.const 0x1308) (i32.const 0x50000))
        (i32.store (i32.const 0x130c) (i32.const 1001))
        (i32.const 0x1300)";
    let object = r#"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\",\"namespace\":\"b\"}}"#;
    let extra = format!(r#"(data (i32.const 0x1400) "{object}")"#);
    let core = support::core_module("spammer", "", body, &extra);
    let bytes = support::componentize(&core, "plugin", &[]);
    let plugin = runtime.load("spammer.wasm", &bytes).unwrap();
    let err = plugin.reconcile(&event(), access()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "plugin spammer returned 1001 intents, over the limit of 1000"
    );
    assert_eq!(err.metric_label(), "too_many_intents");
}

#[test]
fn time_spent_in_host_calls_counts_toward_the_timeout() {
    let runtime = runtime();
    let core = support::core_module(
        "host-sleeper",
        support::LIST_OBJECTS_IMPORT,
        &format!(
            "{} (i32.const {OK_REQUEUE_RET})",
            support::list_configmaps()
        ),
        "",
    );
    let plugin = runtime
        .load(
            "host-sleeper.wasm",
            &support::componentize(&core, "plugin", &[]),
        )
        .unwrap();
    // The list comes back past the deadline with 50 MB of objects: the host
    // refuses to copy them and the call fails with the loop's Timeout.
    let slow = ReadAccess {
        reader: Arc::new(SlowReader {
            delay: Duration::from_millis(400),
            count: 100_000,
        }),
        settings: "{}".into(),
        clock: Default::default(),
    };
    let err = plugin.reconcile(&event(), slow.clone()).unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "plugin host-sleeper exceeded its time limit of 200ms"
    );
    // Within its time the same plugin succeeds.
    let quick = ReadAccess {
        reader: Arc::new(SlowReader {
            delay: Duration::ZERO,
            count: 10,
        }),
        settings: "{}".into(),
        clock: Default::default(),
    };
    assert_eq!(
        plugin.reconcile(&event(), quick).unwrap().requeue_after_ms,
        Some(5000)
    );
    assert_still_serving(&runtime);
}

#[test]
fn a_chatty_stderr_never_traps_a_call() {
    let runtime = runtime();
    let plugin = runtime
        .load("chatty.wasm", &support::chatty("chatty", true))
        .unwrap();
    let outcome = plugin.reconcile(&event(), access()).unwrap();
    assert_eq!(outcome.requeue_after_ms, Some(5000));

    // The kept tail still reaches a trap's report.
    let plugin = runtime
        .load("chatty-trap.wasm", &support::chatty("chatty-trap", false))
        .unwrap();
    let CallError::Trap { stderr, .. } = plugin.reconcile(&event(), access()).unwrap_err() else {
        panic!("expected a trap");
    };
    assert_eq!(stderr.len(), kubewasm::runtime::STDERR_TAIL);
    assert!(
        stderr.ends_with("xxxxdone"),
        "{}",
        &stderr[stderr.len() - 16..]
    );
}
