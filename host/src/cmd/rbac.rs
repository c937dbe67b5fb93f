//! `kubewasm rbac --plugins DIR`: the ClusterRole (and its binding to the
//! host's ServiceAccount) granting exactly what the plugins in a directory
//! need, plus what the host itself needs.
//!
//! - Read (`get`, `list`, `watch`) on every kind a plugin subscribes to: the
//!   informers list and watch them.
//! - Write (`create`, `update`, `patch`, `delete`; server-side apply is a
//!   patch) on every kind in a write scope, `get`, `update`, `patch` on its
//!   `status` subresource and `update` on `finalizers` (needed to set
//!   `blockOwnerDeletion` in owner references to it).
//! - `get` and `patch` on every kind a plugin's finalizer covers: the host
//!   adds and removes the finalizer with JSON patches (the load-time check
//!   already puts these kinds in the write scope; the rule says why).
//! - For the host: discovery, watching CustomResourceDefinitions and
//!   APIServices (kinds appearing at runtime), Events, and Leases (leader
//!   election).
//!
//! Resource names come from kinds the way kubectl guesses them offline
//! (`Ingress` → `ingresses`, `Policy` → `policies`); a `*` in a
//! subscription or write scope becomes `*` in the rule. The output is
//! computed without a cluster, so it can be reviewed and committed.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::ObjectMeta;

use crate::contract::{PluginInfo, WILDCARD};

/// Who the role is for.
#[derive(Clone, Debug)]
pub struct RbacOptions {
    /// Name of the ClusterRole and ClusterRoleBinding.
    pub name: String,
    /// The host's ServiceAccount.
    pub service_account: String,
    pub namespace: String,
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "patch", "update"];
const STATUS: &[&str] = &["get", "patch", "update"];

fn resource_of(kind: &str) -> String {
    if kind == WILDCARD {
        WILDCARD.to_string()
    } else {
        crate::contract::offline_plural(kind)
    }
}

/// Verbs by (group, resource), merged into as few rules as reads well: one
/// rule per group and verb set.
#[derive(Default)]
struct Grants(BTreeMap<(String, String), BTreeSet<&'static str>>);

impl Grants {
    fn add(&mut self, group: &str, resource: String, verbs: &[&'static str]) {
        self.0
            .entry((group.to_string(), resource))
            .or_default()
            .extend(verbs.iter().copied());
    }

    fn rules(self) -> Vec<PolicyRule> {
        let mut merged: BTreeMap<(String, Vec<&str>), Vec<String>> = BTreeMap::new();
        for ((group, resource), verbs) in self.0 {
            merged
                .entry((group, verbs.into_iter().collect()))
                .or_default()
                .push(resource);
        }
        merged
            .into_iter()
            .map(|((group, verbs), resources)| PolicyRule {
                api_groups: Some(vec![group]),
                resources: Some(resources),
                verbs: verbs.into_iter().map(String::from).collect(),
                ..PolicyRule::default()
            })
            .collect()
    }
}

/// The rules the plugins and the host need.
pub fn rules(plugins: &[PluginInfo]) -> Vec<PolicyRule> {
    let mut grants = Grants::default();
    for plugin in plugins {
        for subscription in &plugin.subscriptions {
            grants.add(&subscription.group, resource_of(&subscription.kind), READ);
        }
        // Owned kinds and mapped watch sources are watched like subscriptions.
        for watched in plugin.watched() {
            grants.add(&watched.group, resource_of(&watched.kind), READ);
        }
        for scope in &plugin.writes {
            let resource = resource_of(&scope.kind);
            grants.add(&scope.group, format!("{resource}/status"), STATUS);
            // Owner references with blockOwnerDeletion to objects of this
            // kind need `update` on its finalizers (OwnerReferencesPermissionEnforcement).
            grants.add(&scope.group, format!("{resource}/finalizers"), &["update"]);
            grants.add(&scope.group, resource, WRITE);
        }
        // The host adds and removes the plugin's finalizer by JSON patch.
        for kind in plugin.finalizer.iter().flat_map(|f| &f.kinds) {
            grants.add(&kind.group, resource_of(&kind.kind), &["get", "patch"]);
        }
    }
    // The host itself.
    let host: [(&str, &str, &[&'static str]); 5] = [
        ("apiextensions.k8s.io", "customresourcedefinitions", READ),
        ("apiregistration.k8s.io", "apiservices", READ),
        ("", "events", &["create", "get", "list", "patch", "update"]),
        (
            "events.k8s.io",
            "events",
            &["create", "get", "list", "patch", "update"],
        ),
        (
            "coordination.k8s.io",
            "leases",
            &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
        ),
    ];
    for (group, resource, verbs) in host {
        grants.add(group, resource.to_string(), verbs);
    }
    let mut rules = grants.rules();
    rules.push(PolicyRule {
        non_resource_urls: Some(vec![
            "/api".into(),
            "/api/*".into(),
            "/apis".into(),
            "/apis/*".into(),
        ]),
        verbs: vec!["get".into()],
        ..PolicyRule::default()
    });
    rules
}

/// The ClusterRole and ClusterRoleBinding as one YAML stream.
pub fn manifests(plugins: &[PluginInfo], options: &RbacOptions) -> String {
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let labels = BTreeMap::from([("app.kubernetes.io/name".to_string(), "kubewasm".to_string())]);
    let annotations = BTreeMap::from([("kubewasm.dev/plugins".to_string(), names.join(","))]);
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(options.name.clone()),
            labels: Some(labels.clone()),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        rules: Some(rules(plugins)),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(options.name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: options.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: options.service_account.clone(),
            namespace: Some(options.namespace.clone()),
            ..Subject::default()
        }]),
    };
    let with_type = |value: serde_json::Value, kind: &str| {
        let mut value = value;
        value["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
        value["kind"] = kind.into();
        serde_saphyr::to_string(&value).expect("YAML of a JSON value")
    };
    format!(
        "# Generated by `kubewasm rbac` for plugins: {}\n{}---\n{}",
        names.join(", "),
        with_type(
            serde_json::to_value(&role).expect("serialisable"),
            "ClusterRole"
        ),
        with_type(
            serde_json::to_value(&binding).expect("serialisable"),
            "ClusterRoleBinding"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{GroupKind, Subscription};

    fn plugin() -> PluginInfo {
        PluginInfo {
            name: "web".into(),
            version: "1".into(),
            subscriptions: vec![
                Subscription {
                    group: "demo.kubewasm.dev".into(),
                    version: "v1alpha1".into(),
                    kind: "Website".into(),
                    namespaces: vec![],
                    label_selector: None,
                },
                Subscription {
                    group: "".into(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    namespaces: vec![],
                    label_selector: None,
                },
            ],
            writes: vec![GroupKind {
                group: "demo.kubewasm.dev".into(),
                kind: "Website".into(),
            }],
            ..PluginInfo::default()
        }
    }

    fn verbs_on<'a>(rules: &'a [PolicyRule], group: &str, resource: &str) -> Vec<&'a str> {
        rules
            .iter()
            .filter(|r| r.api_groups.as_deref() == Some(&[group.to_string()]))
            .filter(|r| {
                r.resources
                    .as_ref()
                    .is_some_and(|rs| rs.iter().any(|x| x == resource))
            })
            .flat_map(|r| r.verbs.iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn reads_subscriptions_and_writes_scopes_with_status() {
        let rules = rules(&[plugin()]);
        assert_eq!(verbs_on(&rules, "", "configmaps"), ["get", "list", "watch"]);
        let websites = verbs_on(&rules, "demo.kubewasm.dev", "websites");
        for verb in [
            "create", "delete", "get", "list", "patch", "update", "watch",
        ] {
            // Read through the subscription, write through the scope.
            assert!(websites.contains(&verb), "{websites:?}");
        }
        assert_eq!(
            verbs_on(&rules, "demo.kubewasm.dev", "websites/status"),
            ["get", "patch", "update"]
        );
        // Nothing the plugin did not ask for.
        assert!(verbs_on(&rules, "", "secrets").is_empty());
        assert!(!verbs_on(&rules, "", "configmaps").contains(&"patch"));
        // The host's own needs.
        assert!(verbs_on(&rules, "coordination.k8s.io", "leases").contains(&"update"));
        assert!(
            verbs_on(&rules, "apiextensions.k8s.io", "customresourcedefinitions")
                .contains(&"watch")
        );
    }

    #[test]
    fn a_finalizer_needs_patch_on_its_kinds() {
        let mut plugin = plugin();
        plugin.writes.clear();
        let without = rules(std::slice::from_ref(&plugin));
        assert!(!verbs_on(&without, "demo.kubewasm.dev", "websites").contains(&"patch"));
        plugin.finalizer = Some(crate::contract::Finalizer {
            name: "kubewasm.dev/web".into(),
            kinds: vec![GroupKind::new("demo.kubewasm.dev", "Website")],
        });
        let with = rules(&[plugin]);
        assert_eq!(
            verbs_on(&with, "demo.kubewasm.dev", "websites"),
            ["get", "list", "patch", "watch"]
        );
    }

    #[test]
    fn rules_name_irregular_plurals_as_the_api_server_does() {
        let mut plugin = plugin();
        plugin.subscriptions[0].group = "gateway.networking.k8s.io".into();
        plugin.subscriptions[0].kind = "Gateway".into();
        plugin.subscriptions[1].kind = "Endpoints".into();
        plugin.writes.clear();
        let rules = rules(&[plugin]);
        assert_eq!(
            verbs_on(&rules, "gateway.networking.k8s.io", "gateways"),
            ["get", "list", "watch"]
        );
        assert_eq!(verbs_on(&rules, "", "endpoints"), ["get", "list", "watch"]);
        assert!(verbs_on(&rules, "gateway.networking.k8s.io", "gatewaies").is_empty());
    }

    #[test]
    fn manifests_bind_the_role_to_the_service_account() {
        let yaml = manifests(
            &[plugin()],
            &RbacOptions {
                name: "kubewasm".into(),
                service_account: "kubewasm".into(),
                namespace: "kubewasm-system".into(),
            },
        );
        let docs: Vec<serde_json::Value> = yaml
            .split("\n---\n")
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "ClusterRole");
        assert_eq!(
            docs[0]["metadata"]["annotations"]["kubewasm.dev/plugins"],
            "web"
        );
        assert_eq!(docs[1]["kind"], "ClusterRoleBinding");
        assert_eq!(docs[1]["subjects"][0]["namespace"], "kubewasm-system");
        assert_eq!(docs[1]["roleRef"]["name"], "kubewasm");
    }
}
