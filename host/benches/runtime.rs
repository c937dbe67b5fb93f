//! Runtime cost of a plugin call: fresh versus reused instance, 1 KB and
//! 10 KB objects, with and without epoch interruption; compile time, peak
//! memory while compiling, artefact size and precompiled (cached) load time.
//!
//! ```text
//! cargo bench -p kubewasm --bench runtime -- [--strategy cranelift|winch]
//!     [--compile-runs N] [--keep-resident-mib 1,8,32] [--interleave]
//!     [PLUGIN.wasm [SETTINGS.json]]
//! ```
//!
//! Without arguments it uses `plugins/dist/label-propagator.wasm` when built
//! (`plugins/build.sh`), else a hand-written WAT plugin. `--strategy` picks
//! the compiler of every runtime (default cranelift). The cold load (compile,
//! validate, describe; no cache) runs `--compile-runs` times (default 3),
//! each in a fresh process of this binary (`--compile-once`), which reports
//! its time and peak resident memory (`VmHWM`). With
//! `--keep-resident-mib 1,8,32,64` it also measures fresh-instance calls for
//! each pooling `linear_memory_keep_resident` value, and the process's RSS
//! after 16 slots were used. `--interleave` instead compares fresh-instance
//! calls of the plugin compiled by Cranelift and by Winch, in alternating
//! rounds (the per-call ratio on a busy machine). Results and their
//! interpretation are in `host/benches/README.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::cluster::cache::StaticObjects;
use kubewasm::contract::Event;
use kubewasm::runtime::{CompilerStrategy, Plugin, ReadAccess, Runtime, RuntimeConfig};
use serde_json::{Value, json};

const CALLS: usize = 2000;

fn object(bytes: usize) -> Value {
    let mut object = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bench", "namespace": "team-a", "uid": "5b1c", "resourceVersion": "42",
                     "labels": {"app": "bench", "kubewasm.dev/hash": "true",
                                "kubewasm.dev/validate": "true"}},
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

fn runtime(
    strategy: CompilerStrategy,
    pooling: bool,
    epochs: bool,
    cache: Option<PathBuf>,
) -> Runtime {
    Runtime::new(RuntimeConfig {
        pool_instances: if pooling { 16 } else { 0 },
        epoch_interruption: epochs,
        cache_dir: cache,
        strategy,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A `/proc/self/status` field (`VmRSS`, `VmHWM`) in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn rss_mib() -> f64 {
    status_mib("VmRSS")
}

/// CPU time (user and system, all threads) this process has used, in ms,
/// from `/proc/self/stat` (fields 14 and 15, in ticks of 1/100 s).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: f64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    ticks * 10.0
}

/// `--compile-once`: one cold load in this (fresh) process; prints
/// `compile-once MS RSS_BEFORE_MIB PEAK_RSS_MIB CPU_MS` for the parent.
fn compile_once(strategy: CompilerStrategy, name: &str, bytes: &[u8]) {
    let rt = runtime(strategy, true, true, None);
    let before = rss_mib();
    let cpu = cpu_ms();
    let start = Instant::now();
    rt.load(name, bytes).expect("load");
    let ms = start.elapsed().as_secs_f64() * 1e3;
    println!(
        "compile-once {ms:.0} {before:.1} {:.1} {:.0}",
        status_mib("VmHWM"),
        cpu_ms() - cpu
    );
}

/// Cold loads, each in a fresh process of this binary: (milliseconds,
/// resident MiB before the load, peak resident MiB, CPU milliseconds) per
/// run.
fn cold_loads(runs: usize, strategy: &str, plugin_args: &[String]) -> Vec<(f64, f64, f64, f64)> {
    let exe = std::env::current_exe().expect("own path");
    (0..runs)
        .map(|_| {
            let out = std::process::Command::new(&exe)
                .args(["--compile-once", "--strategy", strategy])
                .args(plugin_args)
                .output()
                .expect("run --compile-once");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix("compile-once "))
                .unwrap_or_else(|| {
                    panic!(
                        "--compile-once failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                });
            let n: Vec<f64> = line
                .split(' ')
                .map(|v| v.parse().expect("number"))
                .collect();
            (n[0], n[1], n[2], n[3])
        })
        .collect()
}

/// Minimum and median of `values`.
fn min_median(mut values: Vec<f64>) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    (values[0], values[values.len() / 2])
}

/// Fresh-instance calls per keep-resident value: the pooling allocator's
/// reset of a slot is the verified reset between calls; keeping more pages
/// resident makes it a copy of dirtied pages instead of unmap-and-fault.
fn keep_resident(
    strategy: CompilerStrategy,
    values: &[usize],
    name: &str,
    bytes: &[u8],
    settings: &str,
    cache: PathBuf,
) {
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
            strategy,
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

/// `--interleave`: fresh-instance calls (pooling, epochs on) of the plugin
/// compiled by Cranelift and by Winch, alternating in rounds so that load
/// from other processes falls on both alike; median / p90 of each and the
/// ratio of the medians.
fn interleaved(name: &str, bytes: &[u8], settings: &str) {
    const ROUNDS: usize = 5;
    let plugins: Vec<Plugin> = [CompilerStrategy::Cranelift, CompilerStrategy::Winch]
        .into_iter()
        .map(|s| {
            runtime(s, true, true, None)
                .load(name, bytes)
                .expect("load")
        })
        .collect();
    println!(
        "\nfresh instance per call, interleaved ({ROUNDS} rounds of {} calls each; median / p90, µs)",
        CALLS / ROUNDS
    );
    println!(
        "{:<8} {:>18} {:>18} {:>14}",
        "object", "cranelift", "winch", "winch / cran."
    );
    for size in [1024, 10 * 1024] {
        let ev = event(size);
        let first = plugins[0].reconcile(&ev, access(settings)).expect("call");
        assert_eq!(
            plugins[1].reconcile(&ev, access(settings)).expect("call"),
            first,
            "the two compilers' outcomes differ"
        );
        let mut samples = [Vec::new(), Vec::new()];
        for _ in 0..ROUNDS {
            for (plugin, samples) in plugins.iter().zip(samples.iter_mut()) {
                for _ in 0..CALLS / ROUNDS / 10 {
                    plugin.reconcile(&ev, access(settings)).expect("call");
                }
                for _ in 0..CALLS / ROUNDS {
                    let start = Instant::now();
                    plugin.reconcile(&ev, access(settings)).expect("call");
                    samples.push(start.elapsed());
                }
            }
        }
        let [c, w] = samples.map(|mut v| {
            v.sort();
            (v[v.len() / 2], v[v.len() * 9 / 10])
        });
        println!(
            "{:<8} {:>18} {:>18} {:>14.2}",
            format!("{} KB", size / 1024),
            format!("{} / {}", us(c.0), us(c.1)),
            format!("{} / {}", us(w.0), us(w.1)),
            w.0.as_secs_f64() / c.0.as_secs_f64()
        );
    }
}

/// Flags that take a value; everything else starting with `--` is a switch
/// (cargo passes `--bench`).
const VALUED: &[&str] = &["--keep-resident-mib", "--strategy", "--compile-runs"];

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
    };
    let keep_resident_values: Option<Vec<usize>> = value("--keep-resident-mib").map(|v| {
        v.split(',')
            .map(|n| {
                n.parse()
                    .expect("--keep-resident-mib: numbers, e.g. 1,8,32")
            })
            .collect()
    });
    let strategy_name = value("--strategy").map_or("cranelift", String::as_str);
    let strategy = match strategy_name {
        "cranelift" => CompilerStrategy::Cranelift,
        "winch" => CompilerStrategy::Winch,
        other => panic!("--strategy {other}: cranelift or winch"),
    };
    let compile_runs: usize = value("--compile-runs")
        .map_or(3, |n| n.parse().expect("--compile-runs: a number"))
        .max(1);
    let args: Vec<String> = argv
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            let flag_value = *i > 0 && VALUED.contains(&argv[i - 1].as_str());
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
    if argv.iter().any(|a| a == "--compile-once") {
        compile_once(strategy, &name, &bytes);
        return;
    }
    let settings = match args.get(1) {
        Some(path) => std::fs::read_to_string(path).expect("read settings"),
        None if default_plugin.exists() && args.is_empty() => {
            r#"{"labels": ["team", "cost-center"]}"#.to_string()
        }
        None => "{}".to_string(),
    };
    println!("plugin: {name} ({} KiB)", bytes.len() / 1024);
    if argv.iter().any(|a| a == "--interleave") {
        interleaved(&name, &bytes, &settings);
        return;
    }
    println!(
        "machine: {} cores; compiler: {strategy_name}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Cold loads in fresh processes, then cached-load times. The cache's
    // HMAC key lands beside the directory, so both sit in a temporary
    // directory.
    let cold = cold_loads(compile_runs, strategy_name, &args);
    let (cold_min, cold_median) = min_median(cold.iter().map(|c| c.0).collect());
    let (_, before_median) = min_median(cold.iter().map(|c| c.1).collect());
    let (_, peak_median) = min_median(cold.iter().map(|c| c.2).collect());
    let peak_max = cold.iter().map(|c| c.2).fold(0.0, f64::max);
    let (_, cpu_median) = min_median(cold.iter().map(|c| c.3).collect());
    let cache_parent = tempfile::tempdir().expect("tempdir");
    let cache = cache_parent.path().join("compiled");
    runtime(strategy, true, true, Some(cache.clone()))
        .load(&name, &bytes)
        .expect("load");
    let (cached, _) = measure(10, || {
        let rt = runtime(strategy, true, true, Some(cache.clone()));
        rt.load(&name, &bytes).expect("load");
        assert_eq!(rt.compile_cache_stats().hits, 1, "cache hit expected");
    });
    println!(
        "\nload (compile + validate + describe), {compile_runs} fresh processes: \
         min {cold_min:.0} ms, median {cold_median:.0} ms (CPU, all threads: median {cpu_median:.0} ms)"
    );
    println!(
        "peak RSS of those processes: median {peak_median:.1} MiB, max {peak_max:.1} MiB \
         ({before_median:.1} MiB before the load)"
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
    println!(
        "compiled artefact: {} KiB (the component: {} KiB)",
        artefact.len() / 1024,
        bytes.len() / 1024
    );

    println!("\nper call (median / p90, µs, {CALLS} calls)");
    println!(
        "{:<10} {:<8} {:<8} {:>18} {:>18}",
        "allocator", "epochs", "object", "fresh instance", "reused instance"
    );
    for (pooling, epochs) in [(true, true), (true, false), (false, true)] {
        let rt = runtime(strategy, pooling, epochs, Some(cache.clone()));
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
        keep_resident(strategy, &values, &name, &bytes, &settings, cache);
    }
}
