//! `kubewasm replay`: runs a plugin offline over a [recording](crate::recording)
//! and reports the intents each reconcile would make, or, with `--against`,
//! where a new version's reconciles differ from an old one's.
//!
//! The replay does what the live host does, minus the writes:
//!
//! - the cache starts as the recording's initial objects and each event is
//!   applied to it in order; a reconcile reads the cache as of its event,
//!   through the operator's grant (`NAME.scope.json` beside the plugin), and
//!   only the kinds the plugin may read ([`ReplayCache`]);
//! - the initial objects are delivered as the host's first list delivers
//!   them: each as `applied` to the plugins that subscribe to it, and each
//!   owner of an owned child as a `resync`, every object once;
//! - then each event goes to the plugins it reaches, as [`dispatch`] and
//!   [`mapping`] route it live: `applied` or `deleted` to a subscriber,
//!   `resync` to the owner of an owned child and to the targets of a mapped
//!   watch; a host-managed finalizer turns a deletion into `finalizing`
//!   (or no call) as in the worker;
//! - the plugin's clock is fixed at the event's recorded time, so two
//!   replays give byte-identical output.
//!
//! Unlike the live queue, events are not coalesced: every event is
//! reconciled, in the order recorded. A call that fails or traps is
//! reported on its reconcile and the replay goes on.
//!
//! [`dispatch`]: crate::controller::wants
//! [`mapping`]: crate::controller::Router

mod cache;
mod command;
mod report;

pub use cache::ReplayCache;
pub use command::{command, load_version};
pub use report::{Answer, Reconcile, Summary};

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::cluster::cache::ObjectReader;
use crate::cluster::discovery::{KindInfo, KindRegistry, SharedRegistry};
use crate::cluster::object::CachedObject;
use crate::contract::compare;
use crate::contract::intent::{self, Outcome};
use crate::contract::{Event, EventType, ResourceKind};
use crate::controller::{Router, Via};
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::GrantedReader;
use crate::recording::{Change, Recording, rfc3339};
use crate::runtime::{CallError, Clock, ReadAccess};

/// One version of the plugin, ready to replay.
pub struct Version {
    pub loaded: LoadedPlugin,
    /// The recorded kinds it watches (subscriptions, owned and watched
    /// kinds), as `run` resolves them against discovery.
    kinds: Vec<ResourceKind>,
}

impl Version {
    pub fn new(loaded: LoadedPlugin, recording: &Recording) -> Self {
        let registry = SharedRegistry::new(KindRegistry::new(recording.kinds.iter().map(|k| {
            KindInfo {
                resource: k.clone(),
                verbs: vec!["list".into(), "watch".into()],
                has_status: false,
                versions: vec![k.version.clone()],
            }
        })));
        let kinds = crate::controller::kinds_read(&registry, loaded.plugin.info());
        Self { loaded, kinds }
    }

    /// Kinds the plugin names that the recording does not hold (reads of
    /// them fail as reads of a kind the host does not watch).
    pub fn missing_kinds(&self, recording: &Recording) -> Vec<String> {
        let info = self.loaded.plugin.info();
        let held = |group: &str, kind: &str| {
            recording
                .kinds
                .iter()
                .any(|k| k.group == group && k.kind == kind)
        };
        let mut missing: Vec<String> = info
            .subscriptions
            .iter()
            .filter(|s| s.group != "*" && s.kind != "*" && !held(&s.group, &s.kind))
            .map(|s| crate::contract::GroupKind::new(&s.group, &s.kind).to_string())
            .chain(
                info.watched()
                    .filter(|k| !held(&k.group, &k.kind))
                    .map(|k| k.group_kind().to_string()),
            )
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// The calls an event of `object` of `kind` makes for this version: to
    /// the object itself if the plugin wants it, then to what it maps to.
    fn calls(
        &self,
        cache: &ReplayCache,
        kind: &ResourceKind,
        object: &Arc<CachedObject>,
        event: EventType,
    ) -> Vec<Call> {
        let mut calls = Vec::new();
        if crate::controller::wants(&self.loaded, kind, object) {
            calls.push(Call {
                event,
                kind: kind.clone(),
                object: object.clone(),
                via: None,
            });
        }
        let router = Router {
            info: self.loaded.plugin.info(),
            parsed: self.loaded.plugin.subscriptions(),
            grant: &self.loaded.grant,
            kinds: &self.kinds,
        };
        for target in router.targets(cache, kind, object) {
            calls.push(Call {
                event: EventType::Resync,
                kind: target.kind,
                object: target.object,
                via: Some(target.via),
            });
        }
        calls
    }

    /// Makes one call, as the worker would: the finalizer decides the event
    /// (or that there is no call), reads go through the grant, the outcome
    /// is checked against the write scope. Returns the event the plugin is
    /// called with, and its answer.
    fn call(&self, call: &Call, cache: &ReplayCache, time_ms: i64) -> (EventType, Answer) {
        let plugin = &self.loaded.plugin;
        let info = plugin.info();
        let finalizer = info
            .finalizer
            .as_ref()
            .filter(|f| f.covers(&call.kind.group_kind()));
        let Some(event_type) = crate::controller::event_for(finalizer, call.event, &call.object)
        else {
            return (call.event, Answer::NotCalled);
        };
        let event = Event {
            event_type,
            kind: call.kind.clone(),
            object: call.object.clone(),
        };
        let reader: Arc<dyn ObjectReader> = Arc::new(cache.clone());
        let access = ReadAccess {
            reader: GrantedReader::wrap(reader, &self.loaded.grant, &self.loaded.id),
            settings: self.loaded.settings.clone(),
            clock: Clock::Fixed(time_ms),
        };
        let answer = match plugin.reconcile(&event, access) {
            Ok(outcome) => match intent::check_scope(info, &outcome) {
                Ok(()) => Answer::Outcome(outcome),
                Err(violation) => Answer::Failure(format!("refused: {violation}")),
            },
            Err(CallError::Failed { message, .. }) => Answer::Error(message),
            Err(other) => Answer::Failure(crate::ops::error_chain(&other)),
        };
        (event_type, answer)
    }
}

/// One reconcile an event leads to.
#[derive(Clone)]
struct Call {
    event: EventType,
    kind: ResourceKind,
    object: Arc<CachedObject>,
    via: Option<Via>,
}

impl Call {
    fn key(&self) -> (ResourceKind, Option<String>, String) {
        (
            self.kind.clone(),
            self.object.namespace().map(str::to_string),
            self.object.name().to_string(),
        )
    }
}

/// Replays `recording` with `new` (and `old`, to compare), calling
/// `on_reconcile` with each reconcile in order; returns the summary.
/// `limit` bounds the intent differences listed per reconcile.
pub fn replay(
    recording: &Recording,
    new: &Version,
    old: Option<&Version>,
    limit: usize,
    on_reconcile: &mut dyn FnMut(&Reconcile),
) -> Summary {
    let started = Instant::now();
    let cache = ReplayCache::new(&recording.kinds);
    for (kind, object) in &recording.initial {
        cache.apply(*kind, Change::Added, object);
    }
    let mut summary = Summary::new(recording, old.is_some());
    let mut run =
        |trigger: String, line: Option<usize>, time_ms: i64, calls: Vec<[Option<Call>; 2]>| {
            for [new_call, old_call] in calls {
                let Some(call) = new_call.as_ref().or(old_call.as_ref()) else {
                    continue;
                };
                let answer = |version: Option<&Version>, made: &Option<Call>| match (version, made)
                {
                    (Some(v), Some(c)) => v.call(c, &cache, time_ms),
                    _ => (call.event, Answer::NotCalled),
                };
                let (called_new, result) = answer(Some(new), &new_call);
                let against = old.map(|_| answer(old, &old_call));
                // The event the plugin is called with: the new version's,
                // else the old one's.
                let event = match (&result, &against) {
                    (Answer::NotCalled, Some((called_old, _))) => *called_old,
                    _ => called_new,
                };
                let against = against.map(|(_, answer)| answer);
                if against.is_none() && result == Answer::NotCalled {
                    continue;
                }
                let differences = match (&result, &against) {
                    (Answer::NotCalled, Some(Answer::NotCalled)) => continue,
                    (_, Some(against)) => Some(compared(&result, against, &cache, limit)),
                    _ => None,
                };
                let reconcile = Reconcile {
                    line,
                    at: rfc3339(time_ms),
                    trigger: trigger.clone(),
                    event: event.as_str(),
                    kind: call.kind.api_version() + " " + &call.kind.kind,
                    object: object_name(&call.object),
                    via: call.via.map(via_name),
                    result,
                    against,
                    differences,
                };
                summary.count(&reconcile);
                on_reconcile(&reconcile);
            }
        };

    // The first list: every object once, its own key or as an owner.
    let mut seen = HashSet::new();
    for (kind_index, object) in &recording.initial {
        let kind = &recording.kinds[*kind_index];
        let mut calls = paired(
            new.calls(&cache, kind, object, EventType::Applied),
            old.map(|o| o.calls(&cache, kind, object, EventType::Applied)),
        );
        calls.retain(|pair| {
            let call = pair[0].as_ref().or(pair[1].as_ref());
            call.is_some_and(|c| seen.insert(c.key()))
        });
        let trigger = format!("initial {}", describe(kind, object));
        run(trigger, None, recording.header.time_ms, calls);
    }
    for event in &recording.events {
        cache.apply(event.kind, event.change, &event.object);
        let kind = &recording.kinds[event.kind];
        let event_type = match event.change {
            Change::Deleted => EventType::Deleted,
            Change::Added | Change::Modified => EventType::Applied,
        };
        let calls = paired(
            new.calls(&cache, kind, &event.object, event_type),
            old.map(|o| o.calls(&cache, kind, &event.object, event_type)),
        );
        let trigger = format!(
            "{} {}",
            event.change.as_str(),
            describe(kind, &event.object)
        );
        run(trigger, Some(event.line), event.time_ms, calls);
    }
    summary.elapsed = started.elapsed();
    summary
}

/// The calls of the two versions paired by object: the new version's in
/// its order, then those only the old one makes.
fn paired(new: Vec<Call>, old: Option<Vec<Call>>) -> Vec<[Option<Call>; 2]> {
    let mut old = old.unwrap_or_default();
    let mut pairs = Vec::with_capacity(new.len() + old.len());
    for call in new {
        let twin = old
            .iter()
            .position(|o| o.key() == call.key())
            .map(|at| old.remove(at));
        pairs.push([Some(call), twin]);
    }
    pairs.extend(old.into_iter().map(|o| [None, Some(o)]));
    pairs
}

/// How the new version's answer differs from the old one's: intents
/// compared by [`compare`] (a version not called counts as one making no
/// intents); an error or failure is equal only to the same error.
fn compared(new: &Answer, old: &Answer, cache: &ReplayCache, limit: usize) -> report::Differences {
    let none = Outcome::default();
    let outcome = |answer: &Answer| match answer {
        Answer::Outcome(o) => Some(o.clone()),
        Answer::NotCalled => Some(none.clone()),
        _ => None,
    };
    match (outcome(old), outcome(new)) {
        (Some(expected), Some(actual)) => {
            let comparison = compare::compare(
                &expected,
                &actual,
                |i| compare::changes_nothing(cache, i),
                limit,
            );
            match comparison.is_equal() {
                true => report::Differences::None,
                false => report::Differences::Intents(comparison),
            }
        }
        _ if new == old => report::Differences::None,
        _ => report::Differences::Answers,
    }
}

fn object_name(object: &CachedObject) -> String {
    match object.namespace() {
        Some(ns) => format!("{ns}/{}", object.name()),
        None => object.name().to_string(),
    }
}

fn describe(kind: &ResourceKind, object: &CachedObject) -> String {
    format!("{} {}", kind.kind, object_name(object))
}

fn via_name(via: Via) -> &'static str {
    match via {
        Via::Owner => "owner",
        Via::Watch => "watch",
    }
}

#[cfg(test)]
mod tests;
