//! The applier creating, deleting and recording Events against the real
//! API server: create and delete (with propagation, and an object already
//! gone), and Events about an object, repeated on the same Event.
//!
//! The host cache is stood in for by `Snapshot` (`applier_support`), filled
//! from the API server when a test says so, so each test decides exactly
//! what the applier knows.

mod applier_support;

use std::sync::Arc;

use anyhow::{Context, bail};
use kubewasm::applier::{ApplierOptions, IntentResult};
use kubewasm::contract::intent::{Intent, ObjectRef, Propagation, Severity};
use kubewasm_e2e::TestNamespace;
use serde_json::json;

use applier_support::{
    Snapshot, applier, configmap, core_kinds, create_configmap, events_about, get, managed_entry,
    must_get, outcome, plugin, resource_version, results,
};

#[tokio::test]
async fn create_and_delete() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-create").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "child");
    let create = Intent::Create {
        object: json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "child", "namespace": ns.name()},
            "data": {"made": "by a plugin"},
        }),
    };
    let generated = Intent::Create {
        object: json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": "gen-", "namespace": ns.name()},
        }),
    };
    let report = applier
        .apply(
            &plugin("creator"),
            &outcome(vec![create.clone(), generated]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied; 2]);
    let object = must_get(client, &target).await?;
    assert_eq!(object["data"]["made"], "by a plugin");
    assert!(managed_entry(&object, "kubewasm/creator", "").is_some());
    let generated_name = &report.intents[1].target.name;
    assert!(generated_name.starts_with("gen-") && generated_name.len() > 4);
    must_get(client, &configmap(&ns, generated_name)).await?;

    // Creating what exists is reported, not an error, and changes nothing.
    let report = applier
        .apply(&plugin("creator"), &outcome(vec![create]))
        .await?;
    assert_eq!(results(&report), [IntentResult::AlreadyExists]);
    assert_eq!(
        resource_version(&must_get(client, &target).await?),
        resource_version(&object)
    );

    let delete = Intent::Delete {
        target: target.clone(),
        propagation: Some(Propagation::Background),
    };
    let report = applier
        .apply(&plugin("creator"), &outcome(vec![delete.clone()]))
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    assert!(get(client, &target).await?.is_none());
    let report = applier
        .apply(&plugin("creator"), &outcome(vec![delete]))
        .await?;
    assert_eq!(results(&report), [IntentResult::AlreadyGone]);
    Ok(())
}

#[tokio::test]
async fn events_are_recorded_about_the_object() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-events").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let options = ApplierOptions {
        reporting_instance: "kubewasm-test-0".into(),
        ..ApplierOptions::default()
    };
    let applier = applier(client, core_kinds(), &cache, options);
    let target = configmap(&ns, "noted");
    let cm = create_configmap(&ns, "noted", json!({})).await?;
    cache.observe(client, &[&target]).await?;
    let record = |note: &str| Intent::RecordEvent {
        regarding: target.clone(),
        severity: Severity::Warning,
        reason: "Misconfigured".into(),
        note: note.into(),
        action: "Validate".into(),
    };

    let report = applier
        .apply(
            &plugin("auditor"),
            &outcome(vec![record("key x is missing")]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    let events = events_about(client, ns.name(), "noted", "kubewasm.dev/auditor").await?;
    let [event] = events.as_slice() else {
        bail!("expected one event, got {events:?}");
    };
    let regarding = event.regarding.as_ref().context("no regarding")?;
    assert_eq!(regarding.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(regarding.namespace.as_deref(), Some(ns.name()));
    assert_eq!(regarding.uid.as_deref(), cm["metadata"]["uid"].as_str());
    assert_eq!(event.reason.as_deref(), Some("Misconfigured"));
    assert_eq!(event.action.as_deref(), Some("Validate"));
    assert_eq!(event.note.as_deref(), Some("key x is missing"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reporting_instance.as_deref(), Some("kubewasm-test-0"));
    assert!(event.event_time.is_some());

    // A repeat is counted on the same Event.
    applier
        .apply(
            &plugin("auditor"),
            &outcome(vec![record("key x is still missing")]),
        )
        .await?;
    let events = events_about(client, ns.name(), "noted", "kubewasm.dev/auditor").await?;
    let [event] = events.as_slice() else {
        bail!("expected the repeat on the same event, got {events:?}");
    };
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(2));
    assert_eq!(
        event.note.as_deref(),
        Some("key x is missing"),
        "Events are immutable"
    );

    // Events about cluster-scoped objects go to `default`.
    let namespace = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: ns.name().into(),
    };
    cache.observe(client, &[&namespace]).await?;
    let seen = Intent::RecordEvent {
        regarding: namespace.clone(),
        severity: Severity::Normal,
        reason: "Seen".into(),
        note: String::new(),
        action: "Reconcile".into(),
    };
    applier
        .apply(&plugin("auditor"), &outcome(vec![seen]))
        .await?;
    let events = events_about(client, "default", ns.name(), "kubewasm.dev/auditor").await?;
    let [event] = events.as_slice() else {
        bail!("expected one event in default, got {events:?}");
    };
    let namespace_object = must_get(client, &namespace).await?;
    let regarding = event.regarding.as_ref().context("no regarding")?;
    assert_eq!(
        regarding.uid.as_deref(),
        namespace_object["metadata"]["uid"].as_str()
    );
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    Ok(())
}
