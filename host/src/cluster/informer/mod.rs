//! The informer registry: one kube-runtime watcher per kind, shared by every
//! plugin that subscribes to it, started with the first subscriber and
//! stopped with the last.
//!
//! Each informer keeps a cache of its kind's objects, each a
//! [`CachedObject`]: the compact JSON text plugins receive (with
//! `metadata.managedFields` stripped, which is often half an object's size)
//! and a small header of what the host reads. It answers the plugins'
//! `get-object`/`list-objects` calls, and forwards
//! every change as a [`KindEvent`]. kube-runtime's watcher handles bookmarks,
//! re-lists after `410 Gone` and backs off on errors; on a re-list the
//! informer diffs the new set against its cache, so objects deleted while the
//! watch was down still produce a `deleted` event with their last known
//! state. A kind the host may not list (403) is reported and skipped.
//!
//! Informers are keyed by group, kind *and version*: a plugin that subscribes
//! to `v1alpha1` of a kind keeps its informer at `v1alpha1` while another
//! plugin (or a wildcard subscription) follows the preferred version.
//! Reads by group and kind are answered by any synced informer of the kind.
//!
//! After a watch error the informer waits as [`backoff`] decides: not at all
//! after `410 Gone`, at most a second while the server is unreachable. Each
//! error is counted in `kubewasm_watch_errors_total{group,kind,reason}`; an
//! outage is logged at WARN when it starts and every 30 s while it lasts,
//! and at INFO when the watch recovers.

mod backoff;
mod cache;
mod watch;
mod wire;

pub use backoff::WatchFailure;
pub use wire::WireObject;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, GroupVersionKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::cache::{ObjectReader, ReadError};
use crate::cluster::object::CachedObject;
use crate::contract::GroupKind;

use crate::cluster::shard::{ShardGate, key_hash};
use crate::contract::selector::LabelSelector;
use crate::contract::{EventType, ResourceKind};
use crate::ops::metrics::Metrics;
use cache::Cache;

/// One change of one object, as the informers see it.
#[derive(Clone, Debug)]
pub struct KindEvent {
    pub kind: ResourceKind,
    pub event_type: EventType,
    pub object: Arc<CachedObject>,
}

/// How much one informer caches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheSize {
    pub objects: usize,
    /// [`CachedObject::heap_bytes`] summed.
    pub bytes: usize,
}

struct Informer {
    kind: ResourceKind,
    cache: Arc<RwLock<Cache>>,
    started: Instant,
    task: JoinHandle<()>,
    subscribers: usize,
}

impl Drop for Informer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a new informer's first list is waited for before plugins run
/// without it (and see `not synced yet` from their reads of that kind).
const SYNC_GRACE: Duration = Duration::from_secs(30);

/// An informer's identity: group, kind and version (sorted in that order,
/// so the versions of one kind are neighbours).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InformerKey {
    group: String,
    kind: String,
    version: String,
}

/// The informers the host runs. Cheap to clone; clones share the informers.
#[derive(Clone)]
pub struct InformerRegistry {
    client: kube::Client,
    namespace: Option<String>,
    events: mpsc::UnboundedSender<KindEvent>,
    informers: Arc<RwLock<BTreeMap<InformerKey, Informer>>>,
    metrics: Arc<Metrics>,
    /// With sharding, which namespaces the informers cache.
    shard: ShardGate,
}

fn informer_key(kind: &ResourceKind) -> InformerKey {
    InformerKey {
        group: kind.group.clone(),
        kind: kind.kind.clone(),
        version: kind.version.clone(),
    }
}

/// The informers of every version of `kind`.
fn versions_of<'a>(
    informers: &'a BTreeMap<InformerKey, Informer>,
    kind: &'a GroupKind,
) -> impl Iterator<Item = &'a Informer> {
    let first = InformerKey {
        group: kind.group.clone(),
        kind: kind.kind.clone(),
        version: String::new(),
    };
    informers
        .range(first..)
        .take_while(move |(k, _)| k.group == kind.group && k.kind == kind.kind)
        .map(|(_, informer)| informer)
}

/// The cached objects in `namespace` (every object with `None`): one
/// namespace is a range of the map, which is ordered by namespace first.
fn in_namespace<'a>(
    objects: &'a cache::Objects,
    namespace: Option<&'a str>,
) -> Box<dyn Iterator<Item = &'a Arc<CachedObject>> + 'a> {
    match namespace {
        None => Box::new(objects.values()),
        Some(ns) => Box::new(
            objects
                .range((Some(ns.to_string()), String::new())..)
                .take_while(move |((object_ns, _), _)| object_ns.as_deref() == Some(ns))
                .map(|(_, object)| object),
        ),
    }
}

impl InformerRegistry {
    /// A registry watching all namespaces, or only `namespace` (cluster-scoped
    /// kinds are watched regardless). Events arrive on the returned receiver;
    /// the informers count them, their watch errors and re-lists in `metrics`.
    pub fn new(
        client: kube::Client,
        namespace: Option<String>,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::UnboundedReceiver<KindEvent>) {
        let (events, receiver) = mpsc::unbounded_channel();
        let registry = Self {
            client,
            namespace,
            events,
            informers: Arc::default(),
            metrics,
            shard: ShardGate::unsharded(),
        };
        (registry, receiver)
    }

    /// Makes namespaced informers cache only the namespaces `shard` keeps,
    /// following its changes: a share that gained namespaces lists them
    /// (each namespaced informer re-lists, keeping its cache, so nothing
    /// it holds is reported deleted), one that only lost some evicts them.
    /// Call before the registry is cloned.
    pub fn with_shard_gate(mut self, shard: ShardGate) -> Self {
        if let Some(mut changes) = shard.cache_changes() {
            let registry = self.clone_with(shard.clone());
            tokio::spawn(async move {
                while changes.changed().await.is_ok() {
                    registry.refilter();
                }
            });
        }
        self.shard = shard;
        self
    }

    fn clone_with(&self, shard: ShardGate) -> Self {
        Self {
            shard,
            ..self.clone()
        }
    }

    /// Brings every namespaced informer in line with the shard's cached
    /// namespaces.
    fn refilter(&self) {
        let relist = self.shard.take_relist();
        let mut informers = self.informers.write().unwrap_or_else(|e| e.into_inner());
        for informer in informers.values_mut().filter(|i| i.kind.namespaced) {
            if relist {
                informer.task.abort();
                let watch = watch::Watch::new(
                    informer.kind.clone(),
                    informer.cache.clone(),
                    self.events.clone(),
                    self.metrics.clone(),
                    self.shard.clone(),
                )
                .holding(self.shard.listing());
                informer.task = tokio::spawn(watch.run(self.api(&informer.kind)));
            } else {
                let mut cache = informer.cache.write().unwrap_or_else(|e| e.into_inner());
                let shard = &self.shard;
                cache
                    .objects
                    .retain(|(ns, name), _| shard.caches(key_hash(ns.as_deref(), name)));
            }
        }
        tracing::debug!(
            relist,
            "informers follow this replica's new share of namespaces"
        );
    }

    /// Adds a subscriber to `kind`, starting its informer if it is the first.
    pub fn subscribe(&self, kind: &ResourceKind) {
        let mut informers = self.informers.write().unwrap_or_else(|e| e.into_inner());
        let key = informer_key(kind);
        if let Some(informer) = informers.get_mut(&key) {
            informer.subscribers += 1;
            return;
        }
        tracing::info!(group = %kind.group, version = %kind.version, kind = %kind.kind, "starting informer");
        let cache = Arc::new(RwLock::new(Cache::default()));
        let watch = watch::Watch::new(
            kind.clone(),
            cache.clone(),
            self.events.clone(),
            self.metrics.clone(),
            self.shard.clone(),
        );
        let task = tokio::spawn(watch.run(self.api(kind)));
        informers.insert(
            key,
            Informer {
                kind: kind.clone(),
                cache,
                started: Instant::now(),
                task,
                subscribers: 1,
            },
        );
    }

    /// Removes a subscriber from `kind`, stopping its informer if it was the last.
    pub fn unsubscribe(&self, kind: &ResourceKind) {
        let mut informers = self.informers.write().unwrap_or_else(|e| e.into_inner());
        let key = informer_key(kind);
        let last = informers.get_mut(&key).is_some_and(|i| {
            i.subscribers = i.subscribers.saturating_sub(1);
            i.subscribers == 0
        });
        if last {
            tracing::info!(group = %kind.group, version = %kind.version, kind = %kind.kind, "stopping informer: no subscriber left");
            informers.remove(&key);
        }
    }

    /// Stops the informers (every version) of a kind that no longer exists,
    /// whatever their subscribers (a deleted CRD).
    pub fn remove_kind(&self, kind: &ResourceKind) {
        let mut informers = self.informers.write().unwrap_or_else(|e| e.into_inner());
        informers.retain(|key, _| {
            let gone = key.group == kind.group && key.kind == kind.kind;
            if gone {
                tracing::info!(group = %key.group, version = %key.version, kind = %key.kind, "stopped informer: kind removed from the cluster");
            }
            !gone
        });
    }

    /// The kinds being watched, with their subscriber counts.
    pub fn watched(&self) -> Vec<(ResourceKind, usize)> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        let mut kinds: Vec<_> = informers
            .values()
            .map(|i| (i.kind.clone(), i.subscribers))
            .collect();
        kinds.sort_by(|a, b| {
            (&a.0.group, &a.0.kind, &a.0.version).cmp(&(&b.0.group, &b.0.kind, &b.0.version))
        });
        kinds
    }

    /// Whether every informer finished its first list (forbidden kinds,
    /// which will never list, count as done).
    pub fn all_synced(&self) -> bool {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        informers.values().all(|i| {
            let cache = i.cache.read().unwrap_or_else(|e| e.into_inner());
            cache.synced || cache.forbidden
        })
    }

    /// The kinds the host may not list (403), as the informers last found.
    pub fn forbidden(&self) -> Vec<ResourceKind> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        informers
            .values()
            .filter(|i| i.cache.read().is_ok_and(|c| c.forbidden))
            .map(|i| i.kind.clone())
            .collect()
    }

    /// Whether any of `kinds` is still doing its first list, started less
    /// than [`SYNC_GRACE`] ago. A plugin's work waits for that, so its first
    /// reconciles can read every kind it subscribes to from the cache.
    pub fn syncing(&self, kinds: &[ResourceKind]) -> bool {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        kinds.iter().any(|kind| {
            informers.get(&informer_key(kind)).is_some_and(|i| {
                let cache = i.cache.read().unwrap_or_else(|e| e.into_inner());
                !(cache.synced || cache.forbidden) && i.started.elapsed() < SYNC_GRACE
            })
        })
    }

    /// Number and heap bytes of the cached objects, per kind (a walk of
    /// every cache: for a scrape, not a hot path).
    pub fn cached_sizes(&self) -> Vec<(ResourceKind, CacheSize)> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        informers
            .values()
            .map(|i| {
                let size = i.cache.read().map_or(CacheSize::default(), |c| CacheSize {
                    objects: c.objects.len(),
                    bytes: c.objects.values().map(|o| o.heap_bytes()).sum(),
                });
                (i.kind.clone(), size)
            })
            .collect()
    }

    /// The cached objects of a kind (for a resync after a plugin reload).
    pub fn objects(&self, kind: &ResourceKind) -> Vec<Arc<CachedObject>> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        informers
            .get(&informer_key(kind))
            .map(|i| {
                let cache = i.cache.read().unwrap_or_else(|e| e.into_inner());
                cache.objects.values().cloned().collect()
            })
            .unwrap_or_default()
    }

    /// The cached object of `kind` at exactly its version, named `name` in
    /// `namespace` (`None` for cluster-scoped); `None` if it is not cached
    /// or no informer watches that version.
    pub fn get_at(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        let informer = informers.get(&informer_key(kind))?;
        let cache = informer.cache.read().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.map(str::to_string), name.to_string());
        cache.objects.get(&key).cloned()
    }

    /// Calls `visit` with each cached object of `kind` at exactly its
    /// version in `namespace`, or in every namespace (and cluster scope)
    /// with `None`. One namespace is a range of the cache, not a scan of
    /// all of it. The cache is read-locked meanwhile, so `visit` must be
    /// quick and must not touch the informers.
    pub fn visit_at(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    ) {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        let Some(informer) = informers.get(&informer_key(kind)) else {
            return;
        };
        let cache = informer.cache.read().unwrap_or_else(|e| e.into_inner());
        in_namespace(&cache.objects, namespace).for_each(visit);
    }

    fn api(&self, kind: &ResourceKind) -> Api<WireObject> {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        match (&self.namespace, kind.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Runs `f` on the cache of a synced informer of `kind` (any version:
    /// they hold the same objects).
    /// With sharding, a read of a namespaced kind must name a namespace
    /// this replica caches: anything else would answer from a part of the
    /// cluster silently.
    fn within_shard(&self, kind: &GroupKind, namespace: Option<&str>) -> Result<(), ReadError> {
        if !self.shard.is_sharded() {
            return Ok(());
        }
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        let namespaced = versions_of(&informers, kind)
            .next()
            .is_some_and(|i| i.kind.namespaced);
        match namespace {
            _ if !namespaced => Ok(()),
            Some(ns) if self.shard.caches(key_hash(Some(ns), "")) => Ok(()),
            ns => Err(outside_shard(kind, ns)),
        }
    }

    fn with_cache<T>(&self, kind: &GroupKind, f: impl FnOnce(&Cache) -> T) -> Result<T, ReadError> {
        let informers = self.informers.read().unwrap_or_else(|e| e.into_inner());
        let mut watched = false;
        for informer in versions_of(&informers, kind) {
            watched = true;
            let cache = informer.cache.read().unwrap_or_else(|e| e.into_inner());
            if cache.synced {
                return Ok(f(&cache));
            }
        }
        Err(match watched {
            true => ReadError::NotSynced {
                group: kind.group.clone(),
                kind: kind.kind.clone(),
            },
            false => ReadError::NotWatched {
                group: kind.group.clone(),
                kind: kind.kind.clone(),
            },
        })
    }
}

impl ObjectReader for InformerRegistry {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        self.within_shard(kind, namespace)?;
        let key = (namespace.map(str::to_string), name.to_string());
        self.with_cache(kind, |cache| cache.objects.get(&key).cloned())
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        self.within_shard(kind, namespace)?;
        self.with_cache(kind, |cache| {
            in_namespace(&cache.objects, namespace)
                .filter(|o| selector.matches_labels(|k| o.label(k)))
                .cloned()
                .collect()
        })
    }
}

/// The error of a read outside this replica's share. The namespace is the
/// plugin's own input: it is named only if it is a valid namespace, so a
/// plugin cannot make the host build an error of any size or content.
fn outside_shard(kind: &GroupKind, namespace: Option<&str>) -> ReadError {
    let namespace = match namespace {
        None => "all namespaces".to_string(),
        Some(ns) if crate::contract::names::validate_namespace(ns).is_ok() => {
            format!("namespace {ns}")
        }
        Some(_) => "a namespace that is not a valid name".to_string(),
    };
    ReadError::OutsideShard {
        kind: kind.kind.clone(),
        namespace,
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    #[test]
    fn a_read_outside_the_shard_names_only_a_valid_namespace() {
        let kind = GroupKind {
            group: String::new(),
            kind: "ConfigMap".into(),
        };
        let message = |ns| outside_shard(&kind, ns).to_string();
        assert!(message(Some("team-a")).starts_with("ConfigMap in namespace team-a is not cached"));
        assert!(message(None).starts_with("ConfigMap in all namespaces"));
        let hostile = format!("x\n{}", "y".repeat(1 << 20));
        let said = message(Some(&hostile));
        assert!(
            said.starts_with("ConfigMap in a namespace that is not a valid name"),
            "{said}"
        );
        assert!(said.len() < 300 && !said.contains('\n'));
    }
}
