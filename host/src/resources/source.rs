//! Plugins from plugin resources: `kubectl apply` of a `ClusterPlugin`
//! (cluster-wide, run by the cluster's operator) or a namespaced `Plugin`
//! (run by a namespace's owner, acting only there and only as its
//! ServiceAccount) loads, swaps and unloads plugins in a running host, as a
//! file change does in the plugin directory.
//!
//! A watcher follows each kind. Each object gets a task of its own
//! ([`follow`](super::follow)), so a slow registry delays only that plugin:
//! it fetches the module ([`fetch`](super::fetch)), and if the content,
//! settings or namespaces changed since last time, compiles and validates
//! it on the blocking pool (at most [`MAX_CONCURRENT_LOADS`] at once) while
//! the previous version keeps serving, then hands it to the [`SharedSet`]
//! every source shares. A failure never replaces a working version; the
//! status says which version serves and what failed. The module is fetched
//! again when the spec changes (a new `generation`), when the annotation
//! [`REQUESTED_AT`] changes, and every poll interval (a tag may move).
//!
//! A deleted resource unloads its plugin; so does `suspend: true`. A
//! resource deleted while the watch was down is unloaded when the re-list
//! completes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::client::Impersonation;
use crate::cluster::discovery::SharedRegistry;
use crate::controller::Tallies;
use crate::plugins::set::{Origin, SharedSet};
use crate::resources::fetch::Fetcher;
use crate::resources::follow::{Inner, follow};
use crate::resources::object::PluginObject;
use crate::resources::report::Reporting;
use crate::resources::{ClusterPlugin, Plugin};
use crate::runtime::Runtime;

/// Changing this annotation (to any value) fetches the module again now,
/// e.g. after pushing a new build to the same tag.
pub const REQUESTED_AT: &str = "kubewasm.dev/requested-at";

/// How often a module is fetched again when the resource names no
/// `pollInterval`.
pub const DEFAULT_POLL: Duration = Duration::from_secs(300);

/// How soon a module that could not be fetched is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

/// How often the status is brought up to date with the counts, at most.
pub const DEFAULT_STATUS_INTERVAL: Duration = Duration::from_secs(30);

/// Compilations of resource plugins running at once (each may take a core
/// for seconds).
pub const MAX_CONCURRENT_LOADS: usize = 2;

/// The two kinds of plugin resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Cluster,
    Namespaced,
}

impl Kind {
    fn of(origin: &Origin) -> Option<Kind> {
        match origin {
            Origin::ClusterPlugin(_) => Some(Kind::Cluster),
            Origin::Plugin { .. } => Some(Kind::Namespaced),
            Origin::File(_) => None,
        }
    }
}

/// The resource source of a host.
pub struct ResourceSource {
    inner: Arc<Inner>,
    selector: Option<String>,
}

impl ResourceSource {
    pub fn new(
        client: kube::Client,
        runtime: Runtime,
        set: SharedSet,
        fetcher: Fetcher,
        reporting: Reporting,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                runtime,
                set,
                fetcher,
                reporting,
                impersonation: None,
                registry: SharedRegistry::default(),
                loads: Semaphore::new(MAX_CONCURRENT_LOADS),
                tallies: Tallies::default(),
                status_interval: DEFAULT_STATUS_INTERVAL,
                synced: Default::default(),
                shadows: None,
            }),
            selector: None,
        }
    }

    /// Runs resources' `spec.shadow` as shadows in `shadows`.
    pub fn with_shadows(mut self, shadows: crate::shadow::Shadows) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("not running yet");
        inner.shadows = Some(shadows);
        self
    }

    /// Follows only the resources matching a label selector.
    pub fn with_selector(mut self, selector: Option<String>) -> Self {
        self.selector = selector;
        self
    }

    /// How Plugins act as their ServiceAccounts, and the kinds the cluster
    /// serves (to check what they read); without them, no Plugin serves.
    pub fn with_accounts(mut self, impersonation: Impersonation, registry: SharedRegistry) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("not running yet");
        inner.impersonation = Some(impersonation);
        inner.registry = registry;
        self
    }

    /// Where the status finds each plugin's counts, and how often they are
    /// written at most.
    pub fn with_tallies(mut self, tallies: Tallies, interval: Duration) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("not running yet");
        inner.tallies = tallies;
        inner.status_interval = interval;
        self
    }

    /// The events of both kinds' watchers, as one stream.
    fn watch(&self) -> impl Stream<Item = (Kind, watcher::Result<WatchEvent<PluginObject>>)> {
        let mut config = watcher::Config::default();
        if let Some(selector) = &self.selector {
            config = config.labels(selector);
        }
        let client = &self.inner.client;
        let cluster = watcher::watcher(Api::<ClusterPlugin>::all(client.clone()), config.clone())
            .default_backoff()
            .map(|e| (Kind::Cluster, e.map(convert)));
        let namespaced = watcher::watcher(Api::<Plugin>::all(client.clone()), config)
            .default_backoff()
            .map(|e| (Kind::Namespaced, e.map(convert)));
        futures::stream::select(cluster, namespaced)
    }

    /// Follows the plugin resources until `shutdown` resolves. `settled`
    /// fires once the first list of both kinds is done and every listed
    /// plugin has settled: serving, or failed with a reason (fetches are
    /// bounded by the registry timeouts), so readiness never waits on one
    /// bad plugin.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
        settled: tokio::sync::oneshot::Sender<()>,
    ) {
        let (first_sync_tx, mut first_sync) = mpsc::unbounded_channel::<Origin>();
        let mut settled = Some(settled);
        // Listed at startup and not settled yet; `None` until the first
        // list of both kinds is done.
        let mut unsettled: Option<HashSet<Origin>> = None;
        // What each kind's first list held, until both are done.
        let mut first_lists: HashMap<Kind, HashSet<Origin>> = HashMap::new();
        let mut events = self.watch().boxed();
        let mut tasks: HashMap<Origin, Follower> = HashMap::new();
        let mut listing: HashMap<Kind, HashSet<Origin>> = HashMap::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (kind, event) = tokio::select! {
                () = &mut shutdown => break,
                event = events.next() => match event {
                    Some(event) => event,
                    None => break,
                },
                Some(origin) = first_sync.recv() => {
                    if let Some(waiting) = &mut unsettled {
                        waiting.remove(&origin);
                    }
                    notify_settled(&mut unsettled, &mut settled);
                    continue;
                }
            };
            match event {
                Ok(WatchEvent::Init) => {
                    listing.insert(kind, HashSet::new());
                }
                Ok(WatchEvent::InitApply(object)) => {
                    if let Some(listing) = listing.get_mut(&kind) {
                        listing.insert(object.origin.clone());
                    }
                    self.upsert(&mut tasks, object, &first_sync_tx);
                }
                Ok(WatchEvent::InitDone) => {
                    let listed = listing.remove(&kind).unwrap_or_default();
                    if settled.is_some() && unsettled.is_none() {
                        first_lists.entry(kind).or_insert_with(|| listed.clone());
                        if first_lists.len() == 2 {
                            let mut waiting: HashSet<Origin> =
                                first_lists.drain().flat_map(|(_, l)| l).collect();
                            waiting.retain(|origin| !self.first_synced(origin));
                            unsettled = Some(waiting);
                            notify_settled(&mut unsettled, &mut settled);
                        }
                    }
                    let gone: Vec<Origin> = tasks
                        .keys()
                        .filter(|o| Kind::of(o) == Some(kind) && !listed.contains(*o))
                        .cloned()
                        .collect();
                    for origin in gone {
                        self.remove(&mut tasks, &origin).await;
                    }
                    // Resources deleted while no task followed them
                    // (a restart does not know them; nothing serves them).
                }
                Ok(WatchEvent::Apply(object)) => self.upsert(&mut tasks, object, &first_sync_tx),
                Ok(WatchEvent::Delete(object)) => {
                    let origin = object.origin;
                    self.remove(&mut tasks, &origin).await;
                    // Deleted before it settled: nothing left to wait for.
                    if let Some(waiting) = &mut unsettled {
                        waiting.remove(&origin);
                    }
                    notify_settled(&mut unsettled, &mut settled);
                }
                Err(error) => {
                    let what = match kind {
                        Kind::Cluster => "ClusterPlugins",
                        Kind::Namespaced => "Plugins",
                    };
                    tracing::warn!(error = %crate::ops::error_chain(&error), "watching {what} failed; retrying with backoff")
                }
            }
        }
        for (_, follower) in tasks {
            follower.task.abort();
        }
    }

    /// Whether `origin`'s task has finished its first sync.
    fn first_synced(&self, origin: &Origin) -> bool {
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(origin)
    }

    fn upsert(
        &self,
        tasks: &mut HashMap<Origin, Follower>,
        object: PluginObject,
        first_sync: &mpsc::UnboundedSender<Origin>,
    ) {
        let origin = object.origin.clone();
        if let Some(follower) = tasks.get(&origin) {
            follower.object.send_replace(Arc::new(object));
            return;
        }
        let (tx, rx) = watch::channel(Arc::new(object));
        let task = tokio::spawn(follow(
            self.inner.clone(),
            origin.clone(),
            rx,
            first_sync.clone(),
        ));
        tasks.insert(origin, Follower { object: tx, task });
    }

    async fn remove(&self, tasks: &mut HashMap<Origin, Follower>, origin: &Origin) {
        if let Some(follower) = tasks.remove(origin) {
            // Waited for, so a load finishing right now cannot serve after
            // the removal below (the task stops at its next await).
            follower.task.abort();
            let _ = follower.task.await;
        }
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(origin);
        let id = self.inner.set.lock().serving(origin).map(|s| s.id.clone());
        if let Some(shadows) = &self.inner.shadows {
            shadows.set_failure(&super::shadowing::failure_label(origin), None);
            if let Some(id) = id {
                shadows.remove(&id);
            }
        }
        if let Some(plugin) = self.inner.set.lock().remove(origin) {
            tracing::info!(resource = %origin, plugin = %plugin, "plugin resource deleted; plugin unloaded");
        }
    }
}

/// A watch event of either kind, as the source follows it.
fn convert<K: Into<PluginObject>>(event: WatchEvent<K>) -> WatchEvent<PluginObject> {
    match event {
        WatchEvent::Init => WatchEvent::Init,
        WatchEvent::InitApply(k) => WatchEvent::InitApply(k.into()),
        WatchEvent::InitDone => WatchEvent::InitDone,
        WatchEvent::Apply(k) => WatchEvent::Apply(k.into()),
        WatchEvent::Delete(k) => WatchEvent::Delete(k.into()),
    }
}

/// Fires `settled` once nothing listed at startup is still unsettled.
fn notify_settled(
    unsettled: &mut Option<HashSet<Origin>>,
    settled: &mut Option<tokio::sync::oneshot::Sender<()>>,
) {
    if unsettled.as_ref().is_some_and(HashSet::is_empty)
        && let Some(settled) = settled.take()
    {
        // Logged first: whoever sees the host ready finds the line.
        tracing::info!(
            "plugin resources settled: every plugin resource listed at startup serves or reports why not"
        );
        let _ = settled.send(());
    }
}

/// The task following one resource, and how it learns of changes.
struct Follower {
    object: watch::Sender<Arc<PluginObject>>,
    task: JoinHandle<()>,
}
