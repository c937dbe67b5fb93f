//! Throughput and latency of the whole loop: objects created in the API
//! server → watch event → queue → plugin → server-side apply → the change
//! visible in the API server, through a real `kubewasm run` (release build)
//! and the real control plane.
//!
//!     cargo bench -p kubewasm-e2e --bench throughput [-- --objects N]
//!
//! Uses the cluster in `KUBEWASM_TEST_KUBECONFIG`, or starts one. For each
//! configuration (client-go's old 20/30 client rate limit, then none, the
//! host's default, so the host's own cost shows), a fresh namespace labelled `team=bench` and a
//! host running `label-propagator` (copy `team`) confined to it. Once the
//! host has labelled a first object, the bench creates N ConfigMaps (32
//! requests in flight), or 100 one after the other, and watches the
//! namespace. An object's latency runs
//! from the moment its create request is sent to the moment the bench's
//! watch sees it carry the label; the run's time from the first create sent
//! to the last object labelled. The host's resident memory is read from
//! `/proc` when all are done. Results are written down in `tests/README.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{Host, use_release_binary};
use kubewasm_e2e::process;
use kubewasm_e2e::sidebyside::percentile;
use serde_json::json;

/// One run of the bench: the host's client rate limit, and how the objects
/// arrive.
struct Config {
    name: &'static str,
    args: &'static [&'static str],
    arrival: Arrival,
}

#[derive(Clone, Copy, PartialEq)]
enum Arrival {
    /// All N created at once, 32 requests in flight.
    Burst,
    /// At most 100, each created once the previous one is labelled: the
    /// latency of one change on an idle host. (Under a 20/30 client limit
    /// the 31st object on would wait for a token, 50 ms apart.)
    OneAtATime,
}

const CONFIGS: [Config; 3] = [
    Config {
        name: "burst, client-go's old rate limit (--kube-qps 20 --kube-burst 30)",
        args: &["--kube-qps", "20", "--kube-burst", "30"],
        arrival: Arrival::Burst,
    },
    Config {
        name: "burst, no client rate limit (the default)",
        args: &[],
        arrival: Arrival::Burst,
    },
    Config {
        name: "one at a time, no client rate limit",
        args: &[],
        arrival: Arrival::OneAtATime,
    },
];

/// When each object was sent and when it was first seen labelled.
#[derive(Default)]
struct Timeline {
    sent: HashMap<String, Instant>,
    labelled: HashMap<String, Instant>,
}

fn objects_arg() -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--objects") {
        Some(i) => args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .filter(|&n| n > 0)
            .expect("--objects needs a positive number"),
        None => 1000,
    }
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": {"app.properties": "color=blue\nreplicas=3\n"}
    }))
    .expect("a valid ConfigMap")
}

fn is_labelled(cm: &ConfigMap) -> bool {
    cm.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("team"))
        .is_some_and(|v| v == "bench")
}

async fn measure(config: &Config, objects: usize) {
    let objects = match config.arrival {
        Arrival::Burst => objects,
        Arrival::OneAtATime => objects.min(100),
    };
    let ns = TestNamespace::create("bench-loop").await.unwrap();
    ns.label(json!({"team": "bench"})).await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();

    // Info logs only: a debug line per reconcile would be part of the cost.
    let mut args = vec!["--namespace", ns.name(), "--log", "info"];
    args.extend_from_slice(config.args);
    let host = Host::start(
        &ns,
        &[("label-propagator", Some(json!({"labels": ["team"]})))],
        &args,
    );

    // The host is up, synced and writing once it labels a first object.
    configmaps
        .create(&PostParams::default(), &config_map("warm-up"))
        .await
        .unwrap();
    kubewasm_e2e::eventually(Duration::from_secs(300), || {
        let configmaps = configmaps.clone();
        async move {
            let cm = configmaps.get("warm-up").await?;
            anyhow::ensure!(is_labelled(&cm), "warm-up not labelled yet");
            Ok(())
        }
    })
    .await
    .expect("the host labels a first ConfigMap");

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let watch = {
        let timeline = timeline.clone();
        let stream = watcher(configmaps.clone(), watcher::Config::default());
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.try_next().await.expect("bench watch") {
                let now = Instant::now();
                let (watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) = event else {
                    continue;
                };
                if is_labelled(&cm) {
                    let name = cm.metadata.name.unwrap_or_default();
                    let mut t = timeline.lock().unwrap();
                    t.labelled.entry(name).or_insert(now);
                    if t.labelled.len() > objects {
                        return; // every object plus the warm-up
                    }
                }
            }
        })
    };

    let start = Instant::now();
    let create = |i: usize| {
        let configmaps = configmaps.clone();
        let timeline = timeline.clone();
        async move {
            let name = format!("cm-{i:05}");
            let sent = Instant::now();
            timeline.lock().unwrap().sent.insert(name.clone(), sent);
            configmaps
                .create(&PostParams::default(), &config_map(&name))
                .await?;
            Ok::<_, kube::Error>(name)
        }
    };
    match config.arrival {
        Arrival::Burst => {
            futures::stream::iter(0..objects)
                .map(create)
                .buffer_unordered(32)
                .try_collect::<Vec<_>>()
                .await
                .expect("creating the objects");
        }
        Arrival::OneAtATime => {
            for i in 0..objects {
                let name = create(i).await.expect("creating an object");
                while !timeline.lock().unwrap().labelled.contains_key(&name) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    let created = start.elapsed();

    tokio::time::timeout(Duration::from_secs(1800), watch)
        .await
        .expect("every object labelled within 30 minutes")
        .expect("bench watch task");
    let rss = process::memory(host.pid()).map(|m| m.rss);

    let t = std::mem::take(&mut *timeline.lock().unwrap());
    let mut latencies: Vec<Duration> = t
        .sent
        .iter()
        .map(|(name, sent)| t.labelled[name].duration_since(*sent))
        .collect();
    latencies.sort();
    let last = t.sent.keys().map(|n| t.labelled[n]).max().unwrap();
    let total = last.duration_since(start);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("{}", config.name);
    println!(
        "  {objects} objects created in {:.2} s; all labelled {:.2} s after the first create ({:.0} objects/s)",
        created.as_secs_f64(),
        total.as_secs_f64(),
        objects as f64 / total.as_secs_f64(),
    );
    println!(
        "  latency create sent -> label seen: p50 {:.0} ms  p90 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(latencies[latencies.len() - 1]),
    );
    match rss {
        Some(rss) => println!("  host resident memory afterwards: {rss:.1} MiB"),
        None => println!("  host resident memory: not readable"),
    }
    drop(host);
    ns.delete().await.unwrap();
}

fn main() {
    let objects = objects_arg();
    use_release_binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for config in &CONFIGS {
            measure(config, objects).await;
        }
    });
}
