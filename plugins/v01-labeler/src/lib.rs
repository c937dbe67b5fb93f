//! v01-labeler: a plugin built against the previous contract,
//! `kubewasm:plugin@0.1.0` (`wit/v0.1.0/plugin.wit`), with wit-bindgen
//! directly rather than the SDK, which follows the current contract. It is
//! what proves that the host still loads and runs 0.1.0 components.
//!
//! It subscribes to ConfigMaps carrying the label `v01.kubewasm.dev/enabled`
//! and server-side applies one label, `v01.kubewasm.dev/labelled`, whose
//! value comes from the settings (`{"value": "v2"}`; default `yes`), unless
//! the ConfigMap already carries it. It logs each write through the 0.1.0
//! `log` import and reads its settings through `settings`.
//!
//! The logic ([`Settings`], [`desired`]) is free of host calls so the
//! fixtures run natively too (`tests/fixtures.rs`).

use serde_json::{Value, json};

/// The label the subscription selects on (its presence).
pub const ENABLED: &str = "v01.kubewasm.dev/enabled";
/// The label the plugin applies.
pub const LABELLED: &str = "v01.kubewasm.dev/labelled";
/// The plugin's name (field manager `kubewasm/v01-labeler`).
pub const NAME: &str = "v01-labeler";

/// Settings: the value written to [`LABELLED`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub value: String,
}

impl Settings {
    /// Parses `{"value": "<label value>"}`; `{}` (or blank) means `yes`.
    /// The error names the offending field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        let document: Value =
            serde_json::from_str(text).map_err(|e| format!("settings: not valid JSON: {e}"))?;
        let fields = document
            .as_object()
            .ok_or("settings: must be a JSON object")?;
        if let Some(key) = fields.keys().find(|k| *k != "value") {
            return Err(format!("settings.{key}: unknown field (known: value)"));
        }
        let value = match fields.get("value") {
            None => "yes",
            Some(Value::String(value)) => value.as_str(),
            Some(_) => return Err("settings.value: must be a string".into()),
        };
        if !is_label_value(value) {
            return Err(format!(
                "settings.value: {value:?} is not a valid label value (at most 63 \
                 alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric)"
            ));
        }
        Ok(Settings {
            value: value.to_string(),
        })
    }
}

/// A Kubernetes label value: empty, or at most 63 characters of
/// `[A-Za-z0-9-_.]` that start and end with an alphanumeric.
fn is_label_value(value: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && edge_ok(value.chars().next())
        && edge_ok(value.chars().last())
}

/// The applied configuration that labels `object`, or none if there is
/// nothing to do: the object was deleted or is being deleted, or already
/// carries the label with this value.
pub fn desired(deleted: bool, object: &Value, settings: &Settings) -> Option<Value> {
    let metadata = &object["metadata"];
    if deleted || !metadata["deletionTimestamp"].is_null() {
        return None;
    }
    if metadata["labels"][LABELLED].as_str() == Some(settings.value.as_str()) {
        return None;
    }
    let mut identity = json!({"name": metadata["name"]});
    if let Some(namespace) = metadata["namespace"].as_str() {
        identity["namespace"] = json!(namespace);
    }
    identity["labels"] = json!({ LABELLED: settings.value });
    Some(json!({
        "apiVersion": object["apiVersion"],
        "kind": object["kind"],
        "metadata": identity,
    }))
}

/// The component: bindings generated from `wit/v0.1.0/` and the export.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code, missing_docs)]
mod component {
    wit_bindgen::generate!({
        path: "../../wit/v0.1.0",
        world: "kubewasm:plugin/plugin@0.1.0",
    });

    use exports::kubewasm::plugin::reconciler::Guest;
    use kubewasm::plugin::host;
    use kubewasm::plugin::types::{
        ApplyIntent, Event, EventType, Intent, LogLevel, Outcome, PluginInfo, ReconcileError,
        Subscription, WriteScope,
    };

    struct V01Labeler;

    impl Guest for V01Labeler {
        fn describe() -> PluginInfo {
            PluginInfo {
                name: super::NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                subscriptions: vec![Subscription {
                    group: String::new(),
                    version: "v1".to_string(),
                    kind: "ConfigMap".to_string(),
                    namespaces: Vec::new(),
                    label_selector: Some(super::ENABLED.to_string()),
                }],
                writes: vec![WriteScope {
                    group: String::new(),
                    kind: "ConfigMap".to_string(),
                }],
            }
        }

        fn validate_settings(settings: String) -> Result<(), String> {
            super::Settings::parse(&settings).map(drop)
        }

        fn reconcile(event: Event) -> Result<Outcome, ReconcileError> {
            let error = |message: String| ReconcileError { message };
            let settings = super::Settings::parse(&host::settings()).map_err(error)?;
            let object: serde_json::Value = serde_json::from_str(&event.object)
                .map_err(|e| error(format!("the object from the host: {e}")))?;
            let deleted = matches!(event.event_type, EventType::Deleted);
            let Some(applied) = super::desired(deleted, &object, &settings) else {
                return Ok(Outcome {
                    intents: Vec::new(),
                    requeue_after_ms: None,
                });
            };
            host::log(
                LogLevel::Info,
                "labelling",
                &[
                    (
                        "name".to_string(),
                        object["metadata"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                    ("value".to_string(), settings.value),
                ],
            );
            Ok(Outcome {
                intents: vec![Intent::Apply(ApplyIntent {
                    object: applied.to_string(),
                    status: false,
                    force: true,
                })],
                requeue_after_ms: None,
            })
        }
    }

    export!(V01Labeler);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_and_refusals_name_the_field() {
        assert_eq!(Settings::parse("").unwrap().value, "yes");
        assert_eq!(Settings::parse(r#"{"value": "v2"}"#).unwrap().value, "v2");
        for (text, message) in [
            ("[]", "settings: must be a JSON object"),
            (r#"{"valu": "x"}"#, "settings.valu: unknown field"),
            (r#"{"value": 3}"#, "settings.value: must be a string"),
            (
                r#"{"value": "-x"}"#,
                "settings.value: \"-x\" is not a valid label value",
            ),
        ] {
            let err = Settings::parse(text).unwrap_err();
            assert!(err.starts_with(message), "{text}: {err}");
        }
    }

    #[test]
    fn cluster_scoped_objects_get_no_namespace() {
        let settings = Settings::parse("{}").unwrap();
        let applied = desired(
            false,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
            &settings,
        )
        .unwrap();
        assert_eq!(
            applied,
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "a", "labels": {LABELLED: "yes"}}})
        );
    }
}
