//! Startup with many kinds and objects: a release `kubewasm run` with the
//! probe plugin (which subscribes to every `Gadget`) started against a
//! fresh private control plane holding 50 Gadget CRDs with 1000 objects
//! each.
//!
//!     cargo bench -p kubewasm-e2e --bench startup [-- --kinds 50 --per-kind 1000 --namespaces 10]
//!
//! The objects (~1 KB each) already carry the probe's mark, so the first
//! pass calls the plugin once per object and writes nothing: what is
//! measured is listing, caching and the first reconcile of everything.
//! Polled every 10 ms from the process start: the admin port bound,
//! `/readyz` 200 (every informer listed), and `kubewasm_reconciles_total`
//! reaching one per object (the first pass). Peak RSS (`VmHWM`) at ready
//! and after the first pass, RSS after, and the host's CPU seconds. Results
//! are written down in `docs/benchmarks.md`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kubewasm_e2e::host::{self, Host, use_release_binary};
use kubewasm_e2e::{ControlPlane, crd, eventually, process};
use serde_json::json;

struct Args {
    kinds: usize,
    per_kind: usize,
    namespaces: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let number = |flag: &str, default: usize| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .map_or(default, |v| {
                v.parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| panic!("{flag} needs a positive number"))
            })
    };
    Args {
        kinds: number("--kinds", 50),
        per_kind: number("--per-kind", 1000),
        namespaces: number("--namespaces", 10),
    }
}

fn group(i: usize) -> String {
    format!("g{i:02}.bench.kubewasm.dev")
}

fn gadgets(client: &kube::Client, i: usize, namespace: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(&group(i), "v1", "Gadget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "gadgets");
    Api::namespaced_with(client.clone(), namespace, &resource)
}

async fn prepare(args: &Args) -> &'static ControlPlane {
    let cluster = ControlPlane::private("startup", &[])
        .await
        .expect("a private control plane");
    let client = cluster.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for n in 0..args.namespaces {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("startup-{n}")}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for i in 0..args.kinds {
        crds.create(
            &PostParams::default(),
            &crd::schemaless(&group(i), "Gadget", true),
        )
        .await
        .unwrap();
    }
    // Served once each group answers a list.
    for i in 0..args.kinds {
        eventually(Duration::from_secs(60), || async {
            gadgets(&client, i, "startup-0")
                .list(&Default::default())
                .await?;
            Ok(())
        })
        .await
        .expect("the CRD is served");
    }
    let payload = "x".repeat(800);
    let started = Instant::now();
    let total = args.kinds * args.per_kind;
    futures::stream::iter(0..total)
        .map(|n| {
            let (kind, index) = (n / args.per_kind, n % args.per_kind);
            let ns = format!("startup-{}", index % args.namespaces);
            let api = gadgets(&client, kind, &ns);
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": format!("{}/v1", group(kind)),
                "kind": "Gadget",
                "metadata": {
                    "name": format!("gadget-{index:05}"),
                    // Already marked: the first pass writes nothing.
                    "annotations": {"probe.kubewasm.dev/mark": "seen"}
                },
                "spec": {"payload": payload}
            }))
            .unwrap();
            async move { api.create(&PostParams::default(), &object).await }
        })
        .buffer_unordered(64)
        .try_collect::<Vec<_>>()
        .await
        .expect("creating the objects");
    println!(
        "created {} CRDs and {total} objects in {:.1} s",
        args.kinds,
        started.elapsed().as_secs_f64()
    );
    cluster
}

fn reconciles(host: &Host) -> f64 {
    host.metrics()
        .map(|m| {
            m.lines()
                .filter(|l| l.starts_with("kubewasm_reconciles_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

async fn measure(cluster: &ControlPlane, args: &Args) {
    let total = (args.kinds * args.per_kind) as f64;
    let started = Instant::now();
    let host = Host::start_on(
        cluster,
        &[("probe", None)],
        &["--log", "info", "--concurrency", "16"],
    );
    let pid = host.pid();
    let poll = Duration::from_millis(10);
    let mut bound = None;
    let mut ready = None;
    let mut ready_peak = 0.0;
    let deadline = started + Duration::from_secs(1800);
    while Instant::now() < deadline {
        if bound.is_none() && host.admin_addr().is_some() {
            bound = Some(started.elapsed());
        }
        if let (None, Some(addr)) = (ready, host.admin_addr())
            && host::http_get(addr, "/readyz").is_ok_and(|(status, _)| status == 200)
        {
            ready = Some(started.elapsed());
            ready_peak = process::memory(pid).map_or(0.0, |m| m.peak);
        }
        if ready.is_some() && reconciles(&host) >= total {
            break;
        }
        tokio::time::sleep(poll).await;
    }
    let first_pass = started.elapsed();
    let (rss, peak) = process::memory(pid).map_or((0.0, 0.0), |m| (m.rss, m.peak));
    let cpu = process::cpu_seconds(pid).unwrap_or_default();
    let reconciled = reconciles(&host);
    let secs = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64()));
    println!(
        "{} kinds x {} objects: admin port {}, ready (every informer listed) {}, first pass ({reconciled:.0} reconciles) {:.2} s",
        args.kinds,
        args.per_kind,
        secs(bound),
        secs(ready),
        first_pass.as_secs_f64(),
    );
    println!(
        "  peak RSS at ready {ready_peak:.1} MiB, peak after the first pass {peak:.1} MiB, RSS then {rss:.1} MiB; CPU {cpu:.1} s"
    );
}

fn main() {
    let args = args();
    use_release_binary();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let cluster = prepare(&args).await;
        measure(cluster, &args).await;
        cluster.down().await;
    });
}
