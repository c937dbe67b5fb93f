//! The fault suite (issue 10 §2): the API server and etcd misbehave while a
//! `kubewasm run` host reconciles, and every case asserts zero lost
//! reconciles once the fault heals: every object created or changed around
//! the fault carries the mark of the current plugin for its newest state,
//! and every object deleted meanwhile was handed to the plugin with its last
//! state.
//!
//! Cases that kill or freeze a control-plane process start a control plane
//! of their own ([`ControlPlane::private`]), so no other test sees the fault.
//! Each prints how long after the control plane was ready again the last
//! object was reconciled (`cargo test --test faults -- --nocapture`); the
//! numbers are in tests/README.md, and no assertion depends on them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::faults::Component;
use kubewasm_e2e::host::{Host, component, sample};
use kubewasm_e2e::service_account::HostAccount;
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_api_group, unique_name};
use serde_json::json;

/// Generous: a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(120);
const BEHAVE: &str = "probe.kubewasm.dev/behave";
const MARK: &str = "probe.kubewasm.dev/mark";
const ECHO: &str = "probe.kubewasm.dev/echo";

/// What the cluster should show once everything is reconciled: ConfigMaps
/// by name with their newest `data.n`, and deleted ones with their last.
#[derive(Default)]
struct Expected {
    live: BTreeMap<String, u32>,
    deleted: BTreeMap<String, u32>,
}

impl Expected {
    async fn create(&mut self, cms: &Api<ConfigMap>, name: &str, n: u32) {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {BEHAVE: "tombstone"}},
            "data": {"n": n.to_string()},
        }))
        .unwrap();
        cms.create(&PostParams::default(), &cm).await.unwrap();
        self.live.insert(name.to_string(), n);
    }

    async fn change(&mut self, cms: &Api<ConfigMap>, name: &str, n: u32) {
        let patch = json!({"data": {"n": n.to_string()}});
        cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        self.live.insert(name.to_string(), n);
    }

    async fn delete(&mut self, cms: &Api<ConfigMap>, name: &str) {
        cms.delete(name, &DeleteParams::default()).await.unwrap();
        let last = self.live.remove(name).expect("deleting a live object");
        self.deleted.insert(name.to_string(), last);
    }

    /// Ok once every live ConfigMap is marked for its newest `data.n` and
    /// every deleted one has its `-gone` record with its last `data.n`.
    async fn check(&self, cms: &Api<ConfigMap>) -> anyhow::Result<()> {
        for (name, n) in &self.live {
            let cm = cms.get(name).await?;
            let annotations = cm.metadata.annotations.unwrap_or_default();
            anyhow::ensure!(
                annotations.get(MARK).map(String::as_str) == Some("seen")
                    && annotations.get(ECHO) == Some(&n.to_string()),
                "{name} (n={n}) not reconciled at its newest state: {annotations:?}"
            );
        }
        for (name, n) in &self.deleted {
            let gone = cms.get_opt(&format!("{name}-gone")).await?;
            let last = gone.and_then(|cm| cm.data?.get("n").cloned());
            anyhow::ensure!(
                last == Some(n.to_string()),
                "the delete of {name} (last n={n}) was not reconciled: {last:?}"
            );
        }
        Ok(())
    }

    /// Waits for [`check`](Self::check); how long that took.
    async fn converge(&self, cms: &Api<ConfigMap>, host: &Host) -> Duration {
        let start = Instant::now();
        eventually(WAIT, || self.check(cms))
            .await
            .unwrap_or_else(|e| panic!("lost reconciles: {e:#}\n{}", host.log()));
        start.elapsed()
    }
}

/// A probe host on a namespace with six reconciled ConfigMaps `a0`..`a5`.
async fn probe_with_objects(ns: &TestNamespace) -> (Host, Api<ConfigMap>, Expected) {
    let host = Host::start(ns, &[("probe", None)], &[]);
    let cms: Api<ConfigMap> = ns.api();
    let mut expected = Expected::default();
    for i in 0..6 {
        expected.create(&cms, &format!("a{i}"), 0).await;
    }
    expected.converge(&cms, &host).await;
    (host, cms, expected)
}

/// Changes made while the host may still be disconnected: three new
/// objects, two changed, two deleted (with their last state `n=0`).
async fn churn(expected: &mut Expected, cms: &Api<ConfigMap>) {
    for i in 0..3 {
        expected.create(cms, &format!("b{i}"), 1).await;
    }
    expected.change(cms, "a0", 1).await;
    expected.change(cms, "a1", 1).await;
    expected.delete(cms, "a2").await;
    expected.delete(cms, "a3").await;
}

fn metric(host: &Host, series: &str) -> f64 {
    host.metrics()
        .ok()
        .and_then(|m| sample(&m, series))
        .unwrap_or(0.0)
}

/// The value of the series of `name` that has every one of `labels`,
/// whatever the order the exposition writes them in.
fn metric_with(host: &Host, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = host.metrics().ok()?;
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

const CM_WATCH_ERRORS: &str = "kubewasm_watch_errors_total{group=\"\",kind=\"ConfigMap\",reason=";

#[tokio::test]
async fn api_server_down_15s_loses_nothing_and_is_reported() {
    let cp = ControlPlane::private("apiserver-down", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cp, "fault-apiserver")
        .await
        .unwrap();
    let (host, cms, mut expected) = probe_with_objects(&ns).await;

    cp.restart(Component::ApiServer, Duration::from_secs(15))
        .await
        .unwrap();
    let ready = Instant::now();
    churn(&mut expected, &cms).await;
    expected.converge(&cms, &host).await;
    eprintln!(
        "faults: API server down 15 s: last object reconciled {:.1} s after /readyz was ok",
        ready.elapsed().as_secs_f64()
    );

    // The outage was visible to an operator: a WARN line and the metric.
    let log = host.log();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("watch failing")),
        "no WARN line about the failing watch:\n{log}"
    );
    assert!(log.contains("watch recovered"), "{log}");
    assert!(
        metric(&host, &format!("{CM_WATCH_ERRORS}\"unreachable\"}}")) >= 1.0,
        "{}",
        host.metrics().unwrap_or_default()
    );
    cp.down().await;
}

#[tokio::test]
async fn etcd_killed_10s_loses_nothing() {
    let cp = ControlPlane::private("etcd-down", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cp, "fault-etcd").await.unwrap();
    let (host, cms, mut expected) = probe_with_objects(&ns).await;

    cp.restart(Component::Etcd, Duration::from_secs(10))
        .await
        .unwrap();
    let ready = Instant::now();
    churn(&mut expected, &cms).await;
    expected.converge(&cms, &host).await;
    eprintln!(
        "faults: etcd down 10 s: last object reconciled {:.1} s after /readyz was ok",
        ready.elapsed().as_secs_f64()
    );
    cp.down().await;
}

#[tokio::test]
async fn etcd_compaction_forces_a_relist_that_loses_nothing() {
    // Without the watch cache, watches are served by etcd, whose compaction
    // answers a resume from an older resourceVersion with 410 Gone.
    let cp = ControlPlane::private("compaction", &["--no-watch-cache"])
        .await
        .unwrap();
    let ns = TestNamespace::create_in(cp, "fault-compact").await.unwrap();
    let (host, cms, mut expected) = probe_with_objects(&ns).await;
    let relists = "kubewasm_relists_total{group=\"\",kind=\"ConfigMap\"}";
    let relists_before = metric(&host, relists);

    // The host is frozen while its watch is cut, the objects change and the
    // history it would resume from is compacted away.
    signal(&host, "STOP");
    cp.restart(Component::ApiServer, Duration::ZERO)
        .await
        .unwrap();
    churn(&mut expected, &cms).await;
    let revision = cp.compact().await.unwrap();
    signal(&host, "CONT");
    let resumed = Instant::now();
    expected.converge(&cms, &host).await;
    eprintln!(
        "faults: compaction to revision {revision}: last object reconciled {:.1} s after the host resumed",
        resumed.elapsed().as_secs_f64()
    );

    assert!(
        host.log().contains("410 Gone"),
        "no 410 Gone in the log:\n{}",
        host.log()
    );
    assert!(
        metric(&host, relists) > relists_before,
        "no re-list after 410 Gone: {}",
        host.metrics().unwrap_or_default()
    );
    cp.down().await;
}

fn signal(host: &Host, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &host.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Applies the Website CRD's versions: `v1alpha1` served or not, and `v1`
/// (a copy of its schema) beside it, the storage version when `v1alpha1`
/// is no longer served.
async fn website_versions(client: &kube::Client, v1alpha1_served: bool) {
    let path = kubewasm_e2e::host::repo().join("plugins/website/deploy/crd.yaml");
    let mut crd: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut alpha = crd["spec"]["versions"][0].clone();
    let mut v1 = alpha.clone();
    v1["name"] = json!("v1");
    v1["storage"] = json!(!v1alpha1_served);
    alpha["served"] = json!(v1alpha1_served);
    alpha["storage"] = json!(v1alpha1_served);
    crd["spec"]["versions"] = json!([alpha, v1]);
    Api::<CustomResourceDefinition>::all(client.clone())
        .patch(
            "websites.demo.kubewasm.dev",
            &PatchParams::apply("kubewasm-e2e").force(),
            &Patch::Apply(crd),
        )
        .await
        .unwrap();
}

fn website(name: &str) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": name},
        "spec": {"title": name, "content": "Still reconciled."}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_crd_gaining_a_version_keeps_its_subscribers() {
    // Its own control plane: the Website CRD is cluster-scoped, and other
    // test binaries on the shared cluster use it at v1alpha1 only.
    let cp = ControlPlane::private("crd-version", &[]).await.unwrap();
    let ns = TestNamespace::create_in(cp, "fault-crd-version")
        .await
        .unwrap();
    let websites = ns.websites().await.unwrap();
    let cms: Api<ConfigMap> = ns.api();
    // The website plugin subscribes to demo.kubewasm.dev/v1alpha1 Website.
    let host = Host::start(&ns, &[("website", None)], &[]);
    let pp = PostParams::default();
    websites.create(&pp, &website("before")).await.unwrap();
    eventually(WAIT, || async { Ok(cms.get("before").await?) })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));

    // v1 is added beside v1alpha1 and becomes the preferred version.
    website_versions(ns.client(), true).await;
    let v1 = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("demo.kubewasm.dev", "v1", "Website"),
        "websites",
    );
    let websites_v1: Api<DynamicObject> = Api::namespaced_with(ns.client().clone(), ns.name(), &v1);
    eventually(WAIT, || async {
        Ok(websites_v1.list(&Default::default()).await?)
    })
    .await
    .unwrap();
    eventually(WAIT, || async {
        anyhow::ensure!(host.log().contains("kinds changed"));
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("the host never saw v1: {e:#}\n{}", host.log()));

    // A Website created after the change is still reconciled.
    websites.create(&pp, &website("after")).await.unwrap();
    eventually(WAIT, || async { Ok(cms.get("after").await?) })
        .await
        .unwrap_or_else(|e| {
            panic!(
                "a Website created after v1 was added was lost: {e:#}\n{}",
                host.log()
            )
        });
    // Nothing else restarted: the ConfigMap informer is the first one.
    let started = |kind: &str| {
        host.log()
            .lines()
            .filter(|l| l.contains("starting informer") && l.contains(&format!("kind={kind}")))
            .count()
    };
    assert_eq!(started("ConfigMap"), 1, "{}", host.log());

    // v1alpha1 stops being served: the plugin can no longer receive
    // Websites, and says so.
    website_versions(ns.client(), false).await;
    let labels = [
        ("plugin", "website"),
        ("group", "demo.kubewasm.dev"),
        ("kind", "Website"),
        ("version", "v1alpha1"),
    ];
    eventually(WAIT, || async {
        let unserved = metric_with(&host, "kubewasm_subscription_unserved", &labels);
        anyhow::ensure!(
            unserved == Some(1.0),
            "kubewasm_subscription_unserved is {unserved:?}"
        );
        Ok(())
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e:#}\n{}\n{}",
            host.metrics().unwrap_or_default(),
            host.log()
        )
    });
    assert!(
        host.log()
            .lines()
            .any(|l| l.contains("WARN") && l.contains("does not serve") && l.contains("v1alpha1")),
        "{}",
        host.log()
    );
    cp.down().await;
}

/// A served CRD `gadgets.<group>` (namespaced, `v1`, any content), and the
/// Gadgets of `ns`; the probe plugin subscribes to every Gadget.
async fn gadget_crd(
    ns: &TestNamespace,
    group: &str,
) -> (
    Api<CustomResourceDefinition>,
    ApiResource,
    Api<DynamicObject>,
) {
    let crds: Api<CustomResourceDefinition> = Api::all(ns.client().clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Gadget"), "gadgets");
    let gadgets: Api<DynamicObject> =
        Api::namespaced_with(ns.client().clone(), ns.name(), &resource);
    eventually(WAIT, || async {
        Ok(gadgets.list(&Default::default()).await?)
    })
    .await
    .unwrap();
    (crds, resource, gadgets)
}

#[tokio::test]
async fn a_crd_deleted_while_its_objects_are_queued_stops_cleanly() {
    let ns = TestNamespace::create("fault-crd-deleted").await.unwrap();
    let group = unique_api_group();
    let (crds, _, gadgets) = gadget_crd(&ns, &group).await;

    let host = Host::start(&ns, &[("probe", None)], &["--namespace", ns.name()]);
    // Gadgets whose reconcile always fails: their keys back off and retry.
    for i in 0..4 {
        let gadget: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": format!("g{i}"), "labels": {BEHAVE: "trap"}},
        }))
        .unwrap();
        gadgets
            .create(&PostParams::default(), &gadget)
            .await
            .unwrap();
    }
    let traps = "kubewasm_reconciles_total{plugin=\"probe\",result=\"trap\"}";
    eventually(WAIT, || async {
        anyhow::ensure!(metric(&host, traps) >= 8.0, "fewer than 8 trapped calls");
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));

    crds.delete(&format!("gadgets.{group}"), &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, || async {
        let stopped = host.log().lines().any(|l| {
            (l.contains("stopped informer") || l.contains("stopping informer"))
                && l.contains("kind=Gadget")
        });
        anyhow::ensure!(stopped, "no log line says the Gadget informer stopped");
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("the Gadget informer did not stop: {e:#}\n{}", host.log()));

    // The queued keys stop retrying: the queue empties and stays empty.
    let depth = "kubewasm_queue_depth{plugin=\"probe\"}";
    eventually(WAIT, || async {
        anyhow::ensure!(metric(&host, depth) == 0.0, "probe's queue is not empty");
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.metrics().unwrap_or_default()));
    let settled = metric(&host, traps);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        metric(&host, traps),
        settled,
        "deleted Gadgets still retried"
    );

    // Nothing else restarted, and other kinds are still reconciled.
    let cms: Api<ConfigMap> = ns.api();
    let mut expected = Expected::default();
    expected.create(&cms, "after", 1).await;
    expected.converge(&cms, &host).await;
    let cm_informers = host
        .log()
        .lines()
        .filter(|l| l.contains("starting informer") && l.contains("kind=ConfigMap"))
        .count();
    assert_eq!(cm_informers, 1, "{}", host.log());
}

/// `{"a":{"a":...}}`, `depth` objects deep: deeper than serde_json's
/// recursion limit (128), which the API server accepts in a CR that
/// preserves unknown fields.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[tokio::test]
async fn an_object_too_deep_to_decode_is_skipped_and_reported_and_its_kind_still_syncs() {
    let ns = TestNamespace::create("fault-undecodable").await.unwrap();
    let group = unique_api_group();
    let (_, resource, gadgets) = gadget_crd(&ns, &group).await;
    let gadget = |name: &str, behave: &str, spec: serde_json::Value| {
        json!({
            "apiVersion": format!("{group}/v1"), "kind": "Gadget",
            "metadata": {"name": name, "labels": {BEHAVE: behave}},
            "data": {"n": "1"},
            "spec": spec,
        })
    };
    // Sent and answered as text: kube's typed calls cannot decode the
    // answer either.
    let url = <DynamicObject as kube::Resource>::url_path(&resource, Some(ns.name()));
    let request = kube::core::Request::new(&url);
    let client = ns.client().clone();
    let create = |object: serde_json::Value| {
        let request = request
            .create(&PostParams::default(), serde_json::to_vec(&object).unwrap())
            .unwrap();
        let client = client.clone();
        async move { client.request_text(request).await.unwrap() }
    };
    // In the cluster before the host starts, so its first list holds an
    // object it cannot decode (before: the whole list failed, for ever).
    create(gadget("deep", "mark", nested(200))).await;
    create(gadget("plain", "mark", json!({}))).await;
    create(gadget("later-deep", "tombstone", json!({}))).await;

    let host = Host::start(&ns, &[("probe", None)], &["--namespace", ns.name()]);
    let marked = |name: &'static str| {
        let gadgets = gadgets.clone();
        async move {
            let blob = gadgets.get(name).await?;
            anyhow::ensure!(
                blob.metadata
                    .annotations
                    .unwrap_or_default()
                    .get(MARK)
                    .map(String::as_str)
                    == Some("seen"),
                "{name} not reconciled"
            );
            Ok(())
        }
    };
    eventually(WAIT, || marked("plain"))
        .await
        .unwrap_or_else(|e| panic!("the kind did not sync: {e:#}\n{}", host.log()));
    eventually(WAIT, || marked("later-deep")).await.unwrap();

    // The host is ready, says which object it skipped, and counts it.
    let admin = host.admin_addr().expect("the host's admin address");
    let (status, _) = kubewasm_e2e::host::http_get(admin, "/readyz").unwrap();
    assert_eq!(
        status, 200,
        "/readyz with an undecodable object in a watched kind"
    );
    let object = format!("object={}/deep", ns.name());
    let skipped = host.log().lines().any(|l| {
        l.contains("object cannot be decoded")
            && l.contains(&object)
            && l.contains("recursion limit")
    });
    assert!(skipped, "no WARN names {object}:\n{}", host.log());
    let undecodable = metric_with(
        &host,
        "kubewasm_objects_undecodable_total",
        &[("group", &group), ("kind", "Gadget")],
    );
    assert!(undecodable >= Some(1.0), "{undecodable:?}");
    let deep = client
        .request_text(request.get("deep", &Default::default()).unwrap())
        .await
        .unwrap();
    assert!(
        !deep.contains(MARK),
        "an undecodable object reached the plugin"
    );

    // A decoded object that becomes undecodable, then is deleted: the
    // plugin sees the deletion with the last state it could decode.
    let patch = json!({"spec": nested(200), "data": {"n": "2"}});
    let patch = request
        .patch("later-deep", &PatchParams::default(), &Patch::Merge(&patch))
        .unwrap();
    client.request_text(patch).await.unwrap();
    eventually(WAIT, || async {
        let object = format!("object={}/later-deep", ns.name());
        let seen = host
            .log()
            .lines()
            .any(|l| l.contains("object cannot be decoded") && l.contains(&object));
        anyhow::ensure!(seen, "the change to later-deep was not reported");
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));
    gadgets
        .delete("later-deep", &DeleteParams::default())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = ns.api();
    eventually(WAIT, || async {
        let gone = cms.get_opt("later-deep-gone").await?;
        let n = gone.and_then(|cm| cm.data?.get("n").cloned());
        anyhow::ensure!(
            n.as_deref() == Some("1"),
            "later-deep's deletion not delivered with its last decoded state: {n:?}"
        );
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));

    // The rest of the kind keeps reconciling.
    create(gadget("after", "mark", json!({}))).await;
    eventually(WAIT, || marked("after")).await.unwrap();
}

/// The API server's `apiserver_flowcontrol_rejected_requests_total` for one
/// priority level, summed over flow schemas and reasons.
async fn apf_rejected(client: &kube::Client, priority_level: &str) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let level = format!("priority_level=\"{priority_level}\"");
    text.lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_rejected_requests_total{"))
        .filter(|l| l.contains(&level))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether a `Duration`'s debug form (`850ms`, `1.2s`) is a second or more.
fn at_least_a_second(delay: &str) -> bool {
    let seconds = ["ms", "µs", "ns"]
        .iter()
        .all(|unit| !delay.ends_with(unit))
        .then(|| delay.strip_suffix('s')?.parse::<f64>().ok())
        .flatten();
    seconds.is_some_and(|s| s >= 1.0)
}

/// A priority level of three seats (one share of the server's 600, nothing
/// lent or borrowed) that rejects what does not fit, and a flow schema
/// sending every request of `user` to it. Returns the flow schema's uid.
async fn tight_priority_level(client: &kube::Client, name: &str, user: &str) -> String {
    let apply = PatchParams::apply("kubewasm-e2e").force();
    let level: PriorityLevelConfiguration = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Reject"}
        }}
    }))
    .unwrap();
    Api::<PriorityLevelConfiguration>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&level))
        .await
        .unwrap();
    let schema: FlowSchema = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            // Before every default schema a ServiceAccount could match.
            "matchingPrecedence": 300,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "User", "user": {"name": user}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "clusterScope": true, "namespaces": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    }))
    .unwrap();
    Api::<FlowSchema>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&schema))
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

#[tokio::test]
async fn throttled_by_priority_and_fairness_the_host_retries_and_loses_nothing() {
    let ns = TestNamespace::create("fault-apf").await.unwrap();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(component("probe"), plugins.path().join("probe.wasm")).unwrap();
    let account = HostAccount::create(&ns, plugins.path()).await.unwrap();
    let admin = ns.client().clone();
    let name = unique_name("kubewasm-e2e-tight");
    let schema_uid = tight_priority_level(&admin, &name, &account.username()).await;

    // The API server classifies the account's requests by the new schema
    // (it says which in a response header) before the host starts.
    let as_account = account.client().await.unwrap();
    let probe_path = format!("/api/v1/namespaces/{}/configmaps?limit=1", ns.name());
    eventually(WAIT, || async {
        let request = http::Request::get(probe_path.as_str()).body(kube::client::Body::empty())?;
        let response = as_account.send(request).await?;
        let matched = response
            .headers()
            .get("X-Kubernetes-PF-FlowSchema-UID")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        anyhow::ensure!(
            matched.as_deref() == Some(schema_uid.as_str()),
            "classified by flow schema {matched:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
    let rejected_before = apf_rejected(&admin, &name).await;

    // The client-side rate limit lifted: the server's limit is the one hit.
    let extra = [
        "--namespace",
        ns.name(),
        "--kube-qps",
        "1000",
        "--kube-burst",
        "1000",
        "--concurrency",
        "32",
    ];
    let host = Host::spawn_command(account.command(), plugins, &extra);
    let cms: Api<ConfigMap> = ns.api();
    let mut expected = Expected::default();
    let started = Instant::now();
    for i in 0..300 {
        expected.create(&cms, &format!("c{i}"), 0).await;
    }
    let first = expected.converge(&cms, &host).await;
    let created = started.elapsed();

    // More changes while throttled: new objects, changed and deleted ones.
    for i in 0..30 {
        expected.create(&cms, &format!("d{i}"), 1).await;
        expected.change(&cms, &format!("c{i}"), 1).await;
        expected.delete(&cms, &format!("c{}", 100 + i)).await;
    }
    let second = expected.converge(&cms, &host).await;

    // The throttling happened, and the host retried it.
    let rejected = apf_rejected(&admin, &name).await - rejected_before;
    let retried = metric(&host, "kubewasm_write_retries_total{reason=\"throttled\"}");
    let gave_up = metric(
        &host,
        "kubewasm_reconciles_total{plugin=\"probe\",result=\"apply_failed\"}",
    );
    eprintln!(
        "faults: priority and fairness: {rejected} requests rejected (429), {retried} writes \
         retried as throttled, {gave_up} reconciles out of retries (requeued); 300 creates \
         reconciled {:.1} s after the first ({:.1} s after the last), 90 more changes {:.1} s \
         after the last",
        created.as_secs_f64(),
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    assert!(
        rejected >= 1.0,
        "the API server rejected none of the host's requests: the test proves nothing"
    );
    assert!(
        retried >= 1.0,
        "429s were not retried: {}",
        host.metrics().unwrap_or_default()
    );
    // Each throttled write waited at least as long as the server's
    // Retry-After (a whole number of seconds, at least 1).
    let log = host.log();
    let waits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying a write") && l.contains("throttled"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("delay=")))
        .collect();
    assert!(!waits.is_empty(), "no throttled retry logged:\n{log}");
    let sooner: Vec<&&str> = waits.iter().filter(|d| !at_least_a_second(d)).collect();
    assert!(
        sooner.is_empty(),
        "throttled writes retried sooner than the server's Retry-After: {sooner:?}"
    );

    let dp = DeleteParams::default();
    Api::<FlowSchema>::all(admin.clone())
        .delete(&name, &dp)
        .await
        .unwrap();
    Api::<PriorityLevelConfiguration>::all(admin)
        .delete(&name, &dp)
        .await
        .unwrap();
    account.delete_rbac().await.unwrap();
}
