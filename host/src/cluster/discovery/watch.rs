//! Watching for kinds appearing and disappearing.
//!
//! [`kind_changes`] watches CustomResourceDefinitions and APIServices with
//! kube-runtime's watcher and says when discovery should re-run (see
//! [`run_rediscovery`](super::run_rediscovery)). If the host may not watch one
//! of them (403) it says so once, and re-discovery falls back to polling.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tracing::{debug, info, warn};

use super::{DiscoveryError, causes};

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
                    source = %causes(&error),
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
                source = %causes(&error),
                "watch failed; retrying with backoff"
            );
        } else {
            debug!(resource = self.resource, source = %causes(&error), "watch still failing");
        }
        Vec::new()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn crd(group: &str, kind: &str, established: bool) -> CrdState {
        CrdState {
            group: group.into(),
            kind: kind.into(),
            established,
            generation: Some(1),
        }
    }

    pub(in crate::cluster::discovery) fn established(group: &str, kind: &str) -> KindChange {
        KindChange::CrdEstablished {
            group: group.into(),
            kind: kind.into(),
        }
    }

    pub(in crate::cluster::discovery) fn removed(group: &str, kind: &str) -> KindChange {
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
}
