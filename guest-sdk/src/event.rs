//! The change a plugin is called for.

use serde::de::DeserializeOwned;

use crate::{Error, Object};

/// Why the plugin is being called.
///
/// Not exhaustive: a later contract may add reasons, so a `match` needs a
/// catch-all arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventType {
    /// The object was created or changed (or is seen for the first time).
    Applied,
    /// The object was deleted; the event carries its last known state.
    Deleted,
    /// Nothing changed: the plugin (re)loaded, a periodic resync, a
    /// requested requeue, or an owned child or a mapped watch source changed.
    Resync,
    /// The object is being deleted (`metadata.deletionTimestamp` is set) and
    /// still carries the plugin's [finalizer](crate::PluginInfo::finalizer):
    /// clean up and return the intents that do it. The host removes the
    /// finalizer once this reconcile succeeds and its intents are applied;
    /// an error keeps it and the call is retried with backoff.
    Finalizing,
}

impl EventType {
    /// The name used in WIT, fixtures and on the command line: `applied`,
    /// `deleted`, `resync`, `finalizing`.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::EventType::Deleted.as_str(), "deleted");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Applied => "applied",
            EventType::Deleted => "deleted",
            EventType::Resync => "resync",
            EventType::Finalizing => "finalizing",
        }
    }

    /// Parses `applied`, `deleted`, `resync` or `finalizing`.
    ///
    /// ```
    /// use kubewasm_guest::EventType;
    /// assert_eq!(EventType::parse("resync"), Some(EventType::Resync));
    /// assert_eq!(EventType::parse("updated"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "applied" => Some(EventType::Applied),
            "deleted" => Some(EventType::Deleted),
            "resync" => Some(EventType::Resync),
            "finalizing" => Some(EventType::Finalizing),
            _ => None,
        }
    }
}

/// A kind as the cluster serves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceKind {
    /// API group, `""` for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Lower-case plural resource name, e.g. `deployments`.
    pub plural: String,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

impl ResourceKind {
    /// `apiVersion` for this kind: `v1` for the core group, `group/version`
    /// otherwise.
    ///
    /// ```
    /// let kind = kubewasm_guest::ResourceKind::guess_from(&kubewasm_guest::Object::from(
    ///     serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"})));
    /// assert_eq!(kind.api_version(), "apps/v1");
    /// ```
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of an object as far as the object itself tells: group and
    /// version from `apiVersion`, the plural guessed the way `kubectl` does
    /// without discovery, namespaced if the object has a namespace. For
    /// tests and offline runs; the host passes the real kind.
    ///
    /// ```
    /// use kubewasm_guest::{Object, ResourceKind};
    /// let kind = ResourceKind::guess_from(&Object::from(serde_json::json!({
    ///     "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    ///     "metadata": {"name": "web", "namespace": "shop"}})));
    /// assert_eq!((kind.group.as_str(), kind.plural.as_str(), kind.namespaced),
    ///            ("networking.k8s.io", "ingresses", true));
    /// ```
    pub fn guess_from(object: &Object) -> Self {
        let (group, version) = match object.api_version().split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", object.api_version()),
        };
        ResourceKind {
            group: group.to_string(),
            version: version.to_string(),
            kind: object.kind().to_string(),
            plural: guess_plural(object.kind()),
            namespaced: object.namespace().is_some(),
        }
    }
}

/// The plural of a kind without discovery, as the host guesses it offline
/// (kube's pluralizer): English endings, and `Endpoints`, whose plural is
/// itself.
fn guess_plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if lower == "endpoints" {
        lower
    } else if lower.ends_with('s')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
        || lower.ends_with('x')
        || lower.ends_with('z')
    {
        format!("{lower}es")
    } else if let Some(stem) = lower
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// One change delivered to [`Plugin::reconcile`](crate::Plugin::reconcile).
///
/// Reconciles are level-triggered: several changes may be coalesced into one
/// call, and `object` is always the newest state the host has (the last known
/// state for [`EventType::Deleted`]).
///
/// ```
/// use kubewasm_guest::{Event, EventType, Object};
/// use serde_json::json;
///
/// let event = Event::new(EventType::Applied, Object::from(json!({
///     "apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "web", "namespace": "shop", "generation": 1}})));
/// assert!(!event.is_deleted());
/// assert_eq!(event.object.name(), "web");
/// assert_eq!(event.kind.plural, "configmaps");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Why the plugin is called.
    pub event_type: EventType,
    /// The object's kind as the cluster serves it.
    pub kind: ResourceKind,
    /// The whole object.
    pub object: Object,
}

impl Event {
    /// An event for `object`, its kind guessed with
    /// [`ResourceKind::guess_from`]. For tests.
    ///
    /// ```
    /// use kubewasm_guest::{Event, EventType, Object};
    /// let event = Event::new(EventType::Resync, Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Namespace"})));
    /// assert!(!event.kind.namespaced);
    /// ```
    pub fn new(event_type: EventType, object: Object) -> Self {
        Event {
            event_type,
            kind: ResourceKind::guess_from(&object),
            object,
        }
    }

    /// Whether the object was deleted.
    ///
    /// ```
    /// use kubewasm_guest::{Event, EventType, Object};
    /// assert!(Event::new(EventType::Deleted, Object::default()).is_deleted());
    /// ```
    pub fn is_deleted(&self) -> bool {
        self.event_type == EventType::Deleted
    }

    /// Whether the object is being deleted and waits for the plugin's
    /// cleanup ([`EventType::Finalizing`]): return the intents that clean
    /// up; the host then removes the plugin's finalizer.
    ///
    /// ```
    /// use kubewasm_guest::{Event, EventType, Object};
    /// assert!(Event::new(EventType::Finalizing, Object::default()).is_finalizing());
    /// assert!(!Event::new(EventType::Deleted, Object::default()).is_finalizing());
    /// ```
    pub fn is_finalizing(&self) -> bool {
        self.event_type == EventType::Finalizing
    }

    /// Deserializes the object into a typed form: a struct of your own, or a
    /// k8s-openapi type. With the `k8s-openapi` feature,
    /// `Object::to_resource` also checks the kind.
    ///
    /// ```
    /// use kubewasm_guest::{Event, EventType, Object};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Website { spec: Spec }
    /// #[derive(serde::Deserialize)]
    /// struct Spec { title: String }
    ///
    /// let event = Event::new(EventType::Applied, Object::from(serde_json::json!({
    ///     "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
    ///     "metadata": {"name": "blog"}, "spec": {"title": "Hello"}})));
    /// let website: Website = event.object_as()?;
    /// assert_eq!(website.spec.title, "Hello");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        self.object.to_typed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_kubectl() {
        for (kind, plural) in [
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("Endpoints", "endpoints"),
            ("EndpointSlice", "endpointslices"),
            ("Mesh", "meshes"),
            ("Website", "websites"),
        ] {
            assert_eq!(guess_plural(kind), plural);
        }
    }

    #[test]
    fn event_type_round_trips() {
        for t in [
            EventType::Applied,
            EventType::Deleted,
            EventType::Resync,
            EventType::Finalizing,
        ] {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn core_group_api_version() {
        let kind = ResourceKind::guess_from(&Object::from(
            serde_json::json!({"apiVersion": "v1", "kind": "Pod"}),
        ));
        assert_eq!(kind.group, "");
        assert_eq!(kind.api_version(), "v1");
    }
}
