//! What a plugin is, in the host's own terms: its self-description
//! (subscriptions and write scope) and the events it is called with.
//!
//! These types mirror the WIT records in `wit/plugin.wit` but carry no
//! wasmtime types, so the rest of the host never depends on the runtime.

use std::sync::Arc;

use serde::Serialize;

use super::kind::{GroupKind, ResourceKind, WILDCARD, pattern_matches};
use super::selector::LabelSelector;
use crate::cluster::object::CachedObject;

/// A plugin's description of itself, returned by its `describe` export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub subscriptions: Vec<Subscription>,
    /// The kinds it writes; `*` in group or kind matches any.
    pub writes: Vec<GroupKind>,
    /// Kinds of children whose changes reconcile their controller owner.
    pub owns: Vec<KindRef>,
    /// Changes of other kinds mapped to reconciles of subscribed kinds.
    pub watches: Vec<MappedWatch>,
    /// The finalizer the host manages for the plugin.
    pub finalizer: Option<Finalizer>,
}

/// An exact kind to watch, at a version or at the one the cluster prefers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindRef {
    pub group: String,
    pub kind: String,
    pub version: Option<String>,
}

impl KindRef {
    pub fn group_kind(&self) -> GroupKind {
        GroupKind::new(&self.group, &self.kind)
    }
}

/// How a changed object of a watched kind names the objects to reconcile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum MapRule {
    /// Targets whose field at this dot-separated path is the source's name
    /// (or a list of strings containing it).
    FieldRef(String),
    /// The target named by this label's value on the source.
    Label(String),
    /// Every target matching this label selector.
    Selector(String),
}

/// Changes of `source` objects reconcile `target` objects chosen by `rule`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappedWatch {
    pub source: KindRef,
    pub target: GroupKind,
    pub rule: MapRule,
}

/// A finalizer the host manages on the plugin's objects of `kinds`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finalizer {
    pub name: String,
    pub kinds: Vec<GroupKind>,
}

impl Finalizer {
    /// Whether the host manages this finalizer on objects of `kind`.
    pub fn covers(&self, kind: &GroupKind) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }
}

/// A kind pattern the plugin wants events for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Empty means every namespace.
    pub namespaces: Vec<String>,
    pub label_selector: Option<String>,
}

/// Why a plugin is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Applied,
    Deleted,
    Resync,
    /// Deletion started and the plugin's finalizer is still on the object.
    Finalizing,
}

impl EventType {
    /// The name as written in WIT (and in logs and metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Applied => "applied",
            EventType::Deleted => "deleted",
            EventType::Resync => "resync",
            EventType::Finalizing => "finalizing",
        }
    }
}

/// One change delivered to a plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub event_type: EventType,
    pub kind: ResourceKind,
    pub object: Arc<CachedObject>,
}

impl Subscription {
    /// Whether this subscription covers `kind` (group, version and kind;
    /// namespaces and selectors are applied per object).
    pub fn matches_kind(&self, kind: &ResourceKind) -> bool {
        pattern_matches(&self.group, &kind.group)
            && pattern_matches(&self.version, &kind.version)
            && pattern_matches(&self.kind, &kind.kind)
    }

    /// Whether this subscription covers objects of `group`/`kind` in any version.
    pub fn matches_group_kind(&self, group: &str, kind: &str) -> bool {
        pattern_matches(&self.group, group) && pattern_matches(&self.kind, kind)
    }

    /// Whether an object in `namespace` (none for cluster-scoped) is wanted.
    pub fn matches_namespace(&self, namespace: Option<&str>) -> bool {
        match namespace {
            None => true,
            Some(ns) => self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == ns),
        }
    }
}

impl PluginInfo {
    /// Whether the plugin declared it writes objects of `group`/`kind`.
    pub fn may_write(&self, group: &str, kind: &str) -> bool {
        self.writes.iter().any(|w| w.matches(group, kind))
    }

    /// Whether the plugin subscribes to, owns or watches `group`/`kind` in
    /// some version; the host cache only serves such kinds to the plugin.
    pub fn may_read(&self, group: &str, kind: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.matches_group_kind(group, kind))
            || self.watched().any(|k| k.group == group && k.kind == kind)
    }

    /// The kinds the plugin watches besides its subscriptions: what it owns
    /// and the sources of its mapped watches.
    pub fn watched(&self) -> impl Iterator<Item = &KindRef> {
        self.owns
            .iter()
            .chain(self.watches.iter().map(|w| &w.source))
    }

    /// Whether the plugin reconciles objects of `kind` (some subscription
    /// names it; wildcards included).
    pub fn reconciles(&self, kind: &GroupKind) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.matches_group_kind(&kind.group, &kind.kind))
    }

    /// The field manager for server-side apply: `kubewasm/<name>`.
    pub fn field_manager(&self) -> String {
        field_manager(&self.name)
    }

    /// Checks the description is well formed: a DNS-label name, a version,
    /// no empty pattern and label selectors that parse. Returns the first
    /// problem found.
    pub fn validate(&self) -> Result<(), String> {
        self.validated().map(drop)
    }

    /// Like [`validate`](Self::validate), and returns the subscriptions with
    /// their label selectors parsed, which the host keeps while the plugin is
    /// loaded.
    pub fn validated(&self) -> Result<ParsedSubscriptions, String> {
        if !is_dns_label(&self.name) {
            return Err(format!(
                "plugin name {:?} is not a DNS label (lower-case alphanumerics and '-', at most 63 characters)",
                self.name
            ));
        }
        if self.version.trim().is_empty() {
            return Err("plugin version is empty".to_string());
        }
        let mut parsed = Vec::with_capacity(self.subscriptions.len());
        for (i, s) in self.subscriptions.iter().enumerate() {
            if s.version.is_empty() || s.kind.is_empty() {
                return Err(format!(
                    "subscription {i} has an empty version or kind (use \"*\" for any)"
                ));
            }
            let selector = match &s.label_selector {
                Some(selector) => {
                    LabelSelector::parse(selector).map_err(|e| format!("subscription {i}: {e}"))?
                }
                None => LabelSelector::default(),
            };
            parsed.push((s.clone(), selector));
        }
        for (i, w) in self.writes.iter().enumerate() {
            if w.kind.is_empty() {
                return Err(format!(
                    "write scope {i} has an empty kind (use \"*\" for any)"
                ));
            }
        }
        for (i, owned) in self.owns.iter().enumerate() {
            check_kind_ref(owned).map_err(|e| format!("owns {i}: {e}"))?;
        }
        let mut maps = Vec::with_capacity(self.watches.len());
        for (i, watch) in self.watches.iter().enumerate() {
            maps.push(
                self.check_watch(watch)
                    .map_err(|e| format!("watches {i}: {e}"))?,
            );
        }
        if let Some(finalizer) = &self.finalizer {
            self.check_finalizer(finalizer)
                .map_err(|e| format!("finalizer {:?}: {e}", finalizer.name))?;
        }
        Ok(ParsedSubscriptions {
            subscriptions: parsed,
            watches: maps,
        })
    }
}

impl PluginInfo {
    /// A mapped watch's target must be a kind the plugin reconciles, and its
    /// rule must parse. Returns the rule ready to route with.
    fn check_watch(&self, watch: &MappedWatch) -> Result<ParsedWatch, String> {
        check_kind_ref(&watch.source).map_err(|e| format!("source: {e}"))?;
        check_group_kind(&watch.target).map_err(|e| format!("target: {e}"))?;
        if !self.reconciles(&watch.target) {
            return Err(format!(
                "target {} is not a kind the plugin subscribes to",
                watch.target
            ));
        }
        let rule = match &watch.rule {
            MapRule::FieldRef(path) => {
                let segments: Vec<String> = path.split('.').map(str::to_string).collect();
                if path.len() > 256 || segments.iter().any(String::is_empty) {
                    return Err(format!(
                        "field-ref {:?} is not a dot-separated path of non-empty names (at most 256 bytes)",
                        super::names::truncated(path)
                    ));
                }
                ParsedRule::FieldRef(segments)
            }
            MapRule::Label(key) => {
                super::names::check_label_key(key).map_err(|e| format!("label: {e}"))?;
                ParsedRule::Label(key.clone())
            }
            MapRule::Selector(selector) => ParsedRule::Selector(
                LabelSelector::parse(selector).map_err(|e| format!("selector: {e}"))?,
            ),
        };
        Ok(ParsedWatch {
            watch: watch.clone(),
            rule,
        })
    }

    /// A finalizer needs a qualified name and exact kinds the plugin both
    /// reconciles and may write (the host writes `metadata.finalizers` on
    /// the plugin's behalf, so it stays inside the declared write scope).
    fn check_finalizer(&self, finalizer: &Finalizer) -> Result<(), String> {
        super::names::check_finalizer_name(&finalizer.name)?;
        if finalizer.kinds.is_empty() {
            return Err("names no kind to finalize".to_string());
        }
        for kind in &finalizer.kinds {
            check_group_kind(kind)?;
            if !self.reconciles(kind) {
                return Err(format!("{kind} is not a kind the plugin subscribes to"));
            }
            if !self.may_write(&kind.group, &kind.kind) {
                return Err(format!("{kind} is not in the plugin's write scope"));
            }
        }
        Ok(())
    }
}

/// An exact group and kind: no wildcard, a kind name that can appear in a URL.
fn check_group_kind(kind: &GroupKind) -> Result<(), String> {
    if kind.group == WILDCARD || kind.kind == WILDCARD {
        return Err(format!("{kind} has a wildcard; name an exact kind"));
    }
    super::names::check_kind_name(&kind.kind)?;
    super::names::check_group_name(&kind.group)
}

fn check_kind_ref(kind: &KindRef) -> Result<(), String> {
    check_group_kind(&kind.group_kind())?;
    match &kind.version {
        Some(version) => super::names::check_version_name(version),
        None => Ok(()),
    }
}

/// A plugin's subscriptions with their label selectors parsed, and its
/// mapped watches with their rules parsed, once, when the plugin is loaded
/// ([`PluginInfo::validated`]): routing an event to the plugin parses nothing.
#[derive(Clone, Debug, Default)]
pub struct ParsedSubscriptions {
    subscriptions: Vec<(Subscription, LabelSelector)>,
    watches: Vec<ParsedWatch>,
}

/// A mapped watch with its rule ready to apply.
#[derive(Clone, Debug)]
pub struct ParsedWatch {
    pub watch: MappedWatch,
    pub rule: ParsedRule,
}

/// A [`MapRule`], parsed.
#[derive(Clone, Debug)]
pub enum ParsedRule {
    FieldRef(Vec<String>),
    Label(String),
    Selector(LabelSelector),
}

impl ParsedSubscriptions {
    /// Whether some subscription covers `object` of `kind`: its kind, its
    /// namespace and its labels.
    pub fn cover(&self, kind: &ResourceKind, object: &CachedObject) -> bool {
        let namespace = object.namespace();
        self.subscriptions.iter().any(|(s, selector)| {
            s.matches_kind(kind)
                && s.matches_namespace(namespace)
                && selector.matches_labels(|k| object.label(k))
        })
    }

    /// The mapped watches whose source is `kind`.
    pub fn watches_of<'a>(&'a self, kind: &'a GroupKind) -> impl Iterator<Item = &'a ParsedWatch> {
        self.watches
            .iter()
            .filter(move |w| w.watch.source.group_kind() == *kind)
    }
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The field manager of the plugin the host knows as `id`: `kubewasm/<id>`
/// (its `describe` name, or `<namespace>/<name>` for a namespaced Plugin).
pub fn field_manager(id: &str) -> String {
    format!("kubewasm/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(group: &str, version: &str, kind: &str) -> ResourceKind {
        ResourceKind {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: format!("{}s", kind.to_lowercase()),
            namespaced: true,
        }
    }

    fn sub(group: &str, version: &str, k: &str) -> Subscription {
        Subscription {
            group: group.into(),
            version: version.into(),
            kind: k.into(),
            namespaces: vec![],
            label_selector: None,
        }
    }

    #[test]
    fn wildcards_match_any_part() {
        let deployment = kind("apps", "v1", "Deployment");
        assert!(sub("*", "*", "*").matches_kind(&deployment));
        assert!(sub("apps", "*", "Deployment").matches_kind(&deployment));
        assert!(!sub("", "v1", "Deployment").matches_kind(&deployment));
        assert!(!sub("apps", "v1beta1", "Deployment").matches_kind(&deployment));
    }

    #[test]
    fn namespaces_filter_only_namespaced_objects() {
        let mut s = sub("", "v1", "ConfigMap");
        s.namespaces = vec!["a".into()];
        assert!(s.matches_namespace(Some("a")));
        assert!(!s.matches_namespace(Some("b")));
        assert!(s.matches_namespace(None));
    }

    #[test]
    fn write_scope_and_read_scope() {
        let info = PluginInfo {
            name: "demo".into(),
            version: "1.0.0".into(),
            subscriptions: vec![sub("", "v1", "Namespace")],
            writes: vec![GroupKind {
                group: "apps".into(),
                kind: "*".into(),
            }],
            ..PluginInfo::default()
        };
        assert!(info.may_write("apps", "Deployment"));
        assert!(!info.may_write("", "ConfigMap"));
        assert!(info.may_read("", "Namespace"));
        assert!(!info.may_read("", "Secret"));
        assert_eq!(info.field_manager(), "kubewasm/demo");
    }

    #[test]
    fn validate_names_the_problem() {
        let mut info = PluginInfo {
            name: "Bad_Name".into(),
            version: "1".into(),
            subscriptions: vec![],
            writes: vec![],
            ..PluginInfo::default()
        };
        assert!(info.validate().unwrap_err().contains("\"Bad_Name\""));
        info.name = "good".into();
        info.subscriptions.push(Subscription {
            label_selector: Some("a in (".into()),
            ..sub("", "v1", "Pod")
        });
        assert!(info.validate().unwrap_err().starts_with("subscription 0"));
    }

    #[test]
    fn parsed_subscriptions_cover_kind_namespace_and_labels() {
        let info = PluginInfo {
            name: "demo".into(),
            version: "1".into(),
            subscriptions: vec![
                Subscription {
                    namespaces: vec!["shop".into()],
                    label_selector: Some("app=web".into()),
                    ..sub("", "v1", "ConfigMap")
                },
                sub("apps", "v1", "Deployment"),
            ],
            writes: vec![],
            ..PluginInfo::default()
        };
        let parsed = info.validated().unwrap();
        let object = |ns: &str, app: &str| {
            let o = serde_json::json!({"metadata": {"namespace": ns, "labels": {"app": app}}});
            CachedObject::from_value(&o)
        };
        let config_map = kind("", "v1", "ConfigMap");
        assert!(parsed.cover(&config_map, &object("shop", "web")));
        assert!(!parsed.cover(&config_map, &object("shop", "db")));
        assert!(!parsed.cover(&config_map, &object("other", "web")));
        assert!(parsed.cover(&kind("apps", "v1", "Deployment"), &object("x", "db")));
        assert!(!parsed.cover(&kind("", "v1", "Secret"), &object("shop", "web")));
    }
}
