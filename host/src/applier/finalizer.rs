//! The finalizer the host manages for a plugin (`PluginInfo::finalizer`):
//! added to an object before the plugin's first write to it, removed once
//! the plugin's `finalizing` reconcile is done.
//!
//! Both writes are JSON patches whose `test` operations turn a concurrent
//! change into a conflict (the key reconciles again with the newest state),
//! never into an overwrite of someone else's finalizers:
//!
//! - add, when the object has finalizers: `test` that the list is exactly
//!   what the host read, then append; when it has none: `test` the
//!   object's `resourceVersion` (so a finalizer added meanwhile is not
//!   replaced), then add the list;
//! - remove: `test` that the entry at the index the host read is the
//!   finalizer, then remove that index.
//!
//! Both also `test` the object's `uid`, so an object deleted and created
//! again under the same name is never touched; and a patch never creates an
//! object (a patch of a missing object is `NotFound`), unlike server-side
//! apply, which is why neither is an apply. They go through the same
//! client as the intents (leader fence, `dryRun=All` in a dry run, retries
//! of throttling and unavailability) and are reported like intents, with
//! the types [`FINALIZER_ADD`] and [`FINALIZER_REMOVE`].

use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tracing::info;

use super::Applier;
use super::error::{ApplyError, Call, IntentSite, is_unexplained_invalid};
use super::report::{IntentReport, IntentResult};
use crate::cluster::object::CachedObject;
use crate::contract::ResourceKind;
use crate::contract::intent::ObjectRef;

/// The intent type of the host's write that adds a plugin's finalizer.
pub const FINALIZER_ADD: &str = "finalizer-add";
/// The intent type of the host's write that removes a plugin's finalizer.
pub const FINALIZER_REMOVE: &str = "finalizer-remove";

/// The finalizers of `object` (`metadata.finalizers`), in order.
pub fn finalizers(object: &Value) -> impl Iterator<Item = &str> {
    object["metadata"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether `object` carries the finalizer `name`.
pub fn has_finalizer(object: &Value, name: &str) -> bool {
    finalizers(object).any(|f| f == name)
}

/// Whether the object's deletion has started (`metadata.deletionTimestamp`).
pub fn is_being_deleted(object: &Value) -> bool {
    !object["metadata"]["deletionTimestamp"].is_null()
}

/// The JSON patch that adds `name` to `object` as the host read it; `None`
/// if it is already there.
pub fn add_patch(object: &Value, name: &str) -> Option<Value> {
    if has_finalizer(object, name) {
        return None;
    }
    let metadata = &object["metadata"];
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": metadata["uid"]})];
    match metadata["finalizers"].as_array() {
        Some(list) if !list.is_empty() => {
            ops.push(json!({"op": "test", "path": "/metadata/finalizers", "value": list}));
            ops.push(json!({"op": "add", "path": "/metadata/finalizers/-", "value": name}));
        }
        _ => {
            ops.push(json!({
                "op": "test", "path": "/metadata/resourceVersion",
                "value": metadata["resourceVersion"],
            }));
            ops.push(json!({"op": "add", "path": "/metadata/finalizers", "value": [name]}));
        }
    }
    Some(Value::Array(ops))
}

/// The JSON patch that removes `name` from `object` as the host read it;
/// `None` if it is not there.
pub fn remove_patch(object: &Value, name: &str) -> Option<Value> {
    let index = object["metadata"]["finalizers"]
        .as_array()?
        .iter()
        .position(|f| f.as_str() == Some(name))?;
    let entry = format!("/metadata/finalizers/{index}");
    Some(json!([
        {"op": "test", "path": "/metadata/uid", "value": object["metadata"]["uid"]},
        {"op": "test", "path": entry, "value": name},
        {"op": "remove", "path": entry},
    ]))
}

/// The object `object` of `kind` as an intent would name it.
fn target(kind: &ResourceKind, object: &CachedObject) -> ObjectRef {
    ObjectRef {
        api_version: kind.api_version(),
        kind: kind.kind.clone(),
        namespace: object.namespace().map(String::from),
        name: object.name().to_string(),
    }
}

impl Applier {
    /// Adds the finalizer `name` to `object` (the state the plugin was
    /// called with) for `plugin`: [`IntentResult::Unchanged`] if it is
    /// already there, a conflict if the object changed meanwhile.
    pub async fn add_finalizer(
        &self,
        plugin: &str,
        kind: &ResourceKind,
        object: &CachedObject,
        name: &str,
    ) -> Result<IntentReport, ApplyError> {
        // A tree of the object, once per finalizer write (the worker
        // decides from the cached header whether there is one to make).
        let patch = add_patch(&object.parse(), name);
        self.patch_finalizers(plugin, FINALIZER_ADD, kind, object, name, patch)
            .await
    }

    /// Removes the finalizer `name` from `object` for `plugin`:
    /// [`IntentResult::Unchanged`] if it is not there,
    /// [`IntentResult::AlreadyGone`] if the object is gone, a conflict if
    /// its finalizers changed meanwhile.
    pub async fn remove_finalizer(
        &self,
        plugin: &str,
        kind: &ResourceKind,
        object: &CachedObject,
        name: &str,
    ) -> Result<IntentReport, ApplyError> {
        let patch = remove_patch(&object.parse(), name);
        self.patch_finalizers(plugin, FINALIZER_REMOVE, kind, object, name, patch)
            .await
    }

    async fn patch_finalizers(
        &self,
        plugin: &str,
        intent: &'static str,
        kind: &ResourceKind,
        object: &CachedObject,
        name: &str,
        patch: Option<Value>,
    ) -> Result<IntentReport, ApplyError> {
        let target = target(kind, object);
        let site = IntentSite {
            plugin: plugin.to_string(),
            index: IntentSite::HOST_WRITE,
            intent,
            object: target.describe(),
        };
        let report = |result, resource_version| IntentReport {
            index: IntentSite::HOST_WRITE,
            intent,
            target: target.clone(),
            result,
            resource_version,
        };
        let Some(patch) = patch else {
            return Ok(report(IntentResult::Unchanged, None));
        };
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(|e| ApplyError::Invalid {
                site: site.clone(),
                reason: format!("the host built a JSON patch that does not parse: {e}"),
            })?;
        let api = self.api(kind, &target);
        let params = PatchParams {
            dry_run: self.options.dry_run,
            field_manager: Some(format!("kubewasm/{plugin}")),
            ..Default::default()
        };
        let call = Call::new("patch", kind, false, &target);
        let json = Patch::<()>::Json(patch);
        let sent = self
            .send(&site, &call, false, || {
                api.patch(&target.name, &params, &json)
            })
            .await;
        let dry_run = if self.options.dry_run {
            " (dry run: sent with dryRun=All, the cluster is not changed)"
        } else {
            ""
        };
        match sent {
            Ok(patched) => {
                info!(plugin, finalizer = name, object = %site.object, "{intent}{dry_run}");
                Ok(report(
                    IntentResult::Applied,
                    patched.metadata.resource_version,
                ))
            }
            Err(ApplyError::NotFound { .. }) if intent == FINALIZER_REMOVE => {
                Ok(report(IntentResult::AlreadyGone, None))
            }
            // A failed `test`: the API server says only "invalid".
            Err(ApplyError::Rejected { site, source, .. }) if is_unexplained_invalid(&source) => {
                Err(ApplyError::Conflict { site, source })
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "kubewasm.dev/website";

    fn object(finalizers: Option<Value>) -> Value {
        let mut object = json!({
            "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
            "metadata": {"name": "blog", "namespace": "web", "uid": "u-1", "resourceVersion": "42"},
        });
        if let Some(f) = finalizers {
            object["metadata"]["finalizers"] = f;
        }
        object
    }

    /// Applies `patch` the way the API server would (tests included).
    fn applied(mut object: Value, patch: Value) -> Result<Value, json_patch::PatchError> {
        let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
        json_patch::patch(&mut object, &patch).map(|()| object)
    }

    #[test]
    fn adding_to_an_object_without_finalizers_tests_its_resource_version() {
        let patch = add_patch(&object(None), NAME).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "u-1"},
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "add", "path": "/metadata/finalizers", "value": [NAME]},
            ])
        );
        let after = applied(object(None), patch.clone()).unwrap();
        assert_eq!(after["metadata"]["finalizers"], json!([NAME]));
        // Someone added a finalizer meanwhile (a new resourceVersion): the
        // patch fails instead of replacing theirs.
        let mut changed = object(Some(json!(["other.io/x"])));
        changed["metadata"]["resourceVersion"] = json!("43");
        assert!(applied(changed, patch).is_err());
    }

    #[test]
    fn adding_appends_to_the_exact_list_read() {
        let patch = add_patch(&object(Some(json!(["other.io/x"]))), NAME).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "u-1"},
                {"op": "test", "path": "/metadata/finalizers", "value": ["other.io/x"]},
                {"op": "add", "path": "/metadata/finalizers/-", "value": NAME},
            ])
        );
        let after = applied(object(Some(json!(["other.io/x"]))), patch.clone()).unwrap();
        assert_eq!(after["metadata"]["finalizers"], json!(["other.io/x", NAME]));
        // The list changed meanwhile: a conflict, not an overwrite.
        assert!(applied(object(Some(json!(["other.io/y"]))), patch).is_err());
        // Already there: nothing to send.
        assert_eq!(add_patch(&object(Some(json!([NAME]))), NAME), None);
    }

    #[test]
    fn removing_tests_the_exact_entry() {
        let list = json!(["a.io/x", NAME, "b.io/y"]);
        let patch = remove_patch(&object(Some(list.clone())), NAME).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "u-1"},
                {"op": "test", "path": "/metadata/finalizers/1", "value": NAME},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ])
        );
        let after = applied(object(Some(list)), patch.clone()).unwrap();
        assert_eq!(after["metadata"]["finalizers"], json!(["a.io/x", "b.io/y"]));
        // Another finalizer went first, shifting ours: the test fails
        // rather than removing someone else's entry.
        assert!(applied(object(Some(json!(["b.io/y", "c.io/z"]))), patch.clone()).is_err());
        // A new object of the same name.
        let mut recreated = object(Some(json!(["a.io/x", NAME])));
        recreated["metadata"]["uid"] = json!("u-2");
        assert!(applied(recreated, patch).is_err());
        assert_eq!(remove_patch(&object(Some(json!(["a.io/x"]))), NAME), None);
        assert_eq!(remove_patch(&object(None), NAME), None);
    }

    #[test]
    fn deletion_and_presence_are_read_from_metadata() {
        let mut o = object(Some(json!(["a.io/x", NAME])));
        assert!(has_finalizer(&o, NAME));
        assert!(!has_finalizer(&o, "kubewasm.dev/other"));
        assert!(!is_being_deleted(&o));
        o["metadata"]["deletionTimestamp"] = json!("2026-12-04T03:00:00Z");
        assert!(is_being_deleted(&o));
        // Hostile shapes are absent finalizers, not errors.
        o["metadata"]["finalizers"] = json!("kubewasm.dev/website");
        assert!(!has_finalizer(&o, NAME));
        o["metadata"]["finalizers"] = json!([1, null, NAME]);
        assert!(has_finalizer(&o, NAME));
        let patch = remove_patch(&o, NAME).unwrap();
        assert_eq!(patch[1]["path"], "/metadata/finalizers/2");
    }
}
