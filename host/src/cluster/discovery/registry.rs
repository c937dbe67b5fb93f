//! The kinds the host knows about, as discovery last found them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use kube::api::ApiResource;
use serde::Serialize;
use tokio::sync::watch;

use super::{Discovered, GroupFailure};
use crate::contract::{KindRef, ResourceKind, Subscription, WILDCARD, split_api_version};

/// One kind the server serves, at the version the host uses for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindInfo {
    pub resource: ResourceKind,
    /// Verbs of `resource.version`, sorted.
    pub verbs: Vec<String>,
    /// Whether the kind has a `status` subresource.
    pub has_status: bool,
    /// Every version that serves this resource with `list` and `watch`, the
    /// chosen one (`resource.version`) first.
    pub versions: Vec<String>,
}

impl KindInfo {
    /// Whether the chosen version supports `verb` (`get`, `patch`, ...).
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Whether `version` serves this resource with `list` and `watch`.
    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    /// This kind at another served version, e.g. for a subscription that
    /// names one; `None` if `version` does not serve it.
    fn at_version(&self, version: &str) -> Option<KindInfo> {
        if self.resource.version == version {
            return Some(self.clone());
        }
        self.serves(version).then(|| KindInfo {
            resource: ResourceKind {
                version: version.to_string(),
                ..self.resource.clone()
            },
            ..self.clone()
        })
    }

    /// The kube type for a dynamic `Api<DynamicObject>` of this kind.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.resource.group.clone(),
            version: self.resource.version.clone(),
            api_version: self.resource.api_version(),
            kind: self.resource.kind.clone(),
            plural: self.resource.plural.clone(),
        }
    }

    fn key(&self) -> (String, String) {
        (self.resource.group.clone(), self.resource.plural.clone())
    }
}

/// Every listable, watchable kind discovery found, one version per
/// group/resource, and the group versions it could not discover.
///
/// Immutable: discovery builds a new one and [`SharedRegistry`] swaps it in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindRegistry {
    /// By (group, plural): the identity of a resource across versions.
    kinds: BTreeMap<(String, String), KindInfo>,
    /// (group, kind) to the key in `kinds`.
    by_kind: HashMap<(String, String), (String, String)>,
    failures: Vec<GroupFailure>,
}

impl From<Discovered> for KindRegistry {
    fn from(discovered: Discovered) -> Self {
        let mut registry = Self::new(discovered.kinds);
        registry.failures = discovered.failures;
        registry
    }
}

impl KindRegistry {
    /// A registry of `kinds` (later entries replace earlier ones with the
    /// same group and plural).
    pub fn new(kinds: impl IntoIterator<Item = KindInfo>) -> Self {
        let kinds: BTreeMap<_, _> = kinds.into_iter().map(|k| (k.key(), k)).collect();
        let mut by_kind = HashMap::new();
        // In key order, so that if two resources of a group share a kind the
        // first by plural answers, whatever the input order.
        for (key, info) in &kinds {
            by_kind
                .entry((info.resource.group.clone(), info.resource.kind.clone()))
                .or_insert_with(|| key.clone());
        }
        Self {
            kinds,
            by_kind,
            failures: Vec::new(),
        }
    }

    /// The registry after a re-discovery: the kinds of `discovered`, plus the
    /// kinds `previous` had in a group version that failed this time.
    ///
    /// An aggregated API that is briefly unavailable thus keeps its kinds
    /// (and their informers, which back off until it is back) instead of
    /// flapping out of and into the registry.
    pub fn rediscovered(discovered: Discovered, previous: &KindRegistry) -> Self {
        let failed = |info: &KindInfo| {
            discovered
                .failures
                .iter()
                .any(|f| f.group == info.resource.group && info.versions.contains(&f.version))
        };
        let mut kinds: BTreeMap<_, _> = previous
            .kinds
            .iter()
            .filter(|(_, info)| failed(info))
            .map(|(key, info)| (key.clone(), info.clone()))
            .collect();
        kinds.extend(discovered.kinds.into_iter().map(|k| (k.key(), k)));
        let mut registry = Self::new(kinds.into_values());
        registry.failures = discovered.failures;
        registry
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// All kinds, sorted by group and plural.
    pub fn iter(&self) -> impl Iterator<Item = &KindInfo> {
        self.kinds.values()
    }

    /// Group versions the last discovery could not read.
    pub fn failures(&self) -> &[GroupFailure] {
        &self.failures
    }

    /// The kind `kind` of `group` ("" for core), at the version the host uses.
    pub fn get(&self, group: &str, kind: &str) -> Option<&KindInfo> {
        let key = self.by_kind.get(&(group.to_string(), kind.to_string()))?;
        self.kinds.get(key)
    }

    /// The kind at exactly `version`, which need not be the chosen one but
    /// must serve it with `list` and `watch`.
    fn get_version(&self, group: &str, version: &str, kind: &str) -> Option<KindInfo> {
        self.get(group, kind)?.at_version(version)
    }

    /// Like [`get_version`](Self::get_version) with an `apiVersion`
    /// (`v1`, `apps/v1`).
    pub fn get_api_version(&self, api_version: &str, kind: &str) -> Option<KindInfo> {
        let (group, version) = split_api_version(api_version);
        self.get_version(group, version, kind)
    }

    /// The kind an owned kind or a mapped watch's source names: at its
    /// version if it names one (`None` if that version is not served), else
    /// at the version the host uses for the kind.
    pub fn resolve(&self, kind: &KindRef) -> Option<KindInfo> {
        let info = self.get(&kind.group, &kind.kind)?;
        match &kind.version {
            Some(version) => info.at_version(version),
            None => Some(info.clone()),
        }
    }

    /// The kinds `subscription` covers: with a wildcard version each at its
    /// chosen version, with a named version at that version if it serves it.
    pub fn matching(&self, subscription: &Subscription) -> Vec<KindInfo> {
        self.iter()
            .filter(|info| {
                subscription.matches_group_kind(&info.resource.group, &info.resource.kind)
            })
            .filter_map(|info| {
                if subscription.version == WILDCARD {
                    Some(info.clone())
                } else {
                    info.at_version(&subscription.version)
                }
            })
            .collect()
    }

    /// What changed from `self` to `newer`.
    pub fn diff(&self, newer: &KindRegistry) -> RegistryDiff {
        let mut diff = RegistryDiff::default();
        for (key, old) in &self.kinds {
            match newer.kinds.get(key) {
                None => diff.removed.push(old.clone()),
                Some(new) if new.resource != old.resource => {
                    diff.removed.push(old.clone());
                    diff.added.push(new.clone());
                }
                Some(new) if new != old => {
                    // Same chosen version; other versions may have come or
                    // gone, and plugins subscribed to them must follow.
                    let served = |info: &KindInfo, v: &String| info.serves(v);
                    diff.removed.extend(
                        old.versions
                            .iter()
                            .filter(|v| !served(new, v))
                            .filter_map(|v| old.at_version(v)),
                    );
                    diff.added.extend(
                        new.versions
                            .iter()
                            .filter(|v| !served(old, v))
                            .filter_map(|v| new.at_version(v)),
                    );
                    diff.changed.push(new.clone());
                }
                Some(_) => {}
            }
        }
        for (key, new) in &newer.kinds {
            if !self.kinds.contains_key(key) {
                diff.added.push(new.clone());
            }
        }
        diff.added.sort_by_key(KindInfo::key);
        diff
    }
}

/// The difference between two registries, for starting and stopping
/// informers.
///
/// A resource whose chosen version or scope changed is both removed (at the
/// old version) and added (at the new one), because its informer must be
/// restarted. A resource that keeps its chosen version but stops serving
/// another version is also removed at that version (subscribers of it lose
/// the kind), and one that starts serving another version is added at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryDiff {
    pub added: Vec<KindInfo>,
    pub removed: Vec<KindInfo>,
    /// Same resource at the same version, with other verbs, status
    /// subresource or served versions.
    pub changed: Vec<KindInfo>,
}

impl RegistryDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The current [`KindRegistry`], shared by the whole host and swapped
/// atomically when discovery re-runs.
///
/// Readers [`load`](Self::load) an `Arc` snapshot and are never blocked for
/// longer than a pointer copy; [`subscribe`](Self::subscribe) to be woken on
/// every swap. Cheap to clone; clones share the registry.
#[derive(Clone, Debug)]
pub struct SharedRegistry {
    current: Arc<watch::Sender<Arc<KindRegistry>>>,
}

impl Default for SharedRegistry {
    fn default() -> Self {
        Self::new(KindRegistry::default())
    }
}

impl SharedRegistry {
    pub fn new(registry: KindRegistry) -> Self {
        Self {
            current: Arc::new(watch::Sender::new(Arc::new(registry))),
        }
    }

    /// The current registry.
    pub fn load(&self) -> Arc<KindRegistry> {
        self.current.borrow().clone()
    }

    /// Makes `registry` current and returns what changed.
    pub fn replace(&self, registry: KindRegistry) -> RegistryDiff {
        let registry = Arc::new(registry);
        let previous = self.current.send_replace(registry.clone());
        previous.diff(&registry)
    }

    /// A receiver that sees every registry made current from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<KindRegistry>> {
        self.current.subscribe()
    }
}

/// The registry as a table for `kubewasm discover`: group ("core" for the
/// core group), version, kind, plural, namespaced, verbs; sorted by group
/// and kind.
pub fn render_table(registry: &KindRegistry) -> String {
    const HEADER: [&str; 6] = ["GROUP", "VERSION", "KIND", "PLURAL", "NAMESPACED", "VERBS"];
    let mut kinds: Vec<&KindInfo> = registry.iter().collect();
    kinds.sort_by_key(|info| {
        (
            &info.resource.group,
            &info.resource.kind,
            &info.resource.plural,
        )
    });
    let rows: Vec<[String; 6]> = kinds
        .into_iter()
        .map(|info| {
            let r = &info.resource;
            [
                if r.group.is_empty() {
                    "core".to_string()
                } else {
                    r.group.clone()
                },
                r.version.clone(),
                r.kind.clone(),
                r.plural.clone(),
                r.namespaced.to_string(),
                info.verbs.join(","),
            ]
        })
        .collect();

    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_string);
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                let _ = writeln!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &str, version: &str, kind: &str, namespaced: bool) -> KindInfo {
        KindInfo {
            resource: ResourceKind {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
                plural: format!("{}s", kind.to_lowercase()),
                namespaced,
            },
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            has_status: false,
            versions: vec![version.into()],
        }
    }

    fn sub(group: &str, version: &str, kind: &str) -> Subscription {
        Subscription {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespaces: vec![],
            label_selector: None,
        }
    }

    fn sample() -> KindRegistry {
        let mut hpa = info("autoscaling", "v2", "HorizontalPodAutoscaler", true);
        hpa.versions = vec!["v2".into(), "v1".into()];
        KindRegistry::new([
            info("", "v1", "ConfigMap", true),
            info("", "v1", "Namespace", false),
            info("apps", "v1", "Deployment", true),
            info("apps", "v1", "StatefulSet", true),
            hpa,
            info("widgets.example.dev", "v1", "Widget", true),
        ])
    }

    fn names(kinds: &[KindInfo]) -> Vec<String> {
        kinds
            .iter()
            .map(|k| format!("{}/{}", k.resource.api_version(), k.resource.kind))
            .collect()
    }

    #[test]
    fn lookups_by_kind_and_version() {
        let registry = sample();
        assert!(!registry.get("", "Namespace").unwrap().resource.namespaced);
        assert!(registry.get("apps", "Namespace").is_none());
        assert_eq!(
            registry
                .get_api_version("apps/v1", "Deployment")
                .unwrap()
                .resource
                .plural,
            "deployments"
        );
        assert!(
            registry
                .get_api_version("apps/v1beta1", "Deployment")
                .is_none()
        );
        // A served, non-chosen version is answered at that version.
        let v1 = registry
            .get_version("autoscaling", "v1", "HorizontalPodAutoscaler")
            .unwrap();
        assert_eq!(v1.resource.version, "v1");
        assert_eq!(v1.api_resource().api_version, "autoscaling/v1");
    }

    #[test]
    fn kind_refs_resolve_to_the_named_or_chosen_version() {
        let registry = sample();
        let kind_ref = |group: &str, kind: &str, version: Option<&str>| KindRef {
            group: group.into(),
            kind: kind.into(),
            version: version.map(str::to_string),
        };
        let hpa = "HorizontalPodAutoscaler";
        let chosen = registry
            .resolve(&kind_ref("autoscaling", hpa, None))
            .unwrap();
        assert_eq!(chosen.resource.version, "v2");
        let named = registry
            .resolve(&kind_ref("autoscaling", hpa, Some("v1")))
            .unwrap();
        assert_eq!(named.resource.version, "v1");
        assert!(
            registry
                .resolve(&kind_ref("autoscaling", hpa, Some("v3")))
                .is_none()
        );
        assert!(registry.resolve(&kind_ref("", "Secret", None)).is_none());
        // Exact group: the core ConfigMap is not an apps kind.
        assert!(
            registry
                .resolve(&kind_ref("apps", "ConfigMap", None))
                .is_none()
        );
    }

    #[test]
    fn wildcard_subscriptions_match_kinds() {
        let registry = sample();
        assert_eq!(registry.matching(&sub("*", "*", "*")).len(), registry.len());
        assert_eq!(
            names(&registry.matching(&sub("apps", "*", "*"))),
            ["apps/v1/Deployment", "apps/v1/StatefulSet"]
        );
        assert_eq!(
            names(&registry.matching(&sub("*", "v1", "Namespace"))),
            ["v1/Namespace"]
        );
        assert!(registry.matching(&sub("", "v2", "ConfigMap")).is_empty());
        assert_eq!(
            names(&registry.matching(&sub("autoscaling", "v1", "*"))),
            ["autoscaling/v1/HorizontalPodAutoscaler"]
        );
        assert_eq!(
            names(&registry.matching(&sub("*", "*", "Widget"))),
            ["widgets.example.dev/v1/Widget"]
        );
    }

    #[test]
    fn diff_reports_added_removed_and_changed() {
        let old = sample();
        let mut kinds: Vec<_> = old
            .iter()
            .filter(|k| k.resource.kind != "Widget")
            .cloned()
            .collect();
        kinds.push(info("gadgets.example.dev", "v1", "Gadget", false));
        // Deployment gains a status subresource; StatefulSet moves to v2.
        kinds
            .iter_mut()
            .find(|k| k.resource.kind == "Deployment")
            .unwrap()
            .has_status = true;
        kinds
            .iter_mut()
            .find(|k| k.resource.kind == "StatefulSet")
            .unwrap()
            .resource
            .version = "v2".into();
        let new = KindRegistry::new(kinds);

        let diff = old.diff(&new);
        assert_eq!(
            names(&diff.added),
            ["apps/v2/StatefulSet", "gadgets.example.dev/v1/Gadget"]
        );
        assert_eq!(
            names(&diff.removed),
            ["apps/v1/StatefulSet", "widgets.example.dev/v1/Widget"]
        );
        assert_eq!(names(&diff.changed), ["apps/v1/Deployment"]);
        assert!(new.diff(&new).is_empty());
    }

    #[test]
    fn a_version_served_or_unserved_beside_the_chosen_one_is_added_or_removed() {
        let mut both = info("demo.dev", "v1", "Website", true);
        both.versions = vec!["v1".into(), "v1alpha1".into()];
        let only_v1 = info("demo.dev", "v1", "Website", true);
        let old = KindRegistry::new([both]);
        let new = KindRegistry::new([only_v1]);
        let diff = old.diff(&new);
        assert_eq!(names(&diff.removed), ["demo.dev/v1alpha1/Website"]);
        assert!(diff.added.is_empty());
        assert_eq!(names(&diff.changed), ["demo.dev/v1/Website"]);
        let back = new.diff(&old);
        assert_eq!(names(&back.added), ["demo.dev/v1alpha1/Website"]);
        assert!(back.removed.is_empty());
    }

    #[test]
    fn rediscovery_keeps_kinds_of_failed_groups() {
        let previous = KindRegistry::new([
            info("", "v1", "ConfigMap", true),
            info("metrics.example.dev", "v1beta1", "NodeMetrics", false),
            info("gone.example.dev", "v1", "Gone", true),
        ]);
        let discovered = Discovered {
            kinds: vec![info("", "v1", "ConfigMap", true)],
            failures: vec![GroupFailure {
                group: "metrics.example.dev".into(),
                version: "v1beta1".into(),
                reason: "503".into(),
            }],
            method: super::super::DiscoveryMethod::Aggregated,
        };
        let next = KindRegistry::rediscovered(discovered, &previous);
        assert!(next.get("metrics.example.dev", "NodeMetrics").is_some());
        assert!(next.get("gone.example.dev", "Gone").is_none());
        assert_eq!(next.failures().len(), 1);
    }

    #[test]
    fn shared_registry_swaps_and_reports_the_diff() {
        let shared = SharedRegistry::default();
        let updates = shared.subscribe();
        let before = shared.load();
        let diff = shared.replace(sample());
        assert_eq!(diff.added.len(), sample().len());
        assert!(before.is_empty(), "an old snapshot is unaffected by a swap");
        assert_eq!(shared.load().len(), sample().len());
        assert!(updates.has_changed().unwrap());
        assert!(shared.clone().replace(sample()).is_empty());
    }

    #[test]
    fn table_lists_core_first_with_aligned_columns() {
        let table = render_table(&KindRegistry::new([
            info("apps", "v1", "Deployment", true),
            info("", "v1", "Namespace", false),
            info("", "v1", "ConfigMap", true),
        ]));
        let expected = "\
GROUP  VERSION  KIND        PLURAL       NAMESPACED  VERBS
core   v1       ConfigMap   configmaps   true        get,list,watch
core   v1       Namespace   namespaces   false       get,list,watch
apps   v1       Deployment  deployments  true        get,list,watch
";
        assert_eq!(table, expected);
    }
}
