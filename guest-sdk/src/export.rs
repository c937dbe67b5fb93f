//! The bridge between a [`Plugin`] and the generated `reconciler` export:
//! converts the WIT records to the SDK's types and back.
//!
//! [`export_plugin!`](crate::export_plugin) exports `Adapter<YourPlugin>`.

use std::marker::PhantomData;

use crate::bindings::exports::kubewasm::plugin::reconciler::Guest;
use crate::bindings::kubewasm::plugin::types as wit;
use crate::{
    Apply, Create, Delete, Error, Event, EventType, Finalizer, GroupKind, Intent, KindRef, MapRule,
    MappedWatch, Object, ObjectRef, Outcome, Patch, Plugin, PluginInfo, Propagation, RecordEvent,
    ResourceKind, Severity,
};

/// Implements the generated `Guest` trait for any [`Plugin`]. Not meant to be
/// named directly; use [`export_plugin!`](crate::export_plugin).
pub struct Adapter<P>(PhantomData<P>);

/// Compiles only if `P` is a [`Plugin`]; what
/// [`export_plugin!`](crate::export_plugin) checks on native targets.
pub fn assert_plugin<P: Plugin>() {}

impl<P: Plugin> Guest for Adapter<P> {
    fn describe() -> wit::PluginInfo {
        P::describe().into()
    }

    fn validate_settings(settings: String) -> Result<(), String> {
        P::validate_settings(&settings).map_err(|e| e.to_string())
    }

    fn reconcile(event: wit::Event) -> Result<wit::Outcome, wit::ReconcileError> {
        let to_wit_error = |e: Error| wit::ReconcileError {
            message: e.to_string(),
        };
        let event = Event::try_from(event).map_err(to_wit_error)?;
        P::reconcile(&event)
            .map(wit::Outcome::from)
            .map_err(to_wit_error)
    }
}

impl From<PluginInfo> for wit::PluginInfo {
    fn from(info: PluginInfo) -> Self {
        wit::PluginInfo {
            name: info.name,
            version: info.version,
            subscriptions: info
                .subscriptions
                .into_iter()
                .map(|s| wit::Subscription {
                    group: s.group,
                    version: s.version,
                    kind: s.kind,
                    namespaces: s.namespaces,
                    label_selector: s.label_selector,
                })
                .collect(),
            writes: info
                .writes
                .into_iter()
                .map(|w| wit::WriteScope {
                    group: w.group,
                    kind: w.kind,
                })
                .collect(),
            owns: info.owns.into_iter().map(wit::KindRef::from).collect(),
            watches: info
                .watches
                .into_iter()
                .map(wit::MappedWatch::from)
                .collect(),
            finalizer: info.finalizer.map(wit::Finalizer::from),
        }
    }
}

impl From<KindRef> for wit::KindRef {
    fn from(kind: KindRef) -> Self {
        wit::KindRef {
            group: kind.group,
            kind: kind.kind,
            version: kind.version,
        }
    }
}

impl From<GroupKind> for wit::GroupKind {
    fn from(kind: GroupKind) -> Self {
        wit::GroupKind {
            group: kind.group,
            kind: kind.kind,
        }
    }
}

impl From<MappedWatch> for wit::MappedWatch {
    fn from(watch: MappedWatch) -> Self {
        wit::MappedWatch {
            source: watch.source.into(),
            target: watch.target.into(),
            rule: match watch.rule {
                MapRule::FieldRef(path) => wit::MapRule::FieldRef(path),
                MapRule::Label(key) => wit::MapRule::Label(key),
                MapRule::Selector(selector) => wit::MapRule::Selector(selector),
            },
        }
    }
}

impl From<Finalizer> for wit::Finalizer {
    fn from(finalizer: Finalizer) -> Self {
        wit::Finalizer {
            name: finalizer.name,
            kinds: finalizer
                .kinds
                .into_iter()
                .map(wit::GroupKind::from)
                .collect(),
        }
    }
}

impl TryFrom<wit::Event> for Event {
    type Error = Error;

    fn try_from(event: wit::Event) -> Result<Self, Error> {
        let kind = ResourceKind {
            group: event.kind.group,
            version: event.kind.version,
            kind: event.kind.kind,
            plural: event.kind.plural,
            namespaced: event.kind.namespaced,
        };
        let object = Object::parse(&event.object)
            .map_err(|e| e.context(format!("the {} object from the host", kind.kind)))?;
        Ok(Event {
            event_type: match event.event_type {
                wit::EventType::Applied => EventType::Applied,
                wit::EventType::Deleted => EventType::Deleted,
                wit::EventType::Resync => EventType::Resync,
                wit::EventType::Finalizing => EventType::Finalizing,
            },
            kind,
            object,
        })
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(outcome: Outcome) -> Self {
        wit::Outcome {
            intents: outcome.intents.into_iter().map(wit::Intent::from).collect(),
            requeue_after_ms: outcome.requeue_after_ms,
        }
    }
}

impl From<Intent> for wit::Intent {
    fn from(intent: Intent) -> Self {
        match intent {
            Intent::Apply(Apply {
                object,
                status,
                force,
            }) => wit::Intent::Apply(wit::ApplyIntent {
                object: object.to_string(),
                status,
                force,
            }),
            Intent::MergePatch(patch) => wit::Intent::MergePatch(patch.into()),
            Intent::JsonPatch(patch) => wit::Intent::JsonPatch(patch.into()),
            Intent::Create(Create { object }) => wit::Intent::Create(wit::CreateIntent {
                object: object.to_string(),
            }),
            Intent::Delete(Delete {
                target,
                propagation,
            }) => wit::Intent::Delete(wit::DeleteIntent {
                target: target.into(),
                propagation: propagation.map(|p| match p {
                    Propagation::Background => wit::PropagationPolicy::Background,
                    Propagation::Foreground => wit::PropagationPolicy::Foreground,
                    Propagation::Orphan => wit::PropagationPolicy::Orphan,
                }),
            }),
            Intent::RecordEvent(RecordEvent {
                regarding,
                severity,
                reason,
                note,
                action,
            }) => wit::Intent::RecordEvent(wit::EventIntent {
                regarding: regarding.into(),
                severity: match severity {
                    Severity::Normal => wit::EventSeverity::Normal,
                    Severity::Warning => wit::EventSeverity::Warning,
                },
                reason,
                note,
                action,
            }),
        }
    }
}

impl From<Patch> for wit::PatchIntent {
    fn from(patch: Patch) -> Self {
        wit::PatchIntent {
            patch: patch.patch.to_string(),
            target: patch.target.into(),
            status: patch.status,
            resource_version: patch.resource_version,
        }
    }
}

impl From<ObjectRef> for wit::ObjectRef {
    fn from(r: ObjectRef) -> Self {
        wit::ObjectRef {
            api_version: r.api_version,
            kind: r.kind,
            namespace: r.namespace,
            name: r.name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_from_wit_parses_the_object() {
        let event = Event::try_from(wit::Event {
            event_type: wit::EventType::Deleted,
            kind: wit::ResourceKind {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
                namespaced: true,
            },
            object: r#"{"metadata": {"name": "web"}}"#.into(),
        })
        .unwrap();
        assert!(event.is_deleted());
        assert_eq!(event.object.name(), "web");
        assert_eq!(event.kind.api_version(), "apps/v1");
    }

    #[test]
    fn finalizing_event_from_wit() {
        let event = Event::try_from(wit::Event {
            event_type: wit::EventType::Finalizing,
            kind: wit::ResourceKind {
                group: "demo.kubewasm.dev".into(),
                version: "v1alpha1".into(),
                kind: "Website".into(),
                plural: "websites".into(),
                namespaced: true,
            },
            object:
                r#"{"metadata": {"name": "blog", "deletionTimestamp": "2026-03-01T10:00:00Z"}}"#
                    .into(),
        })
        .unwrap();
        assert!(event.is_finalizing() && event.object.is_being_deleted());
    }

    #[test]
    fn plugin_info_to_wit_carries_owns_watches_and_finalizer() {
        let info = wit::PluginInfo::from(
            PluginInfo::new("website", "1.0.0")
                .owns(KindRef::new("", "ConfigMap"))
                .owns(KindRef::new("apps", "Deployment").version("v1"))
                .watches(MappedWatch::field_ref(
                    KindRef::new("", "Secret"),
                    GroupKind::new("demo.kubewasm.dev", "Website"),
                    "spec.secretRef.name",
                ))
                .watches(MappedWatch::label(
                    KindRef::new("", "Service"),
                    GroupKind::new("demo.kubewasm.dev", "Website"),
                    "app.kubernetes.io/instance",
                ))
                .watches(MappedWatch::selector(
                    KindRef::new("", "Namespace"),
                    GroupKind::new("demo.kubewasm.dev", "Website"),
                    "tier=web",
                ))
                .finalizer([GroupKind::new("demo.kubewasm.dev", "Website")]),
        );
        let owns: Vec<_> = info
            .owns
            .iter()
            .map(|k| (k.group.as_str(), k.kind.as_str(), k.version.as_deref()))
            .collect();
        assert_eq!(
            owns,
            [("", "ConfigMap", None), ("apps", "Deployment", Some("v1"))]
        );
        let rules: Vec<_> = info
            .watches
            .iter()
            .map(|w| match &w.rule {
                wit::MapRule::FieldRef(path) => format!("{} field-ref {path}", w.source.kind),
                wit::MapRule::Label(key) => format!("{} label {key}", w.source.kind),
                wit::MapRule::Selector(s) => format!("{} selector {s}", w.source.kind),
            })
            .collect();
        assert_eq!(
            rules,
            [
                "Secret field-ref spec.secretRef.name",
                "Service label app.kubernetes.io/instance",
                "Namespace selector tier=web"
            ]
        );
        assert!(info.watches.iter().all(|w| w.target.kind == "Website"));
        let finalizer = info.finalizer.unwrap();
        assert_eq!(finalizer.name, "kubewasm.dev/website");
        assert_eq!(finalizer.kinds[0].group, "demo.kubewasm.dev");
    }

    #[test]
    fn bad_object_json_is_a_reconcile_error() {
        let err = Event::try_from(wit::Event {
            event_type: wit::EventType::Applied,
            kind: wit::ResourceKind {
                group: String::new(),
                version: "v1".into(),
                kind: "Pod".into(),
                plural: "pods".into(),
                namespaced: true,
            },
            object: "{".into(),
        })
        .unwrap_err();
        assert!(
            err.message().starts_with("the Pod object from the host: "),
            "{err}"
        );
    }

    #[test]
    fn intents_carry_json_text() {
        let target = ObjectRef::new("v1", "ConfigMap", Some("a"), "b");
        let outcome = wit::Outcome::from(
            Outcome::new()
                .with(Apply::fields(&target, json!({"data": {"k": "v"}})))
                .with(Patch::merge(target, json!({"data": null})).status(true)),
        );
        match &outcome.intents[..] {
            [wit::Intent::Apply(apply), wit::Intent::MergePatch(patch)] => {
                let object: serde_json::Value = serde_json::from_str(&apply.object).unwrap();
                assert_eq!(object["data"]["k"], "v");
                assert_eq!(patch.patch, r#"{"data":null}"#);
                assert!(patch.status);
            }
            other => panic!("unexpected intents {}", other.len()),
        }
    }
}
