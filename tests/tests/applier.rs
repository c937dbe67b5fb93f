//! The applier against the real API server: what a plugin's intents do to
//! the cluster, seen the way a user would check it (the objects, their
//! `managedFields`, Events, `resourceVersion`s).
//!
//! The host cache is stood in for by [`Snapshot`], filled from the API server
//! when a test says so, so each test decides exactly what the applier knows.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Discovery};
use kubewasm::applier::{
    Applier, ApplierOptions, ApplyError, ApplyReport, IntentResult, ResolveKind, StaticKinds,
};
use kubewasm::cluster::cache::{ObjectReader, ReadError, StaticObjects};
use kubewasm::contract::intent::{Intent, ObjectRef, Outcome, Patch, Propagation, Severity};
use kubewasm::contract::selector::LabelSelector;
use kubewasm::contract::{GroupKind, PluginInfo, ResourceKind, Subscription};
use kubewasm_e2e::{TestNamespace, eventually, unique_api_group};
use serde_json::{Value, json};

/// The host cache as of the last [`Snapshot::observe`]: objects read from
/// the API server with `managedFields` stripped, as the informers keep them.
#[derive(Default)]
struct Snapshot(RwLock<StaticObjects>);

impl Snapshot {
    /// Replaces the snapshot with the current state of `objects` (those that
    /// exist).
    async fn observe(&self, client: &Client, objects: &[&ObjectRef]) -> anyhow::Result<()> {
        let mut seen = Vec::new();
        for target in objects {
            if let Some(mut object) = get(client, target).await? {
                if let Some(metadata) = object["metadata"].as_object_mut() {
                    metadata.remove("managedFields");
                }
                seen.push(object);
            }
        }
        *self.0.write().unwrap() = StaticObjects::new(seen);
        Ok(())
    }
}

impl ObjectReader for Snapshot {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<Value>>, ReadError> {
        self.0.read().unwrap().get(kind, namespace, name)
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<Value>>, ReadError> {
        self.0.read().unwrap().list(kind, namespace, selector)
    }
}

fn core_kind(kind: &str, plural: &str, namespaced: bool) -> ResourceKind {
    ResourceKind {
        group: String::new(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

fn core_kinds() -> Arc<StaticKinds> {
    Arc::new(StaticKinds::new([
        core_kind("ConfigMap", "configmaps", true),
        core_kind("Secret", "secrets", true),
        core_kind("Namespace", "namespaces", false),
    ]))
}

/// A plugin that writes ConfigMaps and reads Namespaces.
fn plugin(name: &str) -> PluginInfo {
    PluginInfo {
        name: name.into(),
        version: "1.0.0".into(),
        subscriptions: vec![Subscription {
            group: String::new(),
            version: "v1".into(),
            kind: "Namespace".into(),
            namespaces: vec![],
            label_selector: None,
        }],
        writes: vec![GroupKind {
            group: String::new(),
            kind: "ConfigMap".into(),
        }],
    }
}

fn applier(
    client: &Client,
    kinds: Arc<dyn ResolveKind>,
    cache: &Arc<Snapshot>,
    options: ApplierOptions,
) -> Applier {
    Applier::new(client.clone(), kinds, cache.clone(), options)
}

fn configmap(ns: &TestNamespace, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.name().into()),
        name: name.into(),
    }
}

fn outcome(intents: Vec<Intent>) -> Outcome {
    Outcome {
        intents,
        requeue_after_ms: None,
    }
}

fn apply_labels(target: &ObjectRef, labels: Value) -> Intent {
    Intent::Apply {
        object: json!({
            "apiVersion": target.api_version,
            "kind": target.kind,
            "metadata": {"name": target.name, "namespace": target.namespace, "labels": labels},
        }),
        status: false,
        force: false,
    }
}

fn merge_patch(target: &ObjectRef, patch: Value, resource_version: Option<&str>) -> Intent {
    Intent::MergePatch(Patch {
        target: target.clone(),
        patch,
        status: false,
        resource_version: resource_version.map(String::from),
    })
}

fn json_patch(target: &ObjectRef, patch: Value, resource_version: Option<&str>) -> Intent {
    Intent::JsonPatch(Patch {
        target: target.clone(),
        patch,
        status: false,
        resource_version: resource_version.map(String::from),
    })
}

/// An error and its causes, for assertion messages.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn results(report: &ApplyReport) -> Vec<IntentResult> {
    report.intents.iter().map(|i| i.result).collect()
}

fn api_for(client: &Client, target: &ObjectRef, plural: &str) -> Api<DynamicObject> {
    let (group, version) = match target.api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", target.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &target.kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    match &target.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The object as JSON, or `None` if it does not exist.
async fn get(client: &Client, target: &ObjectRef) -> anyhow::Result<Option<Value>> {
    let plural = match target.kind.as_str() {
        "ConfigMap" => "configmaps".to_string(),
        "Secret" => "secrets".to_string(),
        "Namespace" => "namespaces".to_string(),
        other => format!("{}s", other.to_lowercase()),
    };
    let object = api_for(client, target, &plural)
        .get_opt(&target.name)
        .await
        .with_context(|| format!("get {} {}", target.kind, target.name))?;
    Ok(object.map(serde_json::to_value).transpose()?)
}

async fn must_get(client: &Client, target: &ObjectRef) -> anyhow::Result<Value> {
    get(client, target)
        .await?
        .with_context(|| format!("{} {} does not exist", target.kind, target.name))
}

async fn create_configmap(ns: &TestNamespace, name: &str, data: Value) -> anyhow::Result<Value> {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name},
        "data": data,
    }))?;
    let created = ns
        .api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await?;
    Ok(serde_json::to_value(created)?)
}

fn resource_version(object: &Value) -> &str {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

/// The `managedFields` entry of `manager` (for `subresource`, "" for the
/// main resource).
fn managed_entry<'a>(object: &'a Value, manager: &str, subresource: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"] == manager && e["subresource"].as_str().unwrap_or_default() == subresource
        })
}

/// Whether `manager` owns `metadata.labels.<label>`.
fn owns_label(object: &Value, manager: &str, label: &str) -> bool {
    managed_entry(object, manager, "")
        .is_some_and(|e| !e["fieldsV1"]["f:metadata"]["f:labels"][format!("f:{label}")].is_null())
}

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

/// Events about `name` in `namespace` written by `controller`.
async fn events_about(
    client: &Client,
    namespace: &str,
    name: &str,
    controller: &str,
) -> anyhow::Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let listed = events
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await?;
    Ok(listed
        .items
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(controller))
        .collect())
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

#[tokio::test]
async fn missing_rbac_is_reported_as_forbidden() -> anyhow::Result<()> {
    let ns = TestNamespace::create("applier-rbac").await?;
    let pp = PostParams::default();
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "powerless"}}))?;
    ns.api::<ServiceAccount>().create(&pp, &account).await?;
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = ns
        .api::<ServiceAccount>()
        .create_token_request("powerless", &pp, &request)
        .await?
        .status
        .and_then(|s| s.token)
        .context("no token")?;
    let powerless = ns.control_plane().client_with_token(&token).await?;
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
