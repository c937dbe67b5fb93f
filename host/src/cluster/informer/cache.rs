//! An informer's cache of one kind: objects by (namespace, name), and the
//! events each watcher change yields (a re-list diffed against the cache).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cluster::object::CachedObject;
use crate::contract::EventType;

/// Cached objects by (namespace, name).
pub(super) type Objects = BTreeMap<(Option<String>, String), Arc<CachedObject>>;

/// What an informer knows: objects by (namespace, name), and whether the
/// first list completed.
#[derive(Default)]
pub(super) struct Cache {
    pub(super) objects: Objects,
    pub(super) synced: bool,
    pub(super) forbidden: bool,
}

pub(super) fn key_of(object: &CachedObject) -> (Option<String>, String) {
    (
        object.namespace().map(str::to_string),
        object.name().to_string(),
    )
}

/// One watcher event, as it changes a kind's cache.
#[derive(Debug)]
pub(super) enum Change {
    /// An object was added or modified (or listed).
    Apply(Arc<CachedObject>),
    /// An object was deleted; this is its last state.
    Delete(Arc<CachedObject>),
    /// An object was added or modified (or listed) but could not be
    /// decoded; only its identity is known. The cache keeps the object's
    /// last decoded state, if any, and plugins are not called.
    Undecodable(Arc<CachedObject>),
    /// An object that could not be decoded was deleted; only its identity
    /// is known. Plugins see the deletion with the last decoded state (or
    /// the identity alone if there never was one).
    DeleteUndecodable(Arc<CachedObject>),
    /// A (re-)list begins.
    Init,
    /// The (re-)list is complete.
    InitDone,
}

impl Cache {
    /// Applies one change and returns the events it yields. During a re-list
    /// the objects seen are collected in `relisted`; when it completes, those
    /// cached but not seen again were deleted while the watch was down and
    /// yield a `deleted` event with their last known state. An object whose
    /// `resourceVersion` did not change (a re-list of what is cached) yields
    /// nothing.
    pub(super) fn update(
        &mut self,
        relisted: &mut Option<Objects>,
        change: Change,
    ) -> Vec<(EventType, Arc<CachedObject>)> {
        match change {
            Change::Apply(object) => {
                let key = key_of(&object);
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(key.clone(), object.clone());
                }
                let unchanged = self
                    .objects
                    .get(&key)
                    .is_some_and(|old| old.resource_version() == object.resource_version());
                self.objects.insert(key, object.clone());
                match unchanged {
                    true => Vec::new(),
                    false => vec![(EventType::Applied, object)],
                }
            }
            Change::Delete(object) => {
                self.objects.remove(&key_of(&object));
                vec![(EventType::Deleted, object)]
            }
            Change::Undecodable(identity) => {
                let key = key_of(&identity);
                // Still there: a re-list must not report it deleted.
                if let (Some(seen), Some(last)) = (relisted.as_mut(), self.objects.get(&key)) {
                    seen.insert(key, last.clone());
                }
                Vec::new()
            }
            Change::DeleteUndecodable(identity) => {
                let last = self.objects.remove(&key_of(&identity));
                vec![(EventType::Deleted, last.unwrap_or(identity))]
            }
            Change::Init => {
                *relisted = Some(BTreeMap::new());
                Vec::new()
            }
            Change::InitDone => {
                let seen = relisted.take().unwrap_or_default();
                let gone: Vec<_> = self
                    .objects
                    .iter()
                    .filter(|(k, _)| !seen.contains_key(*k))
                    .map(|(_, o)| (EventType::Deleted, o.clone()))
                    .collect();
                self.objects = seen;
                self.synced = true;
                self.forbidden = false;
                gone
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(name: &str, resource_version: &str) -> Arc<CachedObject> {
        Arc::new(CachedObject::from_value(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": resource_version}
        })))
    }

    /// The events as (type, name, resourceVersion).
    fn names(events: Vec<(EventType, Arc<CachedObject>)>) -> Vec<(EventType, String, String)> {
        events
            .into_iter()
            .map(|(t, o)| {
                let rv = o.resource_version().unwrap_or_default().to_string();
                (t, o.name().to_string(), rv)
            })
            .collect()
    }

    fn list(
        cache: &mut Cache,
        relisted: &mut Option<Objects>,
        objects: &[(&str, &str)],
    ) -> Vec<(EventType, String, String)> {
        let mut events = cache.update(relisted, Change::Init);
        for (name, rv) in objects {
            events.extend(cache.update(relisted, Change::Apply(object(name, rv))));
        }
        events.extend(cache.update(relisted, Change::InitDone));
        names(events)
    }

    #[test]
    fn the_first_list_syncs_the_cache_and_yields_every_object() {
        let (mut cache, mut relisted) = (Cache::default(), None);
        let events = list(&mut cache, &mut relisted, &[("a", "1"), ("b", "2")]);
        assert_eq!(
            events,
            [
                (EventType::Applied, "a".into(), "1".into()),
                (EventType::Applied, "b".into(), "2".into())
            ]
        );
        assert!(cache.synced);
        assert_eq!(cache.objects.len(), 2);
    }

    #[test]
    fn a_relist_yields_only_changes_and_the_last_state_of_objects_deleted_meanwhile() {
        let (mut cache, mut relisted) = (Cache::default(), None);
        list(
            &mut cache,
            &mut relisted,
            &[("a", "1"), ("b", "2"), ("c", "3")],
        );
        // The watch was down (e.g. 410 Gone): a unchanged, b modified, c deleted.
        let events = list(&mut cache, &mut relisted, &[("a", "1"), ("b", "7")]);
        assert_eq!(
            events,
            [
                (EventType::Applied, "b".into(), "7".into()),
                (EventType::Deleted, "c".into(), "3".into())
            ]
        );
        let cached: Vec<_> = cache.objects.keys().map(|(_, n)| n.as_str()).collect();
        assert_eq!(cached, ["a", "b"]);
    }

    #[test]
    fn an_undecodable_version_keeps_the_last_decoded_one_and_a_delete_delivers_it() {
        let (mut cache, mut relisted) = (Cache::default(), None);
        list(&mut cache, &mut relisted, &[("a", "1"), ("b", "2")]);
        // b becomes undecodable (e.g. nested too deep); a re-list follows.
        let mut events = cache.update(&mut relisted, Change::Init);
        events.extend(cache.update(&mut relisted, Change::Apply(object("a", "1"))));
        events.extend(cache.update(&mut relisted, Change::Undecodable(object("b", "5"))));
        // A new object that never decoded is not cached either.
        events.extend(cache.update(&mut relisted, Change::Undecodable(object("c", "6"))));
        events.extend(cache.update(&mut relisted, Change::InitDone));
        assert_eq!(names(events), [], "b still exists: not reported deleted");
        assert!(cache.synced);
        let cached: Vec<_> = cache
            .objects
            .values()
            .map(|o| o.resource_version().unwrap_or_default())
            .collect();
        assert_eq!(cached, ["1", "2"]);

        // Deleted while undecodable: delivered with its last decoded state.
        let deleted = cache.update(&mut relisted, Change::DeleteUndecodable(object("b", "8")));
        assert_eq!(
            names(deleted),
            [(EventType::Deleted, "b".into(), "2".into())]
        );
        // Never decoded: delivered with its identity alone.
        let deleted = cache.update(&mut relisted, Change::DeleteUndecodable(object("c", "9")));
        assert_eq!(
            names(deleted),
            [(EventType::Deleted, "c".into(), "9".into())]
        );
        assert_eq!(cache.objects.len(), 1);
    }

    #[test]
    fn watch_events_update_the_cache() {
        let (mut cache, mut relisted) = (Cache::default(), None);
        list(&mut cache, &mut relisted, &[("a", "1")]);
        let modified = cache.update(&mut relisted, Change::Apply(object("a", "2")));
        assert_eq!(
            names(modified),
            [(EventType::Applied, "a".into(), "2".into())]
        );
        let repeated = cache.update(&mut relisted, Change::Apply(object("a", "2")));
        assert!(
            repeated.is_empty(),
            "the same resourceVersion again is not a change"
        );
        let deleted = cache.update(&mut relisted, Change::Delete(object("a", "3")));
        assert_eq!(
            names(deleted),
            [(EventType::Deleted, "a".into(), "3".into())]
        );
        assert!(cache.objects.is_empty());
    }

    #[test]
    fn a_completed_list_clears_a_forbidden_mark() {
        let mut cache = Cache {
            forbidden: true,
            ..Cache::default()
        };
        let mut relisted = None;
        list(&mut cache, &mut relisted, &[]);
        assert!(cache.synced && !cache.forbidden);
    }
}
