//! Budgets across calls: plugin memory of all calls together stays under the
//! host's budget, and host-side copies count against the plugin that asks for
//! them. Each case measures the process' resident memory, so the cases run
//! one at a time (and in their own test binary).

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kubewasm::cluster::cache::StaticObjects;
use kubewasm::runtime::{CallError, ReadAccess, Runtime, RuntimeConfig};
use serde_json::json;
use support::{OK_REQUEUE_RET, SlowReader, event};

/// Serializes the cases: resident memory is per process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const MIB: usize = 1 << 20;

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap();
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// Resets the resident high-water mark and returns the resident size now.
fn reset_peak_rss() -> usize {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    status_bytes("VmRSS")
}

#[test]
fn concurrent_memory_filling_calls_stay_under_the_host_budget() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let per_call = 16 * MIB;
    let budget = 64 * MIB;
    let runtime = Runtime::new(RuntimeConfig {
        max_memory_bytes: per_call,
        memory_budget_bytes: budget,
        call_timeout: Duration::from_secs(30),
        pool_instances: 16,
        ..RuntimeConfig::default()
    })
    .unwrap();
    // Grows to 15 MiB, writes every byte above its data and arguments, then
    // waits in a host call holding that memory.
    let body = format!(
        "(drop (memory.grow (i32.const 238)))
         (memory.fill (i32.const 0x40000) (i32.const 0x5a)
           (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 0x40000)))
         {list}
         (i32.const {OK_REQUEUE_RET})",
        list = support::list_configmaps()
    );
    let core = support::core_module("filler", support::LIST_OBJECTS_IMPORT, &body, "");
    let plugin = runtime
        .load("filler.wasm", &support::componentize(&core, "plugin", &[]))
        .unwrap();
    let access = ReadAccess {
        // Each list holds the call (and its memory) for 300 ms, so the
        // concurrent calls overlap.
        reader: Arc::new(SlowReader {
            delay: Duration::from_millis(300),
            count: 0,
        }),
        settings: "{}".into(),
        clock: Default::default(),
    };

    let baseline = reset_peak_rss();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let plugin = plugin.clone();
            let access = access.clone();
            std::thread::spawn(move || plugin.reconcile(&event(), access))
        })
        .collect();
    for call in calls {
        let outcome = call.join().unwrap().expect("every call succeeds");
        assert_eq!(outcome.requeue_after_ms, Some(5000));
    }
    let peak_rss = status_bytes("VmHWM");

    let stats = runtime.memory_stats();
    assert_eq!(stats.budget, budget);
    assert_eq!(stats.max_concurrent_calls, 4);
    assert_eq!(stats.in_use, 0, "memory given back after the calls");
    assert!(stats.peak_concurrent_calls <= 4, "{stats:?}");
    assert!(stats.peak <= budget, "{stats:?}");
    assert!(stats.peak >= 15 * MIB, "{stats:?}");
    // 16 calls of 15 MiB at once would add 240 MiB; the budget lets four run
    // (60 MiB). The slack covers the pool's resident pages and the test's
    // own threads.
    let grown = peak_rss.saturating_sub(baseline);
    eprintln!(
        "16 concurrent 15 MiB calls, budget 64 MiB: resident memory grew by {} MiB (baseline {} MiB, peak {} MiB)",
        grown / MIB,
        baseline / MIB,
        peak_rss / MIB
    );
    assert!(
        grown < budget + 40 * MIB,
        "resident memory grew by {} MiB",
        grown / MIB
    );
}

#[test]
fn a_plugin_listing_too_much_is_stopped_by_its_host_read_budget() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = Runtime::new(RuntimeConfig {
        pool_instances: 4,
        call_timeout: Duration::from_secs(60),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let limit = runtime.config().max_host_read_bytes;
    // 10 000 cached ConfigMaps of about 500 bytes: 5 MB a list.
    let objects = (0..10_000).map(|i| {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i:05}"), "namespace": "default"},
            "data": {"payload": "x".repeat(400)}
        })
    });
    let access = ReadAccess {
        reader: Arc::new(StaticObjects::new(objects)),
        settings: "{}".into(),
        clock: Default::default(),
    };
    // Lists them 50 times, freeing its copy after each list (the bump
    // allocator is reset), so its own memory limit never stops it.
    let body = format!(
        "(local $i i32)
         (block $done (loop $again
           (br_if $done (i32.ge_u (local.get $i) (i32.const 50)))
           {list}
           (if (i32.load8_u (i32.const {scratch})) (then unreachable))
           (global.set $heap (i32.const 0x20000))
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br $again)))
         (i32.const {OK_REQUEUE_RET})",
        list = support::list_configmaps(),
        scratch = support::SCRATCH,
    );
    let core = support::core_module("lister", support::LIST_OBJECTS_IMPORT, &body, "");
    let plugin = runtime
        .load("lister.wasm", &support::componentize(&core, "plugin", &[]))
        .unwrap();

    let baseline = reset_peak_rss();
    let err = plugin.reconcile(&event(), access.clone()).unwrap_err();
    let peak_rss = status_bytes("VmHWM");
    let CallError::HostReadBudget {
        plugin: name,
        limit: reported,
        requested,
    } = &err
    else {
        panic!("expected the host read budget, got {err:?}");
    };
    assert_eq!(name, "lister");
    assert_eq!(*reported, limit);
    assert!(*requested > limit);
    assert!(
        err.to_string().starts_with(&format!(
            "plugin lister exceeded its host read budget of {limit} bytes"
        )),
        "{err}"
    );
    assert_eq!(err.metric_label(), "host_read_budget");
    let grown = peak_rss.saturating_sub(baseline);
    eprintln!(
        "10k objects listed until the read budget: resident memory grew by {} MiB",
        grown / MIB
    );
    // One list's copy (5 MB) and the guest's memory, never the 250 MB that
    // 50 lists would copy.
    assert!(
        grown < 96 * MIB,
        "resident memory grew by {} MiB",
        grown / MIB
    );

    // A plugin that lists once is well within its budget.
    let once = format!(
        "{} (i32.const {OK_REQUEUE_RET})",
        support::list_configmaps()
    );
    let core = support::core_module("lister-once", support::LIST_OBJECTS_IMPORT, &once, "");
    let plugin = runtime
        .load(
            "lister-once.wasm",
            &support::componentize(&core, "plugin", &[]),
        )
        .unwrap();
    assert_eq!(
        plugin.reconcile(&event(), access).unwrap().requeue_after_ms,
        Some(5000)
    );
}
