//! The set of loaded plugins the workers call, by id.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::cluster::client::ServiceAccount;
use crate::plugins::grant::Grant;
use crate::runtime::Plugin;

/// A plugin as the controller runs it: compiled code plus its settings.
#[derive(Clone, Debug)]
pub struct LoadedPlugin {
    /// What the host keys the plugin by (its queue, metrics, field manager
    /// `kubewasm/<id>`): the name its `describe` returns, or
    /// `<namespace>/<name>` for a namespaced `Plugin`, so teams may run
    /// plugins of the same name side by side.
    pub id: String,
    pub plugin: Plugin,
    /// Settings JSON, already accepted by the plugin's `validate-settings`.
    pub settings: Arc<str>,
    /// Where the operator lets the plugin act ([`crate::plugins::grant`]); shared
    /// with every call's cache reader, never copied per call.
    pub grant: Arc<Grant>,
    /// Send this plugin's writes with `dryRun=All` (a plugin resource's
    /// `dryRun`); the host's `--dry-run` applies to all plugins anyway.
    pub dry_run: bool,
    /// Whom the plugin's writes are sent as: `None` the host itself (the
    /// plugin directory, a ClusterPlugin), else a ServiceAccount the API
    /// server authorizes them against (a namespaced `Plugin`).
    pub identity: Option<ServiceAccount>,
}

/// Loaded plugins by id; replaced as a whole entry on reload.
#[derive(Clone, Default)]
pub struct Plugins {
    inner: Arc<RwLock<BTreeMap<String, LoadedPlugin>>>,
}

impl Plugins {
    pub fn get(&self, name: &str) -> Option<LoadedPlugin> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<LoadedPlugin> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Inserts or replaces a plugin; returns the previous version.
    pub fn insert(&self, loaded: LoadedPlugin) -> Option<LoadedPlugin> {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(loaded.id.clone(), loaded)
    }

    pub fn remove(&self, name: &str) -> Option<LoadedPlugin> {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }
}
