//! The applier's patches against the real API server: merge and JSON
//! patches with a `resourceVersion` precondition that conflict when stale
//! and change nothing, and status written through the status subresource.
//!
//! The host cache is stood in for by `Snapshot` (`applier_support`), filled
//! from the API server when a test says so, so each test decides exactly
//! what the applier knows.

mod applier_support;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Discovery};
use kubewasm::applier::{ApplierOptions, IntentResult, ResolveKind};
use kubewasm::contract::intent::{Intent, ObjectRef, Patch};
use kubewasm::contract::{GroupKind, PluginInfo};
use kubewasm_e2e::{TestNamespace, eventually, unique_api_group};
use serde_json::{Value, json};

use applier_support::{
    Snapshot, api_for, applier, chain, configmap, core_kinds, create_configmap, json_patch,
    managed_entry, merge_patch, must_get, outcome, plugin, resource_version, results,
};

#[tokio::test]
async fn patches_with_a_stale_resource_version_conflict_and_change_nothing() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-precondition").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "guarded");
    let created = create_configmap(&ns, "guarded", json!({"step": "1"})).await?;
    let stale = resource_version(&created).to_string();
    // Someone else writes after the plugin read `stale`.
    let current = applier
        .apply(
            &plugin("writer"),
            &outcome(vec![merge_patch(
                &target,
                json!({"data": {"step": "2"}}),
                None,
            )]),
        )
        .await?;
    let fresh = current.intents[0]
        .resource_version
        .clone()
        .context("no rv")?;
    assert_ne!(stale, fresh);

    let merge = merge_patch(&target, json!({"data": {"step": "merge"}}), Some(&stale));
    let err = applier
        .apply(&plugin("writer"), &outcome(vec![merge]))
        .await
        .expect_err("a stale merge patch must conflict");
    assert!(err.is_conflict(), "{}", chain(&err));
    assert_eq!(err.metric_label(), "conflict");
    assert_eq!(err.site().index, 0);

    let ops = json!([{"op": "replace", "path": "/data/step", "value": "json"}]);
    let err = applier
        .apply(
            &plugin("writer"),
            &outcome(vec![json_patch(&target, ops.clone(), Some(&stale))]),
        )
        .await
        .expect_err("a stale JSON patch must conflict");
    assert!(err.is_conflict(), "{}", chain(&err));

    let object = must_get(client, &target).await?;
    assert_eq!(object["data"]["step"], "2");
    assert_eq!(resource_version(&object), fresh, "nothing was written");

    // A patch that does not apply is rejected, with the reason the API
    // server leaves out.
    let missing = json!([{"op": "add", "path": "/nowhere/x", "value": "1"}]);
    let err = applier
        .apply(
            &plugin("writer"),
            &outcome(vec![json_patch(&target, missing, Some(&fresh))]),
        )
        .await
        .expect_err("the path does not exist");
    assert_eq!(err.metric_label(), "rejected", "{}", chain(&err));
    assert!(
        err.to_string().ends_with(
            "rejected by the API server; operation 0 (path /nowhere/x): path is invalid"
        ),
        "{err}"
    );

    // With the current resourceVersion both go through.
    let report = applier
        .apply(
            &plugin("writer"),
            &outcome(vec![json_patch(&target, ops, Some(&fresh))]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    assert_eq!(must_get(client, &target).await?["data"]["step"], "json");
    let object = must_get(client, &target).await?;
    let entry = managed_entry(&object, "kubewasm/writer", "").context("no entry")?;
    assert_eq!(entry["operation"], "Update");
    Ok(())
}

/// A namespaced CRD `Widget` serving `v1` with a status subresource.
async fn widget_crd(client: &Client, group: &str) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "observed": {"type": "integer"}
                        }}
                    }
                }}
            }]
        }
    }))?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    let name = format!("widgets.{group}");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .context("CRD not established in time")??;
    Ok(())
}

#[tokio::test]
async fn status_is_written_through_the_status_subresource() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-status").await?;
    let client = ns.client();
    let group = unique_api_group();
    widget_crd(client, &group).await?;
    // kube's discovery resolves the new kind (the host uses its registry).
    let discovery = eventually(Duration::from_secs(10), || async {
        let discovery = Discovery::new(client.clone()).run().await?;
        ensure!(
            discovery
                .resolve(&format!("{group}/v1"), "Widget")
                .is_some(),
            "Widget not discovered yet"
        );
        Ok(discovery)
    })
    .await?;
    let kind = discovery
        .resolve(&format!("{group}/v1"), "Widget")
        .context("Widget")?;
    assert_eq!((kind.plural.as_str(), kind.namespaced), ("widgets", true));

    let cache = Arc::new(Snapshot::default());
    let applier = applier(
        client,
        Arc::new(discovery),
        &cache,
        ApplierOptions::default(),
    );
    let plugin = PluginInfo {
        writes: vec![GroupKind {
            group: group.clone(),
            kind: "Widget".into(),
        }],
        ..plugin("widgets")
    };
    let target = ObjectRef {
        api_version: format!("{group}/v1"),
        kind: "Widget".into(),
        namespace: Some(ns.name().into()),
        name: "w".into(),
    };
    let widget = |extra: Value| {
        let mut object = json!({
            "apiVersion": target.api_version,
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": ns.name()},
        });
        if let (Some(object), Some(extra)) = (object.as_object_mut(), extra.as_object()) {
            object.extend(extra.clone());
        }
        object
    };
    let report = applier
        .apply(
            &plugin,
            &outcome(vec![
                Intent::Apply {
                    object: widget(json!({"spec": {"size": 3}})),
                    status: false,
                    force: true,
                },
                Intent::Apply {
                    object: widget(json!({"status": {"phase": "Ready"}})),
                    status: true,
                    force: true,
                },
                Intent::MergePatch(Patch {
                    target: target.clone(),
                    patch: json!({"status": {"observed": 3}, "spec": {"size": 99}}),
                    status: true,
                    resource_version: None,
                }),
            ]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied; 3]);

    let object = serde_json::to_value(
        api_for(client, &target, "widgets")
            .get("w")
            .await
            .context("get widget")?,
    )?;
    assert_eq!(
        object["spec"],
        json!({"size": 3}),
        "status writes leave spec alone"
    );
    assert_eq!(object["status"], json!({"phase": "Ready", "observed": 3}));
    let status_entry =
        managed_entry(&object, "kubewasm/widgets", "status").context("no status entry")?;
    assert!(!status_entry["fieldsV1"]["f:status"]["f:phase"].is_null());
    Ok(())
}
