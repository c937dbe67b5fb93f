//! The unit of work the queue holds: which object, for which plugin
//! ([`WorkKey`]), and its newest state ([`Work`]).

use std::sync::Arc;

use crate::cluster::object::CachedObject;
use crate::contract::{EventType, GroupKind, ResourceKind};
use crate::queue::QueueKey;

/// One unit of work: an object of a kind, for one plugin.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkKey {
    pub plugin: String,
    pub kind: GroupKind,
    pub namespace: Option<String>,
    pub name: String,
}

impl WorkKey {
    /// The key of `object` of `kind` for `plugin`.
    pub fn of(plugin: &str, kind: &ResourceKind, object: &CachedObject) -> Self {
        Self {
            plugin: plugin.to_string(),
            kind: kind.group_kind(),
            namespace: object.namespace().map(str::to_string),
            name: object.name().to_string(),
        }
    }

    /// The key's place on the shard ring: its namespace, or its name if
    /// cluster-scoped.
    pub fn shard_hash(&self) -> u64 {
        crate::cluster::shard::key_hash(self.namespace.as_deref(), &self.name)
    }

    /// `namespace/name` (`/name` for a cluster-scoped object), for logs.
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace.as_deref().unwrap_or(""), self.name)
    }
}

impl QueueKey for WorkKey {
    type Group = String;
    fn group(&self) -> &String {
        &self.plugin
    }
}

/// The newest state of a key: why it is queued and the object.
#[derive(Clone, Debug)]
pub struct Work {
    pub event_type: EventType,
    pub kind: ResourceKind,
    pub object: Arc<CachedObject>,
    /// Queued because something changed: the object itself (an `applied`
    /// event), an owned child or a mapped watch source. A write in answer
    /// to such a change counts towards reconcile-loop detection; a resync
    /// after a load or a requested requeue does not.
    pub answers_change: bool,
}

impl Work {
    /// A requeue the plugin asked for reaches it as a resync of the newest
    /// state it saw; a deleted object stays deleted, a finalizing one
    /// finalizing.
    pub(super) fn requeued(self) -> Self {
        match self.event_type {
            EventType::Deleted | EventType::Finalizing => self,
            EventType::Applied | EventType::Resync => Self {
                event_type: EventType::Resync,
                answers_change: false,
                ..self
            },
        }
    }
}
