//! The plugin resources: `ClusterPlugin` (cluster-scoped, run by the
//! cluster's operator) and `Plugin` (namespaced, run by a namespace's owner
//! in that namespace only), group `kubewasm.dev`, version `v1alpha1`.
//!
//! The CRDs in `deploy/crds/` are generated from these types
//! (`kubewasm crds`); the API server enforces their schemas and CEL rules,
//! so a malformed resource is refused at `kubectl apply` with the rule's
//! message, before the host sees it. The design, and what each field will
//! drive, is `docs/design/plugin-resources.md`.

// clippy reads the repeated `type_ = "string"` of the `printcolumn(...)`
// arguments below as duplicated attributes; they are one column each.
#![allow(clippy::duplicated_attributes)]

pub mod access;
pub mod fetch;
mod follow;
pub mod object;
pub mod report;
pub mod setup;
mod shadowing;
pub mod source;
pub mod spec;
mod status;

pub use status::{
    Counts, Failed, PluginStatus, Resolved, Serving, ShadowCounts, ShadowDifference, ShadowStatus,
};

use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A plugin the cluster operator runs cluster-wide, or in the listed
/// namespaces.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubewasm.dev",
    version = "v1alpha1",
    kind = "ClusterPlugin",
    status = "PluginStatus",
    shortname = "kwcp",
    category = "kubewasm",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.serving.version"
    ),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".status.serving.digest"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = "1",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPluginSpec {
    pub module: ModuleSource,
    /// Handed to the plugin as JSON: its `validate-settings` checks them,
    /// then every call reads them. Absent: `{}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "settings_schema")]
    pub settings: Option<serde_json::Value>,
    /// The namespaces the plugin may act in; empty: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 256),
        inner(length(max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))
    )]
    pub namespaces: Vec<String>,
    pub grants: Grants,
    /// Send every write with `dryRun=All`: nothing changes in the cluster.
    #[serde(default)]
    pub dry_run: bool,
    /// Stop calling the plugin (it stays loaded only while it serves).
    #[serde(default)]
    pub suspend: bool,
    /// A new version run beside the serving one on live traffic: compared,
    /// never applied (`docs/rollout.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSpec>,
}

/// A plugin a namespace's owner runs in that namespace only, writing as a
/// ServiceAccount of it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "kubewasm.dev",
    version = "v1alpha1",
    kind = "Plugin",
    namespaced,
    status = "PluginStatus",
    shortname = "kwp",
    category = "kubewasm",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.serving.version"
    ),
    printcolumn(
        name = "Digest",
        type_ = "string",
        json_path = ".status.serving.digest"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = "1",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    pub module: ModuleSource,
    /// Handed to the plugin as JSON (see `ClusterPlugin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "settings_schema")]
    pub settings: Option<serde_json::Value>,
    pub grants: Grants,
    /// Every write is made as `system:serviceaccount:<namespace>:<this>`,
    /// so the team's RBAC bounds what the plugin can change.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
    )]
    pub service_account_name: String,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub suspend: bool,
    /// A new version run beside the serving one (see `ClusterPlugin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSpec>,
}

/// The shadow of a plugin resource: fetched like `module`, run with the
/// same grants on the same events, its outcomes compared with the serving
/// version's and reported in `status.shadow`; it writes nothing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShadowSpec {
    pub module: ModuleSource,
    /// The shadow's settings; absent: the serving `settings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "settings_schema")]
    pub settings: Option<serde_json::Value>,
    /// Promote after this many compared reconciles in a row were equal
    /// (none failed): the host sets `module` and `settings` to the
    /// shadow's and removes `shadow`. Absent: never automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub promote_after: Option<i64>,
}

/// Where the component comes from: exactly one source.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.oci), has(self.configMap), has(self.secret)].exists_one(x, x)").message("set exactly one of module.oci, module.configMap, module.secret"))]
pub struct ModuleSource {
    /// An OCI artifact (`kubewasm push`) by tag or digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciSource>,
    /// `binaryData[key]` of a ConfigMap: modules under 1 MiB, no registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeyRef>,
    /// `data[key]` of a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KeyRef>,
}

/// A component in an OCI registry.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.pollInterval) || !self.reference.contains('@')").message("pollInterval applies to tag references only; a digest never changes"))]
pub struct OciSource {
    /// `registry[:port]/repository:tag`, `...@sha256:<64 hex>`, or both
    /// (then the digest is what is pulled).
    #[schemars(length(max = 512))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+((:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})(@sha256:[a-f0-9]{64})?|@sha256:[a-f0-9]{64})$')").message("reference must be registry/repository with an explicit :tag or @sha256:digest"))]
    pub reference: String,
    /// A `kubernetes.io/dockerconfigjson` Secret (the Plugin's namespace, or
    /// the host's for a ClusterPlugin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<LocalObjectRef>,
    /// How often a tag is resolved again, e.g. `5m` (the default); at least `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s')").message("pollInterval must be at least 10s"))]
    pub poll_interval: Option<String>,
}

/// A key of a ConfigMap or Secret in the resource's namespace (the host's
/// for a ClusterPlugin).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct KeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LocalObjectRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator allows the plugin: its own declaration (`describe`)
/// must fit inside, or it is refused with a condition naming what is missing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Grants {
    /// Kinds it may write (`*` for any).
    #[schemars(length(max = 64))]
    pub write: Vec<KindGrant>,
    /// Kinds it may subscribe to, own, watch and read.
    #[schemars(length(max = 64))]
    pub read: Vec<KindGrant>,
}

/// A kind by group (`""` for the core group) and kind; `*` for any.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct KindGrant {
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub group: String,
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

/// Settings are a JSON object of the plugin's own shape.
fn settings_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Both CRDs as one YAML stream, as `deploy/crds/kubewasm.dev.yaml` holds them.
pub fn crds_yaml() -> String {
    let mut out = String::from(
        "# The kubewasm plugin resources. Generated by `kubewasm crds`; do not edit.\n",
    );
    for crd in [ClusterPlugin::crd(), Plugin::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd).expect("YAML of a CRD"));
    }
    out
}

#[cfg(test)]
mod tests;
