//! What a shadow adds to the serving call: the worker's plugin call (inline
//! when quick, [`Plugin::reconcile_inline`]) as it runs without a shadow,
//! and as it runs with one (its clock fixed, its reads captured, the job for
//! the shadow built and offered to the bounded queue). The shadow's own call
//! runs on another thread and is not part of the serving path; it costs
//! what one more call of the new version costs.
//!
//! ```text
//! cargo bench -p kubewasm --bench shadow -- [PLUGIN.wasm [SETTINGS.json]]
//! ```
//!
//! Defaults to `plugins/dist/label-propagator.wasm` (`plugins/build.sh`),
//! whose call reads the object's Namespace from the cache, so one read is
//! captured per call. The two ways alternate in rounds, so load on the
//! machine falls on both alike. Results are in `host/benches/README.md`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::cluster::cache::{ObjectReader, StaticObjects};
use kubewasm::contract::Event;
use kubewasm::contract::intent::Outcome;
use kubewasm::ops::metrics::Metrics;
use kubewasm::runtime::{Clock, Plugin, ReadAccess, Runtime, RuntimeConfig};
use kubewasm::shadow::Shadows;
use kubewasm::shadow::capture::CapturingReader;
use kubewasm::shadow::runner::{Job, Queue};
use serde_json::json;

const CALLS: usize = 2000;
const ROUNDS: usize = 5;

/// The plugin call as the worker makes it (here on this thread; the worker
/// uses a blocking one).
fn call(plugin: &Plugin, event: &Event, access: ReadAccess) -> Outcome {
    plugin.reconcile(event, access).expect("reconcile")
}

fn percentile(samples: &mut [Duration], p: usize) -> f64 {
    samples.sort();
    samples[samples.len() * p / 100].as_secs_f64() * 1e6
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = std::env::var_os("KUBEWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("plugins/dist"));
    let wasm = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| dist.join("label-propagator.wasm"));
    let settings = match (args.first(), args.get(1)) {
        (_, Some(path)) => std::fs::read_to_string(path).expect("settings"),
        (Some(_), None) => "{}".into(),
        (None, None) => {
            std::fs::read_to_string(repo.join("plugins/label-propagator/fixtures/settings.json"))
                .unwrap_or_else(|_| "{}".into())
        }
    };
    let bytes = std::fs::read(&wasm).expect("plugin component (plugins/build.sh)");
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let plugin = runtime.load("bench", &bytes).expect("load");
    let event = support::configmap_event(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bench", "namespace": "team-a", "uid": "5b1c",
                     "resourceVersion": "42", "labels": {"app": "bench"}},
        "data": {"filler": "x".repeat(800)}
    }));
    let cache: Arc<dyn ObjectReader> = Arc::new(StaticObjects::new([json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"team": "a", "cost-center": "42"}}
    })]));
    let settings: Arc<str> = settings.into();
    let (queue, mut jobs) = Queue::bounded(CALLS + 1);

    let mut without = Vec::with_capacity(CALLS * ROUNDS);
    let mut with = Vec::with_capacity(CALLS * ROUNDS);
    for round in 0..=ROUNDS {
        for _ in 0..CALLS {
            // The worker builds the event from the queued work.
            let event = event.clone();
            let start = Instant::now();
            let access = ReadAccess {
                reader: cache.clone(),
                settings: settings.clone(),
                clock: Clock::System,
            };
            call(&plugin, &event, access);
            if round > 0 {
                without.push(start.elapsed());
            }
        }
        for _ in 0..CALLS {
            let event = event.clone();
            let start = Instant::now();
            // What `Controller::call` does when the plugin has a shadow.
            let now_ms = Clock::System.read();
            let capture = Arc::new(CapturingReader::new(cache.clone()));
            let access = ReadAccess {
                reader: capture.clone(),
                settings: settings.clone(),
                clock: Clock::Fixed(now_ms),
            };
            let outcome = call(&plugin, &event, access);
            let offered = queue.offer(Job {
                event,
                now_ms,
                reads: capture.take(),
                serving: outcome.clone(),
                serving_digest: plugin.digest().to_string(),
            });
            assert!(offered);
            if round > 0 {
                with.push(start.elapsed());
            }
        }
        // The shadow's runner takes the jobs, off the serving path.
        while jobs.try_recv().is_ok() {}
    }
    println!(
        "serving call of {} ({} calls each, round 0 as warm-up), µs median / p90:",
        wasm.display(),
        CALLS * ROUNDS
    );
    let (m0, p0) = (percentile(&mut without, 50), percentile(&mut without, 90));
    let (m1, p1) = (percentile(&mut with, 50), percentile(&mut with, 90));
    println!("  without a shadow: {m0:.1} / {p0:.1}");
    println!("  with a shadow:    {m1:.1} / {p1:.1}");
    println!(
        "  added by the shadow: {:.1} µs median ({:+.1}%)",
        m1 - m0,
        (m1 - m0) / m0 * 100.0
    );

    // Without a shadow the worker only asks whether there is one.
    let shadows = Shadows::new(
        cache.clone(),
        Arc::new(|_, _, _| false),
        Arc::new(Metrics::new()),
    );
    const ASKS: u32 = 10_000_000;
    let start = Instant::now();
    for _ in 0..ASKS {
        std::hint::black_box(shadows.tap(std::hint::black_box("bench")));
    }
    println!(
        "  asking for a shadow when none is loaded: {:.2} ns",
        start.elapsed().as_secs_f64() * 1e9 / f64::from(ASKS)
    );
}
