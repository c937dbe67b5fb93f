//! The side-by-side benchmark's native peer (docs/design/performance.md §1):
//! a kube-rs `Controller` doing the kubewasm `bench-labeller` plugin's work.
//! Every ConfigMap whose label `bench.kubewasm.dev/seen` is not `"true"` gets
//! it by server-side apply (field manager `bench/kube-rs`); a labelled one
//! gets nothing. What kube-rs' examples build, nothing tuned:
//!
//!     kube-rs-labeller [--workers 16] [--namespace NS] [--strip-managed-fields] [--qps N]
//!
//! The cluster comes from `KUBECONFIG` (or in-cluster config), as
//! `Client::try_default` finds it. `--strip-managed-fields` clears
//! managedFields before objects reach the cache (the kube.rs "Optimization"
//! guide's reflector). Without `--qps` requests are not limited on the
//! client (kube-rs sets no limit); with it, writes are paced to N per second.
//! Once a second, when anything happened, it logs how many ConfigMaps it
//! reconciled and labelled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use kube_runtime::controller::{self, Action, Controller};
use kube_runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The label every controller of the benchmark sets, and its value.
const LABEL: &str = "bench.kubewasm.dev/seen";
const VALUE: &str = "true";
const FIELD_MANAGER: &str = "bench/kube-rs";

#[derive(Parser, Debug)]
#[command(about = "kube-rs Controller labelling ConfigMaps (the kubewasm benchmark's peer)")]
struct Args {
    /// Reconciles running at once (`controller::Config::concurrency`; 0:
    /// unbounded).
    #[arg(long, default_value_t = 16)]
    workers: u16,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
    /// Clear managedFields before objects are cached (a reflector fed by a
    /// modified watcher stream, into `Controller::for_stream`).
    #[arg(long)]
    strip_managed_fields: bool,
    /// At most this many writes per second (default: no client limit).
    #[arg(long)]
    qps: Option<f64>,
}

/// What reconciles share.
struct Context {
    client: Client,
    /// The earliest moment the next write may be sent, under `--qps`.
    pace: Option<(Duration, Mutex<Instant>)>,
    reconciled: AtomicU64,
    applied: AtomicU64,
}

impl Context {
    /// Waits for this write's slot: one every `1/qps` seconds.
    async fn wait_turn(&self) {
        let Some((interval, next)) = &self.pace else {
            return;
        };
        let slot = {
            let mut next = next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + *interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, kube::Error> {
    ctx.reconciled.fetch_add(1, Ordering::Relaxed);
    if cm.labels().get(LABEL).map(String::as_str) == Some(VALUE) {
        return Ok(Action::await_change());
    }
    let namespace = cm.namespace().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let applied = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": cm.name_any(), "labels": {LABEL: VALUE}},
    });
    ctx.wait_turn().await;
    api.patch(
        &cm.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(applied),
    )
    .await?;
    ctx.applied.fetch_add(1, Ordering::Relaxed);
    Ok(Action::await_change())
}

fn error_policy(cm: Arc<ConfigMap>, error: &kube::Error, _ctx: Arc<Context>) -> Action {
    eprintln!(
        "kube-rs-labeller: {}/{}: {error}",
        cm.namespace().unwrap_or_default(),
        cm.name_any()
    );
    Action::requeue(Duration::from_secs(1))
}

/// Logs the counts once a second while they change.
async fn report(ctx: Arc<Context>) {
    let mut last = (0, 0);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let now = (
            ctx.reconciled.load(Ordering::Relaxed),
            ctx.applied.load(Ordering::Relaxed),
        );
        if now != last {
            eprintln!(
                "kube-rs-labeller: reconciled {} (+{}), labelled {} (+{})",
                now.0,
                now.0 - last.0,
                now.1,
                now.1 - last.1
            );
            last = now;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(qps) = args.qps {
        anyhow::ensure!(qps.is_finite() && qps > 0.0, "--qps must be positive");
    }
    let client = Client::try_default().await?;
    let api: Api<ConfigMap> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context {
        client,
        pace: args.qps.map(|qps| {
            (
                Duration::from_secs_f64(1.0 / qps),
                Mutex::new(Instant::now()),
            )
        }),
        reconciled: AtomicU64::new(0),
        applied: AtomicU64::new(0),
    });
    tokio::spawn(report(ctx.clone()));
    let config = controller::Config::default().concurrency(args.workers);
    let watch = watcher::Config::default().any_semantic();
    let controller = if args.strip_managed_fields {
        let (reader, writer) = reflector::store();
        let stream = watcher(api, watch)
            .default_backoff()
            .modify(|cm| cm.managed_fields_mut().clear())
            .reflect(writer)
            .applied_objects();
        Controller::for_stream(stream, reader)
    } else {
        Controller::new(api, watch)
    };
    eprintln!(
        "kube-rs-labeller: started (workers {}, namespace {}, strip managedFields {}, qps {})",
        args.workers,
        args.namespace.as_deref().unwrap_or("(all)"),
        args.strip_managed_fields,
        args.qps.map_or("none".into(), |q| q.to_string()),
    );
    controller
        .with_config(config)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| std::future::ready(()))
        .await;
    Ok(())
}
