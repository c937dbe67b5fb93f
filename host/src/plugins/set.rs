//! The plugins a host serves, whatever they come from: files in the plugin
//! directory ([`crate::plugins::reload`]) and plugin resources
//! ([`crate::resources::source`]) both hand their loads to one
//! [`PluginSet`], which decides what serves.
//!
//! The set keeps, per [`Origin`], the fingerprint of what serves and of the
//! newest content that failed. Only [`PluginSet::serve`] installs into the
//! controller, so a failure never replaces a working version, whatever the
//! source. Plugin names (what `describe` returns) are unique across all
//! origins: a second origin describing a name that already serves is
//! refused as `duplicate_name`, naming both.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::ops::metrics::Metrics;
use crate::plugins::LoadedPlugin;

/// What a plugin's content (with its settings and grant) was when it was
/// last looked at.
pub type Fingerprint = [u8; 32];

/// Where a plugin comes from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    /// A `NAME.wasm` in the plugin directory.
    File(PathBuf),
    /// A `ClusterPlugin` resource, by name.
    ClusterPlugin(String),
    /// A namespaced `Plugin` resource.
    Plugin { namespace: String, name: String },
}

impl Origin {
    /// The `file` label of `kubewasm_plugin_load_failing`: a file's name in
    /// the directory, `clusterplugin/NAME` for a resource.
    pub fn label(&self) -> String {
        match self {
            Origin::File(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Origin::ClusterPlugin(name) => format!("clusterplugin/{name}"),
            Origin::Plugin { namespace, name } => format!("plugin/{namespace}/{name}"),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::ClusterPlugin(name) => write!(f, "ClusterPlugin {name}"),
            Origin::Plugin { namespace, name } => write!(f, "Plugin {namespace}/{name}"),
        }
    }
}

/// A plugin whose current content failed to load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Bounded reason, for metrics (`compile`, `settings`, …).
    pub kind: &'static str,
    /// The whole error, for people.
    pub message: String,
}

/// Where the plugins the set serves go: the controller implements it, so
/// the sources never need to know what runs them.
pub trait PluginSink: Send + Sync + 'static {
    /// Serves `loaded`, replacing the plugin of the same name.
    fn install(&self, loaded: LoadedPlugin);
    /// Stops serving the plugin with id `id` ([`LoadedPlugin::id`]).
    fn uninstall(&self, id: &str);
}

/// What serves for an origin, as `kubewasm_plugin_info` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingInfo {
    /// What the host keys it by ([`LoadedPlugin::id`]); the `plugin` label.
    pub id: String,
    /// The name the plugin describes itself with.
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// The contract version the component targets.
    pub contract: &'static str,
}

impl ServingInfo {
    fn of(loaded: &LoadedPlugin) -> Self {
        let info = loaded.plugin.info();
        Self {
            id: loaded.id.clone(),
            name: info.name.clone(),
            version: info.version.clone(),
            digest: loaded.plugin.digest().to_string(),
            contract: loaded.plugin.contract_version(),
        }
    }

    fn values(&self) -> [&str; 4] {
        [&self.id, &self.version, &self.digest, self.contract]
    }
}

#[derive(Debug)]
struct Serving {
    fingerprint: Fingerprint,
    info: ServingInfo,
}

/// What [`PluginSet::serve`] changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// The origin served nothing before.
    Loaded { name: String },
    /// A new version of the same plugin.
    Reloaded { name: String, previous: ServingInfo },
    /// The origin now describes another plugin name; the old one is unloaded.
    Renamed { name: String, previous: ServingInfo },
}

/// The plugins served, by origin, and the newest failure of each.
pub struct PluginSet {
    controller: Arc<dyn PluginSink>,
    serving: BTreeMap<Origin, Serving>,
    failed: BTreeMap<Origin, (Fingerprint, Failure)>,
    metrics: Arc<Metrics>,
}

/// A set the sources share; locked only for bookkeeping, never across a
/// load or an await.
#[derive(Clone)]
pub struct SharedSet(Arc<Mutex<PluginSet>>);

impl SharedSet {
    pub fn new(controller: Arc<dyn PluginSink>, metrics: Arc<Metrics>) -> Self {
        Self(Arc::new(Mutex::new(PluginSet {
            controller,
            serving: BTreeMap::new(),
            failed: BTreeMap::new(),
            metrics,
        })))
    }

    pub fn lock(&self) -> MutexGuard<'_, PluginSet> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PluginSet {
    /// What serves for `origin`.
    pub fn serving(&self, origin: &Origin) -> Option<&ServingInfo> {
        self.serving.get(origin).map(|s| &s.info)
    }

    /// The newest failure of `origin`, if its current content failed.
    pub fn failure(&self, origin: &Origin) -> Option<&Failure> {
        self.failed.get(origin).map(|(_, f)| f)
    }

    /// Every failing origin, with the reason.
    pub fn failures(&self) -> impl Iterator<Item = (&Origin, &Failure)> {
        self.failed.iter().map(|(o, (_, f))| (o, f))
    }

    /// Origins that serve or failed, matching `keep_if`.
    pub fn origins(&self, keep_if: impl Fn(&Origin) -> bool) -> Vec<Origin> {
        let mut origins: Vec<Origin> = self
            .serving
            .keys()
            .chain(self.failed.keys())
            .filter(|o| keep_if(o))
            .cloned()
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Whether `fingerprint` needs no load for `origin`: it is what serves
    /// (a failure of newer content is then forgotten: the content went back
    /// to what serves), or the content whose failure is already reported.
    pub fn is_current(&mut self, origin: &Origin, fingerprint: Fingerprint) -> bool {
        if self.serving.get(origin).map(|s| s.fingerprint) == Some(fingerprint) {
            if self.failed.remove(origin).is_some() {
                self.metrics
                    .plugin_load_failing
                    .with_label_values(&[&origin.label()])
                    .set(0);
            }
            return true;
        }
        self.failed.get(origin).map(|(f, _)| *f) == Some(fingerprint)
    }

    /// Serves a freshly loaded plugin for `origin`, unless another origin
    /// already serves a plugin of the same name (then it fails as
    /// `duplicate_name`, and the failure is returned).
    pub fn serve(
        &mut self,
        origin: &Origin,
        fingerprint: Fingerprint,
        loaded: LoadedPlugin,
    ) -> Result<Served, Failure> {
        let info = ServingInfo::of(&loaded);
        let name = info.name.clone();
        if let Some(other) = self
            .serving
            .iter()
            .find(|(o, s)| *o != origin && s.info.id == info.id)
            .map(|(o, _)| o.clone())
        {
            let failure = Failure {
                kind: "duplicate_name",
                message: format!(
                    "{origin}: plugin {:?} is already loaded from {other}",
                    info.id
                ),
            };
            self.fail(origin, fingerprint, failure.clone());
            return Err(failure);
        }
        let metrics = &self.metrics;
        metrics.plugin_loads.with_label_values(&["ok"]).inc();
        metrics
            .plugin_load_failing
            .with_label_values(&[&origin.label()])
            .set(0);
        metrics.plugin_info.with_label_values(&info.values()).set(1);
        let previous = self.serving.insert(
            origin.clone(),
            Serving {
                fingerprint,
                info: info.clone(),
            },
        );
        if let Some(old) = &previous
            && old.info != info
        {
            let _ = metrics.plugin_info.remove_label_values(&old.info.values());
        }
        self.failed.remove(origin);
        let served = match previous {
            Some(old) if old.info.id != info.id => {
                self.controller.uninstall(&old.info.id);
                Served::Renamed {
                    name,
                    previous: old.info,
                }
            }
            Some(old) => Served::Reloaded {
                name,
                previous: old.info,
            },
            None => Served::Loaded { name },
        };
        self.controller.install(loaded);
        Ok(served)
    }

    /// Records that `origin`'s content `fingerprint` failed; what served
    /// before keeps serving.
    pub fn fail(&mut self, origin: &Origin, fingerprint: Fingerprint, failure: Failure) {
        let serving = self.serving.get(origin).map(|s| s.info.name.as_str());
        match origin {
            Origin::File(path) => tracing::error!(
                path = %path.display(),
                error = %failure.message,
                still_serving = %serving.unwrap_or("nothing"),
                "plugin file not loaded; the previous version (if any) keeps serving"
            ),
            Origin::ClusterPlugin(_) | Origin::Plugin { .. } => tracing::error!(
                resource = %origin,
                error = %failure.message,
                still_serving = %serving.unwrap_or("nothing"),
                "plugin resource not loaded; the previous version (if any) keeps serving"
            ),
        }
        let metrics = &self.metrics;
        metrics
            .plugin_loads
            .with_label_values(&[failure.kind])
            .inc();
        metrics
            .plugin_load_failing
            .with_label_values(&[&origin.label()])
            .set(1);
        self.failed.insert(origin.clone(), (fingerprint, failure));
    }

    /// Stops serving `origin` and forgets its failure; returns the name of
    /// the plugin unloaded, if one served.
    pub fn remove(&mut self, origin: &Origin) -> Option<String> {
        if self.failed.remove(origin).is_some() {
            let _ = self
                .metrics
                .plugin_load_failing
                .remove_label_values(&[&origin.label()]);
        }
        let serving = self.serving.remove(origin)?;
        self.controller.uninstall(&serving.info.id);
        let _ = self
            .metrics
            .plugin_info
            .remove_label_values(&serving.info.values());
        tracing::info!(plugin_source = %origin, plugin = %serving.info.name, "plugin unloaded");
        Some(serving.info.name)
    }
}
