//! Subscriptions to a version of a kind the cluster does not serve, and
//! owned or watched kinds it does not serve (at the named version, or at
//! all): the plugin receives none of those objects, or is never woken by
//! them, which must not be silent.

use std::collections::HashSet;

use super::Controller;
use crate::cluster::discovery::KindRegistry;
use crate::contract::{KindRef, PluginInfo, WILDCARD};

/// A subscription naming a concrete version the cluster does not serve, or
/// an owned or watched kind the cluster does not serve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Unserved {
    plugin: String,
    role: Role,
    group: String,
    kind: String,
    /// The version named; `*` for an owned or watched kind at whatever
    /// version the cluster prefers.
    version: String,
}

/// How the plugin names an unserved kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    Subscribes,
    Owns,
    Watches,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Subscribes => "subscribes",
            Role::Owns => "owns",
            Role::Watches => "watches",
        }
    }
}

impl Unserved {
    fn labels(&self) -> [&str; 4] {
        [&self.plugin, &self.group, &self.kind, &self.version]
    }
}

impl Controller {
    /// Logs (WARN when it starts, INFO when it ends) and counts in
    /// `kubewasm_subscription_unserved` each subscription that names a
    /// version of a kind the cluster serves only in other versions, and
    /// each owned or watched kind the cluster does not serve (at the
    /// version named, if any).
    pub(super) fn report_unserved(&self) {
        let now = self.find_unserved();
        let gauge = &self.metrics.subscription_unserved;
        let mut unserved = self.unserved.write().unwrap_or_else(|e| e.into_inner());
        for gone in unserved.difference(&now) {
            tracing::info!(plugin = %gone.plugin, group = %gone.group, kind = %gone.kind, version = %gone.version, role = gone.role.as_str(), "the kind is served again at the version named, or the plugin no longer names it");
            let _ = gauge.remove_label_values(&gone.labels());
        }
        for new in &now {
            gauge.with_label_values(&new.labels()).set(1);
        }
        *unserved = now;
    }

    /// The unserved subscriptions and kinds now, warning about each one not
    /// reported before.
    fn find_unserved(&self) -> HashSet<Unserved> {
        let registry = self.registry.load();
        let mut now = HashSet::new();
        for loaded in self.plugins.all() {
            let info = loaded.plugin.info();
            for entry in unserved_of(&loaded.id, info, &registry) {
                let reported = self
                    .unserved
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&entry);
                if !reported {
                    let served = registry
                        .get(&entry.group, &entry.kind)
                        .map(|k| k.versions.clone())
                        .unwrap_or_default();
                    match entry.role {
                        Role::Subscribes => tracing::warn!(
                            plugin = %entry.plugin, group = %entry.group, kind = %entry.kind, version = %entry.version,
                            served = ?served,
                            "the plugin subscribes to a version of this kind that the cluster does not serve; it receives none of its objects"
                        ),
                        role => tracing::warn!(
                            plugin = %entry.plugin, group = %entry.group, kind = %entry.kind, version = %entry.version,
                            served = ?served, role = role.as_str(),
                            "the plugin owns or watches a kind the cluster does not serve (at the version it names); changes of it reconcile nothing"
                        ),
                    }
                }
                now.insert(entry);
            }
        }
        now
    }
}

/// What `info` names that `registry` does not serve: concrete subscriptions
/// to an unserved version of a served kind (a subscription to a kind not
/// served at all may wait for its CRD), and owned or watched kinds not
/// served at the version named or at all.
fn unserved_of(id: &str, info: &PluginInfo, registry: &KindRegistry) -> Vec<Unserved> {
    let mut found = Vec::new();
    for s in &info.subscriptions {
        let concrete = |p: &str| p != WILDCARD;
        if !(concrete(&s.group) && concrete(&s.kind) && concrete(&s.version)) {
            continue;
        }
        let Some(kind) = registry.get(&s.group, &s.kind) else {
            continue;
        };
        if !kind.serves(&s.version) {
            found.push(Unserved {
                plugin: id.to_string(),
                role: Role::Subscribes,
                group: s.group.clone(),
                kind: s.kind.clone(),
                version: s.version.clone(),
            });
        }
    }
    let owned = info.owns.iter().map(|k| (Role::Owns, k));
    let watched = info.watches.iter().map(|w| (Role::Watches, &w.source));
    for (role, kind) in owned.chain(watched) {
        if registry.resolve(kind).is_none() {
            found.push(unserved_ref(id, role, kind));
        }
    }
    found
}

fn unserved_ref(plugin: &str, role: Role, kind: &KindRef) -> Unserved {
    Unserved {
        plugin: plugin.to_string(),
        role,
        group: kind.group.clone(),
        kind: kind.kind.clone(),
        version: kind.version.clone().unwrap_or_else(|| WILDCARD.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::discovery::KindInfo;
    use crate::contract::{GroupKind, MapRule, MappedWatch, ResourceKind, Subscription};

    fn served(group: &str, kind: &str, versions: &[&str]) -> KindInfo {
        KindInfo {
            resource: ResourceKind {
                group: group.into(),
                version: versions[0].into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
                namespaced: true,
            },
            verbs: vec!["list".into(), "watch".into()],
            has_status: false,
            versions: versions.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn kind_ref(group: &str, kind: &str, version: Option<&str>) -> KindRef {
        KindRef {
            group: group.into(),
            kind: kind.into(),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn owned_and_watched_kinds_not_served_are_reported() {
        let registry = KindRegistry::new([
            served("", "ConfigMap", &["v1"]),
            served("demo.dev", "Site", &["v1"]),
        ]);
        let info = PluginInfo {
            name: "site".into(),
            version: "1".into(),
            subscriptions: vec![Subscription {
                group: "demo.dev".into(),
                version: "v1".into(),
                kind: "Site".into(),
                namespaces: vec![],
                label_selector: None,
            }],
            owns: vec![
                kind_ref("", "ConfigMap", None),
                kind_ref("", "Secret", None),
                kind_ref("", "ConfigMap", Some("v2")),
            ],
            watches: vec![MappedWatch {
                source: kind_ref("other.dev", "Source", Some("v1")),
                target: GroupKind::new("demo.dev", "Site"),
                rule: MapRule::FieldRef("spec.source".into()),
            }],
            ..PluginInfo::default()
        };
        let found: Vec<String> = unserved_of(&info.name, &info, &registry)
            .iter()
            .map(|u| format!("{} {}/{}/{}", u.role.as_str(), u.group, u.kind, u.version))
            .collect();
        assert_eq!(
            found,
            [
                "owns /Secret/*",
                "owns /ConfigMap/v2",
                "watches other.dev/Source/v1"
            ]
        );
    }
}
