//! label-propagator: copies chosen labels from a Namespace onto the
//! ConfigMaps, Deployments and Services in it.
//!
//! Settings name the labels to copy and, optionally, the kinds to label:
//!
//! ```json
//! {"labels": ["team", "cost-center"], "kinds": ["Deployment", "Service"]}
//! ```
//!
//! The plugin writes only `metadata.labels` (and an annotation remembering
//! which labels it propagated) by server-side apply with its own field
//! manager, and only when something actually changes. It is called for the
//! target objects themselves (reading their Namespace from the host cache) and
//! for Namespaces (re-labelling every target object in the Namespace from the
//! cache), so a label change on either side converges.

mod propagate;
mod settings;

use kubewasm_guest::k8s_openapi::api::core::v1::Namespace;
use kubewasm_guest::{
    Error, Event, Object, Outcome, Plugin, PluginInfo, Subscription, WriteScope, cache,
    raw_settings,
};

pub use propagate::PROPAGATED;
pub use settings::Settings;

/// A kind the plugin labels.
pub struct Target {
    /// `apiVersion` the plugin reads it with.
    pub api_version: &'static str,
    /// API group (`""` for core).
    pub group: &'static str,
    /// Kind.
    pub kind: &'static str,
}

/// The kinds the plugin labels, sorted by kind.
pub const TARGETS: [Target; 3] = [
    Target {
        api_version: "v1",
        group: "",
        kind: "ConfigMap",
    },
    Target {
        api_version: "apps/v1",
        group: "apps",
        kind: "Deployment",
    },
    Target {
        api_version: "v1",
        group: "",
        kind: "Service",
    },
];

/// The plugin.
pub struct LabelPropagator;

impl Plugin for LabelPropagator {
    fn describe() -> PluginInfo {
        let version_of = |t: &Target| t.api_version.rsplit('/').next().unwrap_or_default();
        TARGETS.iter().fold(
            PluginInfo::new("label-propagator", env!("CARGO_PKG_VERSION"))
                .subscribe(Subscription::new("", "v1", "Namespace")),
            |info, t| {
                info.subscribe(Subscription::new(t.group, version_of(t), t.kind))
                    .writes(WriteScope::new(t.group, t.kind))
            },
        )
    }

    fn validate_settings(settings: &str) -> Result<(), Error> {
        Settings::parse(settings).map(drop)
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        if event.is_deleted() || event.object.is_being_deleted() {
            return Ok(Outcome::new());
        }
        let settings =
            Settings::parse(&raw_settings()).map_err(|e| e.context("invalid settings"))?;
        if event.kind.group.is_empty() && event.kind.kind == "Namespace" {
            return relabel_namespace(&event.object, &settings);
        }
        if !settings.kinds.contains(&event.kind.kind) {
            return Ok(Outcome::new());
        }
        let Some(namespace) = event.object.namespace() else {
            return Ok(Outcome::new());
        };
        let Some(ns) = cache::get_resource::<Namespace>(None, namespace)? else {
            // The Namespace's own event relabels the object once it is cached.
            kubewasm_guest::debug!("Namespace {namespace} is not in the cache yet");
            return Ok(Outcome::new());
        };
        let wanted = propagate::wanted_labels(&ns.metadata.labels.unwrap_or_default(), &settings);
        let mut outcome = Outcome::new();
        outcome.extend(propagate::apply_for(&event.object, &wanted));
        Ok(outcome)
    }
}

/// Brings every target object in `namespace` in line with its labels, in a
/// stable order (kind, then name).
fn relabel_namespace(namespace: &Object, settings: &Settings) -> Result<Outcome, Error> {
    let wanted = propagate::wanted_labels(&namespace.labels(), settings);
    let mut outcome = Outcome::new();
    for target in TARGETS.iter().filter(|t| settings.kinds.contains(t.kind)) {
        let mut objects = cache::list(
            target.api_version,
            target.kind,
            Some(namespace.name()),
            None,
        )?;
        objects.sort_by(|a, b| a.name().cmp(b.name()));
        let applies = objects
            .iter()
            .filter(|o| !o.is_being_deleted())
            .filter_map(|o| propagate::apply_for(o, &wanted));
        outcome.extend(applies);
    }
    if !outcome.intents.is_empty() {
        kubewasm_guest::info!("relabelling {} objects", outcome.intents.len(); namespace = namespace.name());
    }
    Ok(outcome)
}

kubewasm_guest::export_plugin!(LabelPropagator);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_namespaces_and_targets() {
        let info = LabelPropagator::describe();
        let subs: Vec<_> = info
            .subscriptions
            .iter()
            .map(|s| format!("{}/{}/{}", s.group, s.version, s.kind))
            .collect();
        assert_eq!(
            subs,
            [
                "/v1/Namespace",
                "/v1/ConfigMap",
                "apps/v1/Deployment",
                "/v1/Service"
            ]
        );
        let writes: Vec<_> = info
            .writes
            .iter()
            .map(|w| format!("{}/{}", w.group, w.kind))
            .collect();
        assert_eq!(writes, ["/ConfigMap", "apps/Deployment", "/Service"]);
    }
}
