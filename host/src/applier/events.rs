//! Recording Kubernetes Events (`events.k8s.io/v1`) for plugins.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::error::{ApplyError, Call};
use super::plan::{EventWrite, Planned};
use super::{Applier, lock};
use crate::cluster::object::CachedObject;
use crate::contract::intent::{ObjectRef, Severity};

impl Applier {
    /// Creates an Event about `p.target`, or counts a repeat of one recorded
    /// in the last few minutes on that Event's `series`. Returns the Event's
    /// `resourceVersion`.
    pub(super) async fn record_event(
        &self,
        manager: &str,
        p: &Planned<'_>,
        event: &EventWrite<'_>,
    ) -> Result<Option<String>, ApplyError> {
        let namespace = event_namespace(&p.target);
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let cached = self.cached(&p.target);
        let key = self.event_key(p, event, cached.as_deref());
        let now = Timestamp::now();

        // A repeat: count it on the existing Event (not in a dry run, which
        // records nothing to repeat).
        let repeat = (!self.options.dry_run)
            .then(|| lock(&self.event_series).repeat(&key, now))
            .flatten();
        if let Some(repeat) = repeat
            && let Some(counted) = self.count_repeat(manager, p, &events, &repeat, now).await?
        {
            return Ok(counted.metadata.resource_version);
        }

        let new = self.new_event(p, event, &key, cached.as_deref(), now);
        let created = self.create_event(manager, p, &events, new).await?;
        if !self.options.dry_run {
            let name = created.metadata.name.clone().unwrap_or_default();
            lock(&self.event_series).insert(key, name, now);
        }
        Ok(created.metadata.resource_version)
    }

    /// Which recorded Events a new one repeats.
    fn event_key(
        &self,
        p: &Planned<'_>,
        event: &EventWrite<'_>,
        cached: Option<&CachedObject>,
    ) -> EventKey {
        EventKey {
            controller: reporting_controller(&self.options.reporting_controller, &p.site.plugin),
            regarding: p.target.describe(),
            uid: cached
                .map(CachedObject::uid)
                .unwrap_or_default()
                .to_string(),
            type_: match event.severity {
                Severity::Normal => "Normal",
                Severity::Warning => "Warning",
            },
            reason: event.reason.into(),
            action: event.action.into(),
        }
    }

    /// Counts a repeat on the Event it repeats; `None` if that Event has
    /// expired (Events live about an hour), so a new one is to be recorded.
    async fn count_repeat(
        &self,
        manager: &str,
        p: &Planned<'_>,
        events: &Api<Event>,
        repeat: &Repeat,
        now: Timestamp,
    ) -> Result<Option<Event>, ApplyError> {
        let params = PatchParams {
            field_manager: Some(manager.into()),
            ..Default::default()
        };
        // Only the series: the rest of an Event is immutable.
        let patch = Patch::Merge(json!({
            "series": {"count": repeat.count, "lastObservedTime": MicroTime(now)},
        }));
        let call = events_call("patch", event_namespace(&p.target));
        match self
            .send(&p.site, &call, true, || {
                events.patch(&repeat.name, &params, &patch)
            })
            .await
        {
            Ok(event) => Ok(Some(event)),
            Err(ApplyError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new Event about `p.target`, as `events.k8s.io/v1` wants it.
    fn new_event(
        &self,
        p: &Planned<'_>,
        event: &EventWrite<'_>,
        key: &EventKey,
        cached: Option<&CachedObject>,
        now: Timestamp,
    ) -> Event {
        let regarding = &p.target;
        let note = truncate(event.note, 1024);
        let cached_rv = cached
            .and_then(CachedObject::resource_version)
            .map(String::from);
        Event {
            metadata: ObjectMeta {
                name: Some(event_name(&regarding.name, now)),
                namespace: Some(event_namespace(regarding).into()),
                ..Default::default()
            },
            action: Some(event.action.into()),
            reason: Some(event.reason.into()),
            note: (!note.is_empty()).then(|| note.to_string()),
            type_: Some(key.type_.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(ObjectReference {
                api_version: Some(regarding.api_version.clone()),
                kind: Some(regarding.kind.clone()),
                namespace: regarding.namespace.clone(),
                name: Some(regarding.name.clone()),
                uid: (!key.uid.is_empty()).then(|| key.uid.clone()),
                resource_version: cached_rv,
                field_path: None,
            }),
            reporting_controller: Some(key.controller.clone()),
            reporting_instance: Some(self.options.reporting_instance.clone()),
            ..Default::default()
        }
    }

    async fn create_event(
        &self,
        manager: &str,
        p: &Planned<'_>,
        events: &Api<Event>,
        event: Event,
    ) -> Result<Event, ApplyError> {
        let params = PostParams {
            dry_run: self.options.dry_run,
            field_manager: Some(manager.into()),
        };
        let call = events_call("create", event_namespace(&p.target));
        match self
            .send(&p.site, &call, false, || events.create(&params, &event))
            .await
        {
            Ok(created) => Ok(created),
            // A retry of a create that reached the server the first time.
            Err(ApplyError::Rejected { source, .. }) if source.is_already_exists() => Ok(event),
            Err(e) => Err(e),
        }
    }
}

/// A request for Events, as RBAC sees it.
fn events_call(verb: &str, namespace: &str) -> Call {
    Call(format!(
        "{verb} events in group \"events.k8s.io\" in namespace {namespace}"
    ))
}

/// Events recorded recently, so a repeat increments a series instead of
/// creating another Event (as client-go and kube-rs do).
#[derive(Default)]
pub(super) struct EventSeries {
    entries: HashMap<EventKey, RecordedEvent>,
}

/// Isomorphic Events: same reporter, object, type, reason and action.
#[derive(Hash, PartialEq, Eq)]
pub(super) struct EventKey {
    controller: String,
    regarding: String,
    uid: String,
    type_: &'static str,
    reason: String,
    action: String,
}

/// A repeat of a recent Event: that Event's name and its new count.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Repeat {
    pub(super) name: String,
    pub(super) count: i32,
}

pub(super) struct RecordedEvent {
    name: String,
    count: i32,
    last: Timestamp,
}

/// How long after its last occurrence an Event is counted on rather than
/// created anew (client-go and kube-rs use the same).
pub(super) const EVENT_SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
pub(super) const MAX_EVENT_SERIES: usize = 4096;

impl EventSeries {
    /// For a repeat of a recent Event: its name and the new count.
    pub(super) fn repeat(&mut self, key: &EventKey, now: Timestamp) -> Option<Repeat> {
        let recorded = self.entries.get_mut(key)?;
        if recorded.last + EVENT_SERIES_WINDOW < now {
            self.entries.remove(key);
            return None;
        }
        recorded.count += 1;
        recorded.last = now;
        Some(Repeat {
            name: recorded.name.clone(),
            count: recorded.count,
        })
    }

    pub(super) fn insert(&mut self, key: EventKey, name: String, now: Timestamp) {
        if self.entries.len() >= MAX_EVENT_SERIES {
            self.entries
                .retain(|_, e| e.last + EVENT_SERIES_WINDOW >= now);
            if self.entries.len() >= MAX_EVENT_SERIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            key,
            RecordedEvent {
                name,
                count: 1,
                last: now,
            },
        );
    }
}

/// A unique Event name: the object's name (made a DNS subdomain) and the
/// time, as kubectl shows them (`web.17d9c0a1b2c3d4e5`), plus a counter.
pub(super) fn event_name(object_name: &str, now: Timestamp) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let cleaned: String = object_name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .take(200)
        .collect();
    let base = match cleaned.trim_matches(|c| c == '-' || c == '.') {
        "" => "object",
        trimmed => trimmed,
    };
    format!("{base}.{:016x}{seq:x}", now.as_nanosecond() as u64)
}

pub(super) fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The namespace an Event about `regarding` is recorded in: the object's
/// own, or `default` for a cluster-scoped object (as client-go does).
pub(super) fn event_namespace(regarding: &ObjectRef) -> &str {
    regarding.namespace.as_deref().unwrap_or("default")
}

/// The `reportingController` of the Events a plugin records:
/// `<prefix>/<id>`, a qualified name, so the id's `/` (a namespaced
/// Plugin's `<namespace>/<name>`) becomes `.` and an id longer than the 63
/// characters of a name part keeps its start and a hash of the whole.
pub(super) fn reporting_controller(prefix: &str, id: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let name = id.replace('/', ".");
    if name.len() <= 63 {
        return format!("{prefix}/{name}");
    }
    let hash = Sha256::digest(id.as_bytes());
    let hex: String = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
    let start = name[..54].trim_end_matches(['.', '-']);
    format!("{prefix}/{start}-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_repeats_count_within_the_window() {
        let key = || EventKey {
            controller: "kubewasm.dev/labels".into(),
            regarding: "v1 Namespace a".into(),
            uid: "u".into(),
            type_: "Normal",
            reason: "Labelled".into(),
            action: "Reconcile".into(),
        };
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut series = EventSeries::default();
        assert_eq!(series.repeat(&key(), t0), None);
        series.insert(key(), "a.1".into(), t0);
        let t1 = t0 + SignedDuration::from_mins(5);
        let repeat = |count| {
            Some(Repeat {
                name: "a.1".into(),
                count,
            })
        };
        assert_eq!(series.repeat(&key(), t1), repeat(2));
        let t2 = t1 + SignedDuration::from_mins(5);
        assert_eq!(series.repeat(&key(), t2), repeat(3));
        let late = t2 + SignedDuration::from_mins(7);
        assert_eq!(
            series.repeat(&key(), late),
            None,
            "an old Event is not reused"
        );
    }

    #[test]
    fn event_names_are_valid_and_unique() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let a = event_name("system:controller:Foo", now);
        let b = event_name("system:controller:Foo", now);
        assert_ne!(a, b);
        assert!(a.starts_with("system-controller-foo."), "{a}");
        assert!(event_name(&"x".repeat(300), now).len() <= 253);
        assert!(event_name(":", now).starts_with("object."));
    }

    #[test]
    fn truncate_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn reporting_controllers_are_qualified_names() {
        let name_part = regex_lite_free_check;
        assert_eq!(
            reporting_controller("kubewasm.dev", "labels"),
            "kubewasm.dev/labels"
        );
        assert_eq!(
            reporting_controller("kubewasm.dev", "team-a/labels"),
            "kubewasm.dev/team-a.labels"
        );
        let long = format!("{}/{}", "n".repeat(63), "p".repeat(63));
        let other = format!("{}/{}", "n".repeat(63), "q".repeat(63));
        let (a, b) = (
            reporting_controller("kubewasm.dev", &long),
            reporting_controller("kubewasm.dev", &other),
        );
        assert_ne!(a, b, "distinct ids keep distinct controllers");
        for controller in [a, b] {
            let (prefix, name) = controller.split_once('/').unwrap();
            assert_eq!(prefix, "kubewasm.dev");
            assert!(name_part(name), "{controller}");
        }
    }

    /// A qualified name's name part: at most 63 characters, alphanumeric at
    /// both ends, `-`, `_` and `.` inside.
    fn regex_lite_free_check(name: &str) -> bool {
        let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        name.len() <= 63
            && ends(name.chars().next())
            && ends(name.chars().last())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }
}
