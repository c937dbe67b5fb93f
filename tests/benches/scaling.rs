//! Scaling past one replica: the same burst of ConfigMaps labelled by 1, 2
//! and 3 `kubewasm run --shard-ring` replicas (release build, the
//! `bench-labeller` plugin), each replica count on a fresh private control
//! plane.
//!
//!     cargo bench -p kubewasm-e2e --bench scaling [-- --objects 20000 --namespaces 100 --replicas 1,2,3]
//!
//! Per run: the replicas start and settle on one ring view (their Leases
//! all acknowledge it); a warm-up ConfigMap in every namespace is labelled
//! (every replica synced and writing); the bench samples each replica's CPU
//! time (`/proc/PID/stat`), creates N ConfigMaps spread over the namespaces
//! (32 requests in flight) and watches them until all are labelled. It
//! prints converge time, objects/s, p50/p99 create → labelled, and per
//! replica: its share of the hash space, reconciles, CPU seconds, RSS after
//! and peak RSS (`VmHWM`). Results are written down in `docs/benchmarks.md`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use kubewasm::cluster::shard::{self, MemberId, RING_LABEL, VIEW_ANNOTATION};
use kubewasm_e2e::host::{self, Host, use_release_binary};
use kubewasm_e2e::{ControlPlane, eventually, process};
use serde_json::json;

const LABEL: &str = "bench.kubewasm.dev/seen";
const RING_NAME: &str = "bench";
const LEASES: &str = "kubewasm-bench";

struct Args {
    objects: usize,
    namespaces: usize,
    replicas: Vec<usize>,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let number = |flag: &str, default: usize| {
        value(flag).map_or(default, |v| {
            v.parse()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| panic!("{flag} needs a positive number"))
        })
    };
    Args {
        objects: number("--objects", 20_000),
        namespaces: number("--namespaces", 100),
        replicas: value("--replicas").map_or(vec![1, 2, 3], |v| {
            v.split(',')
                .map(|n| n.parse().expect("--replicas: numbers, e.g. 1,2,3"))
                .collect()
        }),
    }
}

fn namespace(i: usize) -> String {
    format!("bench-{i:03}")
}

/// About 2 KB, four keys, like the side-by-side bench's objects.
fn config_map(name: &str) -> ConfigMap {
    let value = "x".repeat(500);
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": {"a": value, "b": value, "c": value, "d": value}
    }))
    .expect("a valid ConfigMap")
}

fn is_labelled(cm: &ConfigMap) -> bool {
    cm.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL))
        .is_some_and(|v| v == "true")
}

/// A release `kubewasm run` replica of the ring.
fn start_replica(cluster: &ControlPlane, i: usize) -> Host {
    let mut command = host::command(cluster);
    command.env("POD_NAME", format!("replica-{i}"));
    let plugins = host::example_plugins(&[(
        "bench-labeller",
        Some(json!({"label": LABEL, "value": "true"})),
    )]);
    let args = [
        "--shard-ring",
        RING_NAME,
        "--leader-elect-namespace",
        LEASES,
        "--concurrency",
        "16",
        "--log",
        "info",
    ];
    Host::spawn_command(command, plugins, &args)
}

/// Waits until `replicas` member Leases all acknowledge the view of their set.
async fn settled(client: &kube::Client, replicas: usize) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASES);
    eventually(Duration::from_secs(120), || async {
        let list = leases
            .list(&ListParams::default().labels(&format!("{RING_LABEL}={RING_NAME}")))
            .await?;
        let ids: BTreeSet<MemberId> = list
            .items
            .iter()
            .filter_map(|l| {
                l.spec
                    .as_ref()?
                    .holder_identity
                    .as_deref()
                    .map(MemberId::from)
            })
            .collect();
        anyhow::ensure!(ids.len() == replicas, "{} members", ids.len());
        let view = shard::view(&ids);
        let acknowledged = list.items.iter().all(|l| {
            l.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(VIEW_ANNOTATION))
                == Some(&view)
        });
        anyhow::ensure!(acknowledged, "not every member acknowledged {view}");
        Ok(())
    })
    .await
    .expect("the replicas settle on one ring view");
}

#[derive(Default)]
struct Timeline {
    sent: HashMap<String, Instant>,
    labelled: HashMap<String, Instant>,
}

async fn measure(args: &Args, replicas: usize) {
    let cluster = ControlPlane::private(&format!("scaling-{replicas}"), &[])
        .await
        .expect("a private control plane");
    let client = cluster.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in std::iter::once(LEASES.to_string()).chain((0..args.namespaces).map(namespace)) {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let hosts: Vec<Host> = (0..replicas).map(|i| start_replica(cluster, i)).collect();
    settled(&client, replicas).await;
    // Warm-up: one object per namespace, so every replica is synced and writing.
    for i in 0..args.namespaces {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace(i));
        api.create(&PostParams::default(), &config_map("warm-up"))
            .await
            .unwrap();
    }
    let all: Api<ConfigMap> = Api::all(client.clone());
    eventually(Duration::from_secs(300), || async {
        let list = all.list(&ListParams::default()).await?;
        let labelled = list.items.iter().filter(|cm| is_labelled(cm)).count();
        anyhow::ensure!(labelled >= args.namespaces, "{labelled} warm-ups labelled");
        Ok(())
    })
    .await
    .expect("every warm-up object labelled");

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let objects = args.objects;
    let watch = {
        let timeline = timeline.clone();
        let stream = watcher(all.clone(), watcher::Config::default());
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.try_next().await.expect("bench watch") {
                let now = Instant::now();
                let (watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) = event else {
                    continue;
                };
                let name = cm.metadata.name.clone().unwrap_or_default();
                // Only the burst's objects (not the warm-ups, nor the API
                // server's own ConfigMap in kube-system, labelled too).
                if is_labelled(&cm) && name.starts_with("cm-") {
                    let mut t = timeline.lock().unwrap();
                    let key = format!("{}/{name}", cm.metadata.namespace.unwrap_or_default());
                    t.labelled.entry(key).or_insert(now);
                    if t.labelled.len() >= objects {
                        return;
                    }
                }
            }
        })
    };
    let cpu_before: Vec<f64> = hosts
        .iter()
        .map(|h| process::cpu_seconds(h.pid()).unwrap_or_default())
        .collect();
    let start = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let (client, timeline) = (client.clone(), timeline.clone());
            let ns = namespace(i % args.namespaces);
            async move {
                let name = format!("cm-{i:06}");
                let api: Api<ConfigMap> = Api::namespaced(client, &ns);
                timeline
                    .lock()
                    .unwrap()
                    .sent
                    .insert(format!("{ns}/{name}"), Instant::now());
                api.create(&PostParams::default(), &config_map(&name)).await
            }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .expect("creating the objects");
    tokio::time::timeout(Duration::from_secs(1800), watch)
        .await
        .expect("every object labelled within 30 minutes")
        .expect("bench watch task");
    let t = std::mem::take(&mut *timeline.lock().unwrap());
    let mut latencies: Vec<Duration> = t
        .sent
        .iter()
        .map(|(key, sent)| t.labelled[key].duration_since(*sent))
        .collect();
    latencies.sort();
    let converge = t.labelled.values().max().unwrap().duration_since(start);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{replicas} replica(s), {objects} objects in {} namespaces: converge {:.1} s ({:.0} objects/s), p50 {:.0} ms, p99 {:.0} ms",
        args.namespaces,
        converge.as_secs_f64(),
        objects as f64 / converge.as_secs_f64(),
        ms(kubewasm_e2e::sidebyside::percentile(&latencies, 50.0)),
        ms(kubewasm_e2e::sidebyside::percentile(&latencies, 99.0)),
    );
    let mut cpu_total = 0.0;
    for (i, host) in hosts.iter().enumerate() {
        let cpu = process::cpu_seconds(host.pid()).unwrap_or_default() - cpu_before[i];
        cpu_total += cpu;
        let memory = process::memory(host.pid());
        let (rss, peak) = memory.map_or((0.0, 0.0), |m| (m.rss, m.peak));
        let reconciles = host
            .metrics()
            .map(|m| {
                m.lines()
                    .filter(|l| l.starts_with("kubewasm_reconciles_total{"))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>()
            })
            .unwrap_or(0.0);
        let cached = host.metric("kubewasm_cached_objects{group=\"\",kind=\"ConfigMap\"}");
        println!(
            "  replica-{i}: share {:.3}, reconciles {reconciles:.0}, cached ConfigMaps {cached:.0}, CPU {cpu:.1} s, RSS {rss:.1} MiB, peak {peak:.1} MiB",
            host.metric("kubewasm_shard_share"),
        );
    }
    println!(
        "  all replicas: CPU {cpu_total:.1} s ({:.3} ms per object)",
        cpu_total * 1000.0 / objects as f64
    );
    drop(hosts);
    cluster.down().await;
}

fn main() {
    let args = args();
    use_release_binary();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    println!(
        "scaling bench: {} objects (~2 KB) over {} namespaces, replicas {:?}, 16 workers each",
        args.objects, args.namespaces, args.replicas
    );
    for &replicas in &args.replicas {
        runtime.block_on(measure(&args, replicas));
    }
}
