//! Whole-object writes: server-side apply, create and delete.

use serde::Serialize;
use serde_json::Value;

use crate::{ObjectRef, OwnerReference};

/// Server-side apply of a partial object with the plugin's field manager.
///
/// The applied configuration names the object (`apiVersion`, `kind`,
/// `metadata.name`, `metadata.namespace`) and holds only the fields the
/// plugin owns; fields it stops sending are removed if no other manager owns
/// them. Forces by default, as controllers normally do.
///
/// ```
/// use kubewasm_guest::{Apply, ObjectRef};
/// use serde_json::json;
///
/// let target = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web");
/// let apply = Apply::fields(&target, json!({"metadata": {"labels": {"team": "a"}}}));
/// assert_eq!(apply.object["metadata"], json!({"name": "web", "namespace": "shop", "labels": {"team": "a"}}));
/// assert!(apply.force && !apply.status);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Apply {
    /// The applied configuration.
    pub object: Value,
    /// Apply to the `status` subresource.
    pub status: bool,
    /// Take ownership of fields another manager owns.
    pub force: bool,
}

impl Apply {
    /// Applies `object` as given (it must name itself).
    ///
    /// ```
    /// let apply = kubewasm_guest::Apply::new(serde_json::json!({
    ///     "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "b"}}));
    /// assert!(apply.force);
    /// ```
    pub fn new(object: Value) -> Self {
        Apply {
            object,
            status: false,
            force: true,
        }
    }

    /// Applies `fields` to the object `target` names: the target's identity
    /// ([`ObjectRef::skeleton`]) merged with `fields`.
    ///
    /// ```
    /// use kubewasm_guest::{Apply, ObjectRef};
    /// let target = ObjectRef::new("v1", "ConfigMap", Some("a"), "b");
    /// let apply = Apply::fields(&target, serde_json::json!({"data": {"k": "v"}}));
    /// assert_eq!(apply.object["data"]["k"], "v");
    /// assert_eq!(apply.object["metadata"]["name"], "b");
    /// ```
    pub fn fields(target: &ObjectRef, fields: Value) -> Self {
        let mut object = target.skeleton();
        merge(&mut object, fields);
        Apply::new(object)
    }

    /// Applies `status` to the `status` subresource of `target`.
    ///
    /// ```
    /// use kubewasm_guest::{Apply, ObjectRef};
    /// let target = ObjectRef::new("demo.kubewasm.dev/v1alpha1", "Website", Some("a"), "blog");
    /// let apply = Apply::status_of(&target, serde_json::json!({"observedGeneration": 2}));
    /// assert!(apply.status);
    /// assert_eq!(apply.object["status"]["observedGeneration"], 2);
    /// ```
    pub fn status_of(target: &ObjectRef, status: Value) -> Self {
        let mut apply = Apply::fields(target, serde_json::json!({ "status": status }));
        apply.status = true;
        apply
    }

    /// Whether to take ownership of fields another manager owns (default
    /// true).
    ///
    /// ```
    /// let apply = kubewasm_guest::Apply::new(serde_json::json!({})).force(false);
    /// assert!(!apply.force);
    /// ```
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// Sets `metadata.ownerReferences` to this one reference, making the
    /// object a child that is garbage-collected with its owner.
    ///
    /// ```
    /// use kubewasm_guest::{Apply, Object, ObjectRef, OwnerReference};
    /// let owner = Object::from(serde_json::json!({"apiVersion": "demo.kubewasm.dev/v1alpha1",
    ///     "kind": "Website", "metadata": {"name": "blog", "namespace": "a", "uid": "u-1"}}));
    /// let child = ObjectRef::new("v1", "ConfigMap", Some("a"), "blog");
    /// let apply = Apply::fields(&child, serde_json::json!({})).owner(OwnerReference::controller(&owner)?);
    /// assert_eq!(apply.object["metadata"]["ownerReferences"][0]["uid"], "u-1");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn owner(mut self, owner: OwnerReference) -> Self {
        set_owner(&mut self.object, owner);
        self
    }
}

/// Creates a new object (`apiVersion`, `kind` and `metadata.name` or
/// `metadata.generateName` required). Fails with a conflict if it exists;
/// prefer [`Apply`] for objects the plugin keeps up to date.
///
/// ```
/// use kubewasm_guest::Create;
/// let create = Create::new(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"generateName": "report-", "namespace": "a"}}));
/// assert_eq!(create.object["kind"], "ConfigMap");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Create {
    /// The new object.
    pub object: Value,
}

impl Create {
    /// Creates `object`.
    ///
    /// ```
    /// let create = kubewasm_guest::Create::new(serde_json::json!({"kind": "Secret"}));
    /// assert_eq!(create.object["kind"], "Secret");
    /// ```
    pub fn new(object: Value) -> Self {
        Create { object }
    }

    /// Sets `metadata.ownerReferences` to this one reference.
    ///
    /// ```
    /// use kubewasm_guest::{Create, Object, OwnerReference};
    /// let owner = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
    ///     "metadata": {"name": "o", "uid": "u-2"}}));
    /// let create = Create::new(serde_json::json!({"metadata": {"name": "c"}}))
    ///     .owner(OwnerReference::controller(&owner)?);
    /// assert_eq!(create.object["metadata"]["ownerReferences"][0]["name"], "o");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn owner(mut self, owner: OwnerReference) -> Self {
        set_owner(&mut self.object, owner);
        self
    }
}

/// How dependents of a deleted object are treated (Kubernetes'
/// `propagationPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Propagation {
    /// Delete the object now, its dependents in the background.
    Background,
    /// Delete the dependents first, then the object.
    Foreground,
    /// Keep the dependents, removing their owner reference.
    Orphan,
}

/// Deletes an object.
///
/// ```
/// use kubewasm_guest::{Delete, ObjectRef, Propagation};
/// let delete = Delete::new(ObjectRef::new("v1", "ConfigMap", Some("a"), "old"))
///     .propagation(Propagation::Background);
/// assert_eq!(delete.propagation, Some(Propagation::Background));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Delete {
    /// The object to delete.
    pub target: ObjectRef,
    /// None uses the server's default for the kind.
    pub propagation: Option<Propagation>,
}

impl Delete {
    /// Deletes `target` with the server's default propagation.
    ///
    /// ```
    /// let delete = kubewasm_guest::Delete::new(kubewasm_guest::ObjectRef::new("v1", "Pod", Some("a"), "p"));
    /// assert_eq!(delete.propagation, None);
    /// ```
    pub fn new(target: ObjectRef) -> Self {
        Delete {
            target,
            propagation: None,
        }
    }

    /// Sets the propagation policy.
    ///
    /// ```
    /// use kubewasm_guest::{Delete, ObjectRef, Propagation};
    /// let delete = Delete::new(ObjectRef::new("v1", "Pod", Some("a"), "p")).propagation(Propagation::Orphan);
    /// assert_eq!(delete.propagation, Some(Propagation::Orphan));
    /// ```
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = Some(propagation);
        self
    }
}

/// Replaces `metadata.ownerReferences` of `object` with `[owner]`.
fn set_owner(object: &mut Value, owner: OwnerReference) {
    let owner = serde_json::to_value(owner).unwrap_or_default();
    merge(
        object,
        serde_json::json!({ "metadata": { "ownerReferences": [owner] } }),
    );
}

/// Merges `overlay` into `base`: objects merge key by key, anything else
/// replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overlay) => *base = overlay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_is_deep_and_replaces_leaves() {
        let mut base = json!({"a": {"b": 1, "c": [1]}, "d": 1});
        merge(
            &mut base,
            json!({"a": {"c": [2], "e": null}, "d": {"x": 1}}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": [2], "e": null}, "d": {"x": 1}})
        );
    }

    #[test]
    fn fields_cannot_rename_silently_but_can_add_metadata() {
        let target = ObjectRef::new("v1", "Namespace", None, "a");
        let apply = Apply::fields(&target, json!({"metadata": {"labels": {"x": "y"}}}));
        assert_eq!(
            apply.object,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}})
        );
    }

    #[test]
    fn owner_replaces_existing_references() {
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "o".into(),
            uid: "u".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let create = Create::new(
            json!({"metadata": {"ownerReferences": [{"uid": "old"}, {"uid": "older"}]}}),
        )
        .owner(owner);
        assert_eq!(
            create.object["metadata"]["ownerReferences"],
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u",
                    "controller": true, "blockOwnerDeletion": true}])
        );
    }
}
