//! Subscriptions to a version of a kind the cluster does not serve: the
//! plugin receives none of that kind's objects, which must not be silent.

use std::collections::HashSet;

use super::Controller;
use crate::contract::{Subscription, WILDCARD};

/// A subscription naming a concrete version the cluster does not serve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Unserved {
    plugin: String,
    group: String,
    kind: String,
    version: String,
}

impl Unserved {
    fn of(plugin: &str, subscription: &Subscription) -> Self {
        Self {
            plugin: plugin.to_string(),
            group: subscription.group.clone(),
            kind: subscription.kind.clone(),
            version: subscription.version.clone(),
        }
    }

    fn labels(&self) -> [&str; 4] {
        [&self.plugin, &self.group, &self.kind, &self.version]
    }
}

impl Controller {
    /// Logs (WARN when it starts, INFO when it ends) and counts in
    /// `kubewasm_subscription_unserved` each subscription that names a
    /// version of a kind the cluster serves only in other versions.
    pub(super) fn report_unserved(&self) {
        let now = self.find_unserved();
        let gauge = &self.metrics.subscription_unserved;
        let mut unserved = self.unserved.write().unwrap_or_else(|e| e.into_inner());
        for gone in unserved.difference(&now) {
            tracing::info!(plugin = %gone.plugin, group = %gone.group, kind = %gone.kind, version = %gone.version, "the subscribed version is served again, or the subscription is gone");
            let _ = gauge.remove_label_values(&gone.labels());
        }
        for new in &now {
            gauge.with_label_values(&new.labels()).set(1);
        }
        *unserved = now;
    }

    /// The unserved subscriptions now, warning about each one not reported
    /// before.
    fn find_unserved(&self) -> HashSet<Unserved> {
        let registry = self.registry.load();
        let mut now = HashSet::new();
        for loaded in self.plugins.all() {
            let info = loaded.plugin.info();
            for s in &info.subscriptions {
                let concrete = |p: &str| p != WILDCARD;
                if !(concrete(&s.group) && concrete(&s.kind) && concrete(&s.version)) {
                    continue;
                }
                let Some(kind) = registry.get(&s.group, &s.kind) else {
                    continue;
                };
                if kind.serves(&s.version) {
                    continue;
                }
                let entry = Unserved::of(&info.name, s);
                let reported = self
                    .unserved
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&entry);
                if !reported {
                    tracing::warn!(
                        plugin = %info.name, group = %s.group, kind = %s.kind, version = %s.version,
                        served = ?kind.versions,
                        "the plugin subscribes to a version of this kind that the cluster does not serve; it receives none of its objects"
                    );
                }
                now.insert(entry);
            }
        }
        now
    }
}
