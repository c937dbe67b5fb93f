//! {{name}}: a kubewasm reconcile plugin.
//!
//! It labels every ConfigMap labelled `hello=please` with `settings.label` (default
//! `example.com/reconciled-by`) set to `{{name}}`. Change `reconcile` to do
//! your work: the host calls it for every change of a subscribed object and
//! makes the writes it returns.

use kubewasm_guest::{
    Apply, Error, Event, Outcome, Plugin, PluginInfo, Subscription, WriteScope, parse_settings,
    settings,
};
use serde::Deserialize;
use serde_json::json;

/// The plugin's settings (`NAME.settings.json` beside the component).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// The label to set.
    #[serde(default = "default_label")]
    pub label: String,
}

fn default_label() -> String {
    "example.com/reconciled-by".to_string()
}

pub struct Component;

impl Plugin for Component {
    fn describe() -> PluginInfo {
        PluginInfo::new("{{name}}", "0.1.0")
            .subscribe(Subscription::new("", "v1", "ConfigMap").label_selector("hello=please"))
            .writes(WriteScope::new("", "ConfigMap"))
    }

    fn validate_settings(raw: &str) -> Result<(), Error> {
        let settings: Settings = parse_settings(raw)?;
        if settings.label.is_empty() {
            return Err(Error::msg("label: must not be empty"));
        }
        Ok(())
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let settings: Settings = settings()?;
        let object = &event.object;
        if event.is_deleted() || object.label(&settings.label) == Some("{{name}}") {
            return Ok(Outcome::new());
        }
        let labels = json!({"metadata": {"labels": {settings.label: "{{name}}"}}});
        Ok(Outcome::new().with(Apply::fields(&object.object_ref(), labels)))
    }
}

kubewasm_guest::export_plugin!(Component);
