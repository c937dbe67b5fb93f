//! What each plugin language costs the host: component size, cold compile,
//! load from the compile cache, and the time of one reconcile on a 1 KB and
//! a 10 KB object, in a fresh instance (the host's default) and a reused one.
//!
//! ```text
//! plugins/build.sh && cargo bench -p kubewasm --bench languages [-- DIR]
//! ```
//!
//! It measures the conformance plugins (`DIR/conformance-<lang>.wasm`,
//! default `plugins/dist`): the same behaviour implemented in every
//! language, so the figures compare languages, not plugins. Each call is the
//! conformance `apply` case (read the object, build one server-side apply
//! intent). Missing components are skipped and named. The table it prints
//! is in `docs/plugins/README.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::cluster::cache::StaticObjects;
use kubewasm::runtime::{Plugin, ReadAccess, Runtime, RuntimeConfig};
use serde_json::{Value, json};

const LANGUAGES: &[&str] = &["rust", "go", "c", "js", "ts", "py"];

fn object(bytes: usize) -> Value {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "subject", "namespace": "conf", "uid": "5b1c", "resourceVersion": "42",
                     "labels": {"conformance.kubewasm.dev/do": "apply"}},
        "data": {"value": "hello"}
    });
    let base = object.to_string().len();
    let filler = "x".repeat(bytes.saturating_sub(base + 20));
    object["data"]["filler"] = Value::String(filler);
    object
}

fn access() -> ReadAccess {
    ReadAccess {
        reader: Arc::new(StaticObjects::new([])),
        settings: "{}".into(),
        clock: Default::default(),
    }
}

/// Median of `calls` runs of `f`, after a tenth as many warm-up runs.
fn median(calls: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..calls.div_ceil(10) {
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
    samples[calls / 2]
}

fn runtime(cache: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: cache,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
    println!(
        "machine: {} cores; components from {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        dir.display()
    );
    println!(
        "\n| language | component | cold compile | cached load | call 1 KB fresh / reused | call 10 KB fresh / reused |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for lang in LANGUAGES {
        let path = dir.join(format!("conformance-{lang}.wasm"));
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skipped {lang}: no {}", path.display());
            continue;
        };
        let name = path.display().to_string();
        // One cold compile: seconds for the large JS and Python components.
        let start = Instant::now();
        runtime(None).load(&name, &bytes).expect("load");
        let compile = start.elapsed();

        let cache_parent = tempfile::tempdir().expect("tempdir");
        let cache = cache_parent.path().join("compiled");
        runtime(Some(cache.clone()))
            .load(&name, &bytes)
            .expect("load");
        let cached = median(5, || {
            let rt = runtime(Some(cache.clone()));
            rt.load(&name, &bytes).expect("load");
            assert_eq!(rt.compile_cache_stats().hits, 1, "cache hit expected");
        });

        let rt = runtime(Some(cache.clone()));
        let plugin: Plugin = rt.load(&name, &bytes).expect("load");
        let mut calls = Vec::new();
        for size in [1024, 10 * 1024] {
            let event = support::configmap_event(object(size));
            let expected = plugin.reconcile(&event, access()).expect("call");
            assert_eq!(expected.intents.len(), 1, "{lang}: one apply intent");
            // Fewer calls for the slow runtimes keep the run in minutes.
            let n = if bytes.len() > 4 << 20 { 100 } else { 1000 };
            let fresh = median(n, || {
                let outcome = plugin.reconcile(&event, access()).expect("call");
                assert_eq!(outcome, expected);
            });
            let mut session = plugin.session(access()).expect("session");
            let reused = median(n, || {
                session.reconcile(&event).expect("call");
            });
            calls.push(format!("{} / {} µs", us(fresh), us(reused)));
        }
        println!(
            "| {lang} | {:.1} MB | {} ms | {} ms | {} | {} |",
            bytes.len() as f64 / 1e6,
            ms(compile),
            ms(cached),
            calls[0],
            calls[1],
        );
    }
}
