//! Checking a whole outcome and preparing its requests before any is sent.

use kube::api::DynamicObject;
use serde_json::{Value, json};

use super::Applier;
use super::error::{ApplyError, IntentSite};
use crate::contract::intent::{self, Intent, ObjectRef, Outcome, Propagation, Severity};
use crate::contract::{PluginInfo, ResourceKind};
use crate::plugins::grant::Grant;

/// A write ready to send, checked by [`Applier::plan`].
pub(super) struct Planned<'a> {
    pub(super) site: IntentSite,
    pub(super) target: ObjectRef,
    pub(super) write: Write<'a>,
}

/// The request an intent becomes.
pub(super) enum Write<'a> {
    Apply(ApplyWrite<'a>),
    MergePatch(MergePatchWrite<'a>),
    JsonPatch(JsonPatchWrite),
    Create {
        kind: ResourceKind,
        object: Box<DynamicObject>,
    },
    Delete {
        kind: ResourceKind,
        propagation: Option<Propagation>,
    },
    RecordEvent(EventWrite<'a>),
}

/// A server-side apply configuration.
pub(super) struct ApplyWrite<'a> {
    pub(super) kind: ResourceKind,
    pub(super) object: &'a Value,
    /// To the status subresource.
    pub(super) status: bool,
    pub(super) force: bool,
}

/// A JSON merge patch (RFC 7386).
pub(super) struct MergePatchWrite<'a> {
    pub(super) kind: ResourceKind,
    /// The plugin's patch, to compare against the cache.
    pub(super) patch: &'a Value,
    /// What is sent: the patch with the `resourceVersion` precondition.
    pub(super) sent: Value,
    pub(super) status: bool,
    pub(super) precondition: bool,
}

/// A JSON patch (RFC 6902).
pub(super) struct JsonPatchWrite {
    pub(super) kind: ResourceKind,
    /// The plugin's operations, to compare against the cache.
    pub(super) patch: json_patch::Patch,
    /// What is sent: the operations after the `resourceVersion` test.
    pub(super) sent: json_patch::Patch,
    pub(super) status: bool,
    /// Whether the patch has a `test` (the plugin's or ours).
    pub(super) precondition: bool,
    /// 1 if a `resourceVersion` test was put before the plugin's ops.
    pub(super) offset: usize,
}

/// An Event about the intent's target.
pub(super) struct EventWrite<'a> {
    pub(super) severity: Severity,
    pub(super) reason: &'a str,
    pub(super) note: &'a str,
    pub(super) action: &'a str,
}

impl Applier {
    /// Checks every intent and prepares its request; sends nothing.
    pub(super) fn plan<'a>(
        &self,
        id: &str,
        plugin: &PluginInfo,
        grant: &Grant,
        outcome: &'a Outcome,
    ) -> Result<Vec<Planned<'a>>, ApplyError> {
        let sites: Vec<(ObjectRef, IntentSite)> = outcome
            .intents
            .iter()
            .enumerate()
            .map(|(index, intent)| {
                let target = intent.target();
                let site = IntentSite {
                    plugin: id.to_string(),
                    index,
                    intent: intent.type_name(),
                    object: target.describe(),
                };
                (target, site)
            })
            .collect();
        intent::check_scope(plugin, outcome).map_err(|source| ApplyError::OutOfScope {
            site: sites[source.index].1.clone(),
            source: Box::new(source),
        })?;
        outcome
            .intents
            .iter()
            .zip(sites)
            .map(|(intent, (target, site))| self.plan_one(intent, grant, target, site))
            .collect()
    }

    /// Checks one intent against the grant and the cluster's kinds, and
    /// prepares its request.
    fn plan_one<'a>(
        &self,
        intent: &'a Intent,
        grant: &Grant,
        target: ObjectRef,
        site: IntentSite,
    ) -> Result<Planned<'a>, ApplyError> {
        // The runtime validated the intents already; an outcome built
        // elsewhere gets the same checks.
        intent::validate(site.index, intent).map_err(|e| {
            invalid(
                &site,
                match e {
                    intent::IntentError::Malformed { reason, .. } => reason,
                    intent::IntentError::InvalidJson { field, reason, .. } => {
                        format!("{field} is not valid JSON: {reason}")
                    }
                },
            )
        })?;
        let write = match intent {
            Intent::RecordEvent {
                severity,
                reason,
                note,
                action,
                ..
            } => {
                check_event(grant, &target, &site, action)?;
                Write::RecordEvent(EventWrite {
                    severity: *severity,
                    reason,
                    note,
                    action,
                })
            }
            _ => {
                let kind = self.resolve_kind(&target, &site)?;
                grant
                    .check_write(&kind.group, &kind.kind, target.namespace.as_deref())
                    .map_err(|reason| ApplyError::OutsideGrant {
                        site: site.clone(),
                        reason,
                    })?;
                object_write(intent, kind, &site)?
            }
        };
        Ok(Planned {
            site,
            target,
            write,
        })
    }

    /// The resource `target`'s kind is served as, refusing a namespace that
    /// does not fit the kind's scope.
    fn resolve_kind(
        &self,
        target: &ObjectRef,
        site: &IntentSite,
    ) -> Result<ResourceKind, ApplyError> {
        let kind = self
            .kinds
            .resolve(&target.api_version, &target.kind)
            .ok_or_else(|| ApplyError::UnknownKind {
                site: site.clone(),
                api_version: target.api_version.clone(),
                kind: target.kind.clone(),
            })?;
        match (kind.namespaced, &target.namespace) {
            (true, None) => Err(invalid(
                site,
                format!("{} is namespaced but no namespace is given", kind.kind),
            )),
            (false, Some(ns)) => Err(invalid(
                site,
                format!(
                    "{} is cluster-scoped but namespace {ns:?} is given",
                    kind.kind
                ),
            )),
            _ => Ok(kind),
        }
    }
}

fn invalid(site: &IntentSite, reason: String) -> ApplyError {
    ApplyError::Invalid {
        site: site.clone(),
        reason,
    }
}

/// Checks an Event's action, and that the grant lets the plugin record it
/// where it would be recorded.
fn check_event(
    grant: &Grant,
    regarding: &ObjectRef,
    site: &IntentSite,
    action: &str,
) -> Result<(), ApplyError> {
    if action.is_empty() || action.len() > 128 {
        return Err(invalid(
            site,
            "an Event action must be 1 to 128 characters".into(),
        ));
    }
    let namespace = super::events::event_namespace(regarding);
    grant
        .check_write("events.k8s.io", "Event", Some(namespace))
        .map_err(|reason| ApplyError::OutsideGrant {
            site: site.clone(),
            reason: format!("the Event would be recorded in {reason}"),
        })
}

/// The request for an intent that writes an object of `kind`.
fn object_write<'a>(
    intent: &'a Intent,
    kind: ResourceKind,
    site: &IntentSite,
) -> Result<Write<'a>, ApplyError> {
    Ok(match intent {
        Intent::Apply {
            object,
            status,
            force,
        } => Write::Apply(ApplyWrite {
            kind,
            object,
            status: *status,
            force: *force,
        }),
        Intent::MergePatch(p) => merge_patch_write(p, kind),
        Intent::JsonPatch(p) => json_patch_write(p, kind, site)?,
        Intent::Create { object } => {
            let object = serde_json::from_value(object.clone()).map_err(|e| {
                invalid(site, format!("the object is not a Kubernetes object: {e}"))
            })?;
            Write::Create {
                kind,
                object: Box::new(object),
            }
        }
        Intent::Delete { propagation, .. } => Write::Delete {
            kind,
            propagation: *propagation,
        },
        Intent::RecordEvent { .. } => unreachable!("an Event is planned by check_event"),
    })
}

/// A merge patch, with the plugin's `resourceVersion` precondition (if
/// any) put into the patch's metadata.
fn merge_patch_write(p: &intent::Patch, kind: ResourceKind) -> Write<'_> {
    let mut sent = p.patch.clone();
    if let Some(rv) = &p.resource_version {
        match sent["metadata"].as_object_mut() {
            Some(metadata) => {
                metadata.insert("resourceVersion".into(), json!(rv));
            }
            None => sent["metadata"] = json!({"resourceVersion": rv}),
        }
    }
    Write::MergePatch(MergePatchWrite {
        kind,
        patch: &p.patch,
        sent,
        status: p.status,
        precondition: p.resource_version.is_some(),
    })
}

/// A JSON patch, with the plugin's `resourceVersion` precondition (if any)
/// as a `test` before its operations.
fn json_patch_write(
    p: &intent::Patch,
    kind: ResourceKind,
    site: &IntentSite,
) -> Result<Write<'static>, ApplyError> {
    let parse = |value: Value| {
        serde_json::from_value::<json_patch::Patch>(value)
            .map_err(|e| invalid(site, format!("the JSON patch does not parse: {e}")))
    };
    let patch = parse(p.patch.clone())?;
    let sent = match &p.resource_version {
        Some(rv) => {
            let mut ops =
                vec![json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv})];
            ops.extend(p.patch.as_array().into_iter().flatten().cloned());
            parse(Value::Array(ops))?
        }
        None => patch.clone(),
    };
    let precondition = p.resource_version.is_some()
        || patch
            .0
            .iter()
            .any(|op| matches!(op, json_patch::PatchOperation::Test(_)));
    Ok(Write::JsonPatch(JsonPatchWrite {
        kind,
        patch,
        sent,
        status: p.status,
        precondition,
        offset: usize::from(p.resource_version.is_some()),
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::applier::{ApplierOptions, StaticKinds};
    use crate::cluster::cache::StaticObjects;
    use crate::contract::GroupKind;
    use crate::contract::intent::Patch;

    /// An applier whose client points nowhere: planning never sends.
    fn applier() -> Applier {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let kind = |kind: &str, plural: &str, namespaced| ResourceKind {
            group: String::new(),
            version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        };
        Applier::new(
            kube::Client::try_from(config).unwrap(),
            Arc::new(StaticKinds::new([
                kind("ConfigMap", "configmaps", true),
                kind("Namespace", "namespaces", false),
            ])),
            Arc::new(StaticObjects::default()),
            ApplierOptions::default(),
        )
    }

    fn plugin() -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: "1".into(),
            subscriptions: vec![],
            writes: vec![GroupKind {
                group: String::new(),
                kind: "*".into(),
            }],
            ..PluginInfo::default()
        }
    }

    fn target(kind: &str, namespace: Option<&str>) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.map(String::from),
            name: "x".into(),
        }
    }

    fn refusal(intents: Vec<Intent>) -> String {
        let outcome = Outcome {
            intents,
            requeue_after_ms: None,
        };
        let plugin = plugin();
        let err = applier()
            .plan(&plugin.name, &plugin, &Grant::unconfined(), &outcome)
            .err()
            .expect("refused");
        assert!(err.is_refusal(), "{err}");
        err.to_string()
    }

    #[tokio::test]
    async fn malformed_intents_are_refused_by_name() {
        let ok = Intent::Delete {
            target: target("ConfigMap", Some("ns")),
            propagation: None,
        };
        let bad_pointer = Intent::JsonPatch(Patch {
            target: target("ConfigMap", Some("ns")),
            patch: json!([{"op": "add", "path": "no-slash", "value": 1}]),
            status: false,
            resource_version: Some("7".into()),
        });
        let message = refusal(vec![ok.clone(), bad_pointer]);
        assert!(
            message.starts_with(
                "plugin p, intent 1 (json-patch) on v1 ConfigMap ns/x: refused, nothing of this outcome was sent: the JSON patch does not parse"
            ),
            "{message}"
        );

        let unnamespaced = Intent::Delete {
            target: target("ConfigMap", None),
            propagation: None,
        };
        assert!(
            refusal(vec![ok.clone(), unnamespaced])
                .ends_with(": ConfigMap is namespaced but no namespace is given")
        );
        let namespaced = Intent::Delete {
            target: target("Namespace", Some("ns")),
            propagation: None,
        };
        assert!(
            refusal(vec![namespaced])
                .ends_with(": Namespace is cluster-scoped but namespace \"ns\" is given")
        );

        let bad_labels = Intent::Create {
            object: json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "x", "namespace": "ns", "labels": {"n": 1}},
            }),
        };
        assert!(refusal(vec![bad_labels]).contains("the object is not a Kubernetes object"));

        let no_name = Intent::Apply {
            object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "ns"}}),
            status: false,
            force: false,
        };
        assert!(refusal(vec![no_name]).ends_with(": object has no metadata.name"));

        let no_action = Intent::RecordEvent {
            regarding: target("ConfigMap", Some("ns")),
            severity: Severity::Normal,
            reason: "R".into(),
            note: String::new(),
            action: String::new(),
        };
        assert!(
            refusal(vec![no_action]).ends_with(": an Event action must be 1 to 128 characters")
        );
    }
}
