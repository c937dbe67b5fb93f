//! The cluster loop: loaded plugins, their subscriptions turned into
//! informers, informer events turned into queue items, and workers that run
//! each item through its plugin and hand the intents to the applier.
//!
//! Reconciles are level-triggered: the queue coalesces changes of one object
//! and keeps only the newest state, never runs one key twice at once, and
//! backs failing keys off. A plugin that writes the object it is called for
//! on every call is reported as a reconcile loop and slowed down.

mod loops;
mod result;
mod status;

use loops::LoopDetector;

pub use result::{IntentOutcome, ReconcileResult};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use crate::applier::{Applier, IntentResult};
use crate::cluster::discovery::SharedRegistry;
use crate::cluster::gate::LeaderGate;
use crate::cluster::informer::{InformerRegistry, KindEvent};
use crate::contract::selector::LabelSelector;
use crate::contract::{Event, EventType, ResourceKind};
use crate::plugins::grant::GrantedReader;
use crate::plugins::{LoadedPlugin, Plugins};
use crate::queue::{self, QueueKey, WorkQueue};
use crate::runtime::{Plugin, ReadAccess};

/// How often work for a plugin whose informers are still listing is retried.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// One unit of work: an object of a kind, for one plugin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkKey {
    pub plugin: String,
    pub api_group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl QueueKey for WorkKey {
    type Group = String;
    fn group(&self) -> &String {
        &self.plugin
    }
}

/// The newest state of a key: why it is queued and the object.
#[derive(Clone, Debug)]
pub struct Work {
    pub event_type: EventType,
    pub kind: ResourceKind,
    pub object: Arc<Value>,
}

impl Work {
    /// A requeue the plugin asked for reaches it as a resync of the newest
    /// state it saw; a deleted object stays deleted.
    fn requeued(self) -> Self {
        match self.event_type {
            EventType::Deleted => self,
            EventType::Applied | EventType::Resync => Self {
                event_type: EventType::Resync,
                ..self
            },
        }
    }
}

/// Whether `loaded` wants events of `object` of `kind`: a subscription
/// covers it and the operator's grant lets the plugin see it.
pub fn wants(loaded: &LoadedPlugin, kind: &ResourceKind, object: &Value) -> bool {
    let namespace = object["metadata"]["namespace"].as_str();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if !loaded
        .grant
        .may_see(&kind.group, &kind.kind, namespace, name)
    {
        return false;
    }
    loaded.plugin.info().subscriptions.iter().any(|s| {
        s.matches_kind(kind)
            && s.matches_namespace(namespace)
            && s.label_selector.as_deref().is_none_or(|sel| {
                LabelSelector::parse(sel).is_ok_and(|sel| sel.matches_object(object))
            })
    })
}

fn work_key(plugin: &str, kind: &ResourceKind, object: &Value) -> WorkKey {
    WorkKey {
        plugin: plugin.to_string(),
        api_group: kind.group.clone(),
        kind: kind.kind.clone(),
        namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
        name: object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The running controller.
#[derive(Clone)]
pub struct Controller {
    pub plugins: Plugins,
    pub informers: InformerRegistry,
    pub registry: SharedRegistry,
    pub queue: WorkQueue<WorkKey, Work>,
    applier: Arc<Applier>,
    /// Kinds each plugin subscribes to (for informer refcounts).
    subscribed: Arc<RwLock<HashMap<String, Vec<ResourceKind>>>>,
    loops: LoopDetector,
    /// Only the leader takes work and applies intents.
    leader: LeaderGate,
    /// `--namespace`: every plugin's grant is narrowed to it.
    namespace: Option<String>,
    /// (plugin, group, kind, version) of subscriptions to a version the
    /// cluster does not serve, as last reported.
    unserved: Arc<RwLock<HashSet<[String; 4]>>>,
}

impl Controller {
    pub fn new(
        informers: InformerRegistry,
        registry: SharedRegistry,
        applier: Arc<Applier>,
    ) -> Self {
        Self {
            plugins: Plugins::default(),
            informers,
            registry,
            queue: WorkQueue::with_requeue(queue::Backoff::default(), Work::requeued),
            applier,
            subscribed: Arc::default(),
            loops: LoopDetector::default(),
            leader: LeaderGate::always(),
            namespace: None,
            unserved: Arc::default(),
        }
    }

    /// Confines every plugin to `namespace` (`--namespace`): writes, reads
    /// and calls outside it are refused or not made ([`Grant::within`]).
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }

    /// Makes workers take work and apply intents only while `gate` is open
    /// (leader election); without it, they always do.
    pub fn with_leader_gate(mut self, gate: LeaderGate) -> Self {
        self.leader = gate;
        self
    }

    /// The kinds the cluster serves that a plugin's subscriptions cover.
    fn kinds_for(&self, plugin: &Plugin) -> Vec<ResourceKind> {
        let registry = self.registry.load();
        let mut kinds: Vec<ResourceKind> = Vec::new();
        for subscription in &plugin.info().subscriptions {
            for info in registry.matching(subscription) {
                if !kinds.contains(&info.resource) {
                    kinds.push(info.resource.clone());
                }
            }
        }
        kinds
    }

    /// Loads or replaces a plugin: informers follow its subscriptions, and
    /// every cached object it subscribes to is queued for a resync. With
    /// `--namespace` the plugin's grant is narrowed to that namespace.
    pub fn install(&self, mut loaded: LoadedPlugin) {
        let name = loaded.plugin.info().name.clone();
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
        self.plugins.insert(loaded);
        tracing::info!(
            plugin = %name,
            version = %installed.plugin.info().version,
            kinds = kinds.len(),
            namespaces = ?installed.grant.namespace_list(),
            "plugin installed"
        );
        for kind in &kinds {
            self.resync(&installed, kind);
        }
        self.report_unserved();
    }

    /// Unloads a plugin: drops its queued work and releases its informers.
    pub fn uninstall(&self, name: &str) {
        self.plugins.remove(name);
        self.queue.remove_group(&name.to_string());
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

    /// Queues every cached object of `kind` the plugin wants, as a resync.
    fn resync(&self, loaded: &LoadedPlugin, kind: &ResourceKind) {
        for object in self.informers.objects(kind) {
            if wants(loaded, kind, &object) {
                self.queue.add(
                    work_key(&loaded.plugin.info().name, kind, &object),
                    Work {
                        event_type: EventType::Resync,
                        kind: kind.clone(),
                        object,
                    },
                );
            }
        }
    }

    /// A kind appeared in the cluster, or one of its versions did: plugins
    /// whose subscriptions cover it start receiving its objects.
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
            let name = loaded.plugin.info().name.clone();
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

    /// Logs (WARN when it starts, INFO when it ends) and counts in
    /// `kubewasm_subscription_unserved` each subscription that names a
    /// version of a kind the cluster serves only in other versions.
    fn report_unserved(&self) {
        let registry = self.registry.load();
        let mut now = HashSet::new();
        for loaded in self.plugins.all() {
            let info = loaded.plugin.info();
            for s in &info.subscriptions {
                let concrete = |p: &str| p != crate::contract::WILDCARD;
                if !(concrete(&s.group) && concrete(&s.kind) && concrete(&s.version)) {
                    continue;
                }
                if let Some(kind) = registry.get(&s.group, &s.kind)
                    && !kind.serves(&s.version)
                {
                    let entry = [
                        info.name.clone(),
                        s.group.clone(),
                        s.kind.clone(),
                        s.version.clone(),
                    ];
                    let reported = self
                        .unserved
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(&entry);
                    now.insert(entry);
                    if !reported {
                        tracing::warn!(
                            plugin = %info.name, group = %s.group, kind = %s.kind, version = %s.version,
                            served = ?kind.versions,
                            "the plugin subscribes to a version of this kind that the cluster does not serve; it receives none of its objects"
                        );
                    }
                }
            }
        }
        let gauge = &crate::ops::metrics::get().subscription_unserved;
        let mut unserved = self.unserved.write().unwrap_or_else(|e| e.into_inner());
        for gone in unserved.difference(&now) {
            tracing::info!(plugin = %gone[0], group = %gone[1], kind = %gone[2], version = %gone[3], "the subscribed version is served again, or the subscription is gone");
            let _ = gauge.remove_label_values(&[&gone[0], &gone[1], &gone[2], &gone[3]]);
        }
        for new in &now {
            gauge
                .with_label_values(&[&new[0], &new[1], &new[2], &new[3]])
                .set(1);
        }
        *unserved = now;
    }

    /// Routes informer events to the plugins that want them.
    pub async fn dispatch(self, mut events: mpsc::UnboundedReceiver<KindEvent>) {
        while let Some(event) = events.recv().await {
            for loaded in self.plugins.all() {
                if wants(&loaded, &event.kind, &event.object) {
                    self.queue.add(
                        work_key(&loaded.plugin.info().name, &event.kind, &event.object),
                        Work {
                            event_type: event.event_type,
                            kind: event.kind.clone(),
                            object: event.object.clone(),
                        },
                    );
                }
            }
        }
    }

    /// One worker: takes items until the queue shuts down.
    pub async fn work(self) {
        let mut leader = self.leader.clone();
        loop {
            // A standby keeps its queue (and caches) warm but takes no work.
            tokio::select! {
                _ = leader.wait() => {}
                _ = self.queue.closed() => return,
            }
            let Some(item) = self.queue.next().await else {
                return;
            };
            let waited = item.waited;
            let key = item.key().clone();
            if self.caches_syncing(&key.plugin) {
                // The first events of a kind arrive while the plugin's other
                // kinds may still be listing; it runs once it can read them.
                tracing::trace!(?key, "postponed: the plugin's informers are still listing");
                item.done(queue::Outcome::Postponed { after: SYNC_POLL });
                continue;
            }
            let (work, lease) = item.into_parts();
            let span = tracing::info_span!(
                "reconcile",
                plugin = %key.plugin,
                kind = %key.kind,
                object = %format!("{}/{}", key.namespace.as_deref().unwrap_or(""), key.name),
                reason = ?work.event_type,
                version = tracing::field::Empty,
            );
            span.in_scope(|| {
                tracing::debug!(waited_ms = waited.as_millis() as u64, "reconcile started")
            });
            let metrics = crate::ops::metrics::get();
            metrics
                .queue_latency
                .with_label_values(&[key.plugin.as_str()])
                .observe(waited.as_secs_f64());
            let started = Instant::now();
            let (outcome, result) =
                tracing::Instrument::instrument(self.reconcile(&key, work), span.clone()).await;
            metrics
                .reconcile_duration
                .with_label_values(&[key.plugin.as_str()])
                .observe(started.elapsed().as_secs_f64());
            metrics
                .reconciles
                .with_label_values(&[key.plugin.as_str(), result.metric_label()])
                .inc();
            span.in_scope(|| {
                tracing::debug!(
                    ?outcome,
                    result = result.metric_label(),
                    "reconcile finished"
                )
            });
            lease.done(outcome);
        }
    }

    /// One reconcile: the plugin call, then its intents. Returns what the
    /// queue should do next and the result for the metrics.
    async fn reconcile(&self, key: &WorkKey, work: Work) -> (queue::Outcome, ReconcileResult) {
        let Some(loaded) = self.plugins.get(&key.plugin) else {
            let done = queue::Outcome::Success {
                requeue_after: None,
            };
            return (done, ReconcileResult::Unloaded);
        };
        let gone = self
            .registry
            .load()
            .get(&key.api_group, &key.kind)
            .is_none();
        if gone && work.event_type != EventType::Deleted {
            // The kind was removed (a deleted CRD): nothing left to reconcile
            // and nowhere to write; the key is not retried. A delete still
            // reaches the plugin with the object's last state.
            tracing::debug!("kind no longer served; dropped");
            let done = queue::Outcome::Success {
                requeue_after: None,
            };
            return (done, ReconcileResult::KindRemoved);
        }
        // Which build of the plugin runs this call: the first 12 hex digits
        // of its content hash.
        let digest = loaded.plugin.digest();
        tracing::Span::current().record("version", &digest[..digest.len().min(12)]);
        let event = Event {
            event_type: work.event_type,
            kind: work.kind,
            object: (*work.object).clone(),
        };
        let access = ReadAccess {
            reader: GrantedReader::wrap(
                Arc::new(self.informers.clone()),
                &loaded.grant,
                &key.plugin,
            ),
            settings: loaded.settings.clone(),
        };
        let plugin = loaded.plugin.clone();
        let called = tokio::task::spawn_blocking(move || plugin.reconcile(&event, access)).await;
        let outcome = match called {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                tracing::warn!(error = %crate::ops::error_chain(&error), kind = error.metric_label(), "reconcile failed");
                return (
                    queue::Outcome::Failure,
                    ReconcileResult::CallFailed(error.metric_label()),
                );
            }
            Err(join) => {
                tracing::error!(error = %join, "reconcile task failed");
                return (queue::Outcome::Failure, ReconcileResult::TaskFailed);
            }
        };
        if !self.leader.is_leader() {
            tracing::info!("lost the leader lease during the call; intents not applied");
            return (queue::Outcome::Failure, ReconcileResult::NotLeader);
        }
        let requeue_after = outcome.requeue_after_ms.map(Duration::from_millis);
        let plugin_name = key.plugin.as_str();
        let intents = &crate::ops::metrics::get().intents;
        match self
            .applier
            .apply_within(loaded.plugin.info(), &loaded.grant, &outcome)
            .await
        {
            Ok(report) => {
                for intent in &report.intents {
                    let result = IntentOutcome::of(intent.result, report.dry_run);
                    intents
                        .with_label_values(&[plugin_name, intent.intent, result.metric_label()])
                        .inc();
                }
                let wrote = report
                    .intents
                    .iter()
                    .any(|i| i.result == IntentResult::Applied);
                if self.loops.observe(key, wrote, work.event_type) {
                    tracing::warn!(
                        "plugin changes this object on every call (reconcile loop); backing off"
                    );
                    return (queue::Outcome::Failure, ReconcileResult::Loop);
                }
                tracing::debug!(intents = report.intents.len(), "reconcile done");
                (
                    queue::Outcome::Success { requeue_after },
                    ReconcileResult::Ok,
                )
            }
            Err(error) => {
                let refused = error.is_refusal();
                let result = match refused {
                    true => IntentOutcome::Refused,
                    false => IntentOutcome::Failed,
                };
                intents
                    .with_label_values(&[plugin_name, error.site().intent, result.metric_label()])
                    .inc();
                if error.is_conflict() {
                    tracing::debug!(error = %error, "conflict; reconciling again with the newest state");
                    return (queue::Outcome::Failure, ReconcileResult::Conflict);
                }
                tracing::warn!(error = %crate::ops::error_chain(&error), kind = error.metric_label(), "intents not applied");
                let result = match refused {
                    true => ReconcileResult::Refused,
                    false => ReconcileResult::ApplyFailed,
                };
                (queue::Outcome::Failure, result)
            }
        }
    }

    /// Whether an informer of a kind the plugin subscribes to is still
    /// doing its first list.
    fn caches_syncing(&self, plugin: &str) -> bool {
        let subscribed = self.subscribed.read().unwrap_or_else(|e| e.into_inner());
        subscribed
            .get(plugin)
            .is_some_and(|kinds| self.informers.syncing(kinds))
    }

    /// Names of the plugins subscribed to a kind (for status).
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

impl crate::applier::ResolveKind for SharedRegistry {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<ResourceKind> {
        self.load()
            .get_api_version(api_version, kind)
            .map(|info| info.resource)
    }
}
