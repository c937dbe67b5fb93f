//! What a reconcile returns: intents (the writes the host makes for the
//! plugin) and an optional requeue delay.
//!
//! Serialized with serde, an outcome has the shape `kubewasm eval --output
//! json` prints and the conformance fixtures under `plugins/*/fixtures` use:
//! `{"intents": [{"type": "apply", ...}], "requeueAfterMs": null}`.

use std::time::Duration;

use serde::Serialize;

use crate::{Apply, Create, Delete, Patch, RecordEvent};

/// One write the plugin wants the host to make. Build it with [`Apply`],
/// [`Patch`], [`Create`], [`Delete`] or [`RecordEvent`] and `.into()` (or
/// pass the builder to [`Outcome::with`], which converts).
///
/// ```
/// use kubewasm_guest::{Delete, Intent, ObjectRef};
///
/// let intent: Intent = Delete::new(ObjectRef::new("v1", "ConfigMap", Some("shop"), "old")).into();
/// assert_eq!(intent.type_name(), "delete");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Intent {
    /// Server-side apply of a partial object.
    Apply(Apply),
    /// JSON merge patch (RFC 7386).
    MergePatch(Patch),
    /// JSON patch (RFC 6902), possibly with `test` operations.
    JsonPatch(Patch),
    /// Create a new object.
    Create(Create),
    /// Delete an object.
    Delete(Delete),
    /// Record a Kubernetes Event.
    RecordEvent(RecordEvent),
}

impl Intent {
    /// The intent's name as written in WIT: `apply`, `merge-patch`,
    /// `json-patch`, `create`, `delete` or `record-event`.
    ///
    /// ```
    /// use kubewasm_guest::{Apply, Intent};
    /// let intent = Intent::from(Apply::new(serde_json::json!({})));
    /// assert_eq!(intent.type_name(), "apply");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            Intent::Apply(_) => "apply",
            Intent::MergePatch(_) => "merge-patch",
            Intent::JsonPatch(_) => "json-patch",
            Intent::Create(_) => "create",
            Intent::Delete(_) => "delete",
            Intent::RecordEvent(_) => "record-event",
        }
    }
}

impl From<Apply> for Intent {
    fn from(apply: Apply) -> Self {
        Intent::Apply(apply)
    }
}

impl From<Patch> for Intent {
    fn from(patch: Patch) -> Self {
        if patch.is_json_patch() {
            Intent::JsonPatch(patch)
        } else {
            Intent::MergePatch(patch)
        }
    }
}

impl From<Create> for Intent {
    fn from(create: Create) -> Self {
        Intent::Create(create)
    }
}

impl From<Delete> for Intent {
    fn from(delete: Delete) -> Self {
        Intent::Delete(delete)
    }
}

impl From<RecordEvent> for Intent {
    fn from(event: RecordEvent) -> Self {
        Intent::RecordEvent(event)
    }
}

/// A successful reconcile: the writes to make, in order, and optionally a
/// delay after which the object is reconciled again even if it does not
/// change (e.g. while waiting for a child to become ready).
///
/// ```
/// use std::time::Duration;
/// use kubewasm_guest::{Apply, ObjectRef, Outcome};
/// use serde_json::json;
///
/// let target = ObjectRef::new("v1", "ConfigMap", Some("shop"), "web");
/// let outcome = Outcome::new()
///     .with(Apply::fields(&target, json!({"data": {"k": "v"}})))
///     .requeue_after(Duration::from_secs(5));
/// assert_eq!(outcome.intents.len(), 1);
/// assert_eq!(outcome.requeue_after_ms, Some(5000));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The writes, made in this order.
    pub intents: Vec<Intent>,
    /// Call again after this many milliseconds; none for no requeue.
    pub requeue_after_ms: Option<u64>,
}

impl Outcome {
    /// Nothing to do.
    ///
    /// ```
    /// assert!(kubewasm_guest::Outcome::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Outcome::default()
    }

    /// Adds an intent (any builder converts).
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, Outcome, RecordEvent};
    /// let obj = ObjectRef::new("v1", "ConfigMap", Some("a"), "b");
    /// let outcome = Outcome::new().with(RecordEvent::normal(obj, "Seen", "saw it"));
    /// assert_eq!(outcome.intents[0].type_name(), "record-event");
    /// ```
    pub fn with(mut self, intent: impl Into<Intent>) -> Self {
        self.push(intent);
        self
    }

    /// Adds an intent in place.
    ///
    /// ```
    /// use kubewasm_guest::{Delete, ObjectRef, Outcome};
    /// let mut outcome = Outcome::new();
    /// outcome.push(Delete::new(ObjectRef::new("v1", "ConfigMap", Some("a"), "b")));
    /// assert!(!outcome.is_empty());
    /// ```
    pub fn push(&mut self, intent: impl Into<Intent>) {
        self.intents.push(intent.into());
    }

    /// Asks to be called again after `delay` (rounded down to milliseconds).
    ///
    /// ```
    /// let outcome = kubewasm_guest::Outcome::new().requeue_after(std::time::Duration::from_millis(1500));
    /// assert_eq!(outcome.requeue_after_ms, Some(1500));
    /// ```
    pub fn requeue_after(mut self, delay: Duration) -> Self {
        self.requeue_after_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Whether there are no intents and no requeue.
    ///
    /// ```
    /// assert!(kubewasm_guest::Outcome::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.intents.is_empty() && self.requeue_after_ms.is_none()
    }
}

impl<I: Into<Intent>> Extend<I> for Outcome {
    fn extend<T: IntoIterator<Item = I>>(&mut self, iter: T) {
        self.intents.extend(iter.into_iter().map(Into::into));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JsonPatch, ObjectRef, Propagation};
    use serde_json::json;

    fn target() -> ObjectRef {
        ObjectRef::new("v1", "ConfigMap", Some("ns"), "x")
    }

    /// The same shape the host's `intent.rs` serializes, so fixtures written
    /// from either side compare equal.
    #[test]
    fn serializes_in_the_fixture_shape() {
        let outcome = Outcome::new()
            .with(
                Patch::merge(target(), json!({"metadata": {"labels": {"a": "b"}}}))
                    .resource_version("7"),
            )
            .with(
                Patch::json(
                    target(),
                    JsonPatch::new().test("/data/k", "v").remove("/data/k"),
                )
                .status(true),
            )
            .with(Delete::new(target()).propagation(Propagation::Foreground))
            .requeue_after(Duration::from_secs(2));
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({
                "intents": [{
                    "type": "merge-patch",
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"},
                    "patch": {"metadata": {"labels": {"a": "b"}}},
                    "status": false,
                    "resourceVersion": "7"
                }, {
                    "type": "json-patch",
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"},
                    "patch": [{"op": "test", "path": "/data/k", "value": "v"}, {"op": "remove", "path": "/data/k"}],
                    "status": true,
                    "resourceVersion": null
                }, {
                    "type": "delete",
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"},
                    "propagation": "Foreground"
                }],
                "requeueAfterMs": 2000
            })
        );
    }

    #[test]
    fn apply_create_and_event_shapes() {
        let outcome = Outcome::new()
            .with(Apply::fields(&target(), json!({"data": {"k": "v"}})))
            .with(Create::new(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
            ))
            .with(RecordEvent::warning(target(), "Invalid", "bad").action("Validate"));
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({
                "intents": [{
                    "type": "apply",
                    "object": {"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "x", "namespace": "ns"}, "data": {"k": "v"}},
                    "status": false,
                    "force": true
                }, {
                    "type": "create",
                    "object": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
                }, {
                    "type": "record-event",
                    "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"},
                    "severity": "Warning",
                    "reason": "Invalid",
                    "note": "bad",
                    "action": "Validate"
                }],
                "requeueAfterMs": null
            })
        );
    }

    #[test]
    fn extend_converts() {
        let mut outcome = Outcome::new();
        outcome.extend([Delete::new(target()), Delete::new(target())]);
        assert_eq!(outcome.intents.len(), 2);
    }
}
