//! `spec.shadow` on a `ClusterPlugin`, on the real control plane: the
//! shadow is fetched from a ConfigMap like the module, runs beside the
//! serving version on every reconcile, writes nothing, and the resource's
//! status says where it differs; the operator promotes it with
//! `kubectl patch`, or the host does with `promoteAfter`.
//!
//! A namespaced `Plugin`'s shadow (fetched and checked as its
//! ServiceAccount) reports and is promoted the same way.
//!
//! As in `shadow.rs`, the shadow is the probe with other settings: with
//! `{"mark": "v2"}` beside `{"mark": "v1"}` it differs on every `mark`
//! object and agrees on every `read` object.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kubewasm_e2e::cluster_plugins::{
    Fixture, SELECTOR_LABEL, all_grants, apply_object, condition, sha256,
};
use kubewasm_e2e::deploy::kubectl;
use kubewasm_e2e::host::{self, component};
use kubewasm_e2e::probe::{self, MARK, READ_RESULT, create_reader};
use kubewasm_e2e::teams::{self, ACCOUNT};
use kubewasm_e2e::unique_name;
use serde_json::{Value, json};

fn module() -> Value {
    json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}})
}

fn differing_objects(status: &Value) -> Vec<String> {
    status["shadow"]["recentDifferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["object"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_cluster_plugins_shadow_reports_differences_in_status_and_serves_once_patched() {
    let fx = Fixture::start("cp-shadow").await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes.clone())
        .await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let name = unique_name("probe-shadow");
    let shadow = json!({"shadow": {"module": module(), "settings": {"mark": "v2"}}});
    fx.apply_with(&name, module(), json!({"mark": "v1"}), shadow)
        .await;
    let status = fx
        .status_until(&name, "the shadow running", |s| {
            condition(s, "Ready") == ("True", "Serving")
                && condition(s, "Shadow") == ("True", "Running")
        })
        .await;
    assert_eq!(status["shadow"]["digest"], sha256(&probe_bytes), "{status}");
    fx.event_note(&name, "ShadowLoaded").await;

    // Objects created while the shadow runs: each reconcile is compared.
    let differing = ["diff-a", "diff-b"];
    for cm in differing {
        probe::create_configmap(&configmaps, cm, "mark", &[]).await;
    }
    create_reader(&configmaps, fx.ns.name(), "same", "diff-a").await;
    for cm in differing {
        fx.marked(cm, "v1").await;
    }
    let status = fx
        .status_until(&name, "both differences reported", |s| {
            let objects = differing_objects(s);
            differing
                .iter()
                .all(|cm| objects.contains(&format!("ConfigMap {}/{cm}", fx.ns.name())))
                && s["shadow"]["counts"]["equal"].as_i64() >= Some(1)
        })
        .await;
    let summary = &status["shadow"];
    assert_eq!(summary["state"], "Running", "{summary}");
    assert_eq!(summary["counts"]["failed"], 0, "{summary}");
    assert!(
        !differing_objects(&status)
            .iter()
            .any(|o| o.ends_with("/same")),
        "the read object compares equal: {summary}"
    );
    let fields: Vec<&str> = summary["recentDifferences"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["fields"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    assert!(
        fields
            .iter()
            .any(|f| f.contains(&format!("ConfigMap {}/diff-", fx.ns.name())) && f.contains(MARK)),
        "the mark annotation is named: {fields:?}"
    );
    // The host's shadow report (`kubewasm shadow`) has it, named by its resource.
    let addr = fx.host.admin_addr().expect("the admin address");
    let (code, body) = host::http_get(addr, "/shadow").unwrap();
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(report["shadows"][0]["plugin"], "probe", "{report}");
    assert_eq!(
        report["shadows"][0]["source"],
        format!("ClusterPlugin {name} spec.shadow")
    );
    let reader = configmaps.get("same").await.unwrap();
    assert_eq!(
        probe::annotation(&reader, READ_RESULT).as_deref(),
        Some("found")
    );

    // Nothing the shadow computed was written.
    for cm in differing {
        let found = probe::annotation(&configmaps.get(cm).await.unwrap(), MARK);
        assert_eq!(found.as_deref(), Some("v1"), "{cm}");
    }

    // The operator promotes: the shadow's settings serve, the shadow goes.
    let patch = json!([
        {"op": "replace", "path": "/spec/settings", "value": {"mark": "v2"}},
        {"op": "remove", "path": "/spec/shadow"},
    ]);
    kubectl(
        [
            "patch",
            "clusterplugin",
            &name,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    )
    .await
    .expect("kubectl patch");
    for cm in differing {
        fx.marked(cm, "v2").await;
    }
    let status = fx
        .status_until(&name, "no shadow", |s| {
            s["observedGeneration"] == 2 && s.get("shadow").is_none()
        })
        .await;
    assert_eq!(condition(&status, "Shadow"), ("", ""), "{status}");
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"));
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_shadow_with_promote_after_is_promoted_by_the_host() {
    let fx = Fixture::start("cp-promote").await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes)
        .await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let name = unique_name("probe-promote");
    let shadow = json!({"shadow": {
        "module": module(),
        "settings": {"mark": "v2"},
        "promoteAfter": 3,
    }});
    fx.apply_with(&name, module(), json!({"mark": "v1"}), shadow)
        .await;
    fx.status_until(&name, "the shadow running", |s| {
        condition(s, "Shadow") == ("True", "Running")
    })
    .await;

    // Reading objects compare equal, whatever the mark: three in a row
    // promote the shadow.
    for n in 1..=3 {
        let reader = format!("read-{n}");
        create_reader(&configmaps, fx.ns.name(), &reader, &reader).await;
    }
    let status = fx
        .status_until(&name, "promoted, and the promoted spec synced", |s| {
            condition(s, "Shadow") == ("True", "Promoted") && s["observedGeneration"] == 2
        })
        .await;
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"), "{status}");
    let promoted = fx.event_note(&name, "ShadowPromoted").await;
    assert!(promoted.contains("3 equal reconciles"), "{promoted}");

    // The spec says what serves now; the host's own field manager wrote it.
    let object = fx.plugins.get(&name).await.unwrap();
    assert_eq!(object.data["spec"]["settings"], json!({"mark": "v2"}));
    assert!(
        object.data["spec"].get("shadow").is_none(),
        "{:?}",
        object.data
    );
    let managers: Vec<String> = object
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers
            .iter()
            .any(|m| m == "kubewasm.dev/shadow-promotion"),
        "{managers:?}"
    );

    // The new logic serves.
    probe::create_configmap(&configmaps, "after", "mark", &[]).await;
    fx.marked("after", "v2").await;
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_shadow_that_does_not_load_leaves_the_serving_version_alone() {
    let fx = Fixture::start("cp-shadow-bad").await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes)
        .await;
    fx.module_configmap("broken", "probe.wasm", b"not a component".to_vec())
        .await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let name = unique_name("probe-bad-shadow");
    let broken = json!({"configMap": {"name": "broken", "key": "probe.wasm"}});
    let shadow = json!({"shadow": {"module": broken, "settings": {"mark": "v2"}}});
    fx.apply_with(&name, module(), json!({"mark": "v1"}), shadow)
        .await;
    let status = fx
        .status_until(&name, "the shadow failed to load", |s| {
            condition(s, "Shadow") == ("False", "LoadFailed")
        })
        .await;
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"), "{status}");
    assert_eq!(condition(&status, "Degraded"), ("False", "AsExpected"));
    assert_eq!(status["shadow"]["digest"], sha256(b"not a component"));
    let note = fx.event_note(&name, "ShadowLoadFailed").await;
    assert!(note.contains("the serving version is unaffected"), "{note}");
    // The host's shadow report (`kubewasm shadow`) names it too.
    let addr = fx.host.admin_addr().expect("the admin address");
    let (code, body) = host::http_get(addr, "/shadow").unwrap();
    assert_eq!(code, 200, "{body}");
    let report: Value = serde_json::from_str(&body).unwrap();
    let failure = &report["loadFailures"][0];
    assert_eq!(
        failure["file"],
        format!("ClusterPlugin {name} spec.shadow"),
        "{report}"
    );
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    fx.marked("a", "v1").await;

    // Removed from the spec: no shadow, no condition.
    fx.apply(&name, module(), json!({"mark": "v1"})).await;
    let status = fx
        .status_until(&name, "no shadow", |s| {
            s["observedGeneration"] == 2 && s.get("shadow").is_none()
        })
        .await;
    assert_eq!(condition(&status, "Shadow"), ("", ""), "{status}");
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_failing_shadow_is_aborted_in_status_and_replaced_when_the_spec_changes() {
    let fx = Fixture::start_with("cp-shadow-abort", &["--max-result-kib", "64"]).await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes)
        .await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let name = unique_name("probe-abort");
    // The shadow's mark makes its outcome larger than the host allows.
    let huge = json!({"shadow": {"module": module(), "settings": {"mark": "x".repeat(100_000)}}});
    fx.apply_with(&name, module(), json!({"mark": "v1"}), huge)
        .await;
    fx.status_until(&name, "the shadow running", |s| {
        condition(s, "Shadow") == ("True", "Running")
    })
    .await;
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    fx.marked("a", "v1").await;
    let status = fx
        .status_until(&name, "the shadow aborted", |s| {
            condition(s, "Shadow") == ("False", "Aborted")
        })
        .await;
    assert_eq!(status["shadow"]["counts"]["failed"], 1, "{status}");
    let message = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Shadow")
        .and_then(|c| c["message"].as_str())
        .unwrap();
    assert!(message.contains("over the limit"), "{message}");
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"), "{status}");

    // The serving version carries on.
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    fx.marked("b", "v1").await;

    // A new spec.shadow loads a fresh shadow, with fresh counts.
    let fixed = json!({"shadow": {"module": module(), "settings": {"mark": "v2"}}});
    fx.apply_with(&name, module(), json!({"mark": "v1"}), fixed)
        .await;
    let status = fx
        .status_until(&name, "a fresh shadow running", |s| {
            s["observedGeneration"] == 2 && condition(s, "Shadow") == ("True", "Running")
        })
        .await;
    assert_eq!(status["shadow"]["counts"]["failed"], 0, "{status}");
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_namespaced_plugins_shadow_reports_in_its_status_and_is_promoted() {
    let fx = Fixture::start("nsp-shadow").await;
    teams::team(&fx, teams::full_rules()).await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let name = unique_name("probe-team");
    let object = json!({
        "apiVersion": "kubewasm.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "labels": {SELECTOR_LABEL: fx.selector}},
        "spec": {
            "module": module(),
            "settings": {"mark": "v1"},
            "serviceAccountName": ACCOUNT,
            "grants": all_grants(),
            "shadow": {"module": module(), "settings": {"mark": "v2"}, "promoteAfter": 2},
        },
    });
    let plugins = teams::plugins(&fx.ns);
    apply_object(&plugins, &name, &object).await;
    teams::status_until(&fx, &name, "the shadow running", |s| {
        condition(s, "Shadow") == ("True", "Running")
    })
    .await;
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    fx.marked("a", "v1").await;
    let status = teams::status_until(&fx, &name, "a difference", |s| {
        differing_objects(s).contains(&format!("ConfigMap {}/a", fx.ns.name()))
    })
    .await;
    assert_eq!(status["shadow"]["state"], "Running", "{status}");

    for n in 1..=2 {
        let reader = format!("read-{n}");
        create_reader(&configmaps, fx.ns.name(), &reader, &reader).await;
    }
    teams::status_until(&fx, &name, "promoted and synced", |s| {
        condition(s, "Shadow") == ("True", "Promoted") && s["observedGeneration"] == 2
    })
    .await;
    let promoted = plugins.get(&name).await.unwrap();
    assert_eq!(promoted.data["spec"]["settings"], json!({"mark": "v2"}));
    assert_eq!(promoted.data["spec"]["serviceAccountName"], ACCOUNT);
    fx.marked("a", "v2").await;
    fx.ns.delete().await.unwrap();
}
