//! Runtime cost of a plugin call: fresh versus reused instance, 1 KB and
//! 10 KB objects, with and without epoch interruption; compile time and
//! precompiled (cached) load time.
//!
//! ```text
//! cargo bench -p kubewasm --bench runtime -- [PLUGIN.wasm [SETTINGS.json]]
//! ```
//!
//! Without arguments it uses `plugins/dist/label-propagator.wasm` when built
//! (`plugins/build.sh`), else a hand-written WAT plugin. With
//! `--keep-resident-mib 1,8,32,64` it also measures fresh-instance calls for
//! each pooling `linear_memory_keep_resident` value, and the process's RSS
//! after 16 slots were used. Results and their interpretation are in
//! `host/benches/README.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::cluster::cache::StaticObjects;
use kubewasm::contract::Event;
use kubewasm::runtime::{Plugin, ReadAccess, Runtime, RuntimeConfig};
use serde_json::{Value, json};

const CALLS: usize = 2000;

fn object(bytes: usize) -> Value {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bench", "namespace": "team-a", "uid": "5b1c", "resourceVersion": "42",
                     "labels": {"app": "bench"}},
        "data": {}
    });
    let base = object.to_string().len();
    let filler = "x".repeat(bytes.saturating_sub(base + 20));
    object["data"]["filler"] = Value::String(filler);
    object
}

fn event(bytes: usize) -> Event {
    support::configmap_event(object(bytes))
}

fn access(settings: &str) -> ReadAccess {
    ReadAccess {
        reader: Arc::new(StaticObjects::new([json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "team-a", "labels": {"team": "a", "cost-center": "42"}}
        })])),
        settings: settings.into(),
        clock: Default::default(),
    }
}

/// Median and 90th percentile of `calls` runs of `f`.
fn measure(calls: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    for _ in 0..calls / 10 {
        f();
    }
    let mut samples: Vec<Duration> = (0..calls)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[calls / 2], samples[calls * 9 / 10])
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn runtime(pooling: bool, epochs: bool, cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig {
        pool_instances: if pooling { 16 } else { 0 },
        epoch_interruption: epochs,
        cache_dir: cache,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// `VmRSS` of this process in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Fresh-instance calls per keep-resident value: the pooling allocator's
/// reset of a slot is the verified reset between calls; keeping more pages
/// resident makes it a copy of dirtied pages instead of unmap-and-fault.
fn keep_resident(values: &[usize], name: &str, bytes: &[u8], settings: &str, cache: PathBuf) {
    println!("\nfresh instance per call by pooling keep-resident (median / p90, µs, 1 KB)");
    println!(
        "{:>16} {:>18} {:>26}",
        "keep-resident", "fresh instance", "RSS after 16 slots (MiB)"
    );
    for &mib in values {
        let rt = Runtime::new(RuntimeConfig {
            pool_instances: 16,
            cache_dir: Some(cache.clone()),
            pool_keep_resident_bytes: mib << 20,
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let plugin: Plugin = rt.load(name, bytes).expect("load");
        let ev = event(1024);
        // Touch 16 slots at once, as 16 workers would.
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| plugin.reconcile(&ev, access(settings)).expect("call"));
            }
        });
        let (fresh, fresh90) = measure(CALLS / 4, || {
            plugin.reconcile(&ev, access(settings)).expect("call");
        });
        println!(
            "{:>13} MiB {:>18} {:>26.1}",
            mib,
            format!("{} / {}", us(fresh), us(fresh90)),
            rss_mib()
        );
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let keep_resident_values: Option<Vec<usize>> = argv
        .iter()
        .position(|a| a == "--keep-resident-mib")
        .and_then(|i| argv.get(i + 1))
        .map(|v| {
            v.split(',')
                .map(|n| {
                    n.parse()
                        .expect("--keep-resident-mib: numbers, e.g. 1,8,32")
                })
                .collect()
        });
    let args: Vec<String> = argv
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            let flag_value = *i > 0 && argv[i - 1] == "--keep-resident-mib";
            !a.starts_with("--") && !flag_value
        })
        .map(|(_, a)| a.clone())
        .collect();
    let default_plugin =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist/label-propagator.wasm");
    let (name, bytes) = match args.first() {
        Some(path) => (path.clone(), std::fs::read(path).expect("read plugin")),
        None if default_plugin.exists() => (
            default_plugin.display().to_string(),
            std::fs::read(&default_plugin).expect("read plugin"),
        ),
        None => (
            "WAT plugin (tests/support)".to_string(),
            support::plugin("wat", &format!("(i32.const {})", support::OK_REQUEUE_RET)),
        ),
    };
    let settings = match args.get(1) {
        Some(path) => std::fs::read_to_string(path).expect("read settings"),
        None if default_plugin.exists() && args.is_empty() => {
            r#"{"labels": ["team", "cost-center"]}"#.to_string()
        }
        None => "{}".to_string(),
    };
    println!("plugin: {name} ({} KiB)", bytes.len() / 1024);
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Compile and cached-load times. The cache's HMAC key lands beside the
    // directory, so both sit in a temporary directory.
    let cache_parent = tempfile::tempdir().expect("tempdir");
    let cache = cache_parent.path().join("compiled");
    let (compile, _) = measure(3, || {
        runtime(true, true, None).load(&name, &bytes).expect("load");
    });
    runtime(true, true, Some(cache.clone()))
        .load(&name, &bytes)
        .expect("load");
    let (cached, _) = measure(10, || {
        let rt = runtime(true, true, Some(cache.clone()));
        rt.load(&name, &bytes).expect("load");
        assert_eq!(rt.compile_cache_stats().hits, 1, "cache hit expected");
    });
    println!(
        "\nload (compile + validate + describe): {} ms",
        compile.as_millis()
    );
    println!(
        "load from precompiled cache:          {} ms",
        cached.as_millis()
    );
    // The part of a cached load that makes the cache tamper-evident: the
    // HMAC-SHA256 over the whole entry.
    let entry = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry");
    let artefact = std::fs::read(&entry).expect("read entry");
    let key = [7u8; 32];
    let (hmac, _) = measure(20, || {
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).expect("key");
        hmac::Mac::update(&mut mac, &artefact);
        std::hint::black_box(hmac::Mac::finalize(mac));
    });
    println!(
        "HMAC check of the {} KiB cache entry:  {} µs",
        artefact.len() / 1024,
        us(hmac)
    );

    println!("\nper call (median / p90, µs, {CALLS} calls)");
    println!(
        "{:<10} {:<8} {:<8} {:>18} {:>18}",
        "allocator", "epochs", "object", "fresh instance", "reused instance"
    );
    for (pooling, epochs) in [(true, true), (true, false), (false, true)] {
        let rt = runtime(pooling, epochs, Some(cache.clone()));
        let plugin: Plugin = rt.load(&name, &bytes).expect("load");
        for size in [1024, 10 * 1024] {
            let ev = event(size);
            let first = plugin.reconcile(&ev, access(&settings)).expect("call");
            let (fresh, fresh90) = measure(CALLS, || {
                let outcome = plugin.reconcile(&ev, access(&settings)).expect("call");
                assert_eq!(outcome, first);
            });
            let mut session = plugin.session(access(&settings)).expect("session");
            let (reused, reused90) = measure(CALLS, || {
                session.reconcile(&ev).expect("call");
            });
            println!(
                "{:<10} {:<8} {:<8} {:>18} {:>18}",
                if rt.is_pooling() {
                    "pooling"
                } else {
                    "on-demand"
                },
                if epochs { "on" } else { "off" },
                format!("{} KB", size / 1024),
                format!("{} / {}", us(fresh), us(fresh90)),
                format!("{} / {}", us(reused), us(reused90)),
            );
        }
    }
    if let Some(values) = keep_resident_values {
        keep_resident(&values, &name, &bytes, &settings, cache);
    }
}
