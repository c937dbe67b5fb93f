//! Owner references: how a child object names its parent, so that the
//! garbage collector deletes it with the parent.

use serde::{Deserialize, Serialize};

use crate::{Error, Object};

/// One entry of `metadata.ownerReferences`.
///
/// ```
/// use kubewasm_guest::{Object, OwnerReference};
///
/// let website = Object::from(serde_json::json!({
///     "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
///     "metadata": {"name": "blog", "namespace": "shop", "uid": "6b1c"}}));
/// let owner = OwnerReference::controller(&website)?;
/// assert_eq!(serde_json::to_value(&owner)?, serde_json::json!({
///     "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website", "name": "blog", "uid": "6b1c",
///     "controller": true, "blockOwnerDeletion": true}));
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's `apiVersion`.
    pub api_version: String,
    /// The owner's kind.
    pub kind: String,
    /// The owner's name (same namespace as the child, or cluster-scoped).
    pub name: String,
    /// The owner's `metadata.uid`: a reference to a deleted and recreated
    /// owner of the same name does not match.
    pub uid: String,
    /// Whether the owner is the managing controller (at most one per object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
    /// Whether foreground deletion of the owner waits for this child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_owner_deletion: Option<bool>,
}

impl OwnerReference {
    /// A controller reference to `owner` (`controller: true`,
    /// `blockOwnerDeletion: true`), as controllers put on the children they
    /// create. Fails if `owner` has no name or uid (e.g. an object built
    /// locally rather than read from the cluster).
    ///
    /// ```
    /// use kubewasm_guest::{Object, OwnerReference};
    /// let unsaved = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}));
    /// assert!(OwnerReference::controller(&unsaved).is_err());
    /// ```
    pub fn controller(owner: &Object) -> Result<Self, Error> {
        let uid = owner.uid().filter(|uid| !uid.is_empty()).ok_or_else(|| {
            Error::msg(format!(
                "{} has no metadata.uid to own a child",
                owner.object_ref()
            ))
        })?;
        if owner.api_version().is_empty() || owner.kind().is_empty() || owner.name().is_empty() {
            return Err(Error::msg(
                "an owner needs apiVersion, kind and metadata.name",
            ));
        }
        Ok(OwnerReference {
            api_version: owner.api_version().to_string(),
            kind: owner.kind().to_string(),
            name: owner.name().to_string(),
            uid: uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
    }
}

impl Object {
    /// `metadata.ownerReferences`, skipping malformed entries.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"ownerReferences": [
    ///     {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u"}]}}));
    /// assert_eq!(obj.owner_references()[0].kind, "ReplicaSet");
    /// ```
    pub fn owner_references(&self) -> Vec<OwnerReference> {
        self.value()["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_value(r.clone()).ok())
            .collect()
    }

    /// The owner reference marked `controller: true`, if any.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"ownerReferences": [
    ///     {"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1"},
    ///     {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}]}}));
    /// assert_eq!(obj.controller().unwrap().name, "b");
    /// ```
    pub fn controller(&self) -> Option<OwnerReference> {
        self.owner_references()
            .into_iter()
            .find(|r| r.controller == Some(true))
    }

    /// Whether `owner` is this object's controller (matched by uid).
    ///
    /// ```
    /// use kubewasm_guest::{Object, OwnerReference};
    /// let owner = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
    ///     "metadata": {"name": "o", "uid": "u-1"}}));
    /// let child = Object::from(serde_json::json!({"metadata": {
    ///     "ownerReferences": [OwnerReference::controller(&owner)?]}}));
    /// assert!(child.is_controlled_by(&owner));
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn is_controlled_by(&self, owner: &Object) -> bool {
        match (self.controller(), owner.uid()) {
            (Some(reference), Some(uid)) => reference.uid == uid,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controller_ref_requires_uid() {
        let obj = Object::from(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}}),
        );
        assert_eq!(
            OwnerReference::controller(&obj).unwrap_err().message(),
            "v1 ConfigMap n/a has no metadata.uid to own a child"
        );
    }

    #[test]
    fn not_controlled_by_a_recreated_owner() {
        let owner = Object::from(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "o", "uid": "new"}}),
        );
        let child = Object::from(json!({"metadata": {"ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "old", "controller": true}]}}));
        assert!(!child.is_controlled_by(&owner));
    }

    #[test]
    fn malformed_references_are_skipped() {
        let obj = Object::from(json!({"metadata": {"ownerReferences": [{"kind": "X"}, 3]}}));
        assert!(obj.owner_references().is_empty());
        assert!(obj.controller().is_none());
    }
}
