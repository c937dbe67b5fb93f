//! The offline jobs a plugin author runs without a cluster: `check` a
//! component and `eval` one reconcile on object files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::cluster::cache::{LoadObjectsError, StaticObjects, load_objects};
use crate::cmd::cli::{CheckArgs, EvalArgs, EventArg, OutputFormat};
use crate::cmd::run::RunError;
use crate::contract::intent::{self, Outcome, ScopeViolation};
use crate::contract::{Event, EventType, ResourceKind, offline_plural, split_api_version};
use crate::runtime::{CallError, Clock, LoadError, Plugin, ReadAccess, Runtime, RuntimeError};

/// Why a command failed; the exit code tells the kinds apart
/// ([`OfflineError::exit_code`]). Causes are kept as sources: print it with
/// [`crate::ops::error_chain`].
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The user's input is wrong, as the message says (a bad flag, settings
    /// the plugin refuses, an object file with several objects).
    #[error("{0}")]
    Usage(String),
    /// A file named on the command line could not be read.
    #[error("failed to read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written (`kubewasm test --junit`, `--bless`).
    #[error("failed to write {what} {path}")]
    Write {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `kubewasm test`: some fixture cases failed (each is reported above).
    #[error("{failed} of {total} fixture cases failed")]
    TestsFailed { failed: usize, total: usize },
    #[error("settings {path} are not valid JSON")]
    SettingsJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("--plugins {path}")]
    PluginDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An object file or cache directory that does not load.
    #[error(transparent)]
    Objects(#[from] LoadObjectsError),
    /// The plugin failed to load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The plugin's call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The plugin returned intents outside its write scope.
    #[error("refused")]
    Refused(#[source] ScopeViolation),
    /// The Wasm runtime could not be set up.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("failed to render output")]
    Render(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("failed to start the async runtime")]
    AsyncRuntime(#[source] std::io::Error),
    /// `kubewasm run` could not start the host.
    #[error(transparent)]
    Run(Box<RunError>),
    /// `kubewasm discover` could not ask the API server.
    #[error(transparent)]
    Discover(Box<RunError>),
    /// `kubewasm push`/`pull`: the registry, the reference or the cache.
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    /// `kubewasm replay`, `kubewasm test`: a recording that cannot be read.
    #[error(transparent)]
    Recording(#[from] crate::recording::RecordingError),
}

impl OfflineError {
    /// 2 for usage errors, 1 for plugin failures (and a host that cannot
    /// start), 3 for internal errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            OfflineError::Usage(_)
            | OfflineError::Read { .. }
            | OfflineError::SettingsJson { .. }
            | OfflineError::PluginDir { .. }
            | OfflineError::Objects(_)
            | OfflineError::Recording(_) => 2,
            OfflineError::Run(e) if e.is_usage() => 2,
            OfflineError::Oci(e) if e.is_usage() => 2,
            OfflineError::Load(_)
            | OfflineError::Call(_)
            | OfflineError::Refused(_)
            | OfflineError::TestsFailed { .. }
            | OfflineError::Run(_)
            | OfflineError::Oci(_) => 1,
            OfflineError::Runtime(_)
            | OfflineError::Render(_)
            | OfflineError::Write { .. }
            | OfflineError::AsyncRuntime(_)
            | OfflineError::Discover(_) => 3,
        }
    }
}

pub(crate) fn load_plugin(runtime: &Runtime, path: &Path) -> Result<Plugin, OfflineError> {
    let bytes = std::fs::read(path).map_err(|source| OfflineError::Read {
        what: "plugin",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(runtime.load(&path.display().to_string(), &bytes)?)
}

pub(crate) fn read_settings(path: Option<&Path>, plugin: &Plugin) -> Result<String, OfflineError> {
    let Some(path) = path else {
        return Ok("{}".to_string());
    };
    let text = std::fs::read_to_string(path).map_err(|source| OfflineError::Read {
        what: "settings",
        path: path.to_path_buf(),
        source,
    })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|source| OfflineError::SettingsJson {
            path: path.to_path_buf(),
            source,
        })?;
    plugin.validate_settings(&text).map_err(|e| {
        OfflineError::Usage(format!(
            "settings {} rejected by plugin {}: {}",
            path.display(),
            plugin.info().name,
            e.plugin_message()
        ))
    })?;
    Ok(value.to_string())
}

fn render<T: Serialize>(value: &T, format: OutputFormat) -> Result<String, OfflineError> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| OfflineError::Render(e.into())),
        OutputFormat::Yaml => {
            serde_saphyr::to_string(value).map_err(|e| OfflineError::Render(e.into()))
        }
    }
}

/// The runtime of an offline command: its plugin is compiled optimized
/// (a command runs once; a baseline tier would only add a compile).
pub(crate) fn new_runtime(args: &crate::cmd::cli::RuntimeArgs) -> Result<Runtime, OfflineError> {
    Ok(Runtime::new(crate::runtime::RuntimeConfig {
        baseline_min_bytes: None,
        ..args.runtime_config()
    })?)
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
            world: format!(
                "{}/plugin@{}",
                crate::runtime::WORLD_PACKAGE,
                plugin.contract_version()
            ),
            field_manager: info.field_manager(),
        },
        args.output,
    )
}

/// The kind of an object read from a file: group and version from
/// `apiVersion`, scope from the presence of `metadata.namespace`, and the
/// plural from [`offline_plural`].
pub(crate) fn kind_of_object(object: &Value) -> ResourceKind {
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
    let mut objects = load_objects(&args.object)?;
    if objects.len() != 1 {
        return Err(OfflineError::Usage(format!(
            "{} holds {} objects; eval takes exactly one",
            args.object.display(),
            objects.len()
        )));
    }
    let object = objects.remove(0);
    let reader = match &args.cache {
        Some(dir) => StaticObjects::from_dir(dir)?,
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
            EventArg::Finalizing => EventType::Finalizing,
        },
        kind: kind_of_object(&object),
        object: Arc::new(object.into()),
    };
    let access = ReadAccess {
        reader: Arc::new(reader),
        settings: settings.into(),
        clock: args.now.map_or(Clock::System, Clock::Fixed),
    };
    let outcome: Outcome = plugin.reconcile(&event, access)?;
    intent::check_scope(plugin.info(), &outcome).map_err(OfflineError::Refused)?;
    render(&outcome, args.output)
}

/// `kubewasm rbac`: the RBAC the plugins in a directory (and the host) need.
pub fn rbac(args: &crate::cmd::cli::RbacArgs) -> Result<String, OfflineError> {
    let runtime = new_runtime(&args.runtime)?;
    let files = crate::plugins::loader::plugin_files(&args.plugins).map_err(|source| {
        OfflineError::PluginDir {
            path: args.plugins.clone(),
            source,
        }
    })?;
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
    use crate::ops::error_chain;
    use serde_json::json;

    #[test]
    fn errors_print_their_causes_and_keep_their_exit_codes() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.wasm");
        let io = std::fs::read(&missing).unwrap_err();
        let err = OfflineError::Read {
            what: "plugin",
            path: missing.clone(),
            source: std::fs::read(&missing).unwrap_err(),
        };
        assert_eq!(
            error_chain(&err),
            format!("failed to read plugin {}: {io}", missing.display())
        );
        assert_eq!(err.exit_code(), 2);

        let settings = dir.path().join("s.json");
        let json = serde_json::from_str::<Value>("{").unwrap_err();
        let err = OfflineError::SettingsJson {
            path: settings.clone(),
            source: serde_json::from_str::<Value>("{").unwrap_err(),
        };
        assert_eq!(
            error_chain(&err),
            format!("settings {} are not valid JSON: {json}", settings.display())
        );
        assert_eq!(err.exit_code(), 2);

        let violation = ScopeViolation {
            plugin: "p".into(),
            index: 0,
            intent: "apply",
            group: String::new(),
            kind: "Secret".into(),
        };
        let message = format!("refused: {violation}");
        let err = OfflineError::Refused(violation);
        assert_eq!(error_chain(&err), message);
        assert_eq!(err.exit_code(), 1);
    }

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
