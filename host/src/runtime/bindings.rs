//! Bindings generated from `wit/` (the one place the host runs `bindgen!`),
//! one module per contract version the host loads, and conversions between
//! the generated types and the host's own.
//!
//! - [`v0_2`]: `kubewasm:plugin@0.2.0`, `wit/plugin.wit`, the current contract;
//! - [`v0_1`]: `kubewasm:plugin@0.1.0`, `wit/v0.1.0/plugin.wit`, kept so
//!   plugins built against it keep loading. Its plugins own, watch and
//!   finalize nothing, and never see a `finalizing` event.
//!
//! The intent and outcome records are the same in both versions but are
//! distinct generated types, so their conversions are written once, as
//! [`outcome_conversions!`], and expanded in each module.

use crate::contract::intent::{
    self, Intent, IntentError, ObjectRef, Outcome, Patch, Propagation, Severity,
};
use crate::contract::{EventType, GroupKind, PluginInfo, Subscription};

/// Conversions of the records both versions share (intents, outcomes,
/// subscriptions, events), expanded in a module whose `wit` is that
/// version's `types` interface.
macro_rules! outcome_conversions {
    () => {
        /// Bytes of text an outcome carries, the measure of the result-size limit.
        pub fn outcome_size(outcome: &wit::Outcome) -> usize {
            let target = |t: &wit::ObjectRef| {
                t.api_version.len()
                    + t.kind.len()
                    + t.name.len()
                    + t.namespace.as_ref().map_or(0, String::len)
            };
            outcome
                .intents
                .iter()
                .map(|i| match i {
                    wit::Intent::Apply(a) => a.object.len(),
                    wit::Intent::MergePatch(p) | wit::Intent::JsonPatch(p) => {
                        target(&p.target)
                            + p.patch.len()
                            + p.resource_version.as_ref().map_or(0, String::len)
                    }
                    wit::Intent::Create(c) => c.object.len(),
                    wit::Intent::Delete(d) => target(&d.target),
                    wit::Intent::RecordEvent(e) => {
                        target(&e.regarding) + e.reason.len() + e.note.len() + e.action.len()
                    }
                })
                .sum()
        }

        fn object_ref(r: wit::ObjectRef) -> ObjectRef {
            ObjectRef {
                api_version: r.api_version,
                kind: r.kind,
                namespace: r.namespace,
                name: r.name,
            }
        }

        fn patch(
            index: usize,
            name: &'static str,
            p: wit::PatchIntent,
        ) -> Result<Patch, IntentError> {
            Ok(Patch {
                target: object_ref(p.target),
                patch: intent::parse_json(index, name, "patch", &p.patch)?,
                status: p.status,
                resource_version: p.resource_version,
            })
        }

        /// Parses and validates every intent; the first bad one refuses the outcome.
        pub fn outcome_from_wit(outcome: wit::Outcome) -> Result<Outcome, IntentError> {
            let mut intents = Vec::with_capacity(outcome.intents.len());
            for (index, raw) in outcome.intents.into_iter().enumerate() {
                let parsed = match raw {
                    wit::Intent::Apply(a) => Intent::Apply {
                        object: intent::parse_json(index, "apply", "object", &a.object)?,
                        status: a.status,
                        force: a.force,
                    },
                    wit::Intent::MergePatch(p) => {
                        Intent::MergePatch(patch(index, "merge-patch", p)?)
                    }
                    wit::Intent::JsonPatch(p) => Intent::JsonPatch(patch(index, "json-patch", p)?),
                    wit::Intent::Create(c) => Intent::Create {
                        object: intent::parse_json(index, "create", "object", &c.object)?,
                    },
                    wit::Intent::Delete(d) => Intent::Delete {
                        target: object_ref(d.target),
                        propagation: d.propagation.map(|p| match p {
                            wit::PropagationPolicy::Background => Propagation::Background,
                            wit::PropagationPolicy::Foreground => Propagation::Foreground,
                            wit::PropagationPolicy::Orphan => Propagation::Orphan,
                        }),
                    },
                    wit::Intent::RecordEvent(e) => Intent::RecordEvent {
                        regarding: object_ref(e.regarding),
                        severity: match e.severity {
                            wit::EventSeverity::Normal => Severity::Normal,
                            wit::EventSeverity::Warning => Severity::Warning,
                        },
                        reason: e.reason,
                        note: e.note,
                        action: e.action,
                    },
                };
                intent::validate(index, &parsed)?;
                intents.push(parsed);
            }
            Ok(Outcome {
                intents,
                requeue_after_ms: outcome.requeue_after_ms,
            })
        }

        fn subscriptions(subscriptions: Vec<wit::Subscription>) -> Vec<Subscription> {
            subscriptions
                .into_iter()
                .map(|s| Subscription {
                    group: s.group,
                    version: s.version,
                    kind: s.kind,
                    namespaces: s.namespaces,
                    label_selector: s.label_selector,
                })
                .collect()
        }

        fn writes(writes: Vec<wit::WriteScope>) -> Vec<GroupKind> {
            writes
                .into_iter()
                .map(|w| GroupKind {
                    group: w.group,
                    kind: w.kind,
                })
                .collect()
        }

        /// `event` with `event_type`, as this version's record.
        fn event_as(event: &crate::contract::Event, event_type: wit::EventType) -> wit::Event {
            let kind = &event.kind;
            wit::Event {
                event_type,
                kind: wit::ResourceKind {
                    group: kind.group.clone(),
                    version: kind.version.clone(),
                    kind: kind.kind.clone(),
                    plural: kind.plural.clone(),
                    namespaced: kind.namespaced,
                },
                // The cached text: a copy, not a serialization.
                object: event.object.json().to_owned(),
            }
        }
    };
}

/// The world at `path` with its exports called asynchronously, reusing the
/// types and host interface of the enclosing version's synchronous bindings
/// (one set of types, one host implementation).
macro_rules! serving_bindings {
    ($path:literal) => {
        wasmtime::component::bindgen!({
            path: $path,
            world: "plugin",
            imports: { default: trappable },
            exports: { default: async },
            with: {
                "kubewasm:plugin/types": super::kubewasm::plugin::types,
                "kubewasm:plugin/host": super::kubewasm::plugin::host,
            },
        });
    };
}

/// `kubewasm:plugin@0.2.0`, the current contract.
pub mod v0_2 {
    use super::*;
    use crate::contract::{Finalizer, KindRef, MapRule, MappedWatch};

    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        // Host functions may trap the guest: a call past its deadline or its
        // host read budget is stopped from inside the host call.
        imports: { default: trappable },
    });

    pub use self::kubewasm::plugin::host;
    pub use self::kubewasm::plugin::types as wit;

    /// The same world with its exports called asynchronously: the bindings
    /// of serving reconciles, which run on the host's async workers.
    pub mod serving {
        serving_bindings!("../wit");
    }

    outcome_conversions!();

    fn kind_ref(k: wit::KindRef) -> KindRef {
        KindRef {
            group: k.group,
            kind: k.kind,
            version: k.version,
        }
    }

    fn group_kind(k: wit::GroupKind) -> GroupKind {
        GroupKind::new(k.group, k.kind)
    }

    impl From<wit::PluginInfo> for PluginInfo {
        fn from(info: wit::PluginInfo) -> Self {
            PluginInfo {
                name: info.name,
                version: info.version,
                subscriptions: subscriptions(info.subscriptions),
                writes: writes(info.writes),
                owns: info.owns.into_iter().map(kind_ref).collect(),
                watches: info
                    .watches
                    .into_iter()
                    .map(|w| MappedWatch {
                        source: kind_ref(w.source),
                        target: group_kind(w.target),
                        rule: match w.rule {
                            wit::MapRule::FieldRef(path) => MapRule::FieldRef(path),
                            wit::MapRule::Label(key) => MapRule::Label(key),
                            wit::MapRule::Selector(selector) => MapRule::Selector(selector),
                        },
                    })
                    .collect(),
                finalizer: info.finalizer.map(|f| Finalizer {
                    name: f.name,
                    kinds: f.kinds.into_iter().map(group_kind).collect(),
                }),
            }
        }
    }

    pub fn event_to_wit(event: &crate::contract::Event) -> wit::Event {
        let event_type = match event.event_type {
            EventType::Applied => wit::EventType::Applied,
            EventType::Deleted => wit::EventType::Deleted,
            EventType::Resync => wit::EventType::Resync,
            EventType::Finalizing => wit::EventType::Finalizing,
        };
        event_as(event, event_type)
    }
}

/// `kubewasm:plugin@0.1.0`, kept so plugins built against it keep loading.
pub mod v0_1 {
    use super::*;

    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "plugin",
        imports: { default: trappable },
    });

    pub use self::kubewasm::plugin::host;
    pub use self::kubewasm::plugin::types as wit;

    /// The same world with its exports called asynchronously (see
    /// [`super::v0_2::serving`]).
    pub mod serving {
        serving_bindings!("../wit/v0.1.0");
    }

    outcome_conversions!();

    impl From<wit::PluginInfo> for PluginInfo {
        fn from(info: wit::PluginInfo) -> Self {
            PluginInfo {
                name: info.name,
                version: info.version,
                subscriptions: subscriptions(info.subscriptions),
                writes: writes(info.writes),
                ..PluginInfo::default()
            }
        }
    }

    /// A 0.1.0 plugin manages no finalizer, so it is never sent a
    /// `finalizing` event; should one reach it, it sees the object as
    /// changed, as every 0.1.0 plugin saw a deleting object.
    pub fn event_to_wit(event: &crate::contract::Event) -> wit::Event {
        let event_type = match event.event_type {
            EventType::Applied | EventType::Finalizing => wit::EventType::Applied,
            EventType::Deleted => wit::EventType::Deleted,
            EventType::Resync => wit::EventType::Resync,
        };
        event_as(event, event_type)
    }
}
