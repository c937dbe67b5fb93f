//! Kinds change under a running host (issue 10 §2): a CRD gains a version
//! and then no longer serves the one a plugin subscribed to, a CRD is
//! deleted while its objects' keys are retrying, and an object is nested
//! deeper than the JSON parser allows.
//!
//! Each case asserts zero lost reconciles once the fault heals
//! ([`Expected`](kubewasm_e2e::faults::Expected)): every object created or
//! changed around the fault carries the mark of the current plugin for its
//! newest state, and every object deleted meanwhile was handed to the plugin
//! with its last state. The other `faults_*.rs` files hold the other faults.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::crd;
use kubewasm_e2e::faults::Expected;
use kubewasm_e2e::host::Host;
use kubewasm_e2e::probe::{BEHAVE, MARK};
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_api_group};
use serde_json::json;

/// Generous: a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(120);

/// Applies the Website CRD's versions: `v1alpha1` served or not, and `v1`
/// (a copy of its schema) beside it, the storage version when `v1alpha1`
/// is no longer served.
async fn website_versions(client: &kube::Client, v1alpha1_served: bool) {
    let path = kubewasm_e2e::host::repo().join("plugins/website/deploy/crd.yaml");
    let mut crd: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
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
    host.eventually(WAIT, || async { Ok(cms.get("before").await?) })
        .await;

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
        let unserved = host.metric_with("kubewasm_subscription_unserved", &labels);
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
    let crd = crd::schemaless(group, "Gadget", true);
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
    host.eventually(WAIT, || async {
        anyhow::ensure!(host.metric(traps) >= 8.0, "fewer than 8 trapped calls");
        Ok(())
    })
    .await;

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
        anyhow::ensure!(host.metric(depth) == 0.0, "probe's queue is not empty");
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.metrics().unwrap_or_default()));
    let settled = host.metric(traps);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(host.metric(traps), settled, "deleted Gadgets still retried");

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
    let undecodable = host.metric_with(
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
    host.eventually(WAIT, || async {
        let object = format!("object={}/later-deep", ns.name());
        let seen = host
            .log()
            .lines()
            .any(|l| l.contains("object cannot be decoded") && l.contains(&object));
        anyhow::ensure!(seen, "the change to later-deep was not reported");
        Ok(())
    })
    .await;
    gadgets
        .delete("later-deep", &DeleteParams::default())
        .await
        .unwrap();
    let cms: Api<ConfigMap> = ns.api();
    host.eventually(WAIT, || async {
        let gone = cms.get_opt("later-deep-gone").await?;
        let n = gone.and_then(|cm| cm.data?.get("n").cloned());
        anyhow::ensure!(
            n.as_deref() == Some("1"),
            "later-deep's deletion not delivered with its last decoded state: {n:?}"
        );
        Ok(())
    })
    .await;

    // The rest of the kind keeps reconciling.
    create(gadget("after", "mark", json!({}))).await;
    eventually(WAIT, || marked("after")).await.unwrap();
}
