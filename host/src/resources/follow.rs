//! The task that follows one plugin resource: fetch the module, load it
//! off the async workers, check it against the grants (and, for a `Plugin`,
//! what its ServiceAccount may read), serve it or record why not, and
//! write the status. See [`source`](super::source) for when it runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::cluster::client::{Impersonation, ServiceAccount};
use crate::cluster::discovery::SharedRegistry;
use crate::contract::ResourceKind;
use crate::controller::Tallies;
use crate::plugins::LoadedPlugin;
use crate::plugins::loader;
use crate::plugins::set::{Failure, Fingerprint, Origin, Served, SharedSet};
use crate::resources::access::{self, Denied};
use crate::resources::fetch::{FetchError, Fetched, Fetcher, Place};
use crate::resources::object::PluginObject;
use crate::resources::report::{self, Reporting, State};
use crate::resources::source::RETRY;
use crate::resources::spec::{fetch_fingerprint, fingerprint, fits, poll_interval};
use crate::resources::{Failed, Resolved, Serving};
use crate::runtime::Runtime;

/// The API server's limit on a field manager's length.
const MAX_FIELD_MANAGER: usize = 128;

/// What every resource's task shares.
pub(super) struct Inner {
    pub client: kube::Client,
    pub runtime: Runtime,
    pub set: SharedSet,
    pub fetcher: Fetcher,
    pub reporting: Reporting,
    /// Clients acting as Plugins' ServiceAccounts; without it, Plugins fail
    /// with `ImpersonationDenied`.
    pub impersonation: Option<Impersonation>,
    /// The kinds the cluster serves, for the checks of Plugins.
    pub registry: SharedRegistry,
    pub loads: Semaphore,
    /// What each plugin did (`counts`, `lastReconcileTime`).
    pub tallies: Tallies,
    /// How often counts are written to the status at most.
    pub status_interval: Duration,
    /// Resources whose task finished its first sync.
    pub synced: Mutex<HashSet<Origin>>,
    /// Where `spec.shadow` runs; without it, shadows are not loaded.
    pub shadows: Option<crate::shadow::Shadows>,
}

/// What makes a module worth fetching again besides the poll: the spec's
/// generation and the `requested-at` annotation (a status write changes
/// neither).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Trigger {
    generation: Option<i64>,
    requested_at: Option<String>,
}

/// Follows one resource until its task is aborted.
pub(super) async fn follow(
    inner: Arc<Inner>,
    origin: Origin,
    mut objects: watch::Receiver<Arc<PluginObject>>,
    first_sync: mpsc::UnboundedSender<Origin>,
) {
    let mut tracker = Tracker::default();
    let mut handled: Option<Trigger> = None;
    let mut next = tokio::time::Instant::now();
    let mut refresh = tokio::time::interval(inner.status_interval);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let object = objects.borrow_and_update().clone();
        let trigger = Trigger {
            generation: object.generation,
            requested_at: object.requested_at.clone(),
        };
        if handled.as_ref() != Some(&trigger) || tokio::time::Instant::now() >= next {
            handled = Some(trigger);
            let wait = inner.sync(&object, &mut tracker).await;
            next = tokio::time::Instant::now() + wait;
            let first = inner
                .synced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(origin.clone());
            if first {
                let _ = first_sync.send(origin.clone());
            }
        }
        tokio::select! {
            changed = objects.changed() => if changed.is_err() { return },
            () = tokio::time::sleep_until(next) => {},
            _ = refresh.tick() => inner.report(&object, &mut tracker).await,
        }
    }
}

/// What one resource's task remembers between syncs.
#[derive(Default)]
struct Tracker {
    state: State,
    /// The status last written, if the write succeeded.
    written: Option<crate::resources::PluginStatus>,
    /// The last failure may pass by itself (a source not created yet, an
    /// access the team has not granted yet): look again soon, and load the
    /// same content again rather than take its failure as settled.
    retry_soon: bool,
    /// The last warning Event: the same warning again is not recorded
    /// (a retried refusal would otherwise repeat it every few seconds).
    last_warning: Option<String>,
    /// The kinds the serving version of a Plugin reads, asked about again
    /// at every poll: access revoked since unloads it.
    reads: Vec<ResourceKind>,
    shadow: super::shadowing::ShadowTrack,
}

impl Inner {
    /// Fetches, loads and reports one resource; returns when to look again.
    async fn sync(&self, object: &PluginObject, tracker: &mut Tracker) -> Duration {
        let (origin, spec) = (&object.origin, &object.spec);
        tracker.state.generation = object.generation;
        let shadow_poll = spec.shadow.as_ref().map(|s| poll_interval(&s.module));
        let poll = poll_interval(&spec.module).min(shadow_poll.unwrap_or(Duration::MAX));
        if spec.suspend {
            let unloaded = self.set.lock().remove(origin);
            tracker.state.suspended = true;
            tracker.state.serving = None;
            tracker.state.failed = None;
            self.sync_shadow(object, &mut tracker.shadow, None).await;
            if let Some(plugin) = unloaded {
                let note = format!("spec.suspend is true: {plugin} unloaded");
                self.reporting.event(object, false, "Suspended", note).await;
            }
            self.report(object, tracker).await;
            return poll;
        }
        tracker.state.suspended = false;
        let again = std::mem::take(&mut tracker.retry_soon);
        // What the tag resolved to last, here or (after a restart) in the
        // status: served from the blob cache while the registry is down.
        let last = tracker
            .state
            .resolved
            .clone()
            .or_else(|| object.status.as_ref().and_then(|s| s.resolved.clone()));
        let mut stale = None;
        let outcome = match self.place(object) {
            Err(error) => Some(Outcome::FetchFailed(error)),
            Ok(place) => match self
                .fetcher
                .fetch(&spec.module, &place, last.as_ref())
                .await
            {
                Ok(fetched) => {
                    stale = fetched.stale.clone().map(|e| (e, fetched.digest.clone()));
                    if let Some((reference, digest)) = &fetched.resolved {
                        let moved =
                            tracker.state.resolved.as_ref().map(|r| &r.digest) != Some(digest);
                        if moved {
                            tracker.state.resolved = Some(Resolved {
                                reference: reference.clone(),
                                digest: digest.clone(),
                                time: report::now(),
                            });
                        }
                    }
                    let fingerprint = fingerprint(&fetched, spec);
                    // A failure that may pass is tried again; what serves
                    // is never loaded twice.
                    let settled = {
                        let mut set = self.set.lock();
                        set.is_current(origin, fingerprint)
                            && !(again && set.failure(origin).is_some())
                    };
                    if settled {
                        self.recheck(object, &place, fingerprint, &fetched, &tracker.reads)
                            .await
                    } else {
                        Some(self.load(object, &place, fetched, fingerprint).await)
                    }
                }
                Err(error) => {
                    let fingerprint = fetch_fingerprint(&error);
                    (!self.set.lock().is_current(origin, fingerprint))
                        .then_some(Outcome::FetchFailed(error))
                }
            },
        };
        match outcome {
            Some(outcome) => self.record(object, tracker, outcome).await,
            // Nothing new; but the content may have gone back to what
            // serves, which clears the failure.
            None => {
                if self.set.lock().failure(origin).is_none() {
                    tracker.state.failed = None;
                }
            }
        }
        if let Some((error, digest)) = stale {
            self.note_stale(object, tracker, error, digest).await;
        }
        let place = self.place(object).ok();
        self.sync_shadow(object, &mut tracker.shadow, place.as_ref())
            .await;
        self.report(object, tracker).await;
        // A source that could not be fetched (a registry down, a ConfigMap
        // not created yet) is tried again soon, as is a refusal that may
        // pass (access not granted yet).
        let fetch_failed = tracker
            .state
            .failed
            .as_ref()
            .is_some_and(|f| f.digest.is_empty());
        if fetch_failed || tracker.retry_soon {
            RETRY.min(poll)
        } else {
            poll
        }
    }

    /// The registry failed and the cached `digest` the reference last
    /// resolved to was used instead: serving, but degraded, and retried soon.
    async fn note_stale(
        &self,
        object: &PluginObject,
        tracker: &mut Tracker,
        error: FetchError,
        digest: String,
    ) {
        let message = format!("{} (serving {digest} from the cache)", error.message);
        tracker.state.failed = Some(Failed {
            digest: String::new(),
            reason: error.reason.into(),
            message: report::truncate(message.clone()),
            time: report::now(),
        });
        let note = format!("{}: {message}", error.reason);
        if tracker.last_warning.as_ref() != Some(&note) {
            self.reporting
                .event(object, true, "LoadFailed", note.clone())
                .await;
            tracker.last_warning = Some(note);
        }
    }

    /// Where the resource's sources are read: the host's namespace as the
    /// host, or a Plugin's namespace as its ServiceAccount.
    fn place(&self, object: &PluginObject) -> Result<Place, FetchError> {
        let Some(account) = &object.spec.account else {
            return Ok(self.fetcher.host.clone());
        };
        // The CRD's pattern refuses these; an older CRD might not have.
        ServiceAccount::checked(&account.namespace, &account.name).map_err(|e| FetchError {
            reason: "InvalidSpec",
            message: format!("spec.serviceAccountName: {e}"),
        })?;
        let impersonation = self.impersonation.as_ref().ok_or_else(|| FetchError {
            reason: "ImpersonationDenied",
            message: "this host does not act as ServiceAccounts".into(),
        })?;
        let client = impersonation.client(account).map_err(|e| FetchError {
            reason: "ImpersonationDenied",
            message: format!(
                "cannot build a client acting as {account}: {}",
                crate::ops::error_chain(&e)
            ),
        })?;
        Ok(Place {
            client,
            namespace: account.namespace.clone(),
        })
    }

    /// Compiles, validates and checks the grants of fetched content (and a
    /// Plugin's access), then serves it or records the failure.
    async fn load(
        &self,
        object: &PluginObject,
        place: &Place,
        fetched: Fetched,
        fingerprint: Fingerprint,
    ) -> Outcome {
        let (origin, spec) = (&object.origin, &object.spec);
        let settings = spec
            .settings
            .clone()
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string();
        let (label, runtime) = (origin.to_string(), self.runtime.clone());
        let (component, grant) = (fetched.component.clone(), spec.grant());
        let permit = self.loads.acquire().await;
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || {
            loader::load_component(&runtime, &label, &component, settings, grant)
        })
        .await;
        drop(permit);
        let (mut retry, mut reads) = (false, Vec::new());
        let result: Result<LoadedPlugin, Failure> = match loaded {
            Ok(Ok(mut loaded)) => match self.admit(object, place, &loaded).await {
                Ok(kinds) => {
                    reads = kinds;
                    loaded.dry_run = spec.dry_run;
                    if let Some(account) = &spec.account {
                        // Teams may run plugins of the same name.
                        loaded.id = format!("{}/{}", account.namespace, loaded.id);
                        loaded.identity = Some(account.clone());
                    }
                    Ok(loaded)
                }
                Err(Denied::Refused(failure)) => {
                    retry = failure.kind != "grant_missing";
                    Err(failure)
                }
                Err(Denied::Unanswered(message)) => {
                    retry = true;
                    Err(Failure {
                        kind: "access_check",
                        message,
                    })
                }
            },
            Ok(Err(error)) => Err(Failure {
                kind: error.metric_label(),
                message: crate::ops::error_chain(&error),
            }),
            Err(_) => Err(Failure {
                kind: "interrupted",
                message: "plugin loading was interrupted".into(),
            }),
        };
        let elapsed = started.elapsed();
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
                fetched: Box::new(fetched),
                elapsed,
                reads,
            },
            Err(failure) => Outcome::LoadFailed {
                failure,
                digest: fetched.digest,
                still: serving.map(|s| format!("{} {}", s.name, s.version)),
                retry,
            },
        }
    }

    /// Asks again whether a serving Plugin's account may read what it
    /// reads; if no longer, unloads it (served again once access is back:
    /// the failure is retried).
    async fn recheck(
        &self,
        object: &PluginObject,
        place: &Place,
        fingerprint: Fingerprint,
        fetched: &Fetched,
        reads: &[ResourceKind],
    ) -> Option<Outcome> {
        object.spec.account.as_ref()?;
        let origin = &object.origin;
        self.set.lock().serving(origin)?;
        let failure = match access::check_reads(&place.client, &place.namespace, reads).await {
            Ok(()) | Err(Denied::Unanswered(_)) => return None,
            Err(Denied::Refused(failure)) => failure,
        };
        let mut set = self.set.lock();
        let unloaded = set.remove(origin);
        set.fail(origin, fingerprint, failure.clone());
        drop(set);
        tracing::warn!(resource = %origin, plugin = ?unloaded, error = %failure.message, "access revoked: plugin unloaded");
        Some(Outcome::LoadFailed {
            failure,
            digest: fetched.digest.clone(),
            still: None,
            retry: true,
        })
    }

    /// Whether a loaded plugin may serve for `object`: its declaration fits
    /// the grants; a Plugin writes no cluster-scoped kind and its account
    /// may read what the plugin reads.
    pub(super) async fn admit(
        &self,
        object: &PluginObject,
        place: &Place,
        loaded: &LoadedPlugin,
    ) -> Result<Vec<ResourceKind>, Denied> {
        let info = loaded.plugin.info();
        let refused = |kind, message| Denied::Refused(Failure { kind, message });
        fits(info, &object.spec.grants).map_err(|m| refused("grant_missing", m))?;
        let Some(account) = &object.spec.account else {
            return Ok(Vec::new());
        };
        let manager =
            crate::contract::field_manager(&format!("{}/{}", account.namespace, info.name));
        if manager.len() > MAX_FIELD_MANAGER {
            let message = format!(
                "field manager {manager:?} would be longer than {MAX_FIELD_MANAGER} bytes: shorten the plugin's name or the namespace's"
            );
            return Err(refused("name_too_long", message));
        }
        if let Some(kind) = access::cluster_scoped_writes(&self.registry, info) {
            let message = format!(
                "plugin {} writes {kind}, which is cluster-scoped: a Plugin acts only in its namespace",
                info.name
            );
            return Err(refused("cluster_scoped_write", message));
        }
        let kinds: Vec<ResourceKind> = crate::controller::kinds_read(&self.registry, info);
        access::check_reads(&place.client, &place.namespace, &kinds).await?;
        Ok(kinds)
    }

    /// Updates the tracked state with an outcome and records its Event.
    async fn record(&self, object: &PluginObject, tracker: &mut Tracker, outcome: Outcome) {
        let origin = &object.origin;
        let state = &mut tracker.state;
        match outcome {
            Outcome::Served {
                served,
                fetched,
                elapsed,
                reads,
            } => {
                tracker.reads = reads;
                let info = self.set.lock().serving(origin).cloned();
                let Some(info) = info else { return };
                let ms = elapsed.as_millis();
                let (reason, note) = match &served {
                    Served::Loaded { .. } => (
                        "Loaded",
                        format!(
                            "{} {} loaded from {} in {ms} ms",
                            info.name, info.version, fetched.digest
                        ),
                    ),
                    Served::Reloaded { previous, .. } | Served::Renamed { previous, .. } => {
                        let old = state
                            .serving
                            .as_ref()
                            .map_or(previous.digest.as_str(), |s| s.digest.as_str());
                        (
                            "Swapped",
                            format!(
                                "{} {} ({old}) replaced by {} {} ({}) in {ms} ms",
                                previous.name,
                                previous.version,
                                info.name,
                                info.version,
                                fetched.digest
                            ),
                        )
                    }
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
                tracker.last_warning = None;
                self.reporting.event(object, false, reason, note).await;
            }
            Outcome::LoadFailed {
                failure,
                digest,
                still,
                retry,
            } => {
                tracker.retry_soon = retry;
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
                let refusal = matches!(
                    reason,
                    "GrantMissing"
                        | "ClusterScopedWrite"
                        | "ReadNotPermitted"
                        | "ImpersonationDenied"
                );
                let event = if refusal { "Refused" } else { "LoadFailed" };
                if tracker.last_warning.as_ref() != Some(&note) {
                    self.reporting
                        .event(object, true, event, note.clone())
                        .await;
                    tracker.last_warning = Some(note);
                }
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
                let event = if reason == "ImpersonationDenied" {
                    "Refused"
                } else {
                    "LoadFailed"
                };
                self.reporting.event(object, true, event, note).await;
            }
        }
    }

    /// Writes the status (with the serving version's counts) if it changed
    /// since the last successful write.
    async fn report(&self, object: &PluginObject, tracker: &mut Tracker) {
        let state = &mut tracker.state;
        let tally = state.serving.as_ref().and_then(|serving| {
            let id = match object.namespace() {
                Some(ns) => format!("{ns}/{}", serving.name),
                None => serving.name.clone(),
            };
            self.tallies.get(&id)
        });
        let tally = tally.unwrap_or_default();
        state.counts = crate::resources::Counts {
            reconciles: tally.reconciles,
            errors: tally.errors,
            refused: tally.refused,
            writes: tally.writes,
        };
        state.last_reconcile_time = tally.last.map(Time);
        state.shadow = self.shadow_status(object, &mut tracker.shadow).await;
        let previous = tracker.written.as_ref().or(object.status.as_ref());
        let status = tracker.state.status(previous);
        if tracker.written.as_ref() == Some(&status) {
            return;
        }
        if self.reporting.status(object, &status).await {
            tracker.written = Some(status);
        }
    }
}

/// What one load or fetch came to.
enum Outcome {
    Served {
        served: Served,
        fetched: Box<Fetched>,
        elapsed: Duration,
        /// The kinds a Plugin's account was found allowed to read.
        reads: Vec<ResourceKind>,
    },
    LoadFailed {
        failure: Failure,
        digest: String,
        still: Option<String>,
        /// The failure may pass without a change to the resource.
        retry: bool,
    },
    FetchFailed(FetchError),
}
