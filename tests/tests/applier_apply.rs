//! The applier's server-side apply against the real API server, seen the
//! way a user would check it (the objects, their `managedFields`, Events,
//! `resourceVersion`s): labels owned by the plugin that applied them, two
//! plugins' field managers, writes that change nothing not sent, and a dry
//! run that changes nothing.
//!
//! The host cache is stood in for by `Snapshot` (`applier_support`), filled
//! from the API server when a test says so, so each test decides exactly
//! what the applier knows.

mod applier_support;

use std::sync::Arc;

use anyhow::Context;
use kubewasm::applier::{Applier, ApplierOptions, IntentResult};
use kubewasm::contract::intent::{Intent, Severity};
use kubewasm_e2e::TestNamespace;
use serde_json::json;

use applier_support::{
    Snapshot, applier, apply_labels, chain, configmap, core_kinds, create_configmap, events_about,
    get, json_patch, managed_entry, merge_patch, must_get, outcome, owns_label, plugin,
    resource_version, results,
};

#[tokio::test]
async fn server_side_apply_writes_labels_owned_by_the_plugin() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-ssa").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "settings");

    let report = applier
        .apply(
            &plugin("labeller"),
            &outcome(vec![apply_labels(&target, json!({"team": "a"}))]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    assert!(!report.dry_run);
    let object = must_get(client, &target).await?;
    assert_eq!(object["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(
        report.intents[0].resource_version.as_deref(),
        Some(resource_version(&object))
    );
    let entry =
        managed_entry(&object, "kubewasm/labeller", "").context("no managedFields entry")?;
    assert_eq!(entry["operation"], "Apply");
    assert!(owns_label(&object, "kubewasm/labeller", "team"));

    cache.observe(client, &[&target]).await?;
    applier
        .apply(
            &plugin("labeller"),
            &outcome(vec![apply_labels(&target, json!({"team": "b"}))]),
        )
        .await?;
    let object = must_get(client, &target).await?;
    assert_eq!(object["metadata"]["labels"], json!({"team": "b"}));
    Ok(())
}

#[tokio::test]
async fn two_plugins_own_the_labels_they_apply() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-owners").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "shared");
    create_configmap(&ns, "shared", json!({"k": "v"})).await?;

    let (a, b) = (plugin("plugin-a"), plugin("plugin-b"));
    applier
        .apply(&a, &outcome(vec![apply_labels(&target, json!({"a": "1"}))]))
        .await?;
    applier
        .apply(&b, &outcome(vec![apply_labels(&target, json!({"b": "2"}))]))
        .await?;
    let object = must_get(client, &target).await?;
    assert_eq!(object["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    assert!(owns_label(&object, "kubewasm/plugin-a", "a"));
    assert!(!owns_label(&object, "kubewasm/plugin-a", "b"));
    assert!(owns_label(&object, "kubewasm/plugin-b", "b"));
    assert!(!owns_label(&object, "kubewasm/plugin-b", "a"));
    assert_eq!(
        object["data"],
        json!({"k": "v"}),
        "other fields are untouched"
    );

    // Taking plugin-a's label without force is an ownership conflict that
    // changes nothing; with force it moves the field to plugin-b.
    let take = apply_labels(&target, json!({"a": "taken", "b": "2"}));
    let err = applier
        .apply(&b, &outcome(vec![take.clone()]))
        .await
        .expect_err("plugin-b may not take plugin-a's label without force");
    assert_eq!(err.metric_label(), "ownership_conflict", "{}", chain(&err));
    assert!(!err.is_conflict());
    let message = format!("{:#}", anyhow::Error::from(err));
    assert!(
        message.contains("plugin plugin-b, intent 0 (apply)"),
        "{message}"
    );
    assert!(message.contains("kubewasm/plugin-a"), "{message}");
    assert_eq!(
        must_get(client, &target).await?["metadata"]["labels"]["a"],
        "1"
    );

    let Intent::Apply { object, status, .. } = take else {
        unreachable!()
    };
    let forced = Intent::Apply {
        object,
        status,
        force: true,
    };
    applier.apply(&b, &outcome(vec![forced])).await?;
    let object = must_get(client, &target).await?;
    assert_eq!(object["metadata"]["labels"]["a"], "taken");
    assert!(owns_label(&object, "kubewasm/plugin-b", "a"));
    assert!(!owns_label(&object, "kubewasm/plugin-a", "a"));
    Ok(())
}

#[tokio::test]
async fn writes_that_change_nothing_are_not_sent() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-noop").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let applier = applier(client, core_kinds(), &cache, ApplierOptions::default());
    let target = configmap(&ns, "steady");
    let plugin = plugin("steady");

    let labels = json!({"a": "1", "b": "2"});
    applier
        .apply(
            &plugin,
            &outcome(vec![apply_labels(&target, labels.clone())]),
        )
        .await?;
    cache.observe(client, &[&target]).await?;
    let before = must_get(client, &target).await?;
    let report = applier
        .apply(
            &plugin,
            &outcome(vec![
                apply_labels(&target, labels),
                merge_patch(&target, json!({"metadata": {"labels": {"a": "1"}}}), None),
                json_patch(
                    &target,
                    json!([{"op": "replace", "path": "/metadata/labels/b", "value": "2"}]),
                    None,
                ),
            ]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Unchanged; 3]);
    assert_eq!(report.sent(), 0);
    let after = must_get(client, &target).await?;
    assert_eq!(resource_version(&after), resource_version(&before));

    // Dropping a label from the apply configuration is a change (server-side
    // apply removes the field the plugin no longer applies), and is sent.
    let report = applier
        .apply(
            &plugin,
            &outcome(vec![apply_labels(&target, json!({"a": "1"}))]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    let after = must_get(client, &target).await?;
    assert_eq!(after["metadata"]["labels"], json!({"a": "1"}));

    // A fresh applier (a restarted host) sends the apply once; the API
    // server finds nothing to change and keeps the resourceVersion.
    cache.observe(client, &[&target]).await?;
    let restarted = Applier::new(
        client.clone(),
        core_kinds(),
        cache.clone(),
        ApplierOptions::default(),
    );
    let report = restarted
        .apply(
            &plugin,
            &outcome(vec![apply_labels(&target, json!({"a": "1"}))]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    assert_eq!(
        report.intents[0].resource_version.as_deref(),
        Some(resource_version(&after))
    );
    let report = restarted
        .apply(
            &plugin,
            &outcome(vec![apply_labels(&target, json!({"a": "1"}))]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Unchanged]);

    // A changed value is sent even when the cache has the object.
    let report = applier
        .apply(
            &plugin,
            &outcome(vec![merge_patch(
                &target,
                json!({"metadata": {"labels": {"a": "3"}}}),
                None,
            )]),
        )
        .await?;
    assert_eq!(results(&report), [IntentResult::Applied]);
    Ok(())
}

#[tokio::test]
async fn dry_run_leaves_the_cluster_unchanged() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-dry-run").await?;
    let client = ns.client();
    let cache = Arc::new(Snapshot::default());
    let options = ApplierOptions {
        dry_run: true,
        ..ApplierOptions::default()
    };
    let applier = applier(client, core_kinds(), &cache, options);
    let existing = configmap(&ns, "existing");
    let before = create_configmap(&ns, "existing", json!({"v": "1"})).await?;
    cache.observe(client, &[&existing]).await?;
    let fresh = configmap(&ns, "fresh");

    let report = applier
        .apply(
            &plugin("dry"),
            &outcome(vec![
                apply_labels(&fresh, json!({"would": "be"})),
                Intent::Create {
                    object: json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "created", "namespace": ns.name()},
                    }),
                },
                apply_labels(&existing, json!({"would": "change"})),
                merge_patch(&existing, json!({"data": {"v": "2"}}), None),
                Intent::RecordEvent {
                    regarding: existing.clone(),
                    severity: Severity::Normal,
                    reason: "DryRun".into(),
                    note: String::new(),
                    action: "Reconcile".into(),
                },
                Intent::Delete {
                    target: existing.clone(),
                    propagation: None,
                },
            ]),
        )
        .await?;
    assert!(report.dry_run);
    assert_eq!(results(&report), [IntentResult::Applied; 6]);

    assert!(get(client, &fresh).await?.is_none());
    assert!(get(client, &configmap(&ns, "created")).await?.is_none());
    let after = must_get(client, &existing).await?;
    assert_eq!(resource_version(&after), resource_version(&before));
    assert_eq!(after["data"]["v"], "1");
    assert!(after["metadata"]["labels"].is_null());
    let events = events_about(client, ns.name(), "existing", "kubewasm.dev/dry").await?;
    assert!(events.is_empty(), "{events:?}");
    Ok(())
}
