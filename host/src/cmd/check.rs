//! The offline jobs a plugin author runs without a cluster: `check` a
//! component and `eval` one reconcile on object files.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::cache::{StaticObjects, load_objects};
use crate::cmd::cli::{CheckArgs, EvalArgs, EventArg, OutputFormat};
use crate::contract::intent::{self, Outcome};
use crate::contract::{Event, EventType, ResourceKind, offline_plural, split_api_version};
use crate::runtime::{Plugin, ReadAccess, Runtime};

/// Why an offline command failed; the exit code tells the kinds apart.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The user's input is wrong (missing file, bad YAML, bad settings).
    #[error("{0}")]
    Usage(String),
    /// The plugin failed to load, failed its call, or returned refused intents.
    #[error("{0}")]
    Plugin(String),
    /// The host itself could not run (engine setup).
    #[error("{0}")]
    Internal(String),
}

impl OfflineError {
    /// 2 for usage errors, 1 for plugin failures, 3 for internal errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            OfflineError::Plugin(_) => 1,
            OfflineError::Usage(_) => 2,
            OfflineError::Internal(_) => 3,
        }
    }
}

pub(crate) fn load_plugin(runtime: &Runtime, path: &Path) -> Result<Plugin, OfflineError> {
    let bytes = std::fs::read(path).map_err(|e| {
        OfflineError::Usage(format!("failed to read plugin {}: {e}", path.display()))
    })?;
    runtime
        .load(&path.display().to_string(), &bytes)
        .map_err(|e| OfflineError::Plugin(error_chain(&e)))
}

pub use crate::ops::error_chain;

fn read_settings(path: Option<&Path>, plugin: &Plugin) -> Result<String, OfflineError> {
    let Some(path) = path else {
        return Ok("{}".to_string());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        OfflineError::Usage(format!("failed to read settings {}: {e}", path.display()))
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        OfflineError::Usage(format!(
            "settings {} are not valid JSON: {e}",
            path.display()
        ))
    })?;
    plugin.validate_settings(&text).map_err(|e| {
        OfflineError::Usage(format!(
            "settings {} rejected by plugin {}: {}",
            path.display(),
            plugin.info().name,
            match &e {
                crate::runtime::CallError::Failed { message, .. } => message.clone(),
                other => other.to_string(),
            }
        ))
    })?;
    Ok(value.to_string())
}

fn render<T: Serialize>(value: &T, format: OutputFormat) -> Result<String, OfflineError> {
    let rendered = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
        OutputFormat::Yaml => serde_saphyr::to_string(value).map_err(|e| e.to_string()),
    };
    rendered.map_err(|e| OfflineError::Internal(format!("failed to render output: {e}")))
}

pub(crate) fn new_runtime(args: &crate::cmd::cli::RuntimeArgs) -> Result<Runtime, OfflineError> {
    Runtime::new(args.runtime_config()).map_err(|e| OfflineError::Internal(e.to_string()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckReport<'a> {
    #[serde(flatten)]
    info: &'a crate::contract::PluginInfo,
    digest: &'a str,
    world: String,
    field_manager: String,
}

/// `kubewasm check`: loads the component and prints its description.
pub fn check(args: &CheckArgs) -> Result<String, OfflineError> {
    let runtime = new_runtime(&args.runtime)?;
    let plugin = load_plugin(&runtime, &args.plugin)?;
    read_settings(args.settings.as_deref(), &plugin)?;
    let info = plugin.info();
    render(
        &CheckReport {
            info,
            digest: plugin.digest(),
            world: crate::runtime::WORLD.to_string(),
            field_manager: info.field_manager(),
        },
        args.output,
    )
}

/// The kind of an object read from a file: group and version from
/// `apiVersion`, scope from the presence of `metadata.namespace`, and the
/// plural from [`offline_plural`].
fn kind_of_object(object: &Value) -> ResourceKind {
    let (group, version) = split_api_version(object["apiVersion"].as_str().unwrap_or_default());
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    ResourceKind {
        group: group.to_string(),
        version: version.to_string(),
        plural: offline_plural(&kind),
        kind,
        namespaced: object["metadata"]["namespace"].is_string(),
    }
}

/// `kubewasm eval`: one reconcile of one object; prints the outcome.
pub fn eval(args: &EvalArgs) -> Result<String, OfflineError> {
    let mut objects =
        load_objects(&args.object).map_err(|e| OfflineError::Usage(error_chain(&e)))?;
    if objects.len() != 1 {
        return Err(OfflineError::Usage(format!(
            "{} holds {} objects; eval takes exactly one",
            args.object.display(),
            objects.len()
        )));
    }
    let object = objects.remove(0);
    let reader = match &args.cache {
        Some(dir) => {
            StaticObjects::from_dir(dir).map_err(|e| OfflineError::Usage(error_chain(&e)))?
        }
        None => StaticObjects::default(),
    };
    let runtime = new_runtime(&args.runtime)?;
    let plugin = load_plugin(&runtime, &args.plugin)?;
    let settings = read_settings(args.settings.as_deref(), &plugin)?;
    let event = Event {
        event_type: match args.event {
            EventArg::Applied => EventType::Applied,
            EventArg::Deleted => EventType::Deleted,
            EventArg::Resync => EventType::Resync,
        },
        kind: kind_of_object(&object),
        object,
    };
    let access = ReadAccess {
        reader: Arc::new(reader),
        settings: settings.into(),
    };
    let outcome: Outcome = plugin
        .reconcile(&event, access)
        .map_err(|e| OfflineError::Plugin(error_chain(&e)))?;
    intent::check_scope(plugin.info(), &outcome)
        .map_err(|e| OfflineError::Plugin(format!("refused: {e}")))?;
    render(&outcome, args.output)
}

/// `kubewasm rbac`: the RBAC the plugins in a directory (and the host) need.
pub fn rbac(args: &crate::cmd::cli::RbacArgs) -> Result<String, OfflineError> {
    let runtime = new_runtime(&args.runtime)?;
    let files = crate::plugins::loader::plugin_files(&args.plugins)
        .map_err(|e| OfflineError::Usage(format!("--plugins {}: {e}", args.plugins.display())))?;
    let mut plugins = Vec::new();
    for file in files {
        plugins.push(load_plugin(&runtime, &file)?.info().clone());
    }
    Ok(crate::cmd::rbac::manifests(
        &plugins,
        &crate::cmd::rbac::RbacOptions {
            name: args.name.clone(),
            service_account: args.service_account.clone(),
            namespace: args.namespace.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plural_and_scope_are_inferred() {
        let kind = kind_of_object(
            &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "a", "namespace": "b"}}),
        );
        assert_eq!(kind.plural, "ingresses");
        assert_eq!(kind.group, "networking.k8s.io");
        assert!(kind.namespaced);
        let kind = kind_of_object(
            &json!({"apiVersion": "v1", "kind": "Policy", "metadata": {"name": "a"}}),
        );
        assert_eq!(kind.plural, "policies");
        assert!(!kind.namespaced);
    }
}
