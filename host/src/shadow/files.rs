//! Shadows in the plugin directory: `NAME.next.wasm` beside `NAME.wasm`.
//!
//! | file | role |
//! |---|---|
//! | `NAME.next.wasm` | the shadow of the plugin serving from `NAME.wasm`; it must describe the same plugin name |
//! | `NAME.next.settings.json` | its settings; without it, `NAME.settings.json` (the serving version's) |
//! | `NAME.scope.json` | the operator's grant of NAME, for both versions |
//!
//! Every sync of the directory also syncs its shadows: a new or changed
//! shadow (file, effective settings or grant) is compiled and validated on
//! the blocking pool and started with fresh counts; one that fails is
//! reported (log, `kubewasm_plugin_load_failing{file="NAME.next.wasm"}`,
//! the report's `loadFailures`) and the previous shadow, if any, keeps
//! running; a removed one stops. Nothing here touches the serving version.
//!
//! Promotion renames `NAME.next.wasm` over `NAME.wasm`, then
//! `NAME.next.settings.json` (if there is one) over `NAME.settings.json`,
//! so the files always say what serves, and the directory's hot reload
//! serves the new version and stops the shadow. Each rename is atomic; a
//! promotion interrupted between the two leaves `NAME.next.settings.json`
//! without `NAME.next.wasm`, which `kubewasm shadow promote NAME` finishes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::Shadows;
use crate::ops::error_chain;
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::{MAX_GRANT_FILE_BYTES, grant_path};
use crate::plugins::loader::{self, MAX_SETTINGS_BYTES, PluginFileError};
use crate::plugins::set::{Fingerprint, Origin, SharedSet};
use crate::runtime::Runtime;

/// What marks a shadow file: `NAME.next.wasm`.
pub const SUFFIX: &str = ".next.wasm";

/// Whether `path` names a shadow file.
pub fn is_shadow(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SUFFIX) && n.len() > SUFFIX.len())
}

/// `NAME.next.wasm` for `NAME.wasm`.
pub fn shadow_path(serving: &Path) -> PathBuf {
    serving.with_extension("next.wasm")
}

/// `NAME.wasm` for `NAME.next.wasm`.
pub fn serving_path(shadow: &Path) -> PathBuf {
    let name = shadow
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(SUFFIX))
        .unwrap_or_default();
    shadow.with_file_name(format!("{name}.wasm"))
}

/// Why a shadow file did not load.
#[derive(Debug, thiserror::Error)]
pub enum ShadowFileError {
    #[error(transparent)]
    File(#[from] PluginFileError),
    #[error("{shadow}: no plugin serves from {serving}, so there is nothing to shadow")]
    NothingServes { shadow: PathBuf, serving: PathBuf },
    #[error(
        "{shadow}: it describes plugin {found:?}, but {serving} serves {expected:?}; a shadow must be a version of the same plugin"
    )]
    OtherPlugin {
        shadow: PathBuf,
        serving: PathBuf,
        expected: String,
        found: String,
    },
}

impl ShadowFileError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ShadowFileError::File(e) => e.metric_label(),
            ShadowFileError::NothingServes { .. } => "shadow_without_serving",
            ShadowFileError::OtherPlugin { .. } => "shadow_of_other_plugin",
        }
    }
}

/// The shadow files of one directory, as last synced.
pub struct ShadowFiles {
    shadows: Shadows,
    /// Per shadow file: its fingerprint and the plugin then serving from
    /// `NAME.wasm` when it was last looked at, and the plugin it shadows.
    seen: HashMap<PathBuf, Seen>,
}

#[derive(Clone, PartialEq, Eq)]
struct Seen {
    fingerprint: Fingerprint,
    serving: Option<(String, String)>,
    installed: Option<String>,
}

impl ShadowFiles {
    pub fn new(shadows: Shadows) -> Self {
        Self {
            shadows,
            seen: HashMap::new(),
        }
    }

    /// Brings the shadows in line with the directory's `NAME.next.wasm`
    /// files; call after the plugins themselves are synced.
    pub async fn sync(&mut self, dir: &Path, runtime: &Runtime, set: &SharedSet) {
        let files = match shadow_files(dir) {
            Ok(files) => files,
            Err(error) => {
                tracing::error!(dir = %dir.display(), error = %error, "cannot list shadow files");
                return;
            }
        };
        let gone: Vec<PathBuf> = self
            .seen
            .keys()
            .filter(|p| !files.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some(Seen {
                installed: Some(id),
                ..
            }) = self.seen.remove(&path)
            {
                self.shadows.remove(&id);
            }
            self.forget_failure(&path);
        }
        for path in files {
            self.sync_file(path, runtime, set).await;
        }
    }

    async fn sync_file(&mut self, path: PathBuf, runtime: &Runtime, set: &SharedSet) {
        let serving_file = serving_path(&path);
        let serving = set
            .lock()
            .serving(&Origin::File(serving_file.clone()))
            .map(|s| (s.id.clone(), s.name.clone()));
        let max_bytes = runtime.config().max_plugin_file_bytes;
        let hashed = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || fingerprint(&path, max_bytes))
                .await
                .unwrap_or(Err(PluginFileError::Interrupted))
        };
        let previous = self.seen.get(&path).cloned();
        let installed = previous.as_ref().and_then(|s| s.installed.clone());
        let fingerprint = match hashed {
            Ok(Some(fingerprint)) => fingerprint,
            Ok(None) => return,
            Err(error) => {
                let fingerprint = Sha256::digest(error_chain(&error).as_bytes()).into();
                if previous.is_none_or(|s| s.fingerprint != fingerprint) {
                    self.fail(&path, &error.into());
                }
                let seen = Seen {
                    fingerprint,
                    serving,
                    installed,
                };
                self.seen.insert(path, seen);
                return;
            }
        };
        if previous
            .as_ref()
            .is_some_and(|s| s.fingerprint == fingerprint && s.serving == serving)
        {
            return;
        }
        let loaded = match &serving {
            None => Err(ShadowFileError::NothingServes {
                shadow: path.clone(),
                serving: serving_file,
            }),
            Some((id, name)) => load(runtime, &path, id, name).await,
        };
        let installed = match loaded {
            Ok(loaded) => {
                let id = loaded.id.clone();
                self.shadows.install(loaded, Some(path.clone()));
                self.forget_failure(&path);
                Some(id)
            }
            Err(error) => {
                // The previous shadow, if any, keeps running; without a
                // serving version there is nothing for it to shadow.
                if matches!(error, ShadowFileError::NothingServes { .. })
                    && let Some(id) = &installed
                {
                    self.shadows.remove(id);
                }
                self.fail(&path, &error);
                installed.filter(|_| serving.is_some())
            }
        };
        let seen = Seen {
            fingerprint,
            serving,
            installed,
        };
        self.seen.insert(path, seen);
    }

    fn fail(&self, path: &Path, error: &ShadowFileError) {
        let message = error_chain(error);
        tracing::error!(
            path = %path.display(),
            error = %message,
            "shadow not loaded; the serving version is unaffected (and a previous shadow, if any, keeps running)"
        );
        let metrics = &self.shadows.inner.context.metrics;
        metrics
            .plugin_loads
            .with_label_values(&[error.metric_label()])
            .inc();
        metrics
            .plugin_load_failing
            .with_label_values(&[&file_label(path)])
            .set(1);
        self.shadows.set_failure(&file_label(path), Some(message));
    }

    fn forget_failure(&self, path: &Path) {
        let _ = self
            .shadows
            .inner
            .context
            .metrics
            .plugin_load_failing
            .remove_label_values(&[&file_label(path)]);
        self.shadows.set_failure(&file_label(path), None);
    }
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The visible `NAME.next.wasm` files directly in `dir`, sorted.
pub fn shadow_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            is_shadow(p)
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The settings a shadow runs with: its own file if there is one, else the
/// serving version's.
fn settings_file(shadow: &Path) -> PathBuf {
    let own = loader::settings_path(shadow);
    match std::fs::symlink_metadata(&own) {
        Ok(_) => own,
        Err(_) => loader::settings_path(&serving_path(shadow)),
    }
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// A fingerprint of the shadow, its effective settings and NAME's grant;
/// `Ok(None)` if the shadow file is gone.
fn fingerprint(shadow: &Path, max_bytes: u64) -> Result<Option<Fingerprint>, PluginFileError> {
    let dir = dir_of(shadow);
    let Some(wasm) = loader::read_bounded(dir, shadow, max_bytes)? else {
        return Ok(None);
    };
    let settings_file = settings_file(shadow);
    let settings = loader::read_bounded(dir, &settings_file, MAX_SETTINGS_BYTES)?;
    let grant = loader::read_bounded(
        dir,
        &grant_path(&serving_path(shadow)),
        MAX_GRANT_FILE_BYTES,
    )?;
    let mut hash = Sha256::new();
    hash.update(wasm);
    hash.update(settings_file.as_os_str().as_encoded_bytes());
    for part in [settings, grant] {
        match part {
            Some(bytes) => {
                hash.update([1]);
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
            }
            None => hash.update([0]),
        }
    }
    Ok(Some(hash.finalize().into()))
}

/// Compiles and validates a shadow (on the blocking pool), as the plugin
/// `id` named `name`.
async fn load(
    runtime: &Runtime,
    shadow: &Path,
    id: &str,
    name: &str,
) -> Result<LoadedPlugin, ShadowFileError> {
    let (runtime, path) = (runtime.clone(), shadow.to_path_buf());
    let mut loaded = tokio::task::spawn_blocking(move || load_blocking(&runtime, &path))
        .await
        .unwrap_or(Err(PluginFileError::Interrupted))?;
    let found = loaded.plugin.info().name.clone();
    if found != name {
        return Err(ShadowFileError::OtherPlugin {
            shadow: shadow.to_path_buf(),
            serving: serving_path(shadow),
            expected: name.to_string(),
            found,
        });
    }
    loaded.id = id.to_string();
    Ok(loaded)
}

fn load_blocking(runtime: &Runtime, shadow: &Path) -> Result<LoadedPlugin, PluginFileError> {
    let dir = dir_of(shadow);
    let not_found = || PluginFileError::Read {
        path: shadow.to_path_buf(),
        source: std::io::ErrorKind::NotFound.into(),
    };
    let bytes = loader::read_bounded(dir, shadow, runtime.config().max_plugin_file_bytes)?
        .ok_or_else(not_found)?;
    let grant = loader::read_grant(dir, grant_path(&serving_path(shadow)))?;
    let settings_file = settings_file(shadow);
    let settings = match loader::read_bounded(dir, &settings_file, MAX_SETTINGS_BYTES)? {
        Some(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|source| PluginFileError::SettingsJson {
                path: settings_file.clone(),
                source,
            })?
            .to_string(),
        None => "{}".to_string(),
    };
    let label = shadow.display().to_string();
    loader::load_component(runtime, &label, &bytes, settings, grant).map_err(|error| match error {
        loader::ComponentError::Load(e) => PluginFileError::Load(e),
        loader::ComponentError::SettingsRejected { plugin, reason } => {
            PluginFileError::SettingsRejected {
                path: settings_file,
                plugin,
                reason,
            }
        }
    })
}

/// Promotes the shadow `NAME.next.wasm` as [`promote_shadow`] does, if it
/// still holds the component whose SHA-256 (hex) is `compared`: the host
/// promotes by itself only what it compared, not a file replaced since.
pub fn promote_compared(shadow: &Path, compared: &str) -> std::io::Result<PathBuf> {
    match std::fs::File::open(shadow) {
        Ok(mut file) => {
            let mut hash = Sha256::new();
            std::io::copy(&mut file, &mut hash)?;
            let now = hex::encode(hash.finalize());
            if now != compared {
                return Err(std::io::Error::other(format!(
                    "{} changed since it was compared (now {}, compared {}); not promoted",
                    shadow.display(),
                    &now[..12],
                    &compared[..compared.len().min(12)]
                )));
            }
        }
        // Gone: an interrupted promotion is finished, or nothing is left.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    promote_shadow(shadow)
}

/// Promotes the shadow `NAME.next.wasm`: renames it over `NAME.wasm`, then
/// its settings (if it has its own) over `NAME.settings.json`, and returns
/// `NAME.wasm`. Finishes a promotion interrupted between the two renames.
pub fn promote_shadow(shadow: &Path) -> std::io::Result<PathBuf> {
    let serving = serving_path(shadow);
    let own_settings = loader::settings_path(shadow);
    let has_settings = std::fs::symlink_metadata(&own_settings).is_ok();
    match std::fs::symlink_metadata(shadow) {
        Ok(_) => std::fs::rename(shadow, &serving)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && has_settings => {
            tracing::info!(path = %own_settings.display(), "finishing an interrupted promotion");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("no shadow to promote: {} does not exist", shadow.display()),
            ));
        }
        Err(e) => return Err(e),
    }
    if has_settings {
        std::fs::rename(&own_settings, loader::settings_path(&serving))?;
    }
    // The renames survive a crash once the directory is synced.
    std::fs::File::open(dir_of(shadow))?.sync_all()?;
    Ok(serving)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_files_sit_beside_the_serving_ones() {
        let serving = Path::new("/p/label-propagator.wasm");
        let shadow = shadow_path(serving);
        assert_eq!(shadow, Path::new("/p/label-propagator.next.wasm"));
        assert_eq!(serving_path(&shadow), serving);
        assert!(is_shadow(&shadow));
        assert!(!is_shadow(serving));
        assert!(!is_shadow(Path::new("/p/.next.wasm")));
        assert_eq!(
            loader::settings_path(&shadow),
            Path::new("/p/label-propagator.next.settings.json")
        );
    }

    #[test]
    fn a_shadow_without_settings_uses_the_serving_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let shadow = d.join("p.next.wasm");
        assert_eq!(settings_file(&shadow), d.join("p.settings.json"));
        std::fs::write(d.join("p.next.settings.json"), "{}").unwrap();
        assert_eq!(settings_file(&shadow), d.join("p.next.settings.json"));
    }

    #[test]
    fn the_host_promotes_only_the_component_it_compared() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("p.wasm"), "old").unwrap();
        std::fs::write(d.join("p.next.wasm"), "compared").unwrap();
        let compared = hex::encode(Sha256::digest(b"compared"));
        std::fs::write(d.join("p.next.wasm"), "replaced").unwrap();
        let refused = promote_compared(&d.join("p.next.wasm"), &compared).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("changed since it was compared"),
            "{refused}"
        );
        assert_eq!(std::fs::read_to_string(d.join("p.wasm")).unwrap(), "old");
        std::fs::write(d.join("p.next.wasm"), "compared").unwrap();
        promote_compared(&d.join("p.next.wasm"), &compared).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.join("p.wasm")).unwrap(),
            "compared"
        );
    }

    #[test]
    fn promotion_renames_the_shadow_and_its_settings_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("p.wasm"), "old").unwrap();
        std::fs::write(d.join("p.settings.json"), "{\"v\":1}").unwrap();
        std::fs::write(d.join("p.next.wasm"), "new").unwrap();
        std::fs::write(d.join("p.next.settings.json"), "{\"v\":2}").unwrap();
        assert_eq!(
            promote_shadow(&d.join("p.next.wasm")).unwrap(),
            d.join("p.wasm")
        );
        let read = |n: &str| std::fs::read_to_string(d.join(n)).unwrap();
        assert_eq!(read("p.wasm"), "new");
        assert_eq!(read("p.settings.json"), "{\"v\":2}");
        assert!(!d.join("p.next.wasm").exists());
        assert!(!d.join("p.next.settings.json").exists());
        let again = promote_shadow(&d.join("p.next.wasm")).unwrap_err();
        assert!(
            again.to_string().contains("no shadow to promote"),
            "{again}"
        );

        // Without settings of its own the serving ones stay.
        std::fs::write(d.join("p.next.wasm"), "newer").unwrap();
        promote_shadow(&d.join("p.next.wasm")).unwrap();
        assert_eq!(read("p.wasm"), "newer");
        assert_eq!(read("p.settings.json"), "{\"v\":2}");

        // Interrupted after the first rename: the settings are finished.
        std::fs::write(d.join("p.next.settings.json"), "{\"v\":3}").unwrap();
        promote_shadow(&d.join("p.next.wasm")).unwrap();
        assert_eq!(read("p.settings.json"), "{\"v\":3}");
        assert_eq!(read("p.wasm"), "newer");
    }

    #[test]
    fn only_visible_next_files_are_shadows() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "a.wasm",
            "a.next.wasm",
            ".b.next.wasm",
            "b.next.settings.json",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(
            shadow_files(dir.path()).unwrap(),
            [dir.path().join("a.next.wasm")]
        );
    }
}
