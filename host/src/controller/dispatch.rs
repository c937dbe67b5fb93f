//! Dispatch: each informer event goes to the queue of every plugin that
//! wants it, and, through owned kinds and mapped watches ([`super::mapping`]),
//! to the queue of each object it reconciles.

use tokio::sync::mpsc;

use super::Controller;
use super::work::{Work, WorkKey};
use crate::cluster::informer::KindEvent;
use crate::cluster::object::CachedObject;
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
                    self.queue.add(
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
                    self.queue.add(
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

    /// Queues every cached object of `kind` the plugin wants, as a resync.
    pub(super) fn resync(&self, loaded: &LoadedPlugin, kind: &ResourceKind) {
        for object in self.informers.objects(kind) {
            if wants(loaded, kind, &object) {
                self.queue.add(
                    WorkKey::of(&loaded.id, kind, &object),
                    Work {
                        event_type: EventType::Resync,
                        kind: kind.clone(),
                        object,
                        answers_change: false,
                    },
                );
            }
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
