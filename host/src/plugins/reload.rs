//! Hot reload: the plugin directory is the source of truth, and the host
//! follows it while it runs.
//!
//! A watcher (notify) reports that something in the directory changed: a
//! finished change (a rename into place, a writer's close, a removal) at
//! once, a write still in progress once it closes or the directory is quiet
//! ([`dir_events`](super::dir_events)); the host then re-reads the directory
//! as a whole ([`PluginDir::sync`]) and compares each plugin file, with its
//! settings, to what it runs by content fingerprint:
//!
//! - a new or changed `NAME.wasm` (or `NAME.settings.json`) is compiled and
//!   validated on the blocking pool while the old version keeps serving, then
//!   swapped in with [`PluginSink::install`]: calls in flight finish on the
//!   old version, later calls get the new one, and the queue never runs one
//!   key twice at once; every object the plugin subscribes to is resynced;
//! - a file that fails to read, compile, validate or accept its settings
//!   leaves the previous version serving; the failure is logged once per
//!   content and kept in [`PluginDir::failures`];
//! - a removed file unloads its plugin (queue entries dropped, informers no
//!   other plugin needs stopped).
//!
//! Re-reading the whole directory rather than acting on single events makes
//! Kubernetes' volume updates simple: a ConfigMap or Secret volume writes a
//! new `..2026_11_22_…` directory and atomically re-points the `..data`
//! symlink that every `NAME.wasm` symlink goes through. However the events
//! of that swap are batched, the fingerprints change once, so the plugin
//! reloads once; the timestamped directories are never plugins themselves
//! (only visible top-level `NAME.wasm` files are). Events that only touch
//! editors' temporary or swap files (`.x.swp`, `x~`, `4913`, `.#x`) do not
//! even trigger a re-read.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::ops::error_chain;
use crate::ops::metrics::Metrics;
use crate::plugins::LoadedPlugin;
use crate::plugins::dir_events::{self, Action, QUIET, REPORTS_CLOSES};
use crate::plugins::loader::{self, PluginFileError};
use crate::plugins::set::{Fingerprint, Origin, Served, SharedSet};
use crate::runtime::Runtime;
use crate::shadow::Shadows;
use crate::shadow::files::ShadowFiles;

pub use crate::plugins::set::{Failure, PluginSink};

/// Re-read the directory this often even without events, in case the
/// platform dropped some (an inotify queue overflow, a network filesystem).
pub const RESCAN: Duration = Duration::from_secs(60);

/// The plugin directory; what it yields is served by a [`SharedSet`].
pub struct PluginDir {
    dir: PathBuf,
    runtime: Runtime,
    set: SharedSet,
    /// Paths a writer is still at work on: a sync leaves their plugins as
    /// they are until the write closes or the directory is quiet.
    writing: HashSet<PathBuf>,
    /// Each plugin file's fingerprint, with the stamps of its files when
    /// it was taken.
    hashed: HashMap<PathBuf, ([Option<Stamp>; 3], Fingerprint)>,
    /// The directory's shadows (`NAME.next.wasm`), if the host runs them.
    shadows: Option<ShadowFiles>,
}

/// What changes when a file's content may have: the file a path resolves
/// to (a rename or a `..data` swap is another inode) and its size and
/// times, in nanoseconds.
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

/// The stamps of a plugin's files (component, settings, scope; `None` for
/// an absent file), or `None` if one cannot be read.
fn stamps_of(files: &[PathBuf; 3]) -> Option<[Option<Stamp>; 3]> {
    use std::os::unix::fs::MetadataExt;
    let stamp = |path: &PathBuf| match std::fs::metadata(path) {
        Ok(m) => Some(Some((
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(None),
        Err(_) => None,
    };
    Some([stamp(&files[0])?, stamp(&files[1])?, stamp(&files[2])?])
}

/// What one [`PluginDir::sync`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Plugins loaded for the first time.
    pub loaded: Vec<String>,
    /// Plugins replaced by a new version.
    pub reloaded: Vec<String>,
    /// Plugins removed.
    pub unloaded: Vec<String>,
    /// Files whose (new) content failed; an older version may still serve.
    pub failed: Vec<PathBuf>,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl PluginDir {
    /// The directory `dir`, serving into a set of its own.
    pub fn new(
        dir: PathBuf,
        runtime: Runtime,
        controller: Arc<dyn PluginSink>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self::with_set(dir, runtime, SharedSet::new(controller, metrics))
    }

    /// The directory `dir`, serving into `set` (shared with other sources).
    pub fn with_set(dir: PathBuf, runtime: Runtime, set: SharedSet) -> Self {
        Self {
            dir,
            runtime,
            set,
            writing: HashSet::new(),
            hashed: HashMap::new(),
            shadows: None,
        }
    }

    /// Also loads the directory's shadows (`NAME.next.wasm`) into `shadows`
    /// ([`crate::shadow::files`]).
    pub fn with_shadows(mut self, shadows: Shadows) -> Self {
        self.shadows = Some(ShadowFiles::new(shadows));
        self
    }

    /// Files whose current content does not load, with the reason.
    pub fn failures(&self) -> Vec<(PathBuf, Failure)> {
        self.set
            .lock()
            .failures()
            .filter_map(|(origin, failure)| match origin {
                Origin::File(path) => Some((path.clone(), failure.clone())),
                _ => None,
            })
            .collect()
    }

    /// Brings the running plugins in line with the directory.
    pub async fn sync(&mut self) -> std::io::Result<SyncReport> {
        let mut report = SyncReport::default();
        let files = loader::plugin_files(&self.dir)?;
        // Removed files first, so a plugin moved to another file name is
        // not refused as a duplicate.
        self.forget_removed(&files, &mut report);
        for path in files {
            self.sync_file(path, &mut report).await;
        }
        if let Some(shadows) = &mut self.shadows {
            shadows.sync(&self.dir, &self.runtime, &self.set).await;
        }
        Ok(report)
    }

    /// Unloads the plugins whose files are gone, and forgets the failures
    /// of files that are gone.
    fn forget_removed(&mut self, files: &[PathBuf], report: &mut SyncReport) {
        self.hashed.retain(|path, _| files.contains(path));
        let mut set = self.set.lock();
        let gone = set.origins(|o| matches!(o, Origin::File(p) if !files.contains(p)));
        for origin in gone {
            if let Some(name) = set.remove(&origin) {
                report.unloaded.push(name);
            }
        }
    }

    /// Loads one file if its content (with settings and grant) changed
    /// since it was last looked at.
    async fn sync_file(&mut self, path: PathBuf, report: &mut SyncReport) {
        let files = [
            path.clone(),
            loader::settings_path(&path),
            crate::plugins::grant::grant_path(&path),
        ];
        if files.iter().any(|f| self.writing.contains(f)) {
            tracing::debug!(path = %path.display(), "still being written; read at its close");
            return;
        }
        let max_plugin_bytes = self.runtime.config().max_plugin_file_bytes;
        // Hashing reads the whole file (12-18 MB for JS and Python plugins,
        // every file on every rescan): off the async threads. Done on one,
        // it held up the workers the resync of a reloaded plugin had just
        // woken (by seconds in a debug build, by 80 s with several large
        // plugins on a loaded machine).
        // Files whose stamps did not change since they were hashed are not
        // read again (the periodic rescan forgets the stamps).
        let stamps = stamps_of(&files);
        let known = self
            .hashed
            .get(&path)
            .filter(|(seen, _)| stamps.is_some() && Some(seen) == stamps.as_ref())
            .map(|(_, fingerprint)| *fingerprint);
        let hashed = match known {
            Some(fingerprint) => Ok(Some(fingerprint)),
            None => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || fingerprint(&path, max_plugin_bytes))
                    .await
                    .unwrap_or(Err(PluginFileError::Interrupted))
            }
        };
        match (&hashed, stamps) {
            (Ok(Some(fingerprint)), Some(stamps)) => {
                self.hashed.insert(path.clone(), (stamps, *fingerprint));
            }
            _ => {
                self.hashed.remove(&path);
            }
        }
        let origin = Origin::File(path.clone());
        let fingerprint = match hashed {
            Ok(Some(fingerprint)) => fingerprint,
            // Vanished between listing and reading: the next event brings
            // the directory's new state.
            Ok(None) => return,
            Err(error) => {
                // Refused unread (a FIFO, a device, too large...): the error
                // itself stands for the content, so it is reported once
                // until it changes.
                let message = error_chain(&error);
                let fingerprint: Fingerprint = Sha256::digest(message.as_bytes()).into();
                let mut set = self.set.lock();
                if !set.is_current(&origin, fingerprint) {
                    let failure = Failure {
                        kind: error.metric_label(),
                        message,
                    };
                    set.fail(&origin, fingerprint, failure);
                    report.failed.push(path);
                }
                return;
            }
        };
        if self.set.lock().is_current(&origin, fingerprint) {
            return;
        }
        let loaded = self.load(&path).await;
        let mut set = self.set.lock();
        match loaded {
            Ok(loaded) => match set.serve(&origin, fingerprint, loaded) {
                Ok(Served::Loaded { name }) => report.loaded.push(name),
                Ok(Served::Reloaded { name, .. }) => report.reloaded.push(name),
                Ok(Served::Renamed { name, previous }) => {
                    report.unloaded.push(previous.name);
                    report.loaded.push(name);
                }
                Err(_) => report.failed.push(path),
            },
            Err(error) => {
                let failure = Failure {
                    kind: error.metric_label(),
                    message: error_chain(&error),
                };
                set.fail(&origin, fingerprint, failure);
                report.failed.push(path);
            }
        }
    }

    async fn load(&self, path: &Path) -> Result<LoadedPlugin, PluginFileError> {
        let runtime = self.runtime.clone();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || loader::load_file(&runtime, &path))
            .await
            .unwrap_or(Err(PluginFileError::Interrupted))
    }

    /// Follows the directory until `shutdown` resolves: re-reads it as soon
    /// as a change is complete (a rename into place, a writer's close, a
    /// removal; see [`dir_events`](super::dir_events)), once it is quiet
    /// after writes that never closed, and every [`RESCAN`].
    pub async fn watch(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<notify::Result<notify::Event>>();
        // Dropping the watcher stops the notifications: held to the end.
        let _watcher = self.watcher(tx);
        let mut rescan = tokio::time::interval(RESCAN);
        rescan.tick().await;
        let quiet = tokio::time::sleep(RESCAN);
        let mut quiet = std::pin::pin!(quiet);
        let mut armed = false;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let sync = tokio::select! {
                _ = &mut shutdown => return,
                _ = rescan.tick() => {
                    self.writing.clear();
                    self.hashed.clear();
                    true
                }
                () = &mut quiet, if armed => {
                    armed = false;
                    if !REPORTS_CLOSES {
                        self.writing.clear();
                    }
                    true
                }
                event = rx.recv() => {
                    let Some(first) = event else {
                        // The watcher is gone; keep the periodic re-read.
                        std::future::pending::<()>().await;
                        continue;
                    };
                    // Everything already queued counts as one change.
                    let mut now = false;
                    let mut next = Some(first);
                    while let Some(event) = next {
                        match self.note(event) {
                            Action::SyncNow => now = true,
                            Action::Writing if !REPORTS_CLOSES => {
                                quiet.as_mut().reset(tokio::time::Instant::now() + QUIET);
                                armed = true;
                            }
                            Action::Writing => {}
                            Action::Ignore | Action::Created => {}
                        }
                        next = rx.try_recv().ok();
                    }
                    now
                }
            };
            if sync {
                self.sync_and_log().await;
            }
        }
    }

    /// Records what one event says about the files being written, and what
    /// it asks of the watcher.
    fn note(&mut self, event: notify::Result<notify::Event>) -> Action {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(error = %error, "plugin directory watch error; re-reading it");
                return Action::SyncNow;
            }
        };
        let paths: Vec<&PathBuf> = event
            .paths
            .iter()
            .filter(|p| is_relevant(&self.dir, p))
            .collect();
        if paths.is_empty() {
            return Action::Ignore;
        }
        let kind = dir_events::classify(&event.kind);
        let mut action = Action::Ignore;
        for path in paths {
            let this = match kind {
                Action::Created => dir_events::created(path),
                other => other,
            };
            match this {
                Action::Writing => {
                    self.writing.insert(path.clone());
                }
                Action::SyncNow => {
                    self.writing.remove(path);
                }
                Action::Ignore | Action::Created => {}
            }
            // One complete path makes the event a sync.
            if action != Action::SyncNow && this != Action::Ignore {
                action = this;
            }
        }
        action
    }

    /// A watcher of the directory sending to `tx`, or `None` (logged) when
    /// the platform cannot watch it.
    fn watcher(
        &self,
        tx: mpsc::UnboundedSender<notify::Result<notify::Event>>,
    ) -> Option<notify::RecommendedWatcher> {
        let watcher = notify::recommended_watcher(move |result| {
            let _ = tx.send(result);
        })
        .and_then(|mut watcher| {
            watcher.watch(&self.dir, RecursiveMode::Recursive)?;
            Ok(watcher)
        });
        watcher
            .inspect_err(|error| {
                tracing::error!(
                    dir = %self.dir.display(),
                    error = %error,
                    every = ?RESCAN,
                    "cannot watch the plugin directory; re-reading it periodically instead"
                );
            })
            .ok()
    }

    async fn sync_and_log(&mut self) {
        match self.sync().await {
            Ok(report) if !report.is_empty() => {
                tracing::info!(
                    loaded = ?report.loaded,
                    reloaded = ?report.reloaded,
                    unloaded = ?report.unloaded,
                    failed = report.failed.len(),
                    "plugin directory changed"
                );
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(dir = %self.dir.display(), error = %error, "cannot read the plugin directory; plugins keep running")
            }
        }
    }
}

/// A fingerprint of a plugin file and its settings file (followed through
/// symlinks inside the directory), `Ok(None)` if the plugin file is gone.
/// Files are read under the loader's rules (regular files within the size
/// limits, never blocking on a FIFO); a refused file is an error.
fn fingerprint(wasm: &Path, max_plugin_bytes: u64) -> Result<Option<Fingerprint>, PluginFileError> {
    let Some((plugin, settings)) = loader::read_plugin(wasm, max_plugin_bytes)? else {
        return Ok(None);
    };
    let mut hash = Sha256::new();
    hash.update(plugin);
    match settings {
        Some(settings) => {
            hash.update([1]);
            hash.update(settings);
        }
        None => hash.update([0]),
    }
    // The operator's grant, read under the same rules as the other files.
    let dir = wasm.parent().unwrap_or(Path::new("."));
    let grant = crate::plugins::grant::grant_path(wasm);
    match loader::read_bounded(dir, &grant, crate::plugins::grant::MAX_GRANT_FILE_BYTES) {
        Ok(Some(grant)) => {
            hash.update([1]);
            hash.update(grant);
        }
        Ok(None) => hash.update([0]),
        // A refused scope file still changes the fingerprint; the loader reports it.
        Err(e) => {
            hash.update([2]);
            hash.update(e.metric_label());
        }
    }
    Ok(Some(hash.finalize().into()))
}

/// Whether a changed path can matter: a visible top-level `NAME.wasm`,
/// `NAME.settings.json` or `NAME.scope.json`, or anything inside Kubernetes' `..` directories
/// (the atomic-writer's `..data` and timestamped directories).
fn is_relevant(dir: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(dir) else {
        // Events about the directory itself (or a canonicalised path).
        return true;
    };
    let mut components = relative.components();
    let Some(first) = components.next().and_then(|c| c.as_os_str().to_str()) else {
        return true;
    };
    if first.starts_with("..") {
        return true;
    }
    components.next().is_none()
        && !first.starts_with('.')
        && (first.ends_with(".wasm")
            || first.ends_with(".settings.json")
            || first.ends_with(".scope.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plugin_files_and_volume_internals_are_relevant() {
        let dir = Path::new("/plugins");
        for relevant in [
            "/plugins/probe.wasm",
            "/plugins/probe.settings.json",
            "/plugins/..data",
            "/plugins/..2026_11_22_08_00_00.123456789/probe.wasm",
            "/plugins",
        ] {
            assert!(is_relevant(dir, Path::new(relevant)), "{relevant}");
        }
        for ignored in [
            "/plugins/.probe.wasm.swp",
            "/plugins/probe.wasm~",
            "/plugins/4913",
            "/plugins/.#probe.wasm",
            "/plugins/#probe.wasm#",
            "/plugins/notes.txt",
            "/plugins/sub/probe.wasm",
        ] {
            assert!(!is_relevant(dir, Path::new(ignored)), "{ignored}");
        }
    }

    #[test]
    fn fingerprints_cover_the_settings_and_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.wasm");
        std::fs::write(&real, b"\0asm").unwrap();
        let link = dir.path().join("p.wasm");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let fingerprint = |p: &Path| fingerprint(p, 1 << 20).unwrap();
        let bare = fingerprint(&link).unwrap();
        assert_eq!(Some(bare), fingerprint(&real));
        std::fs::write(dir.path().join("p.settings.json"), "{}").unwrap();
        let with_settings = fingerprint(&link).unwrap();
        assert_ne!(bare, with_settings);
        std::fs::write(&real, b"\0asm\x0d").unwrap();
        assert_ne!(fingerprint(&link).unwrap(), with_settings);
        assert_eq!(fingerprint(&dir.path().join("missing.wasm")), None);
    }
}
