//! The cluster loop: loaded plugins, their subscriptions turned into
//! informers, informer events turned into queue items, and workers that run
//! each item through its plugin and hand the intents to the applier.
//!
//! Reconciles are level-triggered: the queue coalesces changes of one object
//! and keeps only the newest state, never runs one key twice at once, and
//! backs failing keys off. A plugin that writes on every call for an
//! object, each write waking it again (through the object itself, or an
//! owned child or mapped source it rewrites), is reported as a reconcile
//! loop and slowed down.
//!
//! Besides the kinds it subscribes to, a plugin's informers watch the kinds
//! it owns and the sources of its mapped watches (refcounted alike, and
//! listed before its first reconcile, which reads children from the
//! cache). Their events are not delivered to it: [`mapping`] turns a
//! child's change into a resync of its controller owner, and a watched
//! object's change into resyncs of the objects the watch's rule picks from
//! the cache. An owned or watched kind the cluster does not serve is
//! reported like an unserved subscription.

mod appliers;
mod dispatch;
mod finalizing;
mod loops;
mod mapping;
mod result;
mod status;
mod tally;
mod unserved;
mod work;
mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::applier::Applier;
use crate::cluster::discovery::SharedRegistry;
use crate::cluster::gate::LeaderGate;
use crate::cluster::informer::InformerRegistry;
use crate::cluster::shard::ShardGate;
use crate::contract::ResourceKind;
use crate::ops::metrics::Metrics;
use crate::plugins::{LoadedPlugin, Plugins};
use crate::queue::{self, WorkQueue};
use crate::runtime::Plugin;
use crate::shadow::Shadows;

use appliers::Appliers;
use loops::LoopDetector;

pub use appliers::{ImpersonatingApplier, NoApplier};
pub use tally::{Tallies, Tally};

pub use dispatch::wants;
pub use finalizing::event_for;
pub use mapping::{Lookup, Router, Target, Via, field_names};
pub use result::{IntentOutcome, ReconcileResult};
pub use work::{Work, WorkKey};

/// The running controller.
#[derive(Clone)]
pub struct Controller {
    pub plugins: Plugins,
    pub informers: InformerRegistry,
    pub registry: SharedRegistry,
    pub queue: WorkQueue<WorkKey, Work>,
    /// The host's applier, its dry-run twin (`dryRun` of a plugin
    /// resource) and those acting as plugins' ServiceAccounts.
    appliers: Appliers,
    /// Kinds each plugin's informers watch (for refcounts): those its
    /// subscriptions cover, and the kinds it owns or watches.
    subscribed: Arc<RwLock<HashMap<String, Vec<ResourceKind>>>>,
    loops: LoopDetector,
    /// Only the leader (with sharding: a member whose Lease is fresh)
    /// takes work and applies intents.
    leader: LeaderGate,
    /// With sharding, the keys this replica reconciles now.
    shards: ShardGate,
    /// `--namespace`: every plugin's grant is narrowed to it.
    namespace: Option<String>,
    /// Subscriptions to a version the cluster does not serve, as last
    /// reported.
    unserved: Arc<RwLock<HashSet<unserved::Unserved>>>,
    /// Where reconciles, intents and unserved subscriptions are counted.
    metrics: Arc<Metrics>,
    /// What each plugin did since its version was installed.
    tallies: Tallies,
    /// Plugins' shadows: new versions run beside them, never applied.
    shadows: Shadows,
}

impl Controller {
    pub fn new(
        informers: InformerRegistry,
        registry: SharedRegistry,
        applier: Arc<Applier>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let shadows = Shadows::new(
            Arc::new(informers.clone()),
            crate::shadow::refused_by(applier.clone()),
            metrics.clone(),
        );
        Self {
            plugins: Plugins::default(),
            informers,
            registry,
            queue: WorkQueue::with_requeue(queue::Backoff::default(), Work::requeued),
            appliers: Appliers::new(applier),
            subscribed: Arc::default(),
            loops: LoopDetector::default(),
            leader: LeaderGate::always(),
            shards: ShardGate::unsharded(),
            namespace: None,
            unserved: Arc::default(),
            metrics,
            tallies: Tallies::default(),
            shadows,
        }
    }

    /// The plugins' shadows (loaded by the plugin directory, reported by
    /// the admin server).
    pub fn shadows(&self) -> Shadows {
        self.shadows.clone()
    }

    /// Confines every plugin to `namespace` (`--namespace`): writes, reads
    /// and calls outside it are refused or not made ([`Grant::within`]).
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.shadows.within(namespace.clone());
        self.namespace = namespace;
        self
    }

    /// The applier of plugins loaded with `dry_run`; without one, they
    /// write like the others.
    pub fn with_dry_run_applier(mut self, applier: Arc<Applier>) -> Self {
        self.appliers.dry_run = applier;
        self
    }

    /// How appliers acting as a plugin's ServiceAccount are built; without
    /// it, a plugin that names one cannot write.
    pub fn with_impersonation(mut self, make: ImpersonatingApplier) -> Self {
        self.appliers.impersonating = Some(make);
        self
    }

    /// What each plugin did since its current version was installed (for
    /// plugin resources' status).
    pub fn tallies(&self) -> Tallies {
        self.tallies.clone()
    }

    /// Makes workers reconcile only the keys `gate` gives this replica
    /// (sharding); without it, every key.
    pub fn with_shard_gate(mut self, gate: ShardGate) -> Self {
        self.shards = gate;
        self
    }

    /// Makes workers take work and apply intents only while `gate` is open
    /// (leader election); without it, they always do.
    pub fn with_leader_gate(mut self, gate: LeaderGate) -> Self {
        self.leader = gate;
        self
    }

    /// The kinds the cluster serves that a plugin's subscriptions cover,
    /// then the kinds it owns and the sources of its mapped watches (each
    /// at the version it names, else the one the host uses for the kind;
    /// those the cluster does not serve are reported by
    /// [`report_unserved`](Self::report_unserved)).
    fn kinds_for(&self, plugin: &Plugin) -> Vec<ResourceKind> {
        kinds_read(&self.registry, plugin.info())
    }

    /// Loads or replaces a plugin: informers follow its subscriptions, owned
    /// kinds and mapped watches, and every cached object it subscribes to is
    /// queued for a resync. With
    /// `--namespace` the plugin's grant is narrowed to that namespace.
    pub fn install(&self, mut loaded: LoadedPlugin) {
        let name = loaded.id.clone();
        if self.namespace.is_some() {
            let narrowed = (*loaded.grant).clone().within(self.namespace.as_deref());
            loaded.grant = Arc::new(narrowed);
        }
        if loaded.grant.namespace_list().is_some_and(|l| l.is_empty()) {
            tracing::warn!(
                plugin = %name,
                namespace = self.namespace.as_deref().unwrap_or_default(),
                "the plugin's scope file grants no namespace the host watches; it will not be called for namespaced objects"
            );
        }
        let kinds = self.kinds_for(&loaded.plugin);
        for kind in &kinds {
            self.informers.subscribe(kind);
        }
        let previous = self
            .subscribed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), kinds.clone());
        for kind in previous.into_iter().flatten() {
            self.informers.unsubscribe(&kind);
        }
        let installed = loaded.clone();
        self.tallies.start(&name);
        if let Some(previous) = self.plugins.insert(loaded) {
            finalizing::warn_if_orphaned(previous.plugin.info(), Some(installed.plugin.info()));
        }
        tracing::info!(
            plugin = %name,
            version = %installed.plugin.info().version,
            kinds = kinds.len(),
            namespaces = ?installed.grant.namespace_list(),
            "plugin installed"
        );
        // Owned and watched kinds map to subscribed objects, which this
        // covers.
        let info = installed.plugin.info();
        for kind in kinds
            .iter()
            .filter(|k| info.subscriptions.iter().any(|s| s.matches_kind(k)))
        {
            self.resync(&installed, kind);
        }
        self.report_unserved();
    }

    /// Unloads a plugin: drops its queued work and releases its informers.
    pub fn uninstall(&self, name: &str) {
        if let Some(previous) = self.plugins.remove(name) {
            finalizing::warn_if_orphaned(previous.plugin.info(), None);
        }
        self.queue.remove_group(&name.to_string());
        self.tallies.remove(name);
        let kinds = self
            .subscribed
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        for kind in kinds.into_iter().flatten() {
            self.informers.unsubscribe(&kind);
        }
        tracing::info!(plugin = %name, "plugin removed");
    }

    /// A kind appeared in the cluster, or one of its versions did: plugins
    /// whose subscriptions cover it start receiving its objects, and those
    /// that own or watch it start being woken by them.
    pub fn kind_added(&self, _kind: &ResourceKind) {
        self.refresh_subscriptions();
    }

    /// A kind disappeared, or the version the host used for it: informers
    /// follow the subscriptions again (a plugin subscribed to a version that
    /// is still served keeps its informer; nothing else restarts). If the
    /// kind is gone altogether, its informers stop whatever their
    /// subscribers, and its queued keys are dropped when they come up.
    pub fn kind_removed(&self, kind: &ResourceKind) {
        self.refresh_subscriptions();
        if self.registry.load().get(&kind.group, &kind.kind).is_none() {
            self.informers.remove_kind(kind);
        }
    }

    /// Brings every plugin's informers in line with the current registry:
    /// subscribes kinds (at versions) its subscriptions now cover, releases
    /// those they no longer do, and reports subscriptions to versions that
    /// are not served.
    fn refresh_subscriptions(&self) {
        for loaded in self.plugins.all() {
            let name = loaded.id.clone();
            let kinds = self.kinds_for(&loaded.plugin);
            let mut subscribed = self.subscribed.write().unwrap_or_else(|e| e.into_inner());
            let old = subscribed.insert(name, kinds.clone()).unwrap_or_default();
            drop(subscribed);
            for kind in kinds.iter().filter(|k| !old.contains(k)) {
                self.informers.subscribe(kind);
            }
            for kind in old.iter().filter(|k| !kinds.contains(k)) {
                self.informers.unsubscribe(kind);
            }
        }
        self.report_unserved();
    }

    /// Names of the plugins whose informers include a kind (subscribed,
    /// owned or watched).
    pub fn subscribers(&self, kind: &ResourceKind) -> HashSet<String> {
        self.subscribed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, kinds)| kinds.iter().any(|k| k == kind))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// The kinds the cluster serves that `info`'s subscriptions cover, then the
/// kinds it owns and the sources of its mapped watches: what its informers
/// watch and what it reads.
pub fn kinds_read(
    registry: &SharedRegistry,
    info: &crate::contract::PluginInfo,
) -> Vec<ResourceKind> {
    let registry = registry.load();
    let mut kinds: Vec<ResourceKind> = Vec::new();
    let subscribed = info.subscriptions.iter().flat_map(|s| registry.matching(s));
    let watched = info.watched().filter_map(|k| registry.resolve(k));
    for kind in subscribed.chain(watched) {
        if !kinds.contains(&kind.resource) {
            kinds.push(kind.resource);
        }
    }
    kinds
}

impl crate::applier::ResolveKind for SharedRegistry {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<ResourceKind> {
        self.load()
            .get_api_version(api_version, kind)
            .map(|info| info.resource)
    }
}
