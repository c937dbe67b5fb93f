//! What the `applier_*.rs` tests share: a stand-in for the host cache, the
//! core kinds, a plugin, intents, and reads of the objects they wrote.
//!
//! Each test binary uses a part of it, so the rest is dead code there.
#![allow(dead_code)]

use std::sync::{Arc, RwLock};

use anyhow::Context;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kubewasm::applier::{
    Applier, ApplierOptions, ApplyReport, IntentResult, ResolveKind, StaticKinds,
};
use kubewasm::cluster::cache::{ObjectReader, ReadError, StaticObjects};
use kubewasm::cluster::object::CachedObject;
use kubewasm::contract::intent::{Intent, ObjectRef, Outcome, Patch};
use kubewasm::contract::selector::LabelSelector;
use kubewasm::contract::{GroupKind, PluginInfo, ResourceKind, Subscription};
use kubewasm_e2e::TestNamespace;
use serde_json::{Value, json};

/// The host cache as of the last [`Snapshot::observe`]: objects read from
/// the API server with `managedFields` stripped, as the informers keep them.
#[derive(Default)]
pub struct Snapshot(RwLock<StaticObjects>);

impl Snapshot {
    /// Replaces the snapshot with the current state of `objects` (those that
    /// exist).
    pub async fn observe(&self, client: &Client, objects: &[&ObjectRef]) -> anyhow::Result<()> {
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
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        self.0.read().unwrap().get(kind, namespace, name)
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        self.0.read().unwrap().list(kind, namespace, selector)
    }
}

pub fn core_kind(kind: &str, plural: &str, namespaced: bool) -> ResourceKind {
    ResourceKind {
        group: String::new(),
        version: "v1".into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

pub fn core_kinds() -> Arc<StaticKinds> {
    Arc::new(StaticKinds::new([
        core_kind("ConfigMap", "configmaps", true),
        core_kind("Secret", "secrets", true),
        core_kind("Namespace", "namespaces", false),
    ]))
}

/// A plugin that writes ConfigMaps and reads Namespaces.
pub fn plugin(name: &str) -> PluginInfo {
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
        ..PluginInfo::default()
    }
}

pub fn applier(
    client: &Client,
    kinds: Arc<dyn ResolveKind>,
    cache: &Arc<Snapshot>,
    options: ApplierOptions,
) -> Applier {
    Applier::new(client.clone(), kinds, cache.clone(), options)
}

pub fn configmap(ns: &TestNamespace, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some(ns.name().into()),
        name: name.into(),
    }
}

pub fn outcome(intents: Vec<Intent>) -> Outcome {
    Outcome {
        intents,
        requeue_after_ms: None,
    }
}

pub fn apply_labels(target: &ObjectRef, labels: Value) -> Intent {
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

pub fn merge_patch(target: &ObjectRef, patch: Value, resource_version: Option<&str>) -> Intent {
    Intent::MergePatch(Patch {
        target: target.clone(),
        patch,
        status: false,
        resource_version: resource_version.map(String::from),
    })
}

pub fn json_patch(target: &ObjectRef, patch: Value, resource_version: Option<&str>) -> Intent {
    Intent::JsonPatch(Patch {
        target: target.clone(),
        patch,
        status: false,
        resource_version: resource_version.map(String::from),
    })
}

/// An error and its causes, for assertion messages.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

pub fn results(report: &ApplyReport) -> Vec<IntentResult> {
    report.intents.iter().map(|i| i.result).collect()
}

pub fn api_for(client: &Client, target: &ObjectRef, plural: &str) -> Api<DynamicObject> {
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
pub async fn get(client: &Client, target: &ObjectRef) -> anyhow::Result<Option<Value>> {
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

pub async fn must_get(client: &Client, target: &ObjectRef) -> anyhow::Result<Value> {
    get(client, target)
        .await?
        .with_context(|| format!("{} {} does not exist", target.kind, target.name))
}

pub async fn create_configmap(
    ns: &TestNamespace,
    name: &str,
    data: Value,
) -> anyhow::Result<Value> {
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

pub fn resource_version(object: &Value) -> &str {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

/// The `managedFields` entry of `manager` (for `subresource`, "" for the
/// main resource).
pub fn managed_entry<'a>(object: &'a Value, manager: &str, subresource: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| {
            e["manager"] == manager && e["subresource"].as_str().unwrap_or_default() == subresource
        })
}

/// Whether `manager` owns `metadata.labels.<label>`.
pub fn owns_label(object: &Value, manager: &str, label: &str) -> bool {
    managed_entry(object, manager, "")
        .is_some_and(|e| !e["fieldsV1"]["f:metadata"]["f:labels"][format!("f:{label}")].is_null())
}

/// Events about `name` in `namespace` written by `controller`.
pub async fn events_about(
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
