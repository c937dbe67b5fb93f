//! Dispatch: each informer event goes to the queue of every plugin that
//! wants it, and, through owned kinds and mapped watches ([`super::mapping`]),
//! to the queue of each object it reconciles.

use tokio::sync::mpsc;

use super::Controller;
use super::work::{Work, WorkKey};
use crate::cluster::informer::KindEvent;
use crate::cluster::object::CachedObject;
use crate::cluster::shard::Grown;
use crate::contract::{EventType, ParsedSubscriptions, ResourceKind};
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::Grant;

impl Controller {
    /// Routes informer events to the plugins that want them.
    pub async fn dispatch(self, mut events: mpsc::UnboundedReceiver<KindEvent>) {
        while let Some(event) = events.recv().await {
            for loaded in self.plugins.all() {
                let plugin = &loaded.id;
                if wants(&loaded, &event.kind, &event.object) {
                    self.queue_owned(
                        WorkKey::of(plugin, &event.kind, &event.object),
                        Work {
                            event_type: event.event_type,
                            kind: event.kind.clone(),
                            object: event.object.clone(),
                            answers_change: event.event_type == EventType::Applied,
                        },
                    );
                }
                for target in self.mapped(&loaded, &event.kind, &event.object) {
                    let key = WorkKey::of(plugin, &target.kind, &target.object);
                    tracing::debug!(
                        plugin = %plugin,
                        kind = %event.kind.kind,
                        object = %WorkKey::of(plugin, &event.kind, &event.object).object(),
                        event = event.event_type.as_str(),
                        via = ?target.via,
                        target_kind = %key.kind.kind,
                        target = %key.object(),
                        "reconciling an object the change maps to"
                    );
                    self.queue_owned(
                        key,
                        Work {
                            event_type: EventType::Resync,
                            kind: target.kind,
                            object: target.object,
                            // An owner writing its child on every child
                            // change (or fighting another writer over it)
                            // is a loop too.
                            answers_change: true,
                        },
                    );
                }
            }
        }
    }

    /// Queues `key` if this replica reconciles it (always, unsharded); a
    /// key of another replica's share is left to it, and resynced from the
    /// cache if it becomes this replica's ([`Self::follow_shards`]).
    fn queue_owned(&self, key: WorkKey, work: Work) {
        if !self.shards.is_sharded() || self.shards.works(key.shard_hash()) {
            self.queue.add(key, work);
        }
    }

    /// Queues every cached object of `kind` the plugin wants, as a resync.
    pub(super) fn resync(&self, loaded: &LoadedPlugin, kind: &ResourceKind) {
        self.resync_where(loaded, kind, &|_| true);
    }

    /// [`resync`](Self::resync) of the keys whose shard hash `pick` takes.
    fn resync_where(&self, loaded: &LoadedPlugin, kind: &ResourceKind, pick: &dyn Fn(u64) -> bool) {
        for object in self.informers.objects(kind) {
            if !wants(loaded, kind, &object) {
                continue;
            }
            let key = WorkKey::of(&loaded.id, kind, &object);
            if pick(key.shard_hash()) {
                let work = Work {
                    event_type: EventType::Resync,
                    kind: kind.clone(),
                    object,
                    answers_change: false,
                };
                self.queue_owned(key, work);
            }
        }
    }

    /// Follows the shard gate: when this replica's share grows, the keys it
    /// gained were not queued while another replica had them, so each is
    /// queued from the cache, for every plugin that wants it.
    pub async fn follow_shards(self, mut grown: mpsc::UnboundedReceiver<Grown>) {
        while let Some(Grown { before, after }) = grown.recv().await {
            let Some(me) = self.shards.me().map(str::to_string) else {
                return;
            };
            let gained = |hash: u64| after.works(&me, hash) && !before.works(&me, hash);
            let mut queued = self.queue.len();
            for loaded in self.plugins.all() {
                let info = loaded.plugin.info();
                let kinds = self.kinds_for(&loaded.plugin);
                for kind in kinds
                    .iter()
                    .filter(|k| info.subscriptions.iter().any(|s| s.matches_kind(k)))
                {
                    self.resync_where(&loaded, kind, &gained);
                }
            }
            queued = self.queue.len().saturating_sub(queued);
            tracing::debug!(queued, "queued the keys this replica's new share gained");
        }
    }
}

/// Whether `loaded` wants events of `object` of `kind`: a subscription
/// covers it and the operator's grant lets the plugin see it.
pub fn wants(loaded: &LoadedPlugin, kind: &ResourceKind, object: &CachedObject) -> bool {
    wanted(loaded.plugin.subscriptions(), &loaded.grant, kind, object)
}

/// [`wants`] with the plugin's parsed subscriptions and grant.
pub(super) fn wanted(
    subscriptions: &ParsedSubscriptions,
    grant: &Grant,
    kind: &ResourceKind,
    object: &CachedObject,
) -> bool {
    grant.may_see(&kind.group, &kind.kind, object.namespace(), object.name())
        && subscriptions.cover(kind, object)
}
