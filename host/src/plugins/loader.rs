//! Loads plugins from a directory: every `NAME.wasm`, with its settings
//! from `NAME.settings.json` beside it (`{}` when absent) and the operator's
//! grant from `NAME.scope.json` (unconfined when absent; see [`crate::plugins::grant`]).
//!
//! Loading is blocking and CPU-heavy (compilation); [`crate::plugins::reload`] runs it
//! on the blocking pool and decides what to do with the result.
//!
//! Files in the plugin directory are input like any other: only a regular
//! file, or a symlink whose target resolves inside the directory (as
//! Kubernetes' ConfigMap and Secret volumes use, through `..data`), is read,
//! and at most `--max-plugin-file-mib` (default 64 MiB) of a plugin or
//! [`MAX_SETTINGS_BYTES`] of a settings file. A FIFO, a device, a socket, a
//! symlink out of the directory or a larger file is refused by name
//! ([`FileError`]) without blocking: the type is checked before opening, the
//! file is opened non-blocking and checked again through the descriptor, and
//! at most limit + 1 bytes are read.

use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::plugins::LoadedPlugin;
use crate::plugins::grant::{Grant, GrantError, MAX_GRANT_FILE_BYTES, grant_path};
use crate::runtime::{LoadError, Runtime};

/// Largest settings file (`NAME.settings.json`) read.
pub const MAX_SETTINGS_BYTES: u64 = 1 << 20;

/// A file in the plugin directory that is refused without being read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("refused {path}: it is {what}, not a regular file")]
    NotRegular { path: PathBuf, what: &'static str },
    #[error("refused {path}: it is a symlink to {target}, outside the plugin directory {dir}")]
    OutsideDir {
        path: PathBuf,
        target: PathBuf,
        dir: PathBuf,
    },
    #[error("refused {path}: it is larger than the limit of {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
}

impl FileError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            FileError::NotRegular { .. } => "not_regular_file",
            FileError::OutsideDir { .. } => "symlink_outside_dir",
            FileError::TooLarge { .. } => "file_too_large",
        }
    }
}

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
    Refused(#[from] FileError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("settings {path} are not valid JSON")]
    SettingsJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
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
            PluginFileError::Refused(e) => e.metric_label(),
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

/// The `.wasm` files directly in `dir`, sorted (hidden files and shadows,
/// `NAME.next.wasm`, skipped).
pub fn plugin_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "wasm")
                && !crate::shadow::files::is_shadow(p)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// What kind of non-regular file `file_type` is, in words.
fn describe_type(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symlink"
    } else {
        "a special file"
    }
}

/// Reads a file of the plugin directory `dir` under the rules in the module
/// docs. `Ok(None)` when it does not exist.
/// The grant in `grant_file` (beside a plugin in `dir`); no file is no
/// confinement.
pub fn read_grant(dir: &Path, grant_file: PathBuf) -> Result<Grant, PluginFileError> {
    Ok(
        match read_bounded(dir, &grant_file, MAX_GRANT_FILE_BYTES)? {
            None => Grant::unconfined(),
            Some(bytes) => Grant::parse(&String::from_utf8_lossy(&bytes)).map_err(|reason| {
                GrantError::Invalid {
                    path: grant_file,
                    reason,
                }
            })?,
        },
    )
}

pub fn read_bounded(
    dir: &Path,
    path: &Path,
    limit: u64,
) -> Result<Option<Vec<u8>>, PluginFileError> {
    if !exists_inside(dir, path)? {
        return Ok(None);
    }
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    refuse_type(path, meta.file_type())?;
    if meta.len() > limit {
        return Err(too_large(path, limit));
    }
    // Non-blocking, so a file swapped for a FIFO after the check above does
    // not block the open; the descriptor is checked again before reading.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| read_error(path, e))?;
    let opened = file.metadata().map_err(|e| read_error(path, e))?;
    refuse_type(path, opened.file_type())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| read_error(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, limit));
    }
    Ok(Some(bytes))
}

/// Whether `path` is there (a dangling symlink is not, yet), refusing a
/// symlink whose target resolves outside `dir`.
fn exists_inside(dir: &Path, path: &Path) -> Result<bool, PluginFileError> {
    let link = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(read_error(path, e)),
    };
    if !link.file_type().is_symlink() {
        return Ok(true);
    }
    let target = match std::fs::canonicalize(path) {
        Ok(target) => target,
        // A dangling link: as if the file were not there yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(read_error(path, e)),
    };
    let dir = std::fs::canonicalize(dir).map_err(|e| read_error(path, e))?;
    if !target.starts_with(&dir) {
        return Err(FileError::OutsideDir {
            path: path.to_path_buf(),
            target,
            dir,
        }
        .into());
    }
    Ok(true)
}

fn read_error(path: &Path, source: std::io::Error) -> PluginFileError {
    PluginFileError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses anything but a regular file, naming what it is.
fn refuse_type(path: &Path, file_type: std::fs::FileType) -> Result<(), PluginFileError> {
    if file_type.is_file() {
        return Ok(());
    }
    Err(FileError::NotRegular {
        path: path.to_path_buf(),
        what: describe_type(file_type),
    }
    .into())
}

fn too_large(path: &Path, limit: u64) -> PluginFileError {
    FileError::TooLarge {
        path: path.to_path_buf(),
        limit,
    }
    .into()
}

/// The directory a plugin file is in (its loader's confinement).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Reads a plugin file and its settings file (`None` when there is none)
/// under the rules in the module docs. `Ok(None)` when the plugin file does
/// not exist.
#[allow(clippy::type_complexity)]
pub fn read_plugin(
    path: &Path,
    max_plugin_bytes: u64,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, PluginFileError> {
    let dir = dir_of(path);
    let Some(wasm) = read_bounded(dir, path, max_plugin_bytes)? else {
        return Ok(None);
    };
    let settings = read_bounded(dir, &settings_path(path), MAX_SETTINGS_BYTES)?;
    Ok(Some((wasm, settings)))
}

/// Compiles and validates one plugin file with its settings (blocking).
pub fn load_file(runtime: &Runtime, path: &Path) -> Result<LoadedPlugin, PluginFileError> {
    let (bytes, settings) =
        read_plugin(path, runtime.config().max_plugin_file_bytes)?.ok_or_else(|| {
            PluginFileError::Read {
                path: path.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            }
        })?;
    // The grant is the operator's, so it is read before the plugin runs.
    let grant = read_grant(dir_of(path), grant_path(path))?;
    let settings_file = settings_path(path);
    let settings = match settings {
        Some(bytes) => {
            let value: serde_json::Value =
                serde_json::from_slice(&bytes).map_err(|source| PluginFileError::SettingsJson {
                    path: settings_file.clone(),
                    source,
                })?;
            value.to_string()
        }
        None => "{}".to_string(),
    };
    load_component(
        runtime,
        &path.display().to_string(),
        &bytes,
        settings,
        grant,
    )
    .map_err(|error| match error {
        ComponentError::Load(e) => PluginFileError::Load(e),
        ComponentError::SettingsRejected { plugin, reason } => PluginFileError::SettingsRejected {
            path: settings_file,
            plugin,
            reason,
        },
    })
}

/// Why a component did not load, wherever it came from.
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("settings rejected by plugin {plugin}: {reason}")]
    SettingsRejected { plugin: String, reason: String },
}

impl ComponentError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ComponentError::Load(e) => e.metric_label(),
            ComponentError::SettingsRejected { .. } => SETTINGS_FAILURE,
        }
    }
}

/// Compiles a component (`label` names it in errors), then has it accept
/// `settings` (a JSON document) through its `validate-settings`; blocking.
pub fn load_component(
    runtime: &Runtime,
    label: &str,
    bytes: &[u8],
    settings: String,
    grant: Grant,
) -> Result<LoadedPlugin, ComponentError> {
    let plugin = runtime.load(label, bytes)?;
    plugin
        .validate_settings(&settings)
        .map_err(|e| ComponentError::SettingsRejected {
            plugin: plugin.info().name.clone(),
            reason: e.plugin_message(),
        })?;
    Ok(LoadedPlugin {
        id: plugin.info().name.clone(),
        plugin,
        settings: Arc::from(settings),
        grant: Arc::new(grant),
        dry_run: false,
        identity: None,
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
            "a.next.wasm",
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

    fn refusal(dir: &Path, name: &str, limit: u64) -> (String, &'static str) {
        let err = read_bounded(dir, &dir.join(name), limit).unwrap_err();
        (err.to_string(), err.metric_label())
    }

    #[test]
    fn regular_files_and_symlinks_inside_the_directory_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A ConfigMap volume: NAME.wasm -> ..data/NAME.wasm, ..data -> ..2026_…
        std::fs::create_dir(d.join("..2026_12_03")).unwrap();
        std::fs::write(d.join("..2026_12_03/p.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink("..2026_12_03", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/p.wasm", d.join("p.wasm")).unwrap();
        std::fs::write(d.join("q.wasm"), b"\0asm!").unwrap();
        assert_eq!(
            read_bounded(d, &d.join("p.wasm"), 4).unwrap().unwrap(),
            b"\0asm"
        );
        assert_eq!(
            read_bounded(d, &d.join("q.wasm"), 5).unwrap().unwrap(),
            b"\0asm!"
        );
        assert_eq!(read_bounded(d, &d.join("missing.wasm"), 5).unwrap(), None);
        assert_eq!(
            read_plugin(&d.join("q.wasm"), 5).unwrap().unwrap(),
            (b"\0asm!".to_vec(), None)
        );
    }

    #[test]
    fn special_files_outside_links_and_large_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fifo = d.join("fifo.wasm");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::os::unix::fs::symlink("/dev/zero", d.join("zero.wasm")).unwrap();
        std::fs::write(outside.path().join("x.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink(outside.path().join("x.wasm"), d.join("out.wasm")).unwrap();
        std::fs::write(d.join("big.wasm"), vec![0u8; 100]).unwrap();
        std::os::unix::fs::symlink(d, d.join("self.wasm")).unwrap();

        // Never blocks on the FIFO: refused before it is opened.
        assert_eq!(
            refusal(d, "fifo.wasm", 1 << 20),
            (
                format!(
                    "refused {}: it is a FIFO, not a regular file",
                    fifo.display()
                ),
                "not_regular_file"
            )
        );
        let (message, label) = refusal(d, "zero.wasm", 1 << 20);
        assert!(
            message
                .contains("zero.wasm: it is a symlink to /dev/zero, outside the plugin directory"),
            "{message}"
        );
        assert_eq!(label, "symlink_outside_dir");
        assert_eq!(refusal(d, "out.wasm", 1 << 20).1, "symlink_outside_dir");
        assert_eq!(
            refusal(d, "big.wasm", 99),
            (
                format!(
                    "refused {}: it is larger than the limit of 99 bytes",
                    d.join("big.wasm").display()
                ),
                "file_too_large"
            )
        );
        assert_eq!(
            read_bounded(d, &d.join("big.wasm"), 100)
                .unwrap()
                .unwrap()
                .len(),
            100
        );
        assert_eq!(refusal(d, "self.wasm", 1 << 20).1, "not_regular_file");

        // A settings file follows the same rules.
        std::fs::write(d.join("ok.wasm"), b"\0asm").unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("ok.settings.json")).unwrap();
        assert_eq!(
            read_plugin(&d.join("ok.wasm"), 1 << 20)
                .unwrap_err()
                .metric_label(),
            "symlink_outside_dir"
        );
    }
}
