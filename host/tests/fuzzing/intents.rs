//! Intents as a plugin hands them over: outcomes of every intent type with
//! hostile JSON text and object references, decoded and validated the way
//! the runtime's `outcome_from_wit` does.

use kubewasm::contract::intent::{
    self, Intent, IntentError, ObjectRef, Outcome, Patch, Propagation, Severity,
};
use kubewasm::contract::names;
use kubewasm::contract::split_api_version;
use serde_json::{Map, Value, json};

use super::generate::{API_VERSIONS, KINDS};
use super::{Gen, Verdict};
use crate::{SHORT, reference_name, url_segment_safe};

/// One intent as the WIT record carries it: JSON as text, references as
/// strings (mirrors `wit::Intent`).
#[derive(Debug)]
enum RawIntent {
    Apply {
        object: String,
        status: bool,
        force: bool,
    },
    MergePatch(RawPatch),
    JsonPatch(RawPatch),
    Create {
        object: String,
    },
    Delete {
        target: ObjectRef,
        propagation: Option<Propagation>,
    },
    RecordEvent {
        regarding: ObjectRef,
        severity: Severity,
        reason: String,
        note: String,
        action: String,
    },
}

#[derive(Debug)]
struct RawPatch {
    target: ObjectRef,
    patch: String,
    status: bool,
    resource_version: Option<String>,
}

/// Parses and validates every intent, the first bad one refusing the
/// outcome: the steps of the runtime's `outcome_from_wit`.
fn decode(raw: &[RawIntent]) -> Result<Outcome, IntentError> {
    let mut intents = Vec::new();
    for (index, raw) in raw.iter().enumerate() {
        let patch = |name: &'static str, p: &RawPatch| -> Result<Patch, IntentError> {
            Ok(Patch {
                target: p.target.clone(),
                patch: intent::parse_json(index, name, "patch", &p.patch)?,
                status: p.status,
                resource_version: p.resource_version.clone(),
            })
        };
        let parsed = match raw {
            RawIntent::Apply {
                object,
                status,
                force,
            } => Intent::Apply {
                object: intent::parse_json(index, "apply", "object", object)?,
                status: *status,
                force: *force,
            },
            RawIntent::MergePatch(p) => Intent::MergePatch(patch("merge-patch", p)?),
            RawIntent::JsonPatch(p) => Intent::JsonPatch(patch("json-patch", p)?),
            RawIntent::Create { object } => Intent::Create {
                object: intent::parse_json(index, "create", "object", object)?,
            },
            RawIntent::Delete {
                target,
                propagation,
            } => Intent::Delete {
                target: target.clone(),
                propagation: *propagation,
            },
            RawIntent::RecordEvent {
                regarding,
                severity,
                reason,
                note,
                action,
            } => Intent::RecordEvent {
                regarding: regarding.clone(),
                severity: *severity,
                reason: reason.clone(),
                note: note.clone(),
                action: action.clone(),
            },
        };
        intent::validate(index, &parsed)?;
        intents.push(parsed);
    }
    Ok(Outcome {
        intents,
        requeue_after_ms: None,
    })
}

/// Valid entries lead [`API_VERSIONS`] and [`KINDS`].
const VALID_API_VERSIONS: usize = 5;
const VALID_KINDS: usize = 8;

fn api_version(g: &mut Gen) -> String {
    if !g.hostile(1, 2) {
        return g.pick(&API_VERSIONS[..VALID_API_VERSIONS]).to_string();
    }
    match g.below(10) {
        0..=4 => g.pick(&API_VERSIONS[..VALID_API_VERSIONS]).to_string(),
        5..=7 => g.pick(API_VERSIONS).to_string(),
        _ => g.name(),
    }
}

fn kind(g: &mut Gen) -> String {
    if !g.hostile(1, 2) {
        return g.pick(&KINDS[..VALID_KINDS]).to_string();
    }
    match g.below(10) {
        0..=4 => g.pick(&KINDS[..VALID_KINDS]).to_string(),
        5..=7 => g.pick(KINDS).to_string(),
        _ => g.name(),
    }
}

fn object_ref(g: &mut Gen) -> ObjectRef {
    ObjectRef {
        api_version: api_version(g),
        kind: kind(g),
        namespace: g.chance(2, 3).then(|| g.name_often_valid()),
        name: g.name_often_valid(),
    }
}

/// An object to apply or create: identity fields of every type, present or
/// not, and arbitrary content beside them.
fn object_value(g: &mut Gen) -> Value {
    let mut map = Map::new();
    if !g.hostile(1, 20) {
        map.insert("apiVersion".into(), g.loosely_typed(api_version));
    }
    if !g.hostile(1, 20) {
        map.insert("kind".into(), g.loosely_typed(kind));
    }
    if g.hostile(1, 15) {
        map.insert("metadata".into(), g.value(2));
    } else if !g.hostile(1, 20) {
        let mut metadata = Map::new();
        for field in ["name", "namespace", "generateName"] {
            if !g.hostile(1, 3) {
                metadata.insert(field.into(), g.loosely_typed(Gen::name_often_valid));
            }
        }
        if g.bool() {
            metadata.insert("labels".into(), g.value(2));
        }
        map.insert("metadata".into(), Value::Object(metadata));
    }
    if g.bool() {
        map.insert("spec".into(), g.value(3));
    }
    Value::Object(map)
}

/// JSON text of an object: damaged, nested, or with a duplicate key that
/// hides a second name behind a first one.
fn object_text(g: &mut Gen) -> String {
    if g.hostile(1, 12) {
        let field = g.pick(&["name", "namespace", "generateName"]);
        let second = Value::String(g.name());
        return format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ok","namespace":"ok","{field}":{second}}}}}"#
        );
    }
    if g.hostile(1, 30) {
        // A valid identity around content nested past the recursion limit.
        let depth = g.depth();
        let deep = g.nest("1", depth);
        return format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"ok","labels":{deep}}}}}"#
        );
    }
    let value = object_value(g);
    g.json_text(&value)
}

fn json_patch_value(g: &mut Gen) -> Value {
    if g.hostile(1, 10) {
        return g.value(3);
    }
    let ops = (0..g.below(4))
        .map(|_| {
            let mut op = Map::new();
            if !g.hostile(1, 10) {
                op.insert(
                    "op".into(),
                    g.loosely_typed(|g| {
                        g.pick(&[
                            "add", "remove", "replace", "move", "copy", "test", "frob", "",
                        ])
                        .to_string()
                    }),
                );
            }
            if !g.hostile(1, 10) {
                op.insert("path".into(), g.loosely_typed(|g| format!("/{}", g.name())));
            }
            if g.bool() {
                op.insert("value".into(), g.value(2));
            }
            if g.chance(1, 3) {
                op.insert("from".into(), g.loosely_typed(|g| format!("/{}", g.name())));
            }
            Value::Object(op)
        })
        .collect();
    Value::Array(ops)
}

fn raw_patch(g: &mut Gen, json_patch: bool) -> RawPatch {
    let patch = if json_patch {
        json_patch_value(g)
    } else if g.chance(4, 5) {
        json!({"metadata": {"labels": {"a": g.value(1)}}, "spec": g.value(3)})
    } else {
        g.value(3)
    };
    RawPatch {
        target: object_ref(g),
        patch: g.json_text(&patch),
        status: g.bool(),
        resource_version: g.bool().then(|| g.random_text(12)),
    }
}

fn raw_intent(g: &mut Gen) -> RawIntent {
    match g.below(6) {
        0 => RawIntent::Apply {
            object: object_text(g),
            status: g.bool(),
            force: g.bool(),
        },
        1 => RawIntent::MergePatch(raw_patch(g, false)),
        2 => RawIntent::JsonPatch(raw_patch(g, true)),
        3 => RawIntent::Create {
            object: object_text(g),
        },
        4 => RawIntent::Delete {
            target: object_ref(g),
            propagation: [
                None,
                Some(Propagation::Background),
                Some(Propagation::Foreground),
                Some(Propagation::Orphan),
            ][g.below(4)],
        },
        _ => RawIntent::RecordEvent {
            regarding: object_ref(g),
            severity: if g.bool() {
                Severity::Normal
            } else {
                Severity::Warning
            },
            reason: match g.hostile(1, 2).then(|| g.below(2)) {
                Some(0) => String::new(),
                Some(_) => "r".repeat(120 + g.below(16)),
                None => g.random_text(20),
            },
            note: g.random_text(40),
            action: g.random_text(10),
        },
    }
}

/// The URL-relevant parts of a group/version/kind: each a plain segment.
fn check_type(what: &str, api_version: &str, kind: &str) -> Result<(), String> {
    let (group, version) = split_api_version(api_version);
    if !group.is_empty() {
        url_segment_safe(group).map_err(|e| format!("{what} group: {e}"))?;
    }
    url_segment_safe(version).map_err(|e| format!("{what} version: {e}"))?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} kind {kind:?} accepted"));
    }
    Ok(())
}

/// The object reference an accepted intent's request is built from.
fn check_ref(what: &str, r: &ObjectRef) -> Result<(), String> {
    check_type(what, &r.api_version, &r.kind)?;
    if let Some(ns) = &r.namespace {
        url_segment_safe(ns).map_err(|e| format!("{what}.namespace: {e}"))?;
        names::validate_namespace(ns).map_err(|e| format!("{what}.namespace {e}"))?;
    }
    let group = split_api_version(&r.api_version).0;
    url_segment_safe(&r.name).map_err(|e| format!("{what}.name: {e}"))?;
    if !reference_name(group, &r.kind, &r.name) {
        return Err(format!(
            "{what}.name {:?} is not a valid {} name",
            r.name, r.kind
        ));
    }
    Ok(())
}

/// An accepted object: the parts the applier reads for the request (as its
/// `target_of` does) are valid and URL-safe.
fn check_object(object: &Value, create: bool) -> Result<(), String> {
    let text = |v: &Value| v.as_str().map(str::to_string);
    let api_version = text(&object["apiVersion"]).ok_or("apiVersion is not a string")?;
    let kind = text(&object["kind"]).ok_or("kind is not a string")?;
    check_type("object", &api_version, &kind)?;
    let group = split_api_version(&api_version).0;
    let metadata = &object["metadata"];
    for field in ["name", "namespace", "generateName"] {
        if !(metadata[field].is_null() || metadata[field].is_string()) {
            return Err(format!("metadata.{field} {} accepted", metadata[field]));
        }
    }
    if let Some(ns) = metadata["namespace"].as_str().filter(|ns| !ns.is_empty()) {
        url_segment_safe(ns).map_err(|e| format!("metadata.namespace: {e}"))?;
        names::validate_namespace(ns).map_err(|e| format!("metadata.namespace {e}"))?;
    }
    match metadata["name"].as_str().filter(|n| !n.is_empty()) {
        Some(name) if reference_name(group, &kind, name) => Ok(()),
        Some(name) => Err(format!("metadata.name {name:?} accepted for {kind}")),
        None if create => {
            let prefix = metadata["generateName"].as_str().unwrap_or_default();
            let completed = format!("{prefix}abcde");
            if prefix.is_empty() || !reference_name(group, &kind, &completed) {
                return Err(format!("generateName {prefix:?} accepted for {kind}"));
            }
            Ok(())
        }
        None => Err("an apply without a name was accepted".into()),
    }
}

fn check_intent(intent: &Intent) -> Result<(), String> {
    match intent {
        Intent::Apply { object, .. } => check_object(object, false),
        Intent::Create { object } => check_object(object, true),
        Intent::MergePatch(p) => {
            check_ref("target", &p.target)?;
            p.patch
                .is_object()
                .then_some(())
                .ok_or_else(|| "a merge patch that is not an object".into())
        }
        Intent::JsonPatch(p) => {
            check_ref("target", &p.target)?;
            let ops = p
                .patch
                .as_array()
                .ok_or("a JSON patch that is not an array")?;
            for op in ops {
                let name = op["op"].as_str().unwrap_or_default();
                let known = ["add", "remove", "replace", "move", "copy", "test"].contains(&name);
                if !known || !op["path"].is_string() {
                    return Err(format!("JSON patch operation {op} accepted"));
                }
            }
            Ok(())
        }
        Intent::Delete { target, .. } => check_ref("target", target),
        Intent::RecordEvent {
            regarding, reason, ..
        } => {
            check_ref("regarding", regarding)?;
            if reason.is_empty() || reason.len() > 128 {
                return Err(format!("event reason of {} bytes accepted", reason.len()));
            }
            Ok(())
        }
    }
}

const INTENT_TYPES: [&str; 6] = [
    "apply",
    "merge-patch",
    "json-patch",
    "create",
    "delete",
    "record-event",
];

#[test]
fn fuzz_intents() {
    super::run(
        "intents",
        super::cases(SHORT),
        |g| {
            let tame = g.bool();
            g.set_tame(tame);
            let n = 1 + g.below(3);
            (0..n).map(|_| raw_intent(g)).collect::<Vec<_>>()
        },
        |raw| match decode(raw) {
            Ok(outcome) => {
                for (i, intent) in outcome.intents.iter().enumerate() {
                    check_intent(intent).map_err(|e| format!("intent {i}: {e}"))?;
                }
                // `kubewasm eval --output json` prints accepted outcomes.
                // (Not re-parsed here: an object nested just under the
                // recursion limit is deeper than it once inside an outcome.)
                let text = serde_json::to_string(&outcome).map_err(|e| e.to_string())?;
                for intent in &outcome.intents {
                    if !text.contains(&format!("\"type\":\"{}\"", intent.type_name())) {
                        return Err(format!("{} missing from {text}", intent.type_name()));
                    }
                }
                Ok(Verdict::Accepted)
            }
            Err(e) => {
                let (index, intent) = match &e {
                    IntentError::InvalidJson { index, intent, .. }
                    | IntentError::Malformed { index, intent, .. } => (*index, *intent),
                };
                let message = e.to_string();
                if index >= raw.len()
                    || !INTENT_TYPES.contains(&intent)
                    || !message.starts_with(&format!("intent {index} ({intent}): "))
                {
                    return Err(format!("refusal does not name the intent: {message}"));
                }
                Ok(Verdict::Refused)
            }
        },
    );
}
