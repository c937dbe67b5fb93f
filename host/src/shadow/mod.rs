//! Shadow rollout: a new version of a plugin runs beside the serving one on
//! live traffic, and the host reports where their outcomes differ before
//! the new version writes anything.
//!
//! In the plugin directory, `NAME.next.wasm` beside `NAME.wasm` is NAME's
//! shadow, with `NAME.next.settings.json` as its settings if present, else
//! NAME's own, and NAME's grant (`NAME.scope.json`); it is loaded and
//! reloaded like any plugin file, and one that fails to load is reported
//! and never touches the serving version ([`files`]). A `ClusterPlugin` or
//! `Plugin` names its shadow in `spec.shadow`, loaded by its resource's
//! task (`crate::resources`) and installed here the same way.
//!
//! For every reconcile of a plugin with a running shadow, the serving call
//! reads through a [`capture::CapturingReader`] and with its clock fixed at
//! the call's start; the shadow then gets the same event, the same instant,
//! and the serving call's reads ([`capture::ReplayReader`]). It runs from a
//! bounded queue of its own ([`runner`]), so it never slows the serving
//! queue: a reconcile it has no room for is dropped and counted. Only the
//! serving version's outcome reaches the applier (and with it the host's
//! finalizer writes, Events and the plugin's tallies); the shadow's is only
//! compared with it ([`crate::contract::compare`]): intent order and writes
//! the object already holds are set aside.
//!
//! The shadow only sees the events the serving version receives; an event
//! its own subscriptions do not cover is `skipped`, and events only it
//! would subscribe to are never seen. Its reads are confined by its own
//! declared scope (the runtime checks them) and NAME's grant, and its
//! outcome is checked against its declared write scope as the applier
//! would: an outcome the applier would refuse counts as a failure.
//!
//! A shadow call that fails (error, trap, timeout, limit, refused outcome)
//! aborts the shadow: it stops running, the reason is reported, and it stays
//! stopped until its files change. Promotion (`kubewasm shadow promote
//! NAME`, or automatically after `--shadow-promote-after N` equal
//! reconciles in a row) renames the shadow's files over the serving ones, so
//! the directory says what serves, and the hot reload does the rest. A
//! resource's shadow is promoted by its task patching the resource's spec
//! (only with `spec.shadow.promoteAfter`).
//!
//! Reported as `kubewasm_shadow_reconciles_total{plugin,result}`
//! (`equal`, `different`, `failed`, `skipped`, `dropped`),
//! `kubewasm_shadow_reads_uncaptured_total{plugin}`,
//! `kubewasm_shadow_running{plugin}`, a rate-limited log record per
//! difference, and `GET /shadow` on the admin server ([`Report`]), which
//! `kubewasm shadow` prints.

pub mod capture;
pub mod files;
pub mod runner;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::applier::Applier;
use crate::cluster::cache::ObjectReader;
use crate::contract::PluginInfo;
use crate::contract::intent::Outcome;
use crate::ops::metrics::Metrics;
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::Grant;
use runner::{Job, Queue};
use state::{Counts, Ledger, Next, Sample, State, Verdict};

/// Whether the applier would refuse an outcome of a plugin with a grant
/// ([`Applier::refuses`]): only asked, nothing is sent.
pub type Refuses = Arc<dyn Fn(&PluginInfo, &Grant, &Outcome) -> bool + Send + Sync>;

/// What a shadow's runner needs besides the shadow: the live cache, the
/// applier's judgement of outcomes, the metrics.
#[derive(Clone)]
pub struct Context {
    pub live: Arc<dyn ObjectReader>,
    pub refuses: Refuses,
    pub metrics: Arc<Metrics>,
}

/// The [`Refuses`] of `applier`.
pub fn refused_by(applier: Arc<Applier>) -> Refuses {
    Arc::new(move |info, grant, outcome| applier.refuses(info, grant, outcome))
}

/// One loaded shadow and what it did.
pub struct Shadow {
    pub loaded: LoadedPlugin,
    /// `NAME.next.wasm` in directory mode: what promotion renames.
    pub source: Option<PathBuf>,
    /// The plugin resource whose `spec.shadow` it is, e.g. `ClusterPlugin probe`.
    resource: Option<String>,
    loaded_at: String,
    running: AtomicBool,
    ledger: Mutex<Ledger>,
}

impl Shadow {
    fn new(loaded: LoadedPlugin, from: Named, promote_after: Option<u64>) -> Self {
        let (source, resource) = match from {
            Named::File(source) => (source, None),
            Named::Resource(resource) => (None, Some(resource)),
        };
        Self {
            loaded,
            source,
            resource,
            loaded_at: format!("{:.0}", jiff::Timestamp::now()),
            running: AtomicBool::new(true),
            ledger: Mutex::new(Ledger::new(promote_after)),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    fn record(&self, serving: &str, verdict: Verdict) -> Next {
        self.ledger().record(serving, verdict)
    }

    fn stopped(&self, metrics: &Metrics) {
        self.running.store(false, Ordering::Release);
        metrics
            .shadow_running
            .with_label_values(&[&self.loaded.id])
            .set(0);
    }

    fn promotion_failed(&self, reason: String) {
        self.ledger().state = State::PromotionFailed(reason);
    }

    fn streak(&self) -> u64 {
        self.ledger().streak
    }

    fn uncaptured(&self, reads: u64) {
        self.ledger().counts.uncaptured_reads += reads;
    }

    fn report(&self) -> ShadowReport {
        let ledger = self.ledger();
        let info = self.loaded.plugin.info();
        ShadowReport {
            plugin: self.loaded.id.clone(),
            source: match &self.source {
                Some(path) => Some(path.display().to_string()),
                None => self.resource.as_ref().map(|r| format!("{r} spec.shadow")),
            },
            version: info.version.clone(),
            digest: self.loaded.plugin.digest().to_string(),
            loaded_at: self.loaded_at.clone(),
            state: ledger.state.clone(),
            counts: ledger.counts.clone(),
            streak: ledger.streak,
            promote_after: ledger.promote_after,
            recent_differences: ledger.recent.iter().cloned().collect(),
        }
    }
}

/// Where a shadow was named.
enum Named {
    /// The plugin directory (`None`: no file to promote, in tests).
    File(Option<PathBuf>),
    /// A plugin resource's `spec.shadow`, e.g. `ClusterPlugin probe`.
    Resource(String),
}

/// A running shadow as the serving worker sees it: where to offer jobs.
pub struct Tap {
    shadow: Arc<Shadow>,
    queue: Queue,
    metrics: Arc<Metrics>,
}

impl Tap {
    /// Hands the shadow a reconcile to do again; dropped (and counted) if
    /// its queue is full. Never waits.
    pub fn offer(&self, job: Job) {
        if self.queue.offer(job) {
            return;
        }
        self.shadow.ledger().dropped();
        self.metrics
            .shadow_reconciles
            .with_label_values(&[&self.shadow.loaded.id, "dropped"])
            .inc();
    }
}

struct Entry {
    shadow: Arc<Shadow>,
    queue: Queue,
}

/// The shadows of the running plugins, by plugin id. Cheap to clone.
#[derive(Clone)]
pub struct Shadows {
    inner: Arc<Inner>,
}

struct Inner {
    entries: RwLock<HashMap<String, Entry>>,
    /// `entries.len()`, so a plugin without a shadow costs one atomic load.
    count: AtomicUsize,
    /// Shadow files that did not load, with the reason.
    failures: Mutex<BTreeMap<String, String>>,
    /// 0: never promote automatically.
    promote_after: AtomicU64,
    /// `--namespace`: shadows' grants are narrowed to it, like plugins'.
    namespace: RwLock<Option<String>>,
    context: Context,
}

impl Shadows {
    pub fn new(live: Arc<dyn ObjectReader>, refuses: Refuses, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: RwLock::default(),
                count: AtomicUsize::new(0),
                failures: Mutex::default(),
                promote_after: AtomicU64::new(0),
                namespace: RwLock::default(),
                context: Context {
                    live,
                    refuses,
                    metrics,
                },
            }),
        }
    }

    /// Promote a shadow once `n` compared reconciles in a row were equal
    /// (for shadows loaded from now on); `None` never.
    pub fn promote_after(&self, n: Option<u64>) {
        self.inner
            .promote_after
            .store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// Confines every shadow loaded from now on to `namespace`, as the
    /// controller confines plugins (`--namespace`).
    pub fn within(&self, namespace: Option<String>) {
        *self
            .inner
            .namespace
            .write()
            .unwrap_or_else(|e| e.into_inner()) = namespace;
    }

    /// The running shadow of `plugin`, if it has one.
    pub fn tap(&self, plugin: &str) -> Option<Tap> {
        if self.inner.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(plugin).filter(|e| e.shadow.is_running())?;
        Some(Tap {
            shadow: entry.shadow.clone(),
            queue: entry.queue.clone(),
            metrics: self.inner.context.metrics.clone(),
        })
    }

    /// Starts `loaded` as the shadow of the plugin with its id, replacing
    /// any shadow it had (with fresh counts), promoted after the host's
    /// `--shadow-promote-after`. Needs a Tokio runtime.
    pub fn install(&self, loaded: LoadedPlugin, source: Option<PathBuf>) {
        let promote_after = match self.inner.promote_after.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        };
        self.start(loaded, Named::File(source), promote_after);
    }

    /// [`install`](Self::install) for the shadow of a plugin resource
    /// (`spec.shadow`): promoted after its own `promoteAfter`, by the
    /// resource's task patching the spec once the report says `promoted`.
    pub fn install_for_resource(
        &self,
        loaded: LoadedPlugin,
        resource: String,
        promote_after: Option<u64>,
    ) {
        self.start(loaded, Named::Resource(resource), promote_after);
    }

    fn start(&self, mut loaded: LoadedPlugin, from: Named, promote_after: Option<u64>) {
        let id = loaded.id.clone();
        let namespace = self
            .inner
            .namespace
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if namespace.is_some() {
            loaded.grant = Arc::new((*loaded.grant).clone().within(namespace.as_deref()));
        }
        drop(namespace);
        let shadow = Arc::new(Shadow::new(loaded, from, promote_after));
        let (queue, jobs) = Queue::bounded(runner::QUEUE);
        let context = self.inner.context.clone();
        context
            .metrics
            .shadow_running
            .with_label_values(&[&id])
            .set(1);
        tracing::info!(
            plugin = %id,
            version = %shadow.loaded.plugin.info().version,
            promote_after = ?promote_after,
            "shadow loaded: it runs beside the serving version and writes nothing"
        );
        tokio::spawn(runner::run(shadow.clone(), jobs, context));
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(|e| e.into_inner());
        // The replaced entry's queue closes, which ends its runner.
        entries.insert(id, Entry { shadow, queue });
        self.inner.count.store(entries.len(), Ordering::Release);
    }

    /// Stops and forgets the shadow of `plugin`.
    pub fn remove(&self, plugin: &str) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if entries.remove(plugin).is_some() {
            let _ = self
                .inner
                .context
                .metrics
                .shadow_running
                .remove_label_values(&[plugin]);
            tracing::info!(plugin = %plugin, "shadow removed");
        }
        self.inner.count.store(entries.len(), Ordering::Release);
    }

    /// Records that shadow file `file` does not load (`None`: it loads, or
    /// is gone).
    pub fn set_failure(&self, file: &str, failure: Option<String>) {
        let mut failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match failure {
            Some(message) => failures.insert(file.to_string(), message),
            None => failures.remove(file),
        };
    }

    /// What the shadow of `plugin` did, if it has one.
    pub fn report_of(&self, plugin: &str) -> Option<ShadowReport> {
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(plugin).map(|e| e.shadow.report())
    }

    /// What every shadow did, for `GET /shadow`.
    pub fn report(&self) -> Report {
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut shadows: Vec<ShadowReport> = entries.values().map(|e| e.shadow.report()).collect();
        shadows.sort_by(|a, b| a.plugin.cmp(&b.plugin));
        let failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        Report {
            shadows,
            load_failures: failures
                .iter()
                .map(|(file, error)| LoadFailure {
                    file: file.clone(),
                    error: error.clone(),
                })
                .collect(),
        }
    }
}

/// Every shadow, as `GET /shadow` serves it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub shadows: Vec<ShadowReport>,
    /// Shadow files whose current content does not load.
    pub load_failures: Vec<LoadFailure>,
}

/// One shadow.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowReport {
    pub plugin: String,
    /// The file it was loaded from, in directory mode; `KIND NAME
    /// spec.shadow` for a plugin resource's.
    pub source: Option<String>,
    pub version: String,
    pub digest: String,
    pub loaded_at: String,
    #[serde(flatten)]
    pub state: State,
    pub counts: Counts,
    /// Compared reconciles in a row that were equal.
    pub streak: u64,
    pub promote_after: Option<u64>,
    /// The newest differing reconciles, oldest first.
    pub recent_differences: Vec<Sample>,
}

/// A shadow file that does not load.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadFailure {
    pub file: String,
    pub error: String,
}
