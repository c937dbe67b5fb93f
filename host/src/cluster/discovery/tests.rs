//! Tests for choosing kinds from what the API server serves.

use super::*;

fn resource(plural: &str, kind: &str, verbs: &[&str]) -> ServedResource {
    ServedResource {
        plural: plural.into(),
        kind: kind.into(),
        namespaced: true,
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        has_status: false,
    }
}

fn version(version: &str, resources: Vec<ServedResource>) -> ServedVersion {
    ServedVersion {
        version: version.into(),
        resources,
    }
}

const LW: &[&str] = &["watch", "list", "get"];

#[test]
fn preferred_version_wins_when_it_serves_the_resource() {
    let group = ServedGroup {
        name: "autoscaling".into(),
        preferred: Some("v2".into()),
        versions: vec![
            version("v1", vec![resource("horizontalpodautoscalers", "HPA", LW)]),
            version("v2", vec![resource("horizontalpodautoscalers", "HPA", LW)]),
        ],
    };
    let kinds = select_kinds(vec![group]);
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].resource.version, "v2");
    assert_eq!(kinds[0].versions, ["v2", "v1"]);
    assert_eq!(kinds[0].verbs, ["get", "list", "watch"]);
}

#[test]
fn falls_back_to_the_newest_version_serving_the_resource() {
    // `olds` is only served by older versions; GA beats beta beats alpha.
    let group = ServedGroup {
        name: "example.dev".into(),
        preferred: Some("v2".into()),
        versions: vec![
            version("v1alpha1", vec![resource("olds", "Old", LW)]),
            version("v1beta2", vec![resource("olds", "Old", LW)]),
            version("v1beta1", vec![resource("olds", "Old", LW)]),
            version("v2", vec![resource("news", "New", LW)]),
        ],
    };
    let kinds = select_kinds(vec![group]);
    let versions: Vec<_> = kinds
        .iter()
        .map(|k| (k.resource.plural.as_str(), k.resource.version.as_str()))
        .collect();
    assert_eq!(versions, [("news", "v2"), ("olds", "v1beta2")]);
    assert_eq!(kinds[1].versions, ["v1beta2", "v1beta1", "v1alpha1"]);
}

#[test]
fn keeps_only_kinds_that_can_be_listed_and_watched() {
    let group = ServedGroup {
        name: String::new(),
        preferred: Some("v1".into()),
        versions: vec![version(
            "v1",
            vec![
                resource("pods", "Pod", LW),
                resource("bindings", "Binding", &["create"]),
                resource("componentstatuses", "ComponentStatus", &["get", "list"]),
            ],
        )],
    };
    let kinds = select_kinds(vec![group]);
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[0].resource.kind, "Pod");
}

#[test]
fn listable_in_an_older_version_only_is_kept_at_that_version() {
    // The preferred version serves the resource without `watch`.
    let group = ServedGroup {
        name: "example.dev".into(),
        preferred: Some("v2".into()),
        versions: vec![
            version("v2", vec![resource("things", "Thing", &["get", "list"])]),
            version("v1", vec![resource("things", "Thing", LW)]),
        ],
    };
    let kinds = select_kinds(vec![group]);
    assert_eq!(kinds[0].resource.version, "v1");
    assert_eq!(kinds[0].versions, ["v1"]);
}

#[test]
fn per_group_lists_mark_status_and_skip_subresources() {
    let list: APIResourceList = serde_json::from_value(serde_json::json!({
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true,
             "kind": "Deployment", "verbs": ["get", "list", "watch"]},
            {"name": "deployments/status", "singularName": "", "namespaced": true,
             "kind": "Deployment", "verbs": ["get", "patch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true,
             "kind": "Scale", "group": "autoscaling", "version": "v1", "verbs": ["get"]},
            {"name": "controllerrevisions", "singularName": "controllerrevision",
             "namespaced": true, "kind": "ControllerRevision", "verbs": ["list", "watch"]}
        ]
    }))
    .unwrap();
    let served = served_version_from_list("v1".into(), &list);
    let names: Vec<_> = served
        .resources
        .iter()
        .map(|r| (r.plural.as_str(), r.has_status))
        .collect();
    assert_eq!(
        names,
        [("deployments", true), ("controllerrevisions", false)]
    );
}

#[test]
fn aggregated_stale_versions_become_failures() {
    let group: APIGroupDiscovery = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "metrics.example.dev"},
        "versions": [
            {"version": "v1beta1", "freshness": "Stale"},
            {"version": "v1alpha1", "freshness": "Current", "resources": [
                {"resource": "nodes", "responseKind": {"group": "", "version": "", "kind": "NodeMetrics"},
                 "scope": "Cluster", "verbs": ["get", "list", "watch"],
                 "subresources": [{"subresource": "status", "verbs": ["get"]}]}
            ]}
        ]
    }))
    .unwrap();
    let mut failures = Vec::new();
    let served = served_group_from_aggregated(group, &mut failures);
    assert_eq!(failures.len(), 1);
    assert_eq!(
        (failures[0].group.as_str(), failures[0].version.as_str()),
        ("metrics.example.dev", "v1beta1")
    );
    let kinds = select_kinds(vec![served]);
    assert_eq!(kinds.len(), 1);
    let nodes = &kinds[0];
    assert_eq!(nodes.resource.version, "v1alpha1");
    assert!(!nodes.resource.namespaced);
    assert!(nodes.has_status);
}

#[test]
fn error_labels_are_bounded() {
    let error = DiscoveryError::ListResources {
        group_version: "metrics.k8s.io/v1beta1".into(),
        source: kube::Error::Api(
            kube::core::Status::failure(
                "the server is currently unable to handle the request",
                "ServiceUnavailable",
            )
            .with_code(503)
            .boxed(),
        ),
    };
    assert_eq!(error.metric_label(), "list_resources");
    assert_eq!(error.status_code(), Some(503));
    assert_eq!(
        error.to_string(),
        "failed to list the resources of metrics.k8s.io/v1beta1"
    );
    assert_eq!(
        failure_reason(&error),
        "503 ServiceUnavailable: the server is currently unable to handle the request"
    );
}
