//! The status both plugin kinds report: conditions `Ready`, `Degraded` and
//! (with `spec.shadow`) `Shadow`, what serves, what the source last
//! resolved to, what failed, counts, and what the shadow did.

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
    /// What `spec.shadow` did since it was loaded (bounded in size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowStatus>,
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

/// A plugin resource's shadow, summed up: what it is, how its reconciles
/// compared with the serving version's, and the newest differences.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShadowStatus {
    /// The shadow module's digest (OCI manifest, or `sha256:` of the
    /// component); empty when it did not fetch.
    pub digest: String,
    /// The version its `describe` returns, once loaded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `Loading`, `Running`, `Aborted`, `LoadFailed`, `Promoted` or
    /// `PromotionFailed`: the `Shadow` condition's reason.
    pub state: String,
    #[serde(default)]
    pub counts: ShadowCounts,
    /// Compared reconciles in a row that were equal.
    #[serde(default)]
    pub streak: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_after: Option<i64>,
    /// The newest differing reconciles, newest last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub recent_differences: Vec<ShadowDifference>,
}

/// The shadow's reconciles by how they ended.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ShadowCounts {
    pub equal: i64,
    pub different: i64,
    pub failed: i64,
    pub dropped: i64,
    pub skipped: i64,
}

/// One differing reconcile: the object reconciled and where the outcomes
/// differ (`intent Kind namespace/name: field path`, or the intent only one
/// side makes).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ShadowDifference {
    /// `Kind namespace/name`.
    pub object: String,
    pub event: String,
    pub at: String,
    #[schemars(length(max = 8))]
    pub fields: Vec<String>,
}
