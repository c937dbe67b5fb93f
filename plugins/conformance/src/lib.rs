//! The conformance plugin in Rust: the behaviour `conformance/README.md`
//! specifies, which every language's conformance plugin implements and
//! `conformance/fixtures` checks through `kubewasm test`. Each ConfigMap it
//! is called for says in its `conformance.kubewasm.dev/do` label which part
//! of the contract to exercise.

use kubewasm_guest::{
    Apply, Create, Delete, Error, Event, EventType, GroupKind, JsonPatch, Object, ObjectRef,
    Outcome, OwnerReference, Patch, Plugin, PluginInfo, Propagation, RecordEvent, Subscription,
    WriteScope, cache, raw_settings,
};
use serde_json::{Map, Value, json};

/// The label naming what to do, and the prefix of every annotation read or
/// written.
pub const PREFIX: &str = "conformance.kubewasm.dev/";
const DO: &str = "conformance.kubewasm.dev/do";
const FINALIZER: &str = "conformance.kubewasm.dev/cleanup";
const MAX_REQUEUE_MS: f64 = 3_600_000.0;

/// Effective settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub reason: String,
    pub requeue_after_ms: u64,
}

impl Settings {
    /// Parses settings with the messages the specification fixes, so every
    /// language refuses the same document with the same words.
    pub fn parse(text: &str) -> Result<Settings, Error> {
        let value: Value =
            serde_json::from_str(text).map_err(|_| Error::msg("settings: not valid JSON"))?;
        let Value::Object(fields) = value else {
            return Err(Error::msg("settings: must be a JSON object"));
        };
        let mut keys: Vec<&String> = fields.keys().collect();
        keys.sort();
        if let Some(unknown) = keys
            .iter()
            .find(|k| !["reason", "requeueAfterMs"].contains(&k.as_str()))
        {
            return Err(Error::msg(format!(
                "settings.{unknown}: unknown field (known: reason, requeueAfterMs)"
            )));
        }
        let reason = match fields.get("reason") {
            None => "Conformance".to_string(),
            Some(Value::String(reason)) if upper_camel_case(reason) => reason.clone(),
            Some(Value::String(reason)) => {
                return Err(Error::msg(format!(
                    "settings.reason: {} is not UpperCamelCase",
                    Value::from(reason.as_str())
                )));
            }
            Some(_) => return Err(Error::msg("settings.reason: must be a string")),
        };
        let requeue_after_ms = match fields.get("requeueAfterMs") {
            None => 1500,
            Some(value) => value
                .as_f64()
                .filter(|ms| ms.fract() == 0.0 && (1.0..=MAX_REQUEUE_MS).contains(ms))
                .map(|ms| ms as u64)
                .ok_or_else(|| {
                    Error::msg("settings.requeueAfterMs: must be a whole number from 1 to 3600000")
                })?,
        };
        Ok(Settings {
            reason,
            requeue_after_ms,
        })
    }
}

fn upper_camel_case(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// The plugin.
pub struct Conformance;

impl Plugin for Conformance {
    fn describe() -> PluginInfo {
        PluginInfo::new("conformance", "1.0.0")
            .subscribe(Subscription::new("", "v1", "ConfigMap").label_selector(DO))
            .writes(WriteScope::new("", "ConfigMap"))
            .finalizer_named(FINALIZER, [GroupKind::new("", "ConfigMap")])
    }

    fn validate_settings(settings: &str) -> Result<(), Error> {
        Settings::parse(settings).map(drop)
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let settings = Settings::parse(&raw_settings())?;
        let object = &event.object;
        let this = object.object_ref();
        let action = object.label(DO).unwrap_or_default();
        kubewasm_guest::log::info("conformance reconcile", &[("do", action)]);
        match event.event_type {
            EventType::Deleted => {
                let value = object.get_str("data.value").unwrap_or_default();
                return Ok(Outcome::new().with(Apply::new(json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-tombstone", object.name()), "namespace": object.namespace()},
                    "data": {"last": value},
                }))));
            }
            EventType::Finalizing => {
                let child = format!("{}-child", object.name());
                return Ok(Outcome::new()
                    .with(Delete::new(sibling(object, &child)).propagation(Propagation::Foreground))
                    .with(
                        RecordEvent::normal(this, settings.reason, format!("cleaned up {child}"))
                            .action("Finalize"),
                    ));
            }
            _ => {}
        }
        if object.is_being_deleted() {
            return Ok(Outcome::new());
        }
        match action {
            "nothing" => Ok(Outcome::new()),
            "apply" => Ok(Outcome::new().with(applied(object))),
            "apply-unforced" => Ok(Outcome::new().with(applied(object).force(false))),
            "apply-status" => {
                let mut status = json!({"phase": "Reconciled"});
                if let Some(generation) = object.generation() {
                    status["observedGeneration"] = json!(generation);
                }
                Ok(Outcome::new().with(Apply::status_of(&this, status)))
            }
            "merge-patch" => {
                let mut patch = Patch::merge(
                    this,
                    json!({"metadata": {"labels": {"conformance.kubewasm.dev/patched": "merge"}}}),
                );
                if let Some(version) = object.resource_version() {
                    patch = patch.resource_version(version);
                }
                Ok(Outcome::new().with(patch))
            }
            "merge-patch-status" => Ok(Outcome::new()
                .with(Patch::merge(this, json!({"status": {"phase": "Patched"}})).status(true))),
            "json-patch" => {
                let value = object
                    .get_str("data.value")
                    .ok_or_else(|| Error::msg("json-patch needs data.value"))?;
                let ops = JsonPatch::new()
                    .test("/data/value", value)
                    .replace("/data/value", format!("{value}!"))
                    .add("/metadata/labels/conformance.kubewasm.dev~1patched", "json");
                Ok(Outcome::new().with(Patch::json(this, ops)))
            }
            "create" => {
                let child = Create::new(json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": format!("{}-child", object.name()),
                        "namespace": object.namespace(),
                        "labels": {"conformance.kubewasm.dev/parent": object.name()},
                    },
                    "data": {"value": object.get_str("data.value").unwrap_or_default()},
                }))
                .owner(OwnerReference::controller(object)?);
                Ok(Outcome::new().with(child))
            }
            "delete" => {
                let default = format!("{}-child", object.name());
                let target = annotation(object, "target").unwrap_or(&default);
                let mut delete = Delete::new(sibling(object, target));
                if let Some(propagation) = annotation(object, "propagation") {
                    delete = delete.propagation(match propagation {
                        "Background" => Propagation::Background,
                        "Foreground" => Propagation::Foreground,
                        "Orphan" => Propagation::Orphan,
                        other => {
                            return Err(Error::msg(format!(
                                "annotation {PREFIX}propagation: {} is not Background, Foreground or Orphan",
                                Value::from(other)
                            )));
                        }
                    });
                }
                Ok(Outcome::new().with(delete))
            }
            "event" => Ok(Outcome::new().with(event_about(object, &settings))),
            "apply-and-event" => Ok(Outcome::new()
                .with(applied(object))
                .with(event_about(object, &settings))
                .requeue_after(std::time::Duration::from_millis(settings.requeue_after_ms))),
            "get" => {
                let target = annotation(object, "target").unwrap_or_default();
                let found = cache::get("v1", "ConfigMap", object.namespace(), target)?;
                let annotations = match found {
                    Some(found) => json!({
                        "conformance.kubewasm.dev/read": "found",
                        "conformance.kubewasm.dev/read-value": found.get_str("data.value").unwrap_or_default(),
                    }),
                    None => json!({"conformance.kubewasm.dev/read": "absent"}),
                };
                Ok(Outcome::new().with(annotate(&this, annotations)))
            }
            "get-secret" => {
                let target = annotation(object, "target").unwrap_or(object.name());
                match cache::get("v1", "Secret", object.namespace(), target) {
                    Err(_) => Ok(Outcome::new().with(
                        RecordEvent::warning(
                            this,
                            "ReadRefused",
                            format!(
                                "reading Secret {}/{target} was refused",
                                object.namespace().unwrap_or_default()
                            ),
                        )
                        .action("Read"),
                    )),
                    Ok(_) => Ok(Outcome::new().with(annotate(
                        &this,
                        json!({"conformance.kubewasm.dev/read": "allowed"}),
                    ))),
                }
            }
            "list" => {
                let namespace = match annotation(object, "namespace") {
                    Some("*") => None,
                    Some(namespace) => Some(namespace),
                    None => object.namespace(),
                };
                let selector = annotation(object, "selector");
                let mut names: Vec<String> = cache::list("v1", "ConfigMap", namespace, selector)?
                    .iter()
                    .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name()))
                    .collect();
                names.sort();
                Ok(Outcome::new().with(annotate(
                    &this,
                    json!({"conformance.kubewasm.dev/listed": names.join(",")}),
                )))
            }
            "now" => {
                let now = kubewasm_guest::now();
                Ok(Outcome::new().with(annotate(
                    &this,
                    json!({
                        "conformance.kubewasm.dev/now": now.rfc3339(),
                        "conformance.kubewasm.dev/now-ms": now.epoch_ms().to_string(),
                    }),
                )))
            }
            "requeue" => {
                let after = match annotation(object, "after-ms") {
                    None => settings.requeue_after_ms,
                    Some(text) => text
                        .parse::<u64>()
                        .ok()
                        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            Error::msg(format!(
                                "annotation {PREFIX}after-ms: {} is not a whole number of milliseconds",
                                Value::from(text)
                            ))
                        })?,
                };
                Ok(Outcome::new().requeue_after(std::time::Duration::from_millis(after)))
            }
            "fail" => Err(Error::msg(format!(
                "asked to fail on {}/{}",
                object.namespace().unwrap_or_default(),
                object.name()
            ))),
            other => Err(Error::msg(format!("unknown {DO} {}", Value::from(other)))),
        }
    }
}

/// `conformance.kubewasm.dev/<name>` on `object`.
fn annotation<'a>(object: &'a Object, name: &str) -> Option<&'a str> {
    object.annotation(&format!("{PREFIX}{name}"))
}

/// A ConfigMap named `name` in `object`'s namespace.
fn sibling(object: &Object, name: &str) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", object.namespace(), name)
}

/// Server-side apply of `annotations` on `target`.
fn annotate(target: &ObjectRef, annotations: Value) -> Apply {
    Apply::fields(target, json!({"metadata": {"annotations": annotations}}))
}

/// The `apply` action's intent.
fn applied(object: &Object) -> Apply {
    let value = object.get_str("data.value").unwrap_or("yes");
    let mut annotations = Map::new();
    annotations.insert(format!("{PREFIX}applied"), json!(value));
    annotate(&object.object_ref(), Value::Object(annotations))
}

/// The `event` action's intent.
fn event_about(object: &Object, settings: &Settings) -> RecordEvent {
    let note = format!("conformance event for {}", object.name());
    let event = match annotation(object, "severity") {
        Some("Warning") => RecordEvent::warning(object.object_ref(), &settings.reason, note),
        _ => RecordEvent::normal(object.object_ref(), &settings.reason, note),
    };
    event.action("Test")
}

kubewasm_guest::export_plugin!(Conformance);

#[cfg(test)]
mod tests {
    use super::*;

    /// The suite natively, through the SDK's fixture runner; the built
    /// component runs it through `kubewasm test` (host/tests/conformance.rs).
    #[test]
    fn conformance_fixtures() {
        kubewasm_guest::testing::assert_fixtures::<Conformance>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conformance/fixtures"
        ));
    }

    #[test]
    fn settings_messages_are_the_specified_ones() {
        let refused = |text: &str| Settings::parse(text).unwrap_err().message().to_string();
        assert_eq!(refused("{"), "settings: not valid JSON");
        assert_eq!(
            refused(r#"{"zeta": 1, "alpha": 2}"#),
            "settings.alpha: unknown field (known: reason, requeueAfterMs)"
        );
        assert_eq!(
            Settings::parse(r#"{"requeueAfterMs": 2.0}"#)
                .unwrap()
                .requeue_after_ms,
            2
        );
        assert_eq!(
            Settings::parse("{}").unwrap(),
            Settings {
                reason: "Conformance".into(),
                requeue_after_ms: 1500
            }
        );
    }
}
