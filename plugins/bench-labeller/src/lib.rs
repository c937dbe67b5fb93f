//! bench-labeller: the kubewasm side of the side-by-side benchmark
//! (docs/design/performance.md §1). Every ConfigMap whose label
//! `bench.kubewasm.dev/seen` is missing or has another value gets it by
//! server-side apply; a labelled one gets nothing. The peers in
//! `tests/peers/` do the same work natively.
//!
//! Settings choose the label and its value:
//!
//! ```json
//! {"label": "bench.kubewasm.dev/seen", "value": "true"}
//! ```

use kubewasm_guest::{
    Apply, Error, Event, Outcome, Plugin, PluginInfo, Subscription, WriteScope, raw_settings,
};
use serde::Deserialize;
use serde_json::json;

/// Settings: the label written and its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_label")]
    pub label: String,
    #[serde(default = "default_value")]
    pub value: String,
}

fn default_label() -> String {
    "bench.kubewasm.dev/seen".into()
}

fn default_value() -> String {
    "true".into()
}

impl Settings {
    /// Empty settings mean the defaults.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        serde_json::from_str(text).map_err(|e| Error::msg(format!("invalid settings: {e}")))
    }
}

/// The plugin.
pub struct BenchLabeller;

impl Plugin for BenchLabeller {
    fn describe() -> PluginInfo {
        PluginInfo::new("bench-labeller", env!("CARGO_PKG_VERSION"))
            .subscribe(Subscription::new("", "v1", "ConfigMap"))
            .writes(WriteScope::new("", "ConfigMap"))
    }

    fn validate_settings(settings: &str) -> Result<(), Error> {
        Settings::parse(settings).map(drop)
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let object = &event.object;
        if event.is_deleted() || object.is_being_deleted() {
            return Ok(Outcome::new());
        }
        let Settings { label, value } = Settings::parse(&raw_settings())?;
        if object.label(&label) == Some(value.as_str()) {
            return Ok(Outcome::new());
        }
        Ok(Outcome::new().with(Apply::fields(
            &object.object_ref(),
            json!({"metadata": {"labels": {label: value}}}),
        )))
    }
}

kubewasm_guest::export_plugin!(BenchLabeller);
