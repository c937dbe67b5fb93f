//! Kinds appearing and disappearing while the host runs.
//!
//! [`kind_changes`] watches CustomResourceDefinitions and APIServices and
//! says when discovery should re-run; [`run_rediscovery`] re-runs it, a
//! little after a burst of changes, swaps the [`SharedRegistry`] and yields
//! what changed. If the host may not watch one of the two (403), discovery
//! falls back to re-running every [`RediscoveryOptions::fallback_period`].

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::{Discovered, DiscoveryError, KindRegistry, RegistryDiff, SharedRegistry, discover};

/// First delay before re-running a discovery that failed or did not yet show
/// an expected change; doubles up to [`MAX_RETRY`].
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How long a CRD may be established (or deleted) without discovery agreeing
/// before the host stops re-checking and says so.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A change in the cluster after which discovery should re-run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindChange {
    /// A CRD serving `group`/`kind` is established, or its spec changed.
    CrdEstablished { group: String, kind: String },
    /// A CRD was deleted or is no longer established.
    CrdRemoved { group: String, kind: String },
    /// An APIService appeared, disappeared or changed availability.
    ApiService {
        group: String,
        version: String,
        available: bool,
    },
    /// The host may not watch `resource`; until it may, discovery re-runs
    /// periodically instead.
    WatchForbidden { resource: &'static str },
    /// The watch of `resource` works again.
    WatchRestored { resource: &'static str },
}

/// Timing of [`run_rediscovery`].
#[derive(Clone, Debug)]
pub struct RediscoveryOptions {
    /// Quiet time after a change before discovery runs, so a burst of
    /// changes costs one discovery.
    pub debounce: Duration,
    /// Longest wait from the first change of a burst to discovery.
    pub max_delay: Duration,
    /// How often discovery re-runs while a watch is forbidden.
    pub fallback_period: Duration,
}

impl Default for RediscoveryOptions {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
            fallback_period: Duration::from_secs(60),
        }
    }
}

/// Watches CustomResourceDefinitions and APIServices (with kube-runtime's
/// watcher, backing off on errors) and yields a [`KindChange`] whenever
/// discovery should re-run. Never ends.
///
/// The first list of each yields the state it finds (every established CRD,
/// every APIService), so one re-discovery right after start-up also covers
/// a CRD established between the initial discovery and the watch.
pub fn kind_changes(client: Client) -> impl Stream<Item = KindChange> + Send + 'static {
    let crds = track(
        watcher(
            Api::<CustomResourceDefinition>::all(client.clone()),
            Default::default(),
        ),
        "customresourcedefinitions",
        crd_state,
        crd_changes,
    );
    let api_services = track(
        watcher(Api::<APIService>::all(client), Default::default()),
        "apiservices",
        api_service_state,
        api_service_changes,
    );
    futures::stream::select(crds, api_services)
}

/// Re-runs discovery after each burst of `changes`, makes the result current
/// in `registry` and yields the difference when there is one.
///
/// After a CRD is established (or deleted) discovery is re-run, with backoff,
/// until it agrees; likewise after an APIService becomes available. A failed
/// discovery keeps the current registry and is retried with backoff, and the
/// kinds of a group that fails to answer are kept (see
/// [`KindRegistry::rediscovered`]). Ends when `changes` ends and nothing is
/// pending.
pub fn run_rediscovery<S>(
    client: Client,
    registry: SharedRegistry,
    changes: S,
    options: RediscoveryOptions,
) -> impl Stream<Item = RegistryDiff> + Send + 'static
where
    S: Stream<Item = KindChange> + Send + 'static,
{
    rediscover_with(
        move || {
            let client = client.clone();
            async move { discover(&client).await }
        },
        registry,
        changes,
        options,
    )
}

fn rediscover_with<F, Fut, S>(
    discover: F,
    registry: SharedRegistry,
    changes: S,
    options: RediscoveryOptions,
) -> impl Stream<Item = RegistryDiff> + Send + 'static
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<Discovered, DiscoveryError>> + Send,
    S: Stream<Item = KindChange> + Send + 'static,
{
    let state = Rediscovery {
        discover,
        registry,
        changes: Box::pin(changes),
        changes_done: false,
        schedule: Schedule::new(options),
    };
    futures::stream::unfold(state, |mut state| async move {
        let diff = state.next_diff().await?;
        Some((diff, state))
    })
}

struct Rediscovery<F, S> {
    discover: F,
    registry: SharedRegistry,
    changes: std::pin::Pin<Box<S>>,
    changes_done: bool,
    schedule: Schedule,
}

impl<F, Fut, S> Rediscovery<F, S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Discovered, DiscoveryError>>,
    S: Stream<Item = KindChange>,
{
    async fn next_diff(&mut self) -> Option<RegistryDiff> {
        loop {
            let deadline = self.schedule.deadline();
            if self.changes_done && deadline.is_none() {
                return None;
            }
            // Far enough to never fire; the branch is disabled anyway.
            let wake = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                change = self.changes.next(), if !self.changes_done => match change {
                    Some(change) => {
                        debug!(?change, "kinds may have changed");
                        self.schedule.on_change(&change, Instant::now());
                    }
                    None => self.changes_done = true,
                },
                () = sleep_until(wake), if deadline.is_some() => {
                    if let Some(diff) = self.rediscover().await {
                        return Some(diff);
                    }
                }
            }
        }
    }

    async fn rediscover(&mut self) -> Option<RegistryDiff> {
        let started = Instant::now();
        match (self.discover)().await {
            Ok(discovered) => {
                let next = KindRegistry::rediscovered(discovered, &self.registry.load());
                let diff = self.registry.replace(next);
                self.schedule
                    .on_discovered(Instant::now(), Some(&self.registry.load()));
                if diff.is_empty() {
                    debug!(elapsed = ?started.elapsed(), "re-discovery found no change");
                    return None;
                }
                info!(
                    added = ?names(&diff.added),
                    removed = ?names(&diff.removed),
                    changed = diff.changed.len(),
                    elapsed = ?started.elapsed(),
                    "kinds changed"
                );
                Some(diff)
            }
            Err(error) => {
                self.schedule.on_discovered(Instant::now(), None);
                warn!(
                    error = %error,
                    source = %error_chain(&error),
                    retry_in = ?self.schedule.retry_delay,
                    "re-discovery failed; keeping the kinds found before"
                );
                None
            }
        }
    }
}

fn names(kinds: &[super::KindInfo]) -> Vec<String> {
    kinds
        .iter()
        .map(|k| format!("{}/{}", k.resource.api_version(), k.resource.kind))
        .collect()
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    chain.join(": ")
}

/// Something discovery must show before the host stops re-checking.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Present { group: String, kind: String },
    Absent { group: String, kind: String },
    Answers { group: String, version: String },
}

impl Expect {
    fn met(&self, registry: &KindRegistry) -> bool {
        match self {
            Self::Present { group, kind } => registry.get(group, kind).is_some(),
            Self::Absent { group, kind } => registry.get(group, kind).is_none(),
            Self::Answers { group, version } => !registry
                .failures()
                .iter()
                .any(|f| &f.group == group && &f.version == version),
        }
    }

    /// Whether `other` is about the same thing (and so replaces `self`).
    fn same_subject(&self, other: &Expect) -> bool {
        match (self, other) {
            (
                Self::Present { group, kind } | Self::Absent { group, kind },
                Self::Present { group: g, kind: k } | Self::Absent { group: g, kind: k },
            ) => group == g && kind == k,
            (
                Self::Answers { group, version },
                Self::Answers {
                    group: g,
                    version: v,
                },
            ) => group == g && version == v,
            _ => false,
        }
    }
}

/// When discovery should run next: after a burst of changes, on retry, or
/// periodically while a watch is forbidden. Pure, so it is tested without a
/// clock.
#[derive(Debug)]
struct Schedule {
    options: RediscoveryOptions,
    /// First and last change of the current burst.
    burst: Option<(Instant, Instant)>,
    retry_at: Option<Instant>,
    retry_delay: Duration,
    poll_at: Option<Instant>,
    forbidden: BTreeSet<&'static str>,
    expectations: Vec<(Expect, Instant)>,
}

impl Schedule {
    fn new(options: RediscoveryOptions) -> Self {
        Self {
            options,
            burst: None,
            retry_at: None,
            retry_delay: MIN_RETRY,
            poll_at: None,
            forbidden: BTreeSet::new(),
            expectations: Vec::new(),
        }
    }

    fn on_change(&mut self, change: &KindChange, now: Instant) {
        let expect = match change {
            KindChange::CrdEstablished { group, kind } => Some(Expect::Present {
                group: group.clone(),
                kind: kind.clone(),
            }),
            KindChange::CrdRemoved { group, kind } => Some(Expect::Absent {
                group: group.clone(),
                kind: kind.clone(),
            }),
            KindChange::ApiService {
                group,
                version,
                available,
            } => {
                let answers = Expect::Answers {
                    group: group.clone(),
                    version: version.clone(),
                };
                if !available {
                    self.expectations.retain(|(e, _)| !e.same_subject(&answers));
                }
                available.then_some(answers)
            }
            KindChange::WatchForbidden { resource } => {
                self.forbidden.insert(resource);
                self.poll_at
                    .get_or_insert(now + self.options.fallback_period);
                return;
            }
            KindChange::WatchRestored { resource } => {
                self.forbidden.remove(resource);
                if self.forbidden.is_empty() {
                    self.poll_at = None;
                }
                return;
            }
        };
        if let Some(expect) = expect {
            self.expectations.retain(|(e, _)| !e.same_subject(&expect));
            self.expectations.push((expect, now));
        }
        let first = self.burst.map_or(now, |(first, _)| first);
        self.burst = Some((first, now));
    }

    fn deadline(&self) -> Option<Instant> {
        let burst = self.burst.map(|(first, last)| {
            (last + self.options.debounce).min(first + self.options.max_delay)
        });
        [burst, self.retry_at, self.poll_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// After a discovery: `registry` is the new one, or `None` if it failed.
    fn on_discovered(&mut self, now: Instant, registry: Option<&KindRegistry>) {
        self.burst = None;
        if !self.forbidden.is_empty() {
            self.poll_at = Some(now + self.options.fallback_period);
        }
        if let Some(registry) = registry {
            self.expectations.retain(|(expect, since)| {
                if expect.met(registry) {
                    return false;
                }
                if now.duration_since(*since) >= EXPECTATION_TIMEOUT {
                    warn!(
                        ?expect,
                        waited = ?now.duration_since(*since),
                        "discovery still does not reflect a change to a CRD or APIService; giving up"
                    );
                    return false;
                }
                true
            });
            if self.expectations.is_empty() {
                self.retry_at = None;
                self.retry_delay = MIN_RETRY;
                return;
            }
        }
        self.retry_at = Some(now + self.retry_delay);
        self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
    }
}

/// What the watch of CRDs remembers per CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CrdState {
    group: String,
    kind: String,
    /// Established with at least one served version.
    established: bool,
    generation: Option<i64>,
}

fn crd_state(crd: &CustomResourceDefinition) -> CrdState {
    let established = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    CrdState {
        group: crd.spec.group.clone(),
        kind: crd.spec.names.kind.clone(),
        established: established && crd.spec.versions.iter().any(|v| v.served),
        generation: crd.metadata.generation,
    }
}

fn crd_changes(old: Option<&CrdState>, new: Option<&CrdState>) -> Vec<KindChange> {
    let old = old.filter(|s| s.established);
    let new = new.filter(|s| s.established);
    let mut changes = Vec::new();
    if let Some(old) = old
        && new.is_none_or(|new| (&new.group, &new.kind) != (&old.group, &old.kind))
    {
        changes.push(KindChange::CrdRemoved {
            group: old.group.clone(),
            kind: old.kind.clone(),
        });
    }
    if let Some(new) = new
        && old != Some(new)
    {
        changes.push(KindChange::CrdEstablished {
            group: new.group.clone(),
            kind: new.kind.clone(),
        });
    }
    changes
}

/// What the watch of APIServices remembers per APIService.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ApiServiceState {
    group: String,
    version: String,
    /// The `Available` condition; `None` until the aggregator has set it,
    /// so that its first verdict is a change of its own.
    available: Option<bool>,
}

fn api_service_state(api_service: &APIService) -> ApiServiceState {
    let spec = api_service.spec.as_ref();
    let available = api_service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "Available"))
        .map(|c| c.status == "True");
    ApiServiceState {
        group: spec.and_then(|s| s.group.clone()).unwrap_or_default(),
        version: spec.and_then(|s| s.version.clone()).unwrap_or_default(),
        available,
    }
}

fn api_service_changes(
    old: Option<&ApiServiceState>,
    new: Option<&ApiServiceState>,
) -> Vec<KindChange> {
    let (state, available) = match (old, new) {
        (_, Some(new)) => (new, new.available == Some(true)),
        (Some(old), None) => (old, false),
        (None, None) => return Vec::new(),
    };
    vec![KindChange::ApiService {
        group: state.group.clone(),
        version: state.version.clone(),
        available,
    }]
}

/// Turns a watcher's events into [`KindChange`]s through a [`Tracker`].
fn track<K, S>(
    events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    resource: &'static str,
    state: fn(&K) -> S,
    changes: fn(Option<&S>, Option<&S>) -> Vec<KindChange>,
) -> impl Stream<Item = KindChange> + Send + 'static
where
    K: ResourceExt + Send + 'static,
    S: Clone + PartialEq + Send + 'static,
{
    let mut tracker = Tracker::new(resource, changes);
    events.default_backoff().flat_map(move |event| {
        let event = event.map(|event| match event {
            watcher::Event::Apply(o) => watcher::Event::Apply((o.name_any(), state(&o))),
            watcher::Event::Delete(o) => watcher::Event::Delete((o.name_any(), state(&o))),
            watcher::Event::InitApply(o) => watcher::Event::InitApply((o.name_any(), state(&o))),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        });
        futures::stream::iter(tracker.on_event(event))
    })
}

/// The last known state of each object of one watched resource, turning
/// watch events into transitions. A re-list (after `410 Gone` or an error)
/// is compared with what was known, so nothing that changed while the watch
/// was down is missed.
struct Tracker<S> {
    resource: &'static str,
    changes: fn(Option<&S>, Option<&S>) -> Vec<KindChange>,
    known: HashMap<String, S>,
    listing: Option<HashMap<String, S>>,
    forbidden: bool,
    failing: bool,
}

impl<S: Clone + PartialEq> Tracker<S> {
    fn new(resource: &'static str, changes: fn(Option<&S>, Option<&S>) -> Vec<KindChange>) -> Self {
        Self {
            resource,
            changes,
            known: HashMap::new(),
            listing: None,
            forbidden: false,
            failing: false,
        }
    }

    fn on_event(
        &mut self,
        event: Result<watcher::Event<(String, S)>, watcher::Error>,
    ) -> Vec<KindChange> {
        let event = match event {
            Ok(event) => event,
            Err(source) => return self.on_error(source),
        };
        let mut out = Vec::new();
        if !matches!(event, watcher::Event::Init | watcher::Event::InitApply(_)) {
            self.failing = false;
            if std::mem::take(&mut self.forbidden) {
                info!(
                    resource = self.resource,
                    "watch allowed again; kind changes are followed live"
                );
                out.push(KindChange::WatchRestored {
                    resource: self.resource,
                });
            }
        }
        match event {
            watcher::Event::Apply((name, state)) => {
                let old = self.known.insert(name, state.clone());
                if old.as_ref() != Some(&state) {
                    out.extend((self.changes)(old.as_ref(), Some(&state)));
                }
            }
            watcher::Event::Delete((name, state)) => {
                let old = self.known.remove(&name).unwrap_or(state);
                out.extend((self.changes)(Some(&old), None));
            }
            watcher::Event::Init => self.listing = Some(HashMap::new()),
            watcher::Event::InitApply((name, state)) => {
                self.listing.get_or_insert_default().insert(name, state);
            }
            watcher::Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
                let old = std::mem::replace(&mut self.known, listed);
                let mut names: Vec<&String> = old.keys().chain(self.known.keys()).collect();
                names.sort();
                names.dedup();
                for name in names {
                    let (before, after) = (old.get(name), self.known.get(name));
                    if before != after {
                        out.extend((self.changes)(before, after));
                    }
                }
            }
        }
        out
    }

    fn on_error(&mut self, source: watcher::Error) -> Vec<KindChange> {
        let error = DiscoveryError::Watch {
            resource: self.resource,
            source,
        };
        if error.status_code() == Some(403) {
            if !self.forbidden {
                self.forbidden = true;
                warn!(
                    resource = self.resource,
                    error = %error,
                    source = %error_chain(&error),
                    "not allowed to watch; new and removed kinds are found by periodic re-discovery instead"
                );
                return vec![KindChange::WatchForbidden {
                    resource: self.resource,
                }];
            }
            debug!(resource = self.resource, "watch still forbidden");
        } else if !self.failing {
            self.failing = true;
            warn!(
                resource = self.resource,
                error = %error,
                source = %error_chain(&error),
                "watch failed; retrying with backoff"
            );
        } else {
            debug!(resource = self.resource, source = %error_chain(&error), "watch still failing");
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::discovery::{DiscoveryMethod, GroupFailure, KindInfo};
    use crate::plugin::ResourceKind;

    fn crd(group: &str, kind: &str, established: bool) -> CrdState {
        CrdState {
            group: group.into(),
            kind: kind.into(),
            established,
            generation: Some(1),
        }
    }

    fn established(group: &str, kind: &str) -> KindChange {
        KindChange::CrdEstablished {
            group: group.into(),
            kind: kind.into(),
        }
    }

    fn removed(group: &str, kind: &str) -> KindChange {
        KindChange::CrdRemoved {
            group: group.into(),
            kind: kind.into(),
        }
    }

    fn ok(
        event: watcher::Event<(&str, CrdState)>,
    ) -> Result<watcher::Event<(String, CrdState)>, watcher::Error> {
        Ok(match event {
            watcher::Event::Apply((n, s)) => watcher::Event::Apply((n.into(), s)),
            watcher::Event::Delete((n, s)) => watcher::Event::Delete((n.into(), s)),
            watcher::Event::InitApply((n, s)) => watcher::Event::InitApply((n.into(), s)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitDone => watcher::Event::InitDone,
        })
    }

    fn api_error(code: u16) -> watcher::Error {
        watcher::Error::InitialListFailed(kube::Error::Api(
            kube::core::Status::failure("denied", "Forbidden")
                .with_code(code)
                .boxed(),
        ))
    }

    #[test]
    fn crd_tracker_reports_establishment_once_and_removal() {
        let mut t = Tracker::new("customresourcedefinitions", crd_changes);
        // The first list reports what is already established.
        assert!(t.on_event(ok(watcher::Event::Init)).is_empty());
        t.on_event(ok(watcher::Event::InitApply((
            "a",
            crd("a.dev", "A", true),
        ))));
        t.on_event(ok(watcher::Event::InitApply((
            "b",
            crd("b.dev", "B", false),
        ))));
        assert_eq!(
            t.on_event(ok(watcher::Event::InitDone)),
            [established("a.dev", "A")]
        );

        // Accepted names, then established: only the latter matters.
        assert!(
            t.on_event(ok(watcher::Event::Apply(("c", crd("c.dev", "C", false)))))
                .is_empty()
        );
        let c = crd("c.dev", "C", true);
        assert_eq!(
            t.on_event(ok(watcher::Event::Apply(("c", c.clone())))),
            [established("c.dev", "C")]
        );
        assert!(
            t.on_event(ok(watcher::Event::Apply(("c", c.clone()))))
                .is_empty()
        );
        // A spec change (new generation) re-runs discovery.
        let c2 = CrdState {
            generation: Some(2),
            ..c.clone()
        };
        assert_eq!(
            t.on_event(ok(watcher::Event::Apply(("c", c2.clone())))),
            [established("c.dev", "C")]
        );
        assert_eq!(
            t.on_event(ok(watcher::Event::Delete(("c", c2)))),
            [removed("c.dev", "C")]
        );
        // Deleting a CRD that never was established changes no kind.
        assert!(
            t.on_event(ok(watcher::Event::Delete(("b", crd("b.dev", "B", false)))))
                .is_empty()
        );
    }

    #[test]
    fn crd_tracker_compares_a_relist_with_what_it_knew() {
        let mut t = Tracker::new("customresourcedefinitions", crd_changes);
        t.on_event(ok(watcher::Event::Init));
        t.on_event(ok(watcher::Event::InitApply((
            "a",
            crd("a.dev", "A", true),
        ))));
        t.on_event(ok(watcher::Event::InitApply((
            "b",
            crd("b.dev", "B", true),
        ))));
        assert_eq!(t.on_event(ok(watcher::Event::InitDone)).len(), 2);
        // While the watch was down, `a` was deleted and `d` created.
        t.on_event(ok(watcher::Event::Init));
        t.on_event(ok(watcher::Event::InitApply((
            "b",
            crd("b.dev", "B", true),
        ))));
        t.on_event(ok(watcher::Event::InitApply((
            "d",
            crd("d.dev", "D", true),
        ))));
        assert_eq!(
            t.on_event(ok(watcher::Event::InitDone)),
            [removed("a.dev", "A"), established("d.dev", "D")]
        );
    }

    #[test]
    fn forbidden_watch_is_reported_once_and_restored() {
        let mut t = Tracker::new("apiservices", crd_changes);
        let forbidden = KindChange::WatchForbidden {
            resource: "apiservices",
        };
        assert_eq!(t.on_event(Err(api_error(403))), [forbidden]);
        assert!(t.on_event(Err(api_error(403))).is_empty());
        assert!(t.on_event(Err(api_error(500))).is_empty());
        t.on_event(ok(watcher::Event::Init));
        assert_eq!(
            t.on_event(ok(watcher::Event::InitDone)),
            [KindChange::WatchRestored {
                resource: "apiservices"
            }]
        );
    }

    #[test]
    fn api_service_changes_report_availability() {
        let state = |available| ApiServiceState {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            available,
        };
        let change = |available| KindChange::ApiService {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            available,
        };
        assert_eq!(
            api_service_changes(None, Some(&state(None))),
            [change(false)]
        );
        assert_eq!(
            api_service_changes(Some(&state(None)), Some(&state(Some(false)))),
            [change(false)]
        );
        assert_eq!(
            api_service_changes(Some(&state(Some(false))), Some(&state(Some(true)))),
            [change(true)]
        );
        assert_eq!(
            api_service_changes(Some(&state(Some(true))), None),
            [change(false)]
        );
    }

    fn options() -> RediscoveryOptions {
        RediscoveryOptions {
            debounce: Duration::from_millis(200),
            max_delay: Duration::from_secs(1),
            fallback_period: Duration::from_secs(60),
        }
    }

    fn registry_with(kinds: &[(&str, &str)]) -> KindRegistry {
        KindRegistry::new(kinds.iter().map(|(group, kind)| KindInfo {
            resource: ResourceKind {
                group: group.to_string(),
                version: "v1".into(),
                kind: kind.to_string(),
                plural: kind.to_lowercase(),
                namespaced: true,
            },
            verbs: vec!["list".into(), "watch".into()],
            has_status: false,
            versions: vec!["v1".into()],
        }))
    }

    #[test]
    fn a_burst_is_debounced_but_not_forever() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(options());
        assert_eq!(s.deadline(), None);
        s.on_change(&established("a.dev", "A"), t0);
        assert_eq!(s.deadline(), Some(t0 + ms(200)));
        s.on_change(&established("b.dev", "B"), t0 + ms(150));
        assert_eq!(s.deadline(), Some(t0 + ms(350)));
        // Changes every 150 ms would postpone it forever; max_delay caps it.
        s.on_change(&established("c.dev", "C"), t0 + ms(900));
        assert_eq!(s.deadline(), Some(t0 + ms(1000)));
        s.on_discovered(
            t0 + ms(1000),
            Some(&registry_with(&[
                ("a.dev", "A"),
                ("b.dev", "B"),
                ("c.dev", "C"),
            ])),
        );
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn discovery_is_retried_until_it_shows_the_change() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Schedule::new(options());
        s.on_change(&established("a.dev", "A"), t0);
        s.on_discovered(t0 + ms(200), Some(&registry_with(&[])));
        assert_eq!(s.deadline(), Some(t0 + ms(400)));
        s.on_discovered(t0 + ms(400), Some(&registry_with(&[])));
        assert_eq!(s.deadline(), Some(t0 + ms(800)), "backs off");
        s.on_discovered(t0 + ms(800), Some(&registry_with(&[("a.dev", "A")])));
        assert_eq!(s.deadline(), None);

        // A failed discovery is retried even without expectations.
        s.on_discovered(t0 + ms(1000), None);
        assert_eq!(s.deadline(), Some(t0 + ms(1200)));

        // Deleted: retried until absent; gives up after the timeout.
        let mut s = Schedule::new(options());
        s.on_change(&removed("a.dev", "A"), t0);
        s.on_discovered(t0, Some(&registry_with(&[("a.dev", "A")])));
        assert!(s.deadline().is_some());
        s.on_discovered(
            t0 + EXPECTATION_TIMEOUT,
            Some(&registry_with(&[("a.dev", "A")])),
        );
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn an_available_api_service_is_rechecked_until_it_answers() {
        let t0 = Instant::now();
        let mut s = Schedule::new(options());
        let api_service = |available| KindChange::ApiService {
            group: "m.dev".into(),
            version: "v1".into(),
            available,
        };
        let mut failing = registry_with(&[]);
        failing = KindRegistry::rediscovered(
            Discovered {
                kinds: Vec::new(),
                failures: vec![GroupFailure {
                    group: "m.dev".into(),
                    version: "v1".into(),
                    reason: "stale".into(),
                }],
                method: DiscoveryMethod::Aggregated,
            },
            &failing,
        );
        s.on_change(&api_service(true), t0);
        s.on_discovered(t0, Some(&failing));
        assert!(s.deadline().is_some());
        // Unavailable again: nothing to wait for.
        s.on_change(&api_service(false), t0);
        s.on_discovered(t0, Some(&failing));
        assert_eq!(s.deadline(), None);
    }

    #[test]
    fn forbidden_watches_fall_back_to_polling() {
        let t0 = Instant::now();
        let mut s = Schedule::new(options());
        let crds = "customresourcedefinitions";
        s.on_change(&KindChange::WatchForbidden { resource: crds }, t0);
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(60)));
        s.on_discovered(t0 + Duration::from_secs(60), Some(&registry_with(&[])));
        assert_eq!(s.deadline(), Some(t0 + Duration::from_secs(120)));
        s.on_change(&KindChange::WatchRestored { resource: crds }, t0);
        assert_eq!(s.deadline(), None);
    }

    #[tokio::test]
    async fn a_burst_of_changes_costs_one_discovery_and_yields_the_diff() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let fake = move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(Discovered {
                    kinds: registry_with(&[("a.dev", "A"), ("b.dev", "B")])
                        .iter()
                        .cloned()
                        .collect(),
                    failures: Vec::new(),
                    method: DiscoveryMethod::Aggregated,
                })
            }
        };
        let changes = futures::stream::iter([
            established("a.dev", "A"),
            established("b.dev", "B"),
            KindChange::ApiService {
                group: "a.dev".into(),
                version: "v1".into(),
                available: true,
            },
        ]);
        let registry = SharedRegistry::default();
        let options = RediscoveryOptions {
            debounce: Duration::from_millis(20),
            ..options()
        };
        let diffs: Vec<RegistryDiff> = rediscover_with(fake, registry.clone(), changes, options)
            .collect()
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].added.len(), 2);
        assert!(registry.load().get("b.dev", "B").is_some());
    }
}
