//! What the applier refuses, against the real API server: an outcome with
//! one intent outside the plugin's write scope (or of a kind not served)
//! changes nothing, and a write the host's RBAC forbids is named as such.
//!
//! The host cache is stood in for by `Snapshot` (`applier_support`), filled
//! from the API server when a test says so, so each test decides exactly
//! what the applier knows.

mod applier_support;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kubewasm::applier::{ApplierOptions, ApplyError};
use kubewasm::contract::intent::{Intent, ObjectRef};
use kubewasm::contract::{GroupKind, PluginInfo};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::service_account::account_client;
use serde_json::json;

use applier_support::{
    Snapshot, applier, apply_labels, chain, configmap, core_kinds, create_configmap, merge_patch,
    must_get, outcome, plugin, resource_version,
};

#[tokio::test]
async fn an_out_of_scope_intent_refuses_the_whole_outcome() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-scope").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "kept");
    let before = create_configmap(&ns, "kept", json!({"v": "1"})).await?;

    let secret = Intent::Create {
        object: json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "stolen", "namespace": ns.name()},
        }),
    };
    let err = applier
        .apply(
            &plugin("sneaky"),
            &outcome(vec![
                merge_patch(&target, json!({"data": {"v": "2"}}), None),
                secret,
            ]),
        )
        .await
        .expect_err("a Secret is outside the write scope");
    assert!(
        matches!(err, ApplyError::OutOfScope { .. }),
        "{}",
        chain(&err)
    );
    assert!(err.is_refusal());
    assert_eq!(err.metric_label(), "out_of_scope");
    let message = format!("{:#}", anyhow::Error::from(err));
    assert!(
        message.starts_with(&format!(
            "plugin sneaky, intent 1 (create) on v1 Secret {}/stolen: refused, nothing of this outcome was sent",
            ns.name()
        )),
        "{message}"
    );
    assert!(message.contains("writes Secret in group \"\""), "{message}");

    let after = must_get(client, &target).await?;
    assert_eq!(resource_version(&after), resource_version(&before));
    assert_eq!(after["data"]["v"], "1");
    assert!(ns.api::<Secret>().get_opt("stolen").await?.is_none());

    // A kind the cluster does not serve is refused the same way.
    let unknown = PluginInfo {
        writes: vec![GroupKind {
            group: "*".into(),
            kind: "*".into(),
        }],
        ..plugin("sneaky")
    };
    let gadget = apply_labels(
        &ObjectRef {
            api_version: "nowhere.example.com/v1".into(),
            kind: "Gadget".into(),
            namespace: Some(ns.name().into()),
            name: "g".into(),
        },
        json!({}),
    );
    let err = applier
        .apply(
            &unknown,
            &outcome(vec![
                merge_patch(&target, json!({"data": {"v": "2"}}), None),
                gadget,
            ]),
        )
        .await
        .expect_err("Gadget is not served");
    assert_eq!(err.metric_label(), "unknown_kind", "{}", chain(&err));
    assert_eq!(must_get(client, &target).await?["data"]["v"], "1");
    Ok(())
}

#[tokio::test]
async fn missing_rbac_is_reported_as_forbidden() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-rbac").await?;
    let powerless = account_client(&ns, "powerless").await?;
    let target = configmap(&ns, "locked");
    let before = create_configmap(&ns, "locked", json!({"v": "1"})).await?;

    let cache = Arc::new(Snapshot::default());
    let applier = applier(&powerless, core_kinds(), &cache, ApplierOptions::default());
    let err = applier
        .apply(
            &plugin("weak"),
            &outcome(vec![merge_patch(
                &target,
                json!({"data": {"v": "2"}}),
                None,
            )]),
        )
        .await
        .expect_err("the ServiceAccount may not patch ConfigMaps");
    assert_eq!(err.metric_label(), "forbidden", "{}", chain(&err));
    assert_eq!(
        err.to_string(),
        format!(
            "plugin weak, intent 0 (merge-patch) on v1 ConfigMap {ns}/locked: forbidden: missing RBAC to patch configmaps in group \"\" in namespace {ns}",
            ns = ns.name()
        )
    );
    let after = must_get(ns.client(), &target).await?;
    assert_eq!(resource_version(&after), resource_version(&before));
    Ok(())
}
