//! Dispatch: each informer event goes to the queue of every plugin that
//! wants it.

use serde_json::Value;
use tokio::sync::mpsc;

use super::Controller;
use super::work::{Work, WorkKey};
use crate::cluster::informer::KindEvent;
use crate::contract::selector::LabelSelector;
use crate::contract::{EventType, ResourceKind};
use crate::plugins::LoadedPlugin;

impl Controller {
    /// Routes informer events to the plugins that want them.
    pub async fn dispatch(self, mut events: mpsc::UnboundedReceiver<KindEvent>) {
        while let Some(event) = events.recv().await {
            for loaded in self.plugins.all() {
                if wants(&loaded, &event.kind, &event.object) {
                    self.queue.add(
                        WorkKey::of(&loaded.plugin.info().name, &event.kind, &event.object),
                        Work {
                            event_type: event.event_type,
                            kind: event.kind.clone(),
                            object: event.object.clone(),
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
                    WorkKey::of(&loaded.plugin.info().name, kind, &object),
                    Work {
                        event_type: EventType::Resync,
                        kind: kind.clone(),
                        object,
                    },
                );
            }
        }
    }
}

/// Whether `loaded` wants events of `object` of `kind`: a subscription
/// covers it and the operator's grant lets the plugin see it.
pub fn wants(loaded: &LoadedPlugin, kind: &ResourceKind, object: &Value) -> bool {
    let namespace = object["metadata"]["namespace"].as_str();
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    if !loaded
        .grant
        .may_see(&kind.group, &kind.kind, namespace, name)
    {
        return false;
    }
    loaded.plugin.info().subscriptions.iter().any(|s| {
        s.matches_kind(kind)
            && s.matches_namespace(namespace)
            && s.label_selector.as_deref().is_none_or(|sel| {
                LabelSelector::parse(sel).is_ok_and(|sel| sel.matches_object(object))
            })
    })
}
