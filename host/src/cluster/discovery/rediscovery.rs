//! Re-running discovery while the host runs.
//!
//! [`run_rediscovery`] re-runs discovery a little after each burst of
//! [`KindChange`]s, swaps the [`SharedRegistry`] and yields what changed. It
//! re-checks until discovery reflects an established or deleted CRD, retries
//! failed discoveries with backoff, and polls every
//! [`RediscoveryOptions::fallback_period`] while a watch is forbidden.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::Client;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};

use super::{
    Discovered, DiscoveryError, KindChange, KindInfo, KindRegistry, RegistryDiff, SharedRegistry,
    causes, discover,
};

/// First delay before re-running a discovery that failed or did not yet show
/// an expected change; doubles up to [`MAX_RETRY`].
const MIN_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// How long a CRD may be established (or deleted) without discovery agreeing
/// before the host says so at WARN (and keeps re-checking).
const EXPECTATION_WARNING: Duration = Duration::from_secs(30);
/// How long the host keeps re-checking (every [`MAX_RETRY`] at most) before
/// it gives up on discovery agreeing: in one CI run a deleted CRD's kinds were
/// still in the registry 30 s after the deletion, when the host used to stop
/// checking.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(300);

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
                    source = %causes(&error),
                    retry_in = ?self.schedule.retry_delay,
                    "re-discovery failed; keeping the kinds found before"
                );
                None
            }
        }
    }
}

fn names(kinds: &[KindInfo]) -> Vec<String> {
    kinds
        .iter()
        .map(|k| format!("{}/{}", k.resource.api_version(), k.resource.kind))
        .collect()
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
    /// What discovery must show, since when, and whether the host already
    /// warned that it does not.
    expectations: Vec<(Expect, Instant, bool)>,
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
                    self.expectations
                        .retain(|(e, ..)| !e.same_subject(&answers));
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
            self.expectations.retain(|(e, ..)| !e.same_subject(&expect));
            self.expectations.push((expect, now, false));
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
            self.expectations.retain_mut(|(expect, since, warned)| {
                if expect.met(registry) {
                    return false;
                }
                let waited = now.duration_since(*since);
                if waited >= EXPECTATION_TIMEOUT {
                    warn!(
                        ?expect,
                        ?waited,
                        "discovery still does not reflect a change to a CRD or APIService; giving up"
                    );
                    return false;
                }
                if waited >= EXPECTATION_WARNING && !*warned {
                    *warned = true;
                    warn!(
                        ?expect,
                        ?waited,
                        "discovery does not reflect a change to a CRD or APIService yet; still checking"
                    );
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::cluster::discovery::watch::tests::{established, removed};
    use crate::cluster::discovery::{DiscoveryMethod, GroupFailure};
    use crate::contract::ResourceKind;

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
        // Past the warning: still checking.
        s.on_discovered(
            t0 + EXPECTATION_WARNING,
            Some(&registry_with(&[("a.dev", "A")])),
        );
        assert!(s.deadline().is_some());
        assert!(s.expectations[0].2, "warned once");
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
