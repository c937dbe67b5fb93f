//! Kinds a plugin is woken by without subscribing to them: children it owns
//! and sources of mapped watches.

/// An exact kind, `group` (`""` for the core group) and `kind`, with an
/// optional version (none: the version the cluster prefers).
///
/// ```
/// use kubewasm_guest::KindRef;
///
/// let maps = KindRef::new("", "ConfigMap");
/// assert_eq!(maps.version, None);
/// let deployments = KindRef::new("apps", "Deployment").version("v1");
/// assert_eq!(deployments.version.as_deref(), Some("v1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KindRef {
    /// API group, `""` for the core group. No `"*"`.
    pub group: String,
    /// Kind. No `"*"`.
    pub kind: String,
    /// The version to watch the kind at; none for the preferred one.
    pub version: Option<String>,
}

impl KindRef {
    /// One kind, at the version the cluster prefers.
    ///
    /// ```
    /// let secrets = kubewasm_guest::KindRef::new("", "Secret");
    /// assert_eq!((secrets.group.as_str(), secrets.kind.as_str()), ("", "Secret"));
    /// ```
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        KindRef {
            group: group.into(),
            kind: kind.into(),
            version: None,
        }
    }

    /// Watches the kind at this version.
    ///
    /// ```
    /// let jobs = kubewasm_guest::KindRef::new("batch", "Job").version("v1");
    /// assert_eq!(jobs.version.as_deref(), Some("v1"));
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The kind of a k8s-openapi type, at that type's version.
    ///
    /// ```
    /// use k8s_openapi::api::core::v1::ConfigMap;
    /// let maps = kubewasm_guest::KindRef::of::<ConfigMap>();
    /// assert_eq!((maps.group.as_str(), maps.kind.as_str(), maps.version.as_deref()),
    ///            ("", "ConfigMap", Some("v1")));
    /// ```
    #[cfg(feature = "k8s-openapi")]
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        KindRef::new(K::GROUP, K::KIND).version(K::VERSION)
    }
}

/// An exact kind without a version: `group` (`""` for the core group) and
/// `kind`.
///
/// ```
/// let websites = kubewasm_guest::GroupKind::new("demo.kubewasm.dev", "Website");
/// assert_eq!(websites.kind, "Website");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKind {
    /// API group, `""` for the core group. No `"*"`.
    pub group: String,
    /// Kind. No `"*"`.
    pub kind: String,
}

impl GroupKind {
    /// One kind.
    ///
    /// ```
    /// let pods = kubewasm_guest::GroupKind::new("", "Pod");
    /// assert_eq!(pods.group, "");
    /// ```
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        GroupKind {
            group: group.into(),
            kind: kind.into(),
        }
    }

    /// The kind of a k8s-openapi type.
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::Deployment;
    /// assert_eq!(kubewasm_guest::GroupKind::of::<Deployment>().group, "apps");
    /// ```
    #[cfg(feature = "k8s-openapi")]
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        GroupKind::new(K::GROUP, K::KIND)
    }
}

/// How a changed source object names the target objects to reconcile. The
/// host applies the rule to its cache; the plugin is not called to map.
/// "The namespace" is the changed object's namespace, or every namespace
/// when the changed object is cluster-scoped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MapRule {
    /// Every target in the namespace whose field at this dot-separated path
    /// (`spec.configMapRef.name`) is the source's name, or a list of strings
    /// containing it.
    FieldRef(String),
    /// The target in the namespace named by the value of this label on the
    /// source (`app.kubernetes.io/instance`).
    Label(String),
    /// Every target in the namespace that matches this label selector
    /// (`tier=web`), whichever source changed.
    Selector(String),
}

/// Changes of `source` objects reconcile the `target` objects `rule`
/// chooses (kube-rs `Controller::watches`, controller-runtime `Watches`
/// with a map function). Each target gets a `resync` of its newest cached
/// state; the source's own change is not delivered, but the plugin may read
/// `source` objects from the cache.
///
/// ```
/// use kubewasm_guest::{GroupKind, KindRef, MapRule, MappedWatch};
///
/// let watch = MappedWatch::field_ref(
///     KindRef::new("", "ConfigMap"),
///     GroupKind::new("demo.kubewasm.dev", "Website"),
///     "spec.configMapRef.name",
/// );
/// assert_eq!(watch.rule, MapRule::FieldRef("spec.configMapRef.name".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MappedWatch {
    /// The kind whose changes are mapped.
    pub source: KindRef,
    /// The kind reconciled; one the plugin subscribes to.
    pub target: GroupKind,
    /// How a source names its targets.
    pub rule: MapRule,
}

impl MappedWatch {
    /// A watch with any rule.
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, KindRef, MapRule, MappedWatch};
    /// let w = MappedWatch::new(KindRef::new("", "Secret"), GroupKind::new("", "ConfigMap"),
    ///                          MapRule::Selector("app=web".into()));
    /// assert_eq!(w.source.kind, "Secret");
    /// ```
    pub fn new(source: KindRef, target: GroupKind, rule: MapRule) -> Self {
        MappedWatch {
            source,
            target,
            rule,
        }
    }

    /// A changed source reconciles every target in its namespace whose
    /// field at `path` holds the source's name ([`MapRule::FieldRef`]).
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, KindRef, MappedWatch};
    /// let w = MappedWatch::field_ref(KindRef::new("", "Secret"),
    ///     GroupKind::new("demo.kubewasm.dev", "Website"), "spec.tlsSecrets");
    /// assert_eq!(w.target.kind, "Website");
    /// ```
    pub fn field_ref(source: KindRef, target: GroupKind, path: impl Into<String>) -> Self {
        MappedWatch::new(source, target, MapRule::FieldRef(path.into()))
    }

    /// A changed source reconciles the target its label `key` names
    /// ([`MapRule::Label`]).
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, KindRef, MapRule, MappedWatch};
    /// let w = MappedWatch::label(KindRef::new("", "Service"),
    ///     GroupKind::new("apps", "Deployment"), "app.kubernetes.io/instance");
    /// assert!(matches!(w.rule, MapRule::Label(_)));
    /// ```
    pub fn label(source: KindRef, target: GroupKind, key: impl Into<String>) -> Self {
        MappedWatch::new(source, target, MapRule::Label(key.into()))
    }

    /// A changed source reconciles every target in its namespace matching
    /// `selector` ([`MapRule::Selector`]).
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, KindRef, MappedWatch};
    /// let w = MappedWatch::selector(KindRef::new("", "ConfigMap"),
    ///     GroupKind::new("apps", "Deployment"), "tier=web");
    /// assert_eq!(w.source.group, "");
    /// ```
    pub fn selector(source: KindRef, target: GroupKind, selector: impl Into<String>) -> Self {
        MappedWatch::new(source, target, MapRule::Selector(selector.into()))
    }
}

/// A finalizer the host manages for the plugin on objects of `kinds`.
///
/// The host adds `name` before applying the intents of the first reconcile
/// that returns any; when the object's deletion starts it calls the plugin
/// with a [`Finalizing`](crate::EventType::Finalizing) event, and removes
/// the finalizer once that reconcile succeeds and its intents are applied.
/// The plugin never adds or removes the finalizer itself.
/// `kubewasm release-finalizers` removes a plugin's finalizer from every
/// object, for a plugin that is gone.
///
/// ```
/// use kubewasm_guest::{Finalizer, GroupKind};
///
/// let f = Finalizer::new("example.com/cleanup", [GroupKind::new("demo.kubewasm.dev", "Website")]);
/// assert_eq!(f.kinds.len(), 1);
/// assert_eq!(Finalizer::default_name("website"), "kubewasm.dev/website");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finalizer {
    /// A qualified name, `<dns-subdomain>/<name>`.
    pub name: String,
    /// Exact kinds the plugin subscribes to and writes.
    pub kinds: Vec<GroupKind>,
}

impl Finalizer {
    /// A finalizer `name` on objects of `kinds`.
    ///
    /// ```
    /// use kubewasm_guest::{Finalizer, GroupKind};
    /// let f = Finalizer::new("example.com/dns", [GroupKind::new("", "Service")]);
    /// assert_eq!(f.name, "example.com/dns");
    /// ```
    pub fn new(name: impl Into<String>, kinds: impl IntoIterator<Item = GroupKind>) -> Self {
        Finalizer {
            name: name.into(),
            kinds: kinds.into_iter().collect(),
        }
    }

    /// The conventional name for a plugin's finalizer,
    /// `kubewasm.dev/<plugin-name>`.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::Finalizer::default_name("dns"), "kubewasm.dev/dns");
    /// ```
    pub fn default_name(plugin: &str) -> String {
        format!("kubewasm.dev/{plugin}")
    }
}
