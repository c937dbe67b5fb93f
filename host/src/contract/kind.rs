//! A kind's identity: [`GroupKind`] names a kind in any version (what a
//! plugin reads, writes and is granted); [`ResourceKind`] is one version of
//! it as the API server serves it (with its resource name and scope).

use serde::Serialize;
use serde_json::Value;

/// The wildcard that matches any group, version or kind.
pub const WILDCARD: &str = "*";

/// A kind in any version: its API group (empty for the core group) and its
/// name. In a plugin's write scope or grant either part may be [`WILDCARD`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// From an `apiVersion` and a kind; the version is dropped.
    pub fn from_api_version(api_version: &str, kind: &str) -> Self {
        Self::new(split_api_version(api_version).0, kind)
    }

    /// The kind an object says it is (empty parts when it does not say).
    pub fn of_object(object: &Value) -> Self {
        Self::from_api_version(
            object["apiVersion"].as_str().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        )
    }

    /// Whether this kind, read as a pattern, covers `group`/`kind`.
    pub fn matches(&self, group: &str, kind: &str) -> bool {
        pattern_matches(&self.group, group) && pattern_matches(&self.kind, kind)
    }
}

impl std::fmt::Display for GroupKind {
    /// `Kind` for the core group, `Kind.group` otherwise (kubectl's form).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// One version of a kind as the cluster serves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceKind {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

impl ResourceKind {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        api_version(&self.group, &self.version)
    }

    /// The kind's identity, without the version.
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(&self.group, &self.kind)
    }
}

pub(crate) fn pattern_matches(pattern: &str, value: &str) -> bool {
    pattern == WILDCARD || pattern == value
}

/// The resource (plural) name of `kind` when no API server is at hand to
/// say it: kube's pluralizer, which knows the irregular built-in kinds
/// (`Endpoints`, `EndpointSlice`) and English endings (`Gateway` →
/// `gateways`, `Ingress` → `ingresses`, `NetworkPolicy` →
/// `networkpolicies`). Discovery's answer is authoritative wherever a
/// cluster is at hand; a CRD may declare any plural.
pub fn offline_plural(kind: &str) -> String {
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", kind);
    kube::api::ApiResource::from_gvk(&gvk).plural
}

/// Formats an `apiVersion` from a group and version.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an `apiVersion` into group and version (`v1` is the core group).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_plurals_follow_the_api_servers_for_built_in_kinds() {
        for (kind, plural) in [
            ("ConfigMap", "configmaps"),
            ("Gateway", "gateways"),
            ("Endpoints", "endpoints"),
            ("EndpointSlice", "endpointslices"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("StorageClass", "storageclasses"),
            ("Mesh", "meshes"),
        ] {
            assert_eq!(offline_plural(kind), plural, "{kind}");
        }
    }

    #[test]
    fn api_versions_round_trip() {
        assert_eq!(api_version("", "v1"), "v1");
        assert_eq!(api_version("apps", "v1"), "apps/v1");
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
        assert_eq!(split_api_version("v1"), ("", "v1"));
    }

    #[test]
    fn group_kinds_print_as_kubectl_does() {
        assert_eq!(GroupKind::new("", "ConfigMap").to_string(), "ConfigMap");
        assert_eq!(
            GroupKind::new("apps", "Deployment").to_string(),
            "Deployment.apps"
        );
        assert!(GroupKind::new("apps", "*").matches("apps", "Deployment"));
        assert!(!GroupKind::new("apps", "*").matches("", "Deployment"));
    }
}
