//! Loads plugins from a directory: every `NAME.wasm`, with its settings
//! from `NAME.settings.json` beside it (`{}` when absent) and the operator's
//! grant from `NAME.scope.json` (unconfined when absent; see [`crate::grant`]).
//!
//! Loading is blocking and CPU-heavy (compilation); [`crate::reload`] runs it
//! on the blocking pool and decides what to do with the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::controller::LoadedPlugin;
use crate::grant::{Grant, GrantError};
use crate::runtime::{CallError, LoadError, Runtime};

/// Why one plugin file did not load.
#[derive(Debug, thiserror::Error)]
pub enum PluginFileError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("settings {path} are not valid JSON: {reason}")]
    SettingsJson { path: PathBuf, reason: String },
    #[error("settings {path} rejected by plugin {plugin}: {reason}")]
    SettingsRejected {
        path: PathBuf,
        plugin: String,
        reason: String,
    },
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("plugin loading was interrupted")]
    Interrupted,
}

impl PluginFileError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PluginFileError::Read { .. } => "read",
            PluginFileError::Load(e) => e.metric_label(),
            PluginFileError::SettingsJson { .. } | PluginFileError::SettingsRejected { .. } => {
                SETTINGS_FAILURE
            }
            PluginFileError::Grant(_) => "scope",
            PluginFileError::Interrupted => "interrupted",
        }
    }
}

/// The [`PluginFileError::metric_label`] of settings that are not JSON or
/// that the plugin rejects: the operator's input, not the plugin's.
pub const SETTINGS_FAILURE: &str = "settings";

/// The settings file of a plugin file: `NAME.settings.json` beside `NAME.wasm`.
pub fn settings_path(wasm: &Path) -> PathBuf {
    wasm.with_extension("settings.json")
}

/// The `.wasm` files directly in `dir`, sorted (hidden files skipped).
pub fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wasm")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Compiles and validates one plugin file with its settings (blocking).
pub fn load_file(runtime: &Runtime, path: &Path) -> Result<LoadedPlugin, PluginFileError> {
    let bytes = std::fs::read(path).map_err(|source| PluginFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // The grant is the operator's, so it is read before the plugin runs.
    let grant = Grant::load_for(path)?;
    let plugin = runtime.load(&path.display().to_string(), &bytes)?;
    let settings_file = settings_path(path);
    let settings = match std::fs::read_to_string(&settings_file) {
        Ok(text) => {
            let value: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| PluginFileError::SettingsJson {
                    path: settings_file.clone(),
                    reason: e.to_string(),
                })?;
            value.to_string()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "{}".to_string(),
        Err(source) => {
            return Err(PluginFileError::Read {
                path: settings_file,
                source,
            });
        }
    };
    plugin
        .validate_settings(&settings)
        .map_err(|e| PluginFileError::SettingsRejected {
            path: settings_file,
            plugin: plugin.info().name.clone(),
            reason: match e {
                CallError::Failed { message, .. } => message,
                other => other.to_string(),
            },
        })?;
    Ok(LoadedPlugin {
        plugin,
        settings: Arc::from(settings),
        grant,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_sit_beside_the_component() {
        assert_eq!(
            settings_path(Path::new("/p/label-propagator.wasm")),
            Path::new("/p/label-propagator.settings.json")
        );
    }

    #[test]
    fn only_visible_wasm_files_are_plugins() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.wasm",
            "a.wasm",
            ".a.wasm.swp",
            ".hidden.wasm",
            "a.settings.json",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = plugin_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["a.wasm", "b.wasm"]);
    }
}
