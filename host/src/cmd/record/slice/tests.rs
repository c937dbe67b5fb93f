use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::cluster::client::ClientOptions;
use crate::cluster::discovery::KindInfo;
use crate::contract::{KindRef, PluginInfo, Subscription};

fn kind(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceKind {
    ResourceKind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
    }
}

fn registry() -> KindRegistry {
    KindRegistry::new(
        [
            kind("", "v1", "ConfigMap", "configmaps", true),
            kind("", "v1", "Secret", "secrets", true),
            kind("", "v1", "Namespace", "namespaces", false),
            kind("apps", "v1", "Deployment", "deployments", true),
        ]
        .into_iter()
        .map(|resource| KindInfo {
            versions: vec![resource.version.clone()],
            resource,
            verbs: vec!["list".into(), "watch".into()],
            has_status: false,
        }),
    )
}

fn subscription(kind: &str) -> Subscription {
    Subscription {
        group: String::new(),
        version: "v1".into(),
        kind: kind.into(),
        namespaces: Vec::new(),
        label_selector: None,
    }
}

fn options(plugin: Option<PluginInfo>, kinds: &[&str], include_secrets: bool) -> RecordOptions {
    RecordOptions {
        output: "rec.jsonl".into(),
        plugin,
        kinds: kinds.iter().map(|k| k.to_string()).collect(),
        namespaces: Vec::new(),
        selector: None,
        redactions: Vec::new(),
        include_secrets,
        duration: None,
        client: ClientOptions::default(),
    }
}

fn plugin() -> PluginInfo {
    PluginInfo {
        name: "p".into(),
        version: "1".into(),
        subscriptions: vec![subscription("ConfigMap"), subscription("Secret")],
        owns: vec![KindRef {
            group: "apps".into(),
            kind: "Deployment".into(),
            version: None,
        }],
        ..PluginInfo::default()
    }
}

fn names(kinds: &[ResourceKind]) -> Vec<&str> {
    kinds.iter().map(|k| k.kind.as_str()).collect()
}

#[test]
fn a_plugins_kinds_are_recorded_without_secrets_unless_asked() {
    let mut notes = Vec::new();
    let kinds = select_kinds(
        &registry(),
        &options(Some(plugin()), &["Namespace"], false),
        &mut notes,
    )
    .unwrap();
    assert_eq!(names(&kinds), ["ConfigMap", "Deployment", "Namespace"]);
    assert_eq!(
        notes,
        ["plugin p reads Secrets; they are not recorded (--include-secrets records them)"]
    );
    let mut notes = Vec::new();
    let kinds = select_kinds(&registry(), &options(Some(plugin()), &[], true), &mut notes).unwrap();
    assert_eq!(names(&kinds), ["ConfigMap", "Secret", "Deployment"]);
    assert!(notes.is_empty());
}

#[test]
fn named_kinds_must_exist_and_secrets_need_the_flag() {
    let mut notes = Vec::new();
    let err =
        select_kinds(&registry(), &options(None, &["Secret"], false), &mut notes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--kind Secret: Secrets are recorded only with --include-secrets"
    );
    assert_eq!(err.exit_code(), 2);
    let err = select_kinds(
        &registry(),
        &options(None, &["Gadget.example.com"], false),
        &mut notes,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("--kind Gadget.example.com: the cluster serves no such kind")
    );
    let kinds = select_kinds(
        &registry(),
        &options(None, &["deployments.apps", "configmap"], false),
        &mut notes,
    )
    .unwrap();
    assert_eq!(names(&kinds), ["Deployment", "ConfigMap"]);
}

fn slice(namespaces: &[&str], selector: &str, redactions: &[&str]) -> Slice {
    let kinds = vec![
        kind("", "v1", "ConfigMap", "configmaps", true),
        kind("", "v1", "Namespace", "namespaces", false),
    ];
    Slice {
        index: kinds
            .iter()
            .enumerate()
            .map(|(i, k)| ((k.group.clone(), k.kind.clone(), k.version.clone()), i))
            .collect(),
        kinds,
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        selector: LabelSelector::parse(selector).unwrap(),
        redactions: redactions
            .iter()
            .map(|r| RedactPath::parse(r).unwrap())
            .collect(),
        held: BTreeSet::new(),
    }
}

fn event(event_type: EventType, kind: &ResourceKind, object: serde_json::Value) -> KindEvent {
    KindEvent {
        kind: kind.clone(),
        event_type,
        object: Arc::new(CachedObject::from_value(&object)),
    }
}

fn cm(namespace: &str, app: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "c", "namespace": namespace, "labels": {"app": app}},
           "data": {"password": "hunter2", "user": "admin"}})
}

#[test]
fn an_object_leaving_the_selector_is_deleted_and_one_entering_it_added() {
    let mut slice = slice(&[], "app=web", &[]);
    let kind = slice.kinds[0].clone();
    let changes: Vec<Option<Change>> = [
        event(EventType::Applied, &kind, cm("shop", "db")),
        event(EventType::Applied, &kind, cm("shop", "web")),
        event(EventType::Applied, &kind, cm("shop", "web")),
        event(EventType::Applied, &kind, cm("shop", "db")),
        event(EventType::Applied, &kind, cm("shop", "db")),
        event(EventType::Applied, &kind, cm("shop", "web")),
        event(EventType::Deleted, &kind, cm("shop", "web")),
        event(EventType::Deleted, &kind, cm("shop", "web")),
    ]
    .iter()
    .map(|e| slice.change(e).map(|(_, c)| c))
    .collect();
    use Change::*;
    assert_eq!(
        changes,
        [
            None,
            Some(Added),
            Some(Modified),
            Some(Deleted),
            None,
            Some(Added),
            Some(Deleted),
            None
        ]
    );
}

#[test]
fn namespaces_select_objects_and_namespace_objects() {
    let mut slice = slice(&["shop"], "", &[]);
    let (cms, nss) = (slice.kinds[0].clone(), slice.kinds[1].clone());
    let ns =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    assert!(
        slice
            .change(&event(EventType::Applied, &cms, cm("shop", "a")))
            .is_some()
    );
    assert!(
        slice
            .change(&event(EventType::Applied, &cms, cm("other", "a")))
            .is_none()
    );
    assert!(
        slice
            .change(&event(EventType::Applied, &nss, ns("shop")))
            .is_some()
    );
    assert!(
        slice
            .change(&event(EventType::Applied, &nss, ns("other")))
            .is_none()
    );
    let unrecorded = kind("apps", "v1", "Deployment", "deployments", true);
    assert!(
        slice
            .change(&event(EventType::Applied, &unrecorded, cm("shop", "a")))
            .is_none()
    );
}

#[test]
fn written_objects_are_redacted() {
    let slice = slice(&[], "", &["data.password"]);
    let object = CachedObject::from_value(&cm("shop", "web"));
    let written = slice.written(&object);
    assert_eq!(
        written["data"],
        json!({"password": "<redacted>", "user": "admin"})
    );
    assert_eq!(written["metadata"]["labels"]["app"], "web");
}
