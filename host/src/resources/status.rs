//! The status both plugin kinds report: conditions `Ready` and `Degraded`,
//! what serves, what the source last resolved to, what failed, and counts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the spec of `observedGeneration` serves) and `Degraded`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// What runs now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<Serving>,
    /// The newest resolution of the module source (a tag's digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Resolved>,
    /// The newest content that did not load, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Failed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<Time>,
    #[serde(default)]
    pub counts: Counts,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Serving {
    /// The manifest digest (OCI), or `sha256:` of the component.
    pub digest: String,
    pub component_digest: String,
    /// The name and version the plugin's `describe` returns.
    pub name: String,
    pub version: String,
    /// The contract version, e.g. `0.2.0`.
    pub contract: String,
    pub since: Time,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Resolved {
    pub reference: String,
    pub digest: String,
    pub time: Time,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Failed {
    pub digest: String,
    pub reason: String,
    pub message: String,
    pub time: Time,
}

// Signed (`int64`): the API server knows no `uint64` format and warns on
// every apply of a CRD that uses it.
/// Since `serving.since`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub reconciles: i64,
    pub errors: i64,
    pub refused: i64,
    pub writes: i64,
}
