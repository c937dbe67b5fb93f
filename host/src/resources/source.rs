//! Plugins from `ClusterPlugin` resources: `kubectl apply` loads, swaps
//! and unloads plugins in a running host, as a file change does in the
//! plugin directory.
//!
//! A watcher follows every ClusterPlugin. Each object gets a task of its
//! own, so a slow registry delays only that plugin: it fetches the module
//! ([`fetch`](super::fetch)), and if the content, settings or namespaces
//! changed since last time, compiles and validates it on the blocking pool
//! (at most [`MAX_CONCURRENT_LOADS`] at once) while the previous version
//! keeps serving, then hands it to the [`SharedSet`] every source shares.
//! A failure never replaces a working version; the status says which
//! version serves and what failed. The module is fetched again when the
//! spec changes (a new `generation`), when the annotation
//! [`REQUESTED_AT`] changes, and every poll interval (a tag may move).
//!
//! A deleted resource unloads its plugin; so does `suspend: true`. A
//! resource deleted while the watch was down is unloaded when the re-list
//! completes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WatchEvent};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::plugins::LoadedPlugin;
use crate::plugins::grant::Grant;
use crate::plugins::loader;
use crate::plugins::set::{Failure, Fingerprint, Origin, Served, SharedSet};
use crate::resources::fetch::{FetchError, Fetched, Fetcher};
use crate::resources::report::{self, Reporting, State};
use crate::resources::spec::{fetch_fingerprint, fingerprint, fits, poll_interval};
use crate::resources::{ClusterPlugin, Failed, Resolved, Serving};
use crate::runtime::Runtime;

/// Changing this annotation (to any value) fetches the module again now,
/// e.g. after pushing a new build to the same tag.
pub const REQUESTED_AT: &str = "kubewasm.dev/requested-at";

/// How often a module is fetched again when the resource names no
/// `pollInterval`.
pub const DEFAULT_POLL: Duration = Duration::from_secs(300);

/// How soon a module that could not be fetched is tried again.
pub const RETRY: Duration = Duration::from_secs(10);

/// Compilations of resource plugins running at once (each may take a core
/// for seconds).
pub const MAX_CONCURRENT_LOADS: usize = 2;

/// The resource source of a host.
pub struct ResourceSource {
    inner: Arc<Inner>,
    selector: Option<String>,
}

struct Inner {
    client: kube::Client,
    runtime: Runtime,
    set: SharedSet,
    fetcher: Fetcher,
    reporting: Reporting,
    loads: Semaphore,
    /// Resources whose task finished its first sync.
    synced: std::sync::Mutex<HashSet<String>>,
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
                loads: Semaphore::new(MAX_CONCURRENT_LOADS),
                synced: Default::default(),
            }),
            selector: None,
        }
    }

    /// Follows only the ClusterPlugins matching a label selector.
    pub fn with_selector(mut self, selector: Option<String>) -> Self {
        self.selector = selector;
        self
    }

    /// Follows the ClusterPlugins until `shutdown` resolves. `settled`
    /// fires once the first list is done and every listed plugin has
    /// settled: serving, or failed with a reason (fetches are bounded by
    /// the registry timeouts), so readiness never waits on one bad plugin.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
        settled: tokio::sync::oneshot::Sender<()>,
    ) {
        let (first_sync_tx, mut first_sync) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut settled = Some(settled);
        // Listed at startup and not settled yet; `None` until the first
        // list is done.
        let mut unsettled: Option<HashSet<String>> = None;
        let api: Api<ClusterPlugin> = Api::all(self.inner.client.clone());
        let mut config = watcher::Config::default();
        if let Some(selector) = &self.selector {
            config = config.labels(selector);
        }
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut tasks: HashMap<String, Follower> = HashMap::new();
        let mut listing: Option<HashSet<String>> = None;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let event = tokio::select! {
                () = &mut shutdown => break,
                event = events.next() => event,
                Some(name) = first_sync.recv() => {
                    if let Some(waiting) = &mut unsettled {
                        waiting.remove(&name);
                    }
                    notify_settled(&mut unsettled, &mut settled);
                    continue;
                }
            };
            match event {
                Some(Ok(WatchEvent::Init)) => listing = Some(HashSet::new()),
                Some(Ok(WatchEvent::InitApply(object))) => {
                    if let Some(listing) = &mut listing {
                        listing.insert(object.name_any());
                    }
                    self.upsert(&mut tasks, object, &first_sync_tx);
                }
                Some(Ok(WatchEvent::InitDone)) => {
                    let listed = listing.take().unwrap_or_default();
                    if settled.is_some() && unsettled.is_none() {
                        let mut waiting = listed.clone();
                        waiting.retain(|name| !self.first_synced(name));
                        unsettled = Some(waiting);
                        notify_settled(&mut unsettled, &mut settled);
                    }
                    let gone: Vec<String> = tasks
                        .keys()
                        .filter(|name| !listed.contains(*name))
                        .cloned()
                        .collect();
                    for name in gone {
                        self.remove(&mut tasks, &name).await;
                    }
                    // Resources deleted while no task followed them
                    // (a restart does not know them; nothing serves them).
                }
                Some(Ok(WatchEvent::Apply(object))) => {
                    self.upsert(&mut tasks, object, &first_sync_tx)
                }
                Some(Ok(WatchEvent::Delete(object))) => {
                    let name = object.name_any();
                    self.remove(&mut tasks, &name).await;
                    // Deleted before it settled: nothing left to wait for.
                    if let Some(waiting) = &mut unsettled {
                        waiting.remove(&name);
                    }
                    notify_settled(&mut unsettled, &mut settled);
                }
                Some(Err(error)) => {
                    tracing::warn!(error = %crate::ops::error_chain(&error), "watching ClusterPlugins failed; retrying with backoff")
                }
                None => break,
            }
        }
        for (_, follower) in tasks {
            follower.task.abort();
        }
    }

    /// Whether `name`'s task has finished its first sync.
    fn first_synced(&self, name: &str) -> bool {
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    fn upsert(
        &self,
        tasks: &mut HashMap<String, Follower>,
        object: ClusterPlugin,
        first_sync: &tokio::sync::mpsc::UnboundedSender<String>,
    ) {
        let name = object.name_any();
        if let Some(follower) = tasks.get(&name) {
            follower.object.send_replace(Arc::new(object));
            return;
        }
        let (tx, rx) = watch::channel(Arc::new(object));
        let task = tokio::spawn(follow(
            self.inner.clone(),
            name.clone(),
            rx,
            first_sync.clone(),
        ));
        tasks.insert(name, Follower { object: tx, task });
    }

    async fn remove(&self, tasks: &mut HashMap<String, Follower>, name: &str) {
        if let Some(follower) = tasks.remove(name) {
            // Waited for, so a load finishing right now cannot serve after
            // the removal below (the task stops at its next await).
            follower.task.abort();
            let _ = follower.task.await;
        }
        self.inner
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        let origin = Origin::ClusterPlugin(name.to_string());
        if let Some(plugin) = self.inner.set.lock().remove(&origin) {
            tracing::info!(clusterplugin = name, plugin = %plugin, "ClusterPlugin deleted; plugin unloaded");
        }
    }
}

/// Fires `settled` once nothing listed at startup is still unsettled.
fn notify_settled(
    unsettled: &mut Option<HashSet<String>>,
    settled: &mut Option<tokio::sync::oneshot::Sender<()>>,
) {
    if unsettled.as_ref().is_some_and(HashSet::is_empty)
        && let Some(settled) = settled.take()
    {
        // Logged first: whoever sees the host ready finds the line.
        tracing::info!(
            "plugin resources settled: every ClusterPlugin listed at startup serves or reports why not"
        );
        let _ = settled.send(());
    }
}

/// The task following one resource, and how it learns of changes.
struct Follower {
    object: watch::Sender<Arc<ClusterPlugin>>,
    task: JoinHandle<()>,
}

/// What makes a module worth fetching again besides the poll: the spec's
/// generation and the [`REQUESTED_AT`] annotation (a status write changes
/// neither).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Trigger {
    generation: Option<i64>,
    requested_at: Option<String>,
}

impl Trigger {
    fn of(object: &ClusterPlugin) -> Self {
        Self {
            generation: object.metadata.generation,
            requested_at: object.annotations().get(REQUESTED_AT).cloned(),
        }
    }
}

/// Follows one resource until its task is aborted.
async fn follow(
    inner: Arc<Inner>,
    name: String,
    mut objects: watch::Receiver<Arc<ClusterPlugin>>,
    first_sync: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let origin = Origin::ClusterPlugin(name.clone());
    let mut tracker = Tracker::default();
    let mut handled: Option<Trigger> = None;
    let mut next = tokio::time::Instant::now();
    loop {
        let object = objects.borrow_and_update().clone();
        let trigger = Trigger::of(&object);
        if handled.as_ref() != Some(&trigger) || tokio::time::Instant::now() >= next {
            handled = Some(trigger);
            let wait = inner.sync(&origin, &object, &mut tracker).await;
            next = tokio::time::Instant::now() + wait;
            let first = inner
                .synced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone());
            if first {
                let _ = first_sync.send(name.clone());
            }
        }
        tokio::select! {
            changed = objects.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(next) => {},
        }
    }
}

/// What one resource's task remembers between syncs.
#[derive(Default)]
struct Tracker {
    state: State,
    /// The status last written, if the write succeeded.
    written: Option<crate::resources::PluginStatus>,
}

impl Inner {
    /// Fetches, loads and reports one resource; returns when to look again.
    async fn sync(
        &self,
        origin: &Origin,
        object: &ClusterPlugin,
        tracker: &mut Tracker,
    ) -> Duration {
        let spec = &object.spec;
        tracker.state.generation = object.metadata.generation;
        let poll = poll_interval(spec);
        if spec.suspend {
            let unloaded = self.set.lock().remove(origin);
            tracker.state.suspended = true;
            tracker.state.serving = None;
            tracker.state.failed = None;
            if let Some(plugin) = unloaded {
                let note = format!("spec.suspend is true: {plugin} unloaded");
                self.reporting.event(object, false, "Suspended", note).await;
            }
            self.report(object, tracker).await;
            return poll;
        }
        tracker.state.suspended = false;
        let outcome = match self.fetcher.fetch(&spec.module).await {
            Ok(fetched) => {
                if let Some((reference, digest)) = &fetched.resolved {
                    let moved = tracker.state.resolved.as_ref().map(|r| &r.digest) != Some(digest);
                    if moved {
                        tracker.state.resolved = Some(Resolved {
                            reference: reference.clone(),
                            digest: digest.clone(),
                            time: report::now(),
                        });
                    }
                }
                let fingerprint = fingerprint(&fetched, spec);
                if self.set.lock().is_current(origin, fingerprint) {
                    None
                } else {
                    Some(self.load(origin, object, fetched, fingerprint).await)
                }
            }
            Err(error) => {
                let fingerprint = fetch_fingerprint(&error);
                (!self.set.lock().is_current(origin, fingerprint))
                    .then_some(Outcome::FetchFailed(error))
            }
        };
        match outcome {
            Some(outcome) => self.record(origin, object, tracker, outcome).await,
            // Nothing new; but the content may have gone back to what
            // serves, which clears the failure.
            None => {
                if self.set.lock().failure(origin).is_none() {
                    tracker.state.failed = None;
                }
            }
        }
        // A source that could not be fetched (a registry down, a ConfigMap
        // not created yet) is tried again soon.
        let fetch_failed = tracker
            .state
            .failed
            .as_ref()
            .is_some_and(|f| f.digest.is_empty());
        let retry = if fetch_failed { RETRY.min(poll) } else { poll };
        self.report(object, tracker).await;
        retry
    }

    /// Compiles, validates and checks the grants of fetched content, then
    /// serves it or records the failure.
    async fn load(
        &self,
        origin: &Origin,
        object: &ClusterPlugin,
        fetched: Fetched,
        fingerprint: Fingerprint,
    ) -> Outcome {
        let spec = &object.spec;
        let settings = spec
            .settings
            .clone()
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string();
        let grant = if spec.namespaces.is_empty() {
            Grant::unconfined()
        } else {
            Grant::namespaces(spec.namespaces.iter().cloned())
        };
        let label = format!("ClusterPlugin {}", object.name_any());
        let runtime = self.runtime.clone();
        let component = fetched.component.clone();
        let _permit = self.loads.acquire().await;
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || {
            loader::load_component(&runtime, &label, &component, settings, grant)
        })
        .await;
        let elapsed = started.elapsed();
        let failure = |kind: &'static str, message: String| Failure { kind, message };
        let result: Result<LoadedPlugin, Failure> = match loaded {
            Ok(Ok(mut loaded)) => match fits(loaded.plugin.info(), &spec.grants) {
                Ok(()) => {
                    loaded.dry_run = spec.dry_run;
                    Ok(loaded)
                }
                Err(missing) => Err(failure("grant_missing", missing)),
            },
            Ok(Err(error)) => Err(failure(
                error.metric_label(),
                crate::ops::error_chain(&error),
            )),
            Err(_) => Err(failure(
                "interrupted",
                "plugin loading was interrupted".into(),
            )),
        };
        let mut set = self.set.lock();
        let result = match result {
            Ok(loaded) => set.serve(origin, fingerprint, loaded),
            Err(failure) => {
                set.fail(origin, fingerprint, failure.clone());
                Err(failure)
            }
        };
        let serving = set.serving(origin).cloned();
        drop(set);
        match result {
            Ok(served) => Outcome::Served {
                served,
                fetched,
                elapsed,
            },
            Err(failure) => Outcome::LoadFailed {
                failure,
                digest: fetched.digest,
                still: serving.map(|s| format!("{} {}", s.name, s.version)),
            },
        }
    }

    /// Updates the tracked state with an outcome and records its Event.
    async fn record(
        &self,
        origin: &Origin,
        object: &ClusterPlugin,
        tracker: &mut Tracker,
        outcome: Outcome,
    ) {
        let state = &mut tracker.state;
        match outcome {
            Outcome::Served {
                served,
                fetched,
                elapsed,
            } => {
                let info = self.set.lock().serving(origin).cloned();
                let Some(info) = info else { return };
                let (reason, note) = match &served {
                    Served::Loaded { .. } => (
                        "Loaded",
                        format!(
                            "{} {} loaded from {} in {} ms",
                            info.name,
                            info.version,
                            fetched.digest,
                            elapsed.as_millis()
                        ),
                    ),
                    Served::Reloaded { previous, .. } | Served::Renamed { previous, .. } => (
                        "Swapped",
                        format!(
                            "{} {} ({}) replaced by {} {} ({}) in {} ms",
                            previous.name,
                            previous.version,
                            state
                                .serving
                                .as_ref()
                                .map_or(previous.digest.as_str(), |s| s.digest.as_str()),
                            info.name,
                            info.version,
                            fetched.digest,
                            elapsed.as_millis()
                        ),
                    ),
                };
                state.serving = Some(Serving {
                    digest: fetched.digest,
                    component_digest: fetched.component_digest,
                    name: info.name,
                    version: info.version,
                    contract: info.contract.to_string(),
                    since: report::now(),
                });
                state.failed = None;
                self.reporting.event(object, false, reason, note).await;
            }
            Outcome::LoadFailed {
                failure,
                digest,
                still,
            } => {
                let reason = report::load_reason(failure.kind);
                let still = still.unwrap_or_else(|| "nothing".into());
                let note = format!("{reason}: {} (still serving: {still})", failure.message);
                state.failed = Some(Failed {
                    digest,
                    reason: reason.into(),
                    message: report::truncate(failure.message),
                    time: report::now(),
                });
                if self.set.lock().serving(origin).is_none() {
                    state.serving = None;
                }
                let event = if reason == "GrantMissing" {
                    "Refused"
                } else {
                    "LoadFailed"
                };
                self.reporting.event(object, true, event, note).await;
            }
            Outcome::FetchFailed(FetchError { reason, message }) => {
                state.failed = Some(Failed {
                    digest: String::new(),
                    reason: reason.into(),
                    message: report::truncate(message.clone()),
                    time: report::now(),
                });
                let still = self.set.lock().serving(origin).map_or_else(
                    || "nothing".to_string(),
                    |s| format!("{} {}", s.name, s.version),
                );
                let failure = FetchError {
                    reason,
                    message: message.clone(),
                };
                self.set.lock().fail(
                    origin,
                    fetch_fingerprint(&failure),
                    Failure {
                        kind: "fetch",
                        message: message.clone(),
                    },
                );
                let note = format!("{reason}: {message} (still serving: {still})");
                self.reporting.event(object, true, "LoadFailed", note).await;
            }
        }
    }

    /// Writes the status if it changed since the last successful write.
    async fn report(&self, object: &ClusterPlugin, tracker: &mut Tracker) {
        let previous = tracker.written.as_ref().or(object.status.as_ref());
        let status = tracker.state.status(previous);
        if tracker.written.as_ref() == Some(&status) {
            return;
        }
        if self.reporting.status(&object.name_any(), &status).await {
            tracker.written = Some(status);
        }
    }
}

/// What one load or fetch came to.
enum Outcome {
    Served {
        served: Served,
        fetched: Fetched,
        elapsed: Duration,
    },
    LoadFailed {
        failure: Failure,
        digest: String,
        still: Option<String>,
    },
    FetchFailed(FetchError),
}
