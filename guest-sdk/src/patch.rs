//! Patches: JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with an
//! optional `resourceVersion` precondition.

use serde::Serialize;
use serde_json::Value;

use crate::ObjectRef;

/// A merge patch or a JSON patch on one object, optionally on its `status`
/// subresource and optionally only if the object still has a given
/// `resourceVersion`.
///
/// ```
/// use kubewasm_guest::{JsonPatch, ObjectRef, Patch};
/// use serde_json::json;
///
/// let target = ObjectRef::new("v1", "ConfigMap", Some("shop"), "web");
/// let merge = Patch::merge(target.clone(), json!({"data": {"mode": "on"}}));
/// let guarded = Patch::json(target, JsonPatch::new().test("/data/mode", "off").replace("/data/mode", "on"))
///     .resource_version("42");
/// assert_eq!(guarded.resource_version.as_deref(), Some("42"));
/// assert!(!merge.status);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// The object to patch.
    pub target: ObjectRef,
    /// A JSON object (merge patch) or an array of operations (JSON patch).
    pub patch: Value,
    /// Patch the `status` subresource.
    pub status: bool,
    /// Only patch if the object still has this `metadata.resourceVersion`.
    pub resource_version: Option<String>,
    #[serde(skip)]
    json_patch: bool,
}

impl Patch {
    /// A JSON merge patch: objects merge key by key, `null` removes a key.
    ///
    /// ```
    /// use kubewasm_guest::{Intent, ObjectRef, Patch};
    /// let patch = Patch::merge(ObjectRef::new("v1", "Pod", Some("a"), "p"),
    ///     serde_json::json!({"metadata": {"annotations": {"stale": null}}}));
    /// assert_eq!(Intent::from(patch).type_name(), "merge-patch");
    /// ```
    pub fn merge(target: ObjectRef, patch: Value) -> Self {
        Patch {
            target,
            patch,
            status: false,
            resource_version: None,
            json_patch: false,
        }
    }

    /// A JSON patch: a list of operations, applied all or nothing.
    ///
    /// ```
    /// use kubewasm_guest::{Intent, JsonPatch, ObjectRef, Patch};
    /// let patch = Patch::json(ObjectRef::new("v1", "Pod", Some("a"), "p"),
    ///     JsonPatch::new().remove("/metadata/annotations/stale"));
    /// assert_eq!(Intent::from(patch).type_name(), "json-patch");
    /// ```
    pub fn json(target: ObjectRef, ops: JsonPatch) -> Self {
        Patch {
            json_patch: true,
            ..Patch::merge(target, Value::Array(ops.ops))
        }
    }

    /// Patch the `status` subresource instead of the main resource.
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, Patch};
    /// let patch = Patch::merge(ObjectRef::new("v1", "Pod", Some("a"), "p"), serde_json::json!({})).status(true);
    /// assert!(patch.status);
    /// ```
    pub fn status(mut self, status: bool) -> Self {
        self.status = status;
        self
    }

    /// Only patch if the object still has this `resourceVersion`; otherwise
    /// the write fails with a conflict and the object is reconciled again.
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, Patch};
    /// let patch = Patch::merge(ObjectRef::new("v1", "Pod", Some("a"), "p"), serde_json::json!({}))
    ///     .resource_version("7");
    /// assert_eq!(patch.resource_version.as_deref(), Some("7"));
    /// ```
    pub fn resource_version(mut self, resource_version: impl Into<String>) -> Self {
        self.resource_version = Some(resource_version.into());
        self
    }

    /// Whether this is a JSON patch (rather than a merge patch).
    ///
    /// ```
    /// use kubewasm_guest::{JsonPatch, ObjectRef, Patch};
    /// assert!(Patch::json(ObjectRef::new("v1", "Pod", Some("a"), "p"), JsonPatch::new()).is_json_patch());
    /// ```
    pub fn is_json_patch(&self) -> bool {
        self.json_patch
    }
}

/// The operations of a JSON patch (RFC 6902). Paths are JSON pointers; use
/// [`escape_pointer`](crate::escape_pointer) for keys containing `/` or `~`.
///
/// ```
/// use kubewasm_guest::{escape_pointer, JsonPatch};
/// use serde_json::json;
///
/// let label = format!("/metadata/labels/{}", escape_pointer("app.kubernetes.io/name"));
/// let ops = JsonPatch::new().test(&label, "web").remove(&label);
/// assert_eq!(ops.into_value(), json!([
///     {"op": "test", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "web"},
///     {"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}]));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonPatch {
    ops: Vec<Value>,
}

impl JsonPatch {
    /// No operations yet.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::JsonPatch::new().into_value(), serde_json::json!([]));
    /// ```
    pub fn new() -> Self {
        JsonPatch::default()
    }

    /// Fails the whole patch unless the value at `path` equals `value`.
    ///
    /// ```
    /// let ops = kubewasm_guest::JsonPatch::new().test("/spec/replicas", 3);
    /// assert_eq!(ops.into_value()[0]["op"], "test");
    /// ```
    pub fn test(self, path: &str, value: impl Into<Value>) -> Self {
        self.op(serde_json::json!({"op": "test", "path": path, "value": value.into()}))
    }

    /// Adds `value` at `path` (a member of an object, or an array index;
    /// `/-` appends).
    ///
    /// ```
    /// let ops = kubewasm_guest::JsonPatch::new().add("/spec/finalizers/-", "x");
    /// assert_eq!(ops.into_value()[0]["path"], "/spec/finalizers/-");
    /// ```
    pub fn add(self, path: &str, value: impl Into<Value>) -> Self {
        self.op(serde_json::json!({"op": "add", "path": path, "value": value.into()}))
    }

    /// Replaces the existing value at `path`.
    ///
    /// ```
    /// let ops = kubewasm_guest::JsonPatch::new().replace("/spec/replicas", 2);
    /// assert_eq!(ops.into_value()[0]["value"], 2);
    /// ```
    pub fn replace(self, path: &str, value: impl Into<Value>) -> Self {
        self.op(serde_json::json!({"op": "replace", "path": path, "value": value.into()}))
    }

    /// Removes the value at `path`.
    ///
    /// ```
    /// let ops = kubewasm_guest::JsonPatch::new().remove("/metadata/annotations/x");
    /// assert_eq!(ops.into_value()[0]["op"], "remove");
    /// ```
    pub fn remove(self, path: &str) -> Self {
        self.op(serde_json::json!({"op": "remove", "path": path}))
    }

    /// The operations as a JSON array.
    ///
    /// ```
    /// assert!(kubewasm_guest::JsonPatch::new().into_value().is_array());
    /// ```
    pub fn into_value(self) -> Value {
        Value::Array(self.ops)
    }

    fn op(mut self, op: Value) -> Self {
        self.ops.push(op);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operation_serializes_per_rfc_6902() {
        let ops = JsonPatch::new()
            .test("/a", json!({"b": 1}))
            .add("/c/-", 2)
            .replace("/d", "x")
            .remove("/e");
        assert_eq!(
            ops.into_value(),
            json!([
                {"op": "test", "path": "/a", "value": {"b": 1}},
                {"op": "add", "path": "/c/-", "value": 2},
                {"op": "replace", "path": "/d", "value": "x"},
                {"op": "remove", "path": "/e"}
            ])
        );
    }

    #[test]
    fn json_patch_keeps_its_flag_through_builders() {
        let target = ObjectRef::new("v1", "Pod", Some("a"), "p");
        let patch = Patch::json(target, JsonPatch::new())
            .status(true)
            .resource_version("1");
        assert!(patch.is_json_patch());
        assert_eq!(patch.patch, json!([]));
    }
}
