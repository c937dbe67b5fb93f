//! Intents: the writes a plugin asks the host to make, validated and in the
//! host's own types.
//!
//! A plugin hands intents over as JSON text inside WIT records. They are parsed
//! and checked here, before anything reaches the API server: a malformed
//! intent refuses the whole outcome, so a plugin never gets half its writes.
//! The serialized form (`kubewasm eval --output json`) is the shape the
//! conformance fixtures under `plugins/*/fixtures` are written in.

use serde::Serialize;
use serde_json::Value;

use crate::contract::names;
use crate::contract::{GroupKind, split_api_version};

/// A reference to one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

/// How dependents of a deleted object are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// Severity of a Kubernetes Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Severity {
    Normal,
    Warning,
}

/// A patch on one object, merge or JSON patch.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    pub target: ObjectRef,
    pub patch: Value,
    pub status: bool,
    pub resource_version: Option<String>,
}

/// One validated write.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Intent {
    #[serde(rename_all = "camelCase")]
    Apply {
        object: Value,
        status: bool,
        force: bool,
    },
    MergePatch(Patch),
    JsonPatch(Patch),
    Create {
        object: Value,
    },
    #[serde(rename_all = "camelCase")]
    Delete {
        target: ObjectRef,
        propagation: Option<Propagation>,
    },
    #[serde(rename_all = "camelCase")]
    RecordEvent {
        regarding: ObjectRef,
        severity: Severity,
        reason: String,
        note: String,
        action: String,
    },
}

/// The result of one successful reconcile.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub intents: Vec<Intent>,
    pub requeue_after_ms: Option<u64>,
}

/// Why an intent was refused before reaching the API server.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IntentError {
    #[error("intent {index} ({intent}): {field} is not valid JSON: {reason}")]
    InvalidJson {
        index: usize,
        intent: &'static str,
        field: &'static str,
        reason: String,
    },
    #[error("intent {index} ({intent}): {reason}")]
    Malformed {
        index: usize,
        intent: &'static str,
        reason: String,
    },
}

impl Intent {
    /// The intent's type as written in WIT (`apply`, `merge-patch`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Intent::Apply { .. } => "apply",
            Intent::MergePatch(_) => "merge-patch",
            Intent::JsonPatch(_) => "json-patch",
            Intent::Create { .. } => "create",
            Intent::Delete { .. } => "delete",
            Intent::RecordEvent { .. } => "record-event",
        }
    }

    /// The object the intent writes (for an Event, the object it is about).
    pub fn target(&self) -> ObjectRef {
        match self {
            Intent::Apply { object, .. } | Intent::Create { object } => {
                let metadata = &object["metadata"];
                let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                ObjectRef {
                    api_version: text(&object["apiVersion"]),
                    kind: text(&object["kind"]),
                    namespace: metadata["namespace"]
                        .as_str()
                        .filter(|ns| !ns.is_empty())
                        .map(String::from),
                    name: metadata["name"]
                        .as_str()
                        .or_else(|| metadata["generateName"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                }
            }
            Intent::MergePatch(p) | Intent::JsonPatch(p) => p.target.clone(),
            Intent::Delete { target, .. } => target.clone(),
            Intent::RecordEvent { regarding, .. } => regarding.clone(),
        }
    }

    /// The group and kind the intent writes (for the write-scope check).
    /// Events are written about `regarding`, whose kind is returned.
    pub fn group_kind(&self) -> GroupKind {
        match self {
            Intent::Apply { object, .. } | Intent::Create { object } => {
                GroupKind::of_object(object)
            }
            Intent::MergePatch(p) | Intent::JsonPatch(p) => p.target.group_kind(),
            Intent::Delete { target, .. } => target.group_kind(),
            Intent::RecordEvent { regarding, .. } => regarding.group_kind(),
        }
    }
}

impl ObjectRef {
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::from_api_version(&self.api_version, &self.kind)
    }

    /// `apps/v1 Deployment team-a/web`, or `v1 Namespace team-a`.
    /// Names are escaped: a refused intent's names are the plugin's, and must
    /// not forge a log line.
    pub fn describe(&self) -> String {
        let (api_version, kind, name) = (
            self.api_version.escape_debug(),
            self.kind.escape_debug(),
            self.name.escape_debug(),
        );
        match &self.namespace {
            Some(ns) => format!("{api_version} {kind} {}/{name}", ns.escape_debug()),
            None => format!("{api_version} {kind} {name}"),
        }
    }

    /// Checks the reference is complete and that every part of it is safe
    /// to put into a request URL; `field` names it in the error (`target`,
    /// `regarding`).
    fn validate(&self, field: &str) -> Result<(), String> {
        if self.api_version.is_empty() || self.kind.is_empty() || self.name.is_empty() {
            return Err(format!(
                "{field} needs apiVersion, kind and name (got {:?} {:?} {:?})",
                self.api_version, self.kind, self.name
            ));
        }
        validate_type(field, &self.api_version, &self.kind)?;
        let (group, _) = split_api_version(&self.api_version);
        if let Some(namespace) = &self.namespace {
            names::validate_namespace(namespace).map_err(|e| format!("{field}.namespace {e}"))?;
        }
        names::validate_name(group, &self.kind, &self.name).map_err(|e| format!("{field}.name {e}"))
    }
}

/// Checks an `apiVersion` (`v1`, `group/version`) and a kind are plain
/// identifiers: they select the resource and appear in logs.
fn validate_type(field: &str, api_version: &str, kind: &str) -> Result<(), String> {
    let kind_ok = kind.len() <= names::MAX_LABEL_BYTES
        && kind.bytes().all(|b| b.is_ascii_alphanumeric())
        && kind.bytes().next().is_some_and(|b| b.is_ascii_alphabetic());
    if !kind_ok {
        return Err(format!(
            "{field}.kind {kind:?} is not a kind name (ASCII letters and digits, starting with a letter)"
        ));
    }
    let (group, version) = split_api_version(api_version);
    let version_ok = version.len() <= names::MAX_LABEL_BYTES
        && !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let group_ok = group.is_empty() || names::validate_name("", "", group).is_ok();
    if !(version_ok && group_ok) {
        return Err(format!(
            "{field}.apiVersion {api_version:?} is not `version` or `group/version`"
        ));
    }
    Ok(())
}

/// Parses a JSON field of intent `index`.
pub fn parse_json(
    index: usize,
    intent: &'static str,
    field: &'static str,
    text: &str,
) -> Result<Value, IntentError> {
    serde_json::from_str(text).map_err(|e| IntentError::InvalidJson {
        index,
        intent,
        field,
        reason: e.to_string(),
    })
}

/// Checks the parsed intent `index` is well formed.
pub fn validate(index: usize, intent: &Intent) -> Result<(), IntentError> {
    let malformed = |reason: String| IntentError::Malformed {
        index,
        intent: intent.type_name(),
        reason,
    };
    match intent {
        Intent::Apply { object, .. } => validate_object(object, false).map_err(malformed),
        Intent::Create { object } => validate_object(object, true).map_err(malformed),
        Intent::MergePatch(p) => {
            p.target.validate("target").map_err(malformed)?;
            if !p.patch.is_object() {
                return Err(malformed("a merge patch must be a JSON object".into()));
            }
            Ok(())
        }
        Intent::JsonPatch(p) => {
            p.target.validate("target").map_err(malformed)?;
            validate_json_patch(&p.patch).map_err(malformed)
        }
        Intent::Delete { target, .. } => target.validate("target").map_err(malformed),
        Intent::RecordEvent {
            regarding, reason, ..
        } => {
            regarding.validate("regarding").map_err(malformed)?;
            if reason.is_empty() || reason.len() > 128 {
                return Err(malformed("reason must be 1 to 128 characters".into()));
            }
            Ok(())
        }
    }
}

fn validate_object(object: &Value, allow_generate_name: bool) -> Result<(), String> {
    let Some(map) = object.as_object() else {
        return Err("object must be a JSON object".into());
    };
    for field in ["apiVersion", "kind"] {
        if map
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!("object has no {field}"));
        }
    }
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    validate_type("object", api_version, kind)?;
    let group = split_api_version(api_version).0;
    let metadata = &object["metadata"];
    if !(metadata.is_null() || metadata.is_object()) {
        return Err("object.metadata must be a JSON object".into());
    }
    // A name or namespace that is not a string would be dropped from the
    // request URL but still sent in the body: refuse it outright.
    let text = |field: &str| -> Result<Option<&str>, String> {
        match &metadata[field] {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(format!(
                "object.metadata.{field} must be a string, not {other}"
            )),
        }
    };
    if let Some(namespace) = text("namespace")? {
        names::validate_namespace(namespace)
            .map_err(|e| format!("object.metadata.namespace {e}"))?;
    }
    match (text("name")?, text("generateName")?) {
        (Some(name), _) => {
            names::validate_name(group, kind, name).map_err(|e| format!("object.metadata.name {e}"))
        }
        (None, Some(prefix)) if allow_generate_name => {
            names::validate_generate_name(group, kind, prefix)
                .map_err(|e| format!("object.metadata.generateName {e}"))
        }
        _ => Err("object has no metadata.name".into()),
    }
}

const JSON_PATCH_OPS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];

fn validate_json_patch(patch: &Value) -> Result<(), String> {
    let Some(ops) = patch.as_array() else {
        return Err("a JSON patch must be an array of operations".into());
    };
    for (i, op) in ops.iter().enumerate() {
        let name = op["op"].as_str().unwrap_or_default();
        if !JSON_PATCH_OPS.contains(&name) {
            return Err(format!("operation {i} has unknown op {:?}", op["op"]));
        }
        if !op["path"].is_string() {
            return Err(format!("operation {i} ({name}) has no path"));
        }
        let needs_value = matches!(name, "add" | "replace" | "test");
        if needs_value && op.get("value").is_none() {
            return Err(format!("operation {i} ({name}) has no value"));
        }
        if matches!(name, "move" | "copy") && !op["from"].is_string() {
            return Err(format!("operation {i} ({name}) has no from"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target() -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        }
    }

    #[test]
    fn serializes_in_the_fixture_shape() {
        let outcome = Outcome {
            intents: vec![Intent::MergePatch(Patch {
                target: target(),
                patch: json!({"metadata": {"labels": {"a": "b"}}}),
                status: false,
                resource_version: Some("7".into()),
            })],
            requeue_after_ms: None,
        };
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({
                "intents": [{
                    "type": "merge-patch",
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "x"},
                    "patch": {"metadata": {"labels": {"a": "b"}}},
                    "status": false,
                    "resourceVersion": "7"
                }],
                "requeueAfterMs": null
            })
        );
    }

    #[test]
    fn apply_needs_identity() {
        let intent = Intent::Apply {
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
            status: false,
            force: true,
        };
        assert_eq!(
            validate(3, &intent).unwrap_err().to_string(),
            "intent 3 (apply): object has no metadata.name"
        );
    }

    #[test]
    fn create_accepts_generate_name() {
        let intent = Intent::Create {
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}}),
        };
        assert!(validate(0, &intent).is_ok());
    }

    #[test]
    fn json_patch_ops_are_checked() {
        let bad = Intent::JsonPatch(Patch {
            target: target(),
            patch: json!([{"op": "test", "path": "/a", "value": 1}, {"op": "frobnicate", "path": "/b"}]),
            status: false,
            resource_version: None,
        });
        assert_eq!(
            validate(0, &bad).unwrap_err().to_string(),
            "intent 0 (json-patch): operation 1 has unknown op String(\"frobnicate\")"
        );
        let missing_value = Intent::JsonPatch(Patch {
            patch: json!([{"op": "replace", "path": "/a"}]),
            ..match bad {
                Intent::JsonPatch(p) => p,
                _ => unreachable!(),
            }
        });
        assert!(
            validate(0, &missing_value)
                .unwrap_err()
                .to_string()
                .ends_with("operation 0 (replace) has no value")
        );
    }

    #[test]
    fn merge_patch_must_be_object() {
        let intent = Intent::MergePatch(Patch {
            target: target(),
            patch: json!([1]),
            status: true,
            resource_version: None,
        });
        assert!(validate(0, &intent).is_err());
    }

    #[test]
    fn invalid_json_names_the_field() {
        let err = parse_json(2, "create", "object", "{nope").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("intent 2 (create): object is not valid JSON")
        );
    }

    #[test]
    fn group_kind_of_each_intent() {
        let apply = Intent::Apply {
            object: json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            status: false,
            force: false,
        };
        assert_eq!(apply.group_kind(), GroupKind::new("apps", "Deployment"));
        let delete = Intent::Delete {
            target: target(),
            propagation: None,
        };
        assert_eq!(delete.group_kind(), GroupKind::new("", "ConfigMap"));
    }
}

/// An intent outside the plugin's declared write scope.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "intent {index} ({intent}) writes {kind} in group {group:?}, which plugin {plugin} did not declare in its write scope"
)]
pub struct ScopeViolation {
    pub plugin: String,
    pub index: usize,
    pub intent: &'static str,
    pub group: String,
    pub kind: String,
}

/// Checks every intent against the plugin's declared write scope. Events may
/// be recorded about any kind the plugin subscribes to or writes.
pub fn check_scope(
    info: &crate::contract::PluginInfo,
    outcome: &Outcome,
) -> Result<(), ScopeViolation> {
    for (index, intent) in outcome.intents.iter().enumerate() {
        let GroupKind { group, kind } = intent.group_kind();
        let allowed = match intent {
            Intent::RecordEvent { .. } => {
                info.may_write(&group, &kind) || info.may_read(&group, &kind)
            }
            _ => info.may_write(&group, &kind),
        };
        if !allowed {
            return Err(ScopeViolation {
                plugin: info.name.clone(),
                index,
                intent: intent.type_name(),
                group,
                kind,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod scope_tests {
    use super::*;
    use crate::contract::{GroupKind, PluginInfo, Subscription};
    use serde_json::json;

    #[test]
    fn intents_outside_the_write_scope_are_named() {
        let info = PluginInfo {
            name: "labels".into(),
            version: "1".into(),
            subscriptions: vec![Subscription {
                group: "".into(),
                version: "v1".into(),
                kind: "Namespace".into(),
                namespaces: vec![],
                label_selector: None,
            }],
            writes: vec![GroupKind {
                group: "".into(),
                kind: "ConfigMap".into(),
            }],
            ..PluginInfo::default()
        };
        let event = Intent::RecordEvent {
            regarding: ObjectRef {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                namespace: None,
                name: "a".into(),
            },
            severity: Severity::Normal,
            reason: "Seen".into(),
            note: String::new(),
            action: "Reconcile".into(),
        };
        let secret = Intent::Create {
            object: json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        };
        let ok = Outcome {
            intents: vec![event.clone()],
            requeue_after_ms: None,
        };
        assert!(check_scope(&info, &ok).is_ok());
        let bad = Outcome {
            intents: vec![event, secret],
            requeue_after_ms: None,
        };
        assert_eq!(
            check_scope(&info, &bad).unwrap_err().to_string(),
            "intent 1 (create) writes Secret in group \"\", which plugin labels did not declare in its write scope"
        );
    }
}
