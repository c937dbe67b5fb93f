//! The [`Plugin`] trait a plugin implements, and the description it gives of
//! itself.

use crate::{Error, Event, Finalizer, GroupKind, KindRef, MappedWatch, Outcome};

/// A kubewasm reconcile plugin. Implement it on a unit struct and export it
/// with [`export_plugin!`](crate::export_plugin).
///
/// The functions take no `self`: a plugin keeps no state between calls (the
/// host may run every call in a fresh instance). Everything a call needs comes
/// from the [`Event`], the [settings](crate::settings()) and the host's
/// [cache](crate::cache).
///
/// ```
/// use kubewasm_guest::{Event, Error, Outcome, Plugin, PluginInfo, Subscription};
///
/// struct Hello;
///
/// impl Plugin for Hello {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("hello", "0.1.0").subscribe(Subscription::new("", "v1", "ConfigMap"))
///     }
///
///     fn reconcile(event: &Event) -> Result<Outcome, Error> {
///         kubewasm_guest::info!("saw {}", event.object.name());
///         Ok(Outcome::new())
///     }
/// }
///
/// kubewasm_guest::export_plugin!(Hello);
/// # fn main() {}
/// ```
pub trait Plugin: 'static {
    /// Name, version, subscriptions, write scope, owned kinds, mapped
    /// watches and finalizer. Called once when the plugin loads; must not
    /// depend on settings.
    fn describe() -> PluginInfo;

    /// Checks an operator-supplied settings document (JSON text) before the
    /// host uses it; the error should name the offending field, which
    /// [`parse_settings`](crate::parse_settings) does. Accepts everything by
    /// default.
    fn validate_settings(settings: &str) -> Result<(), Error> {
        let _ = settings;
        Ok(())
    }

    /// Reconciles one object: returns the writes to make and, optionally, a
    /// delay after which to be called again. An error makes the host retry
    /// the object with backoff and none of the writes happen.
    fn reconcile(event: &Event) -> Result<Outcome, Error>;
}

/// What a plugin says about itself.
///
/// ```
/// use kubewasm_guest::{PluginInfo, Subscription, WriteScope};
///
/// let info = PluginInfo::new("label-propagator", env!("CARGO_PKG_VERSION"))
///     .subscribe(Subscription::new("apps", "v1", "Deployment").namespaces(["shop"]))
///     .writes(WriteScope::new("apps", "Deployment"));
/// assert_eq!(info.subscriptions[0].namespaces, ["shop"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// DNS-label-like name, unique among loaded plugins; the host writes with
    /// field manager `kubewasm/<name>`.
    pub name: String,
    /// Version of the plugin's logic, e.g. `1.2.0`.
    pub version: String,
    /// The kinds the plugin is called for (and may read from the cache).
    pub subscriptions: Vec<Subscription>,
    /// The kinds the plugin may write.
    pub writes: Vec<WriteScope>,
    /// Kinds of children the plugin owns: a change or deletion of such an
    /// object whose controller owner reference names an object of a kind the
    /// plugin subscribes to reconciles that owner (a `resync`), not the
    /// child. The plugin may read owned kinds from the cache.
    pub owns: Vec<KindRef>,
    /// Changes of other kinds mapped to reconciles of subscribed kinds.
    pub watches: Vec<MappedWatch>,
    /// A finalizer for the host to manage, if any.
    pub finalizer: Option<Finalizer>,
}

impl PluginInfo {
    /// A plugin with no subscriptions and no write scope yet.
    ///
    /// ```
    /// let info = kubewasm_guest::PluginInfo::new("noop", "0.1.0");
    /// assert!(info.subscriptions.is_empty() && info.writes.is_empty());
    /// ```
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        PluginInfo {
            name: name.into(),
            version: version.into(),
            subscriptions: Vec::new(),
            writes: Vec::new(),
            owns: Vec::new(),
            watches: Vec::new(),
            finalizer: None,
        }
    }

    /// Adds a subscription.
    ///
    /// ```
    /// use kubewasm_guest::{PluginInfo, Subscription};
    /// let info = PluginInfo::new("p", "1").subscribe(Subscription::new("", "v1", "Namespace"));
    /// assert_eq!(info.subscriptions[0].kind, "Namespace");
    /// ```
    pub fn subscribe(mut self, subscription: Subscription) -> Self {
        self.subscriptions.push(subscription);
        self
    }

    /// Adds a kind the plugin may write.
    ///
    /// ```
    /// use kubewasm_guest::{PluginInfo, WriteScope};
    /// let info = PluginInfo::new("p", "1").writes(WriteScope::new("", "ConfigMap"));
    /// assert_eq!(info.writes[0].kind, "ConfigMap");
    /// ```
    pub fn writes(mut self, scope: WriteScope) -> Self {
        self.writes.push(scope);
        self
    }

    /// Adds a kind of children the plugin owns (kube-rs `Controller::owns`):
    /// a child's change or deletion reconciles its controller, and the
    /// plugin reads the children with
    /// [`cache::list_owned`](crate::cache::list_owned). Declare the kind in
    /// [`writes`](Self::writes) too to create or change children; no
    /// subscription to the kind is needed.
    ///
    /// ```
    /// use kubewasm_guest::{KindRef, PluginInfo, Subscription, WriteScope};
    /// let info = PluginInfo::new("p", "1")
    ///     .subscribe(Subscription::new("demo.kubewasm.dev", "v1alpha1", "Website"))
    ///     .owns(KindRef::new("", "ConfigMap"))
    ///     .writes(WriteScope::new("", "ConfigMap"));
    /// assert_eq!(info.owns[0].kind, "ConfigMap");
    /// ```
    pub fn owns(mut self, kind: KindRef) -> Self {
        self.owns.push(kind);
        self
    }

    /// Adds a mapped watch: changes of its source kind reconcile the
    /// targets its rule names.
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, KindRef, MappedWatch, PluginInfo};
    /// let info = PluginInfo::new("p", "1").watches(MappedWatch::label(
    ///     KindRef::new("", "Secret"), GroupKind::new("", "ConfigMap"), "app"));
    /// assert_eq!(info.watches[0].source.kind, "Secret");
    /// ```
    pub fn watches(mut self, watch: MappedWatch) -> Self {
        self.watches.push(watch);
        self
    }

    /// Asks the host to manage a finalizer named
    /// `kubewasm.dev/<plugin-name>` ([`Finalizer::default_name`]) on objects
    /// of `kinds`, which the plugin must subscribe to and write. The plugin
    /// then gets a [`Finalizing`](crate::EventType::Finalizing) event when
    /// such an object's deletion starts.
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, PluginInfo};
    /// let info = PluginInfo::new("website", "1")
    ///     .finalizer([GroupKind::new("demo.kubewasm.dev", "Website")]);
    /// assert_eq!(info.finalizer.unwrap().name, "kubewasm.dev/website");
    /// ```
    pub fn finalizer(self, kinds: impl IntoIterator<Item = GroupKind>) -> Self {
        let name = Finalizer::default_name(&self.name);
        self.finalizer_named(name, kinds)
    }

    /// Like [`finalizer`](Self::finalizer), with a name of the plugin's
    /// choosing (`<dns-subdomain>/<name>`).
    ///
    /// ```
    /// use kubewasm_guest::{GroupKind, PluginInfo};
    /// let info = PluginInfo::new("dns", "1")
    ///     .finalizer_named("example.com/dns-record", [GroupKind::new("", "Service")]);
    /// assert_eq!(info.finalizer.unwrap().name, "example.com/dns-record");
    /// ```
    pub fn finalizer_named(
        mut self,
        name: impl Into<String>,
        kinds: impl IntoIterator<Item = GroupKind>,
    ) -> Self {
        self.finalizer = Some(Finalizer::new(name, kinds));
        self
    }
}

/// A kind pattern to be called for. `group`, `version` and `kind` are each an
/// exact value or `"*"`; the core group is `""`.
///
/// ```
/// use kubewasm_guest::Subscription;
///
/// let web = Subscription::new("apps", "v1", "Deployment")
///     .namespaces(["shop", "blog"])
///     .label_selector("app=web");
/// assert_eq!(web.label_selector.as_deref(), Some("app=web"));
/// assert_eq!(Subscription::all().kind, "*");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// API group, `""` for the core group, or `"*"`.
    pub group: String,
    /// Version, or `"*"`.
    pub version: String,
    /// Kind, or `"*"`.
    pub kind: String,
    /// Only objects in these namespaces; empty means all. Cluster-scoped
    /// objects are delivered regardless.
    pub namespaces: Vec<String>,
    /// A Kubernetes label selector (`app=web,tier!=cache`); none means all.
    pub label_selector: Option<String>,
}

impl Subscription {
    /// Every object of one kind pattern, in every namespace.
    ///
    /// ```
    /// let s = kubewasm_guest::Subscription::new("demo.kubewasm.dev", "v1alpha1", "Website");
    /// assert!(s.namespaces.is_empty() && s.label_selector.is_none());
    /// ```
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Self {
        Subscription {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            namespaces: Vec::new(),
            label_selector: None,
        }
    }

    /// Every kind the cluster serves (`*/*/*`).
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::Subscription::all().group, "*");
    /// ```
    pub fn all() -> Self {
        Subscription::new("*", "*", "*")
    }

    /// Only objects in these namespaces.
    ///
    /// ```
    /// let s = kubewasm_guest::Subscription::new("", "v1", "Service").namespaces(["a"]);
    /// assert_eq!(s.namespaces, ["a"]);
    /// ```
    pub fn namespaces<S: Into<String>>(mut self, namespaces: impl IntoIterator<Item = S>) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Only objects whose labels match this selector.
    ///
    /// ```
    /// let s = kubewasm_guest::Subscription::new("", "v1", "ConfigMap").label_selector("app=web");
    /// assert_eq!(s.label_selector.as_deref(), Some("app=web"));
    /// ```
    pub fn label_selector(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }
}

/// A kind the plugin may write: `group` and `kind`, each exact or `"*"`.
/// Covers every intent on that kind, its `status` subresource included.
///
/// ```
/// let scope = kubewasm_guest::WriteScope::new("", "ConfigMap");
/// assert_eq!(scope.group, "");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteScope {
    /// API group, `""` for the core group, or `"*"`.
    pub group: String,
    /// Kind, or `"*"`.
    pub kind: String,
}

impl WriteScope {
    /// A write scope for one group and kind.
    ///
    /// ```
    /// let scope = kubewasm_guest::WriteScope::new("apps", "*");
    /// assert_eq!(scope.kind, "*");
    /// ```
    pub fn new(group: impl Into<String>, kind: impl Into<String>) -> Self {
        WriteScope {
            group: group.into(),
            kind: kind.into(),
        }
    }
}
