//! The host's cache as a replay rebuilds it: the recording's initial
//! objects, then each event applied in order. Plugins read it through the
//! `get`/`list` host functions ([`ObjectReader`]); owned children are
//! mapped to their owners through it ([`Lookup`]), as the informers answer
//! both in a cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::cluster::cache::{ObjectReader, ReadError};
use crate::cluster::object::CachedObject;
use crate::contract::selector::LabelSelector;
use crate::contract::{GroupKind, ResourceKind};
use crate::controller::Lookup;
use crate::recording::Change;

/// Objects of one kind by (namespace, name).
type Objects = BTreeMap<(Option<String>, String), Arc<CachedObject>>;

/// The recorded kinds' objects. Cheap to clone; clones share the objects.
#[derive(Clone)]
pub struct ReplayCache {
    kinds: Arc<[ResourceKind]>,
    objects: Arc<RwLock<Vec<Objects>>>,
}

fn key(object: &CachedObject) -> (Option<String>, String) {
    (
        object.namespace().map(str::to_string),
        object.name().to_string(),
    )
}

impl ReplayCache {
    /// An empty cache of `kinds` (one version each).
    pub fn new(kinds: &[ResourceKind]) -> Self {
        Self {
            kinds: kinds.into(),
            objects: Arc::new(RwLock::new(vec![Objects::new(); kinds.len()])),
        }
    }

    /// Applies one recorded change of an object of `kinds[kind]`.
    pub fn apply(&self, kind: usize, change: Change, object: &Arc<CachedObject>) {
        let mut objects = self.objects.write().unwrap_or_else(|e| e.into_inner());
        let Some(of_kind) = objects.get_mut(kind) else {
            return;
        };
        match change {
            Change::Added | Change::Modified => {
                of_kind.insert(key(object), object.clone());
            }
            Change::Deleted => {
                of_kind.remove(&key(object));
            }
        }
    }

    fn index(&self, group: &str, kind: &str) -> Option<usize> {
        self.kinds
            .iter()
            .position(|k| k.group == group && k.kind == kind)
    }

    fn exact(&self, kind: &ResourceKind) -> Option<usize> {
        self.kinds.iter().position(|k| k == kind)
    }
}

fn in_namespace(object: &CachedObject, namespace: Option<&str>) -> bool {
    namespace.is_none_or(|ns| object.namespace() == Some(ns))
}

impl ObjectReader for ReplayCache {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        let index = self
            .index(&kind.group, &kind.kind)
            .ok_or_else(|| not_recorded(kind))?;
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.map(str::to_string), name.to_string());
        Ok(objects[index].get(&key).cloned())
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        let index = self
            .index(&kind.group, &kind.kind)
            .ok_or_else(|| not_recorded(kind))?;
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        Ok(objects[index]
            .values()
            .filter(|o| in_namespace(o, namespace) && selector.matches_labels(|k| o.label(k)))
            .cloned()
            .collect())
    }
}

/// A kind the recording does not hold reads as one the host does not
/// watch: the plugin sees the same error it would from a host that does not
/// watch the kind.
fn not_recorded(kind: &GroupKind) -> ReadError {
    ReadError::NotWatched {
        group: kind.group.clone(),
        kind: kind.kind.clone(),
    }
}

impl Lookup for ReplayCache {
    fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        let index = self.exact(kind)?;
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        let key = (namespace.map(str::to_string), name.to_string());
        objects[index].get(&key).cloned()
    }

    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    ) {
        let Some(index) = self.exact(kind) else {
            return;
        };
        let objects = self.objects.read().unwrap_or_else(|e| e.into_inner());
        objects[index]
            .values()
            .filter(|o| in_namespace(o, namespace))
            .for_each(visit);
    }
}
