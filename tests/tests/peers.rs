//! The side-by-side benchmark's three controllers (docs/design/performance.md
//! §1) do the same work on the real control plane: kubewasm with the
//! `bench-labeller` plugin, the kube-rs `Controller` peer (plain and with
//! managedFields stripped) and the client-go dynamic-informer peer, each
//! confined to a fresh namespace. Each labels 100 new ConfigMaps
//! `bench.kubewasm.dev/seen=true` by server-side apply under its own field
//! manager, once: after it has been idle 2 s no object has changed, and its
//! own count of writes is one per object (the reconcile of its own write's
//! event writes nothing).
//!
//! The peers come from `$KUBEWASM_PEER_KUBE_RS` and `$KUBEWASM_PEER_GO`
//! (tests/run.sh builds both), else are built here (cargo, and
//! tests/peers/build.sh).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kubewasm_e2e::host::{Host, example_plugins};
use kubewasm_e2e::peers::{self, LABEL, Peer, VALUE};
use kubewasm_e2e::{TestNamespace, eventually, field_managers};
use serde_json::json;

const OBJECTS: usize = 100;
const WAIT: Duration = Duration::from_secs(120);
/// How long a controller must stay quiet for its work to count as done.
const IDLE: Duration = Duration::from_secs(2);

/// What a controller says it did: reconciles (if it counts them) and writes.
struct Counts {
    reconciled: Option<u64>,
    labelled: u64,
}

/// A controller under test: how to read its counts and its log.
trait Labeller {
    fn counts(&self) -> Counts;
    fn log(&self) -> String;
}

impl Labeller for Peer {
    fn counts(&self) -> Counts {
        let (reconciled, labelled) = Peer::counts(self);
        Counts {
            reconciled: Some(reconciled),
            labelled,
        }
    }
    fn log(&self) -> String {
        Peer::log(self)
    }
}

impl Labeller for Host {
    fn counts(&self) -> Counts {
        let applied = [
            ("plugin", "bench-labeller"),
            ("type", "apply"),
            ("result", "applied"),
        ];
        Counts {
            reconciled: None,
            labelled: self
                .metric_with("kubewasm_intents_total", &applied)
                .unwrap_or(0.0) as u64,
        }
    }
    fn log(&self) -> String {
        Host::log(self)
    }
}

fn is_labelled(cm: &ConfigMap) -> bool {
    cm.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(LABEL))
        .is_some_and(|v| v == VALUE)
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": {"app.properties": "color=blue\nreplicas=3\n"}
    }))
    .expect("a valid ConfigMap")
}

/// resourceVersion of every ConfigMap named `cm-*` in the namespace.
async fn versions(api: &Api<ConfigMap>) -> anyhow::Result<BTreeMap<String, (String, bool)>> {
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|cm| {
            cm.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("cm-"))
        })
        .map(|cm| {
            let labelled = is_labelled(&cm);
            let name = cm.metadata.name.unwrap_or_default();
            (
                name,
                (cm.metadata.resource_version.unwrap_or_default(), labelled),
            )
        })
        .collect())
}

/// Waits until `controller` labels a warm-up ConfigMap (it is synced and
/// writing), creates 100 more (16 requests in flight), waits until all
/// carry the label, then checks nothing more is written once it is idle.
/// Returns the time from the first create sent to the last label seen.
async fn labels_once(ns: &TestNamespace, manager: &str, controller: &impl Labeller) -> Duration {
    let api: Api<ConfigMap> = ns.api();
    let fail = |e: anyhow::Error| -> ! { panic!("{e:#}\n---- log ----\n{}", controller.log()) };
    api.create(&PostParams::default(), &config_map("warm-up"))
        .await
        .unwrap();
    eventually(WAIT, || async {
        anyhow::ensure!(
            is_labelled(&api.get("warm-up").await?),
            "warm-up not labelled yet"
        );
        Ok(())
    })
    .await
    .unwrap_or_else(|e| fail(e));

    let start = Instant::now();
    futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &config_map(&format!("cm-{i:03}")))
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let labelled = eventually(WAIT, || async {
        let versions = versions(&api).await?;
        let done = versions.values().filter(|(_, labelled)| *labelled).count();
        anyhow::ensure!(done == OBJECTS, "{done} of {OBJECTS} labelled");
        Ok(versions)
    })
    .await
    .unwrap_or_else(|e| fail(e));
    let took = start.elapsed();

    // The reconcile of each object's own write sends nothing: once the
    // controller has been quiet for IDLE, no object has changed since it
    // was seen labelled, and it wrote once per object (and the warm-up).
    tokio::time::sleep(IDLE).await;
    let after = versions(&api).await.unwrap();
    assert_eq!(
        labelled,
        after,
        "objects changed after they were labelled\n{}",
        controller.log()
    );
    let counts = controller.counts();
    assert_eq!(
        counts.labelled,
        OBJECTS as u64 + 1,
        "writes by the controller\n{}",
        controller.log()
    );
    if let Some(reconciled) = counts.reconciled {
        assert!(
            reconciled >= 2 * (OBJECTS as u64 + 1),
            "each object is reconciled again after its own write: {reconciled} reconciles\n{}",
            controller.log()
        );
    }
    let cm = api.get("cm-000").await.unwrap();
    assert!(
        field_managers(&cm.metadata).iter().any(|m| m == manager),
        "{manager} manages the label: {:?}",
        field_managers(&cm.metadata)
    );
    eprintln!("{manager}: {OBJECTS} ConfigMaps labelled in {took:?}");
    took
}

#[tokio::test]
async fn kubewasm_with_bench_labeller_labels_each_configmap_once() {
    let ns = TestNamespace::create("peers-kubewasm").await.unwrap();
    let plugins = example_plugins(&[("bench-labeller", None)]);
    let host = Host::spawn(
        &ns,
        plugins,
        &[
            "--namespace",
            ns.name(),
            "--concurrency",
            "16",
            "--log",
            "info",
        ],
    );
    labels_once(&ns, "kubewasm/bench-labeller", &host).await;
}

#[tokio::test]
async fn kube_rs_peer_labels_each_configmap_once() {
    let ns = TestNamespace::create("peers-kube-rs").await.unwrap();
    let peer = Peer::spawn(
        "kube-rs-labeller",
        peers::kube_rs_binary(),
        ns.control_plane(),
        &["--namespace", ns.name(), "--workers", "16"],
    );
    labels_once(&ns, "bench/kube-rs", &peer).await;
}

#[tokio::test]
async fn kube_rs_peer_stripping_managed_fields_labels_each_configmap_once() {
    let ns = TestNamespace::create("peers-kube-rs-strip").await.unwrap();
    let peer = Peer::spawn(
        "kube-rs-labeller --strip-managed-fields",
        peers::kube_rs_binary(),
        ns.control_plane(),
        &["--namespace", ns.name(), "--strip-managed-fields"],
    );
    labels_once(&ns, "bench/kube-rs", &peer).await;
}

#[tokio::test]
async fn go_peer_labels_each_configmap_once() {
    let ns = TestNamespace::create("peers-go").await.unwrap();
    let peer = Peer::spawn(
        "go-labeller",
        peers::go_binary(),
        ns.control_plane(),
        &["--namespace", ns.name(), "--workers", "16"],
    );
    labels_once(&ns, "bench/go", &peer).await;
}
