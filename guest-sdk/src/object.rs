//! A Kubernetes object as JSON, with accessors for what reconcilers read most.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// A Kubernetes object as the API server serves it (minus
/// `metadata.managedFields`), parsed into JSON.
///
/// Accessors return `None` or empty collections for missing fields rather
/// than failing: a reconciler decides what is required. The JSON stays
/// reachable through [`Object::value`] and [`Object::get_path`].
///
/// ```
/// use kubewasm_guest::Object;
/// use serde_json::json;
///
/// let cm = Object::from(json!({
///     "apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}},
///     "data": {"index.html": "<h1>hi</h1>"}
/// }));
/// assert_eq!(cm.name(), "web");
/// assert_eq!(cm.namespace(), Some("shop"));
/// assert_eq!(cm.label("team"), Some("a"));
/// assert_eq!(cm.get_str(r#"data["index.html"]"#), Some("<h1>hi</h1>"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Object(Value);

impl Object {
    /// Parses an object from JSON text.
    ///
    /// ```
    /// let ns = kubewasm_guest::Object::parse(r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}}"#)?;
    /// assert_eq!(ns.kind(), "Namespace");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn parse(json: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(json)?;
        if !value.is_object() {
            return Err(Error::msg("a Kubernetes object must be a JSON object"));
        }
        Ok(Object(value))
    }

    /// The whole object as JSON.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"kind": "Pod"}));
    /// assert_eq!(obj.value()["kind"], "Pod");
    /// ```
    pub fn value(&self) -> &Value {
        &self.0
    }

    /// Gives the JSON back.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"kind": "Pod"}));
    /// assert!(obj.into_value().is_object());
    /// ```
    pub fn into_value(self) -> Value {
        self.0
    }

    /// The value at a dotted path (see [`get_path`](crate::get_path) for the syntax).
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"spec": {"replicas": 3}}));
    /// assert_eq!(obj.get_path("spec.replicas").and_then(|v| v.as_i64()), Some(3));
    /// ```
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        crate::get_path(&self.0, path)
    }

    /// The string at a dotted path; none if missing or not a string.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"spec": {"title": "Hi"}}));
    /// assert_eq!(obj.get_str("spec.title"), Some("Hi"));
    /// ```
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get_path(path).and_then(Value::as_str)
    }

    /// Deserializes the value at a dotted path; an error names the path.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Spec { title: String }
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"spec": {"title": "Hi"}}));
    /// let spec: Option<Spec> = obj.get_as("spec")?;
    /// assert_eq!(spec.unwrap().title, "Hi");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, Error> {
        self.get_path(path)
            .map(|v| crate::settings::from_value(v.clone()).map_err(|e| e.context(path)))
            .transpose()
    }

    /// Deserializes the whole object, e.g. into a k8s-openapi type or a
    /// struct of your own.
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Named { metadata: Meta }
    /// #[derive(serde::Deserialize)]
    /// struct Meta { name: String }
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"name": "a"}}));
    /// assert_eq!(obj.to_typed::<Named>()?.metadata.name, "a");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T, Error> {
        crate::settings::from_value(self.0.clone())
    }

    /// `apiVersion`, e.g. `apps/v1`; empty if missing.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"apiVersion": "apps/v1"}));
    /// assert_eq!(obj.api_version(), "apps/v1");
    /// ```
    pub fn api_version(&self) -> &str {
        self.0["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind`, e.g. `Deployment`; empty if missing.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"kind": "Deployment"}));
    /// assert_eq!(obj.kind(), "Deployment");
    /// ```
    pub fn kind(&self) -> &str {
        self.0["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`; empty if missing.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"name": "web"}}));
    /// assert_eq!(obj.name(), "web");
    /// ```
    pub fn name(&self) -> &str {
        self.0["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `metadata.namespace`; none for cluster-scoped objects.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"name": "a"}}));
    /// assert_eq!(obj.namespace(), None);
    /// ```
    pub fn namespace(&self) -> Option<&str> {
        self.0["metadata"]["namespace"].as_str()
    }

    /// `metadata.uid`, which owner references need.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"uid": "u-1"}}));
    /// assert_eq!(obj.uid(), Some("u-1"));
    /// ```
    pub fn uid(&self) -> Option<&str> {
        self.0["metadata"]["uid"].as_str()
    }

    /// `metadata.resourceVersion`, for patch preconditions.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"resourceVersion": "42"}}));
    /// assert_eq!(obj.resource_version(), Some("42"));
    /// ```
    pub fn resource_version(&self) -> Option<&str> {
        self.0["metadata"]["resourceVersion"].as_str()
    }

    /// `metadata.generation`, bumped by the API server on every spec change.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"generation": 4}}));
    /// assert_eq!(obj.generation(), Some(4));
    /// ```
    pub fn generation(&self) -> Option<i64> {
        self.0["metadata"]["generation"].as_i64()
    }

    /// `metadata.creationTimestamp` (RFC 3339).
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"creationTimestamp": "2026-01-02T03:04:05Z"}}));
    /// assert_eq!(obj.creation_timestamp(), Some("2026-01-02T03:04:05Z"));
    /// ```
    pub fn creation_timestamp(&self) -> Option<&str> {
        self.0["metadata"]["creationTimestamp"].as_str()
    }

    /// Whether `metadata.deletionTimestamp` is set (the object is going away,
    /// waiting for finalizers).
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {}}));
    /// assert!(!obj.is_being_deleted());
    /// ```
    pub fn is_being_deleted(&self) -> bool {
        self.0["metadata"]["deletionTimestamp"].is_string()
    }

    /// `metadata.labels`, sorted by key; empty if none.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"labels": {"b": "2", "a": "1"}}}));
    /// assert_eq!(obj.labels().keys().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn labels(&self) -> BTreeMap<String, String> {
        string_map(&self.0["metadata"]["labels"])
    }

    /// One label's value.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"labels": {"team": "a"}}}));
    /// assert_eq!(obj.label("team"), Some("a"));
    /// ```
    pub fn label(&self, key: &str) -> Option<&str> {
        self.0["metadata"]["labels"][key].as_str()
    }

    /// `metadata.annotations`, sorted by key; empty if none.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"annotations": {"note": "x"}}}));
    /// assert_eq!(obj.annotations()["note"], "x");
    /// ```
    pub fn annotations(&self) -> BTreeMap<String, String> {
        string_map(&self.0["metadata"]["annotations"])
    }

    /// One annotation's value.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"metadata": {"annotations": {"note": "x"}}}));
    /// assert_eq!(obj.annotation("note"), Some("x"));
    /// ```
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.0["metadata"]["annotations"][key].as_str()
    }

    /// A reference to this object, for patch, delete and Event intents.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({
    ///     "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}}));
    /// assert_eq!(obj.object_ref().to_string(), "v1 Service shop/web");
    /// ```
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version().to_string(),
            kind: self.kind().to_string(),
            namespace: self.namespace().map(str::to_string),
            name: self.name().to_string(),
        }
    }
}

impl From<Value> for Object {
    fn from(value: Value) -> Self {
        Object(value)
    }
}

/// A string-to-string map from a JSON object, skipping non-string values.
fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// A reference to one object: `apiVersion`, `kind`, namespace (none for
/// cluster-scoped kinds) and name.
///
/// ```
/// use kubewasm_guest::ObjectRef;
///
/// let ns = ObjectRef::new("v1", "Namespace", None, "team-a");
/// let cm = ObjectRef::new("v1", "ConfigMap", Some("team-a"), "settings");
/// assert_eq!(ns.to_string(), "v1 Namespace team-a");
/// assert_eq!(cm.to_string(), "v1 ConfigMap team-a/settings");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `v1` for the core group, `group/version` otherwise.
    pub api_version: String,
    /// The kind, e.g. `ConfigMap`.
    pub kind: String,
    /// None for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its four parts.
    ///
    /// ```
    /// let r = kubewasm_guest::ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web");
    /// assert_eq!(r.namespace.as_deref(), Some("shop"));
    /// ```
    pub fn new(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_string),
            name: name.into(),
        }
    }

    /// The identifying part of an object, the start of every applied
    /// configuration: `apiVersion`, `kind`, `metadata.name` and
    /// `metadata.namespace`.
    ///
    /// ```
    /// let r = kubewasm_guest::ObjectRef::new("v1", "ConfigMap", Some("shop"), "web");
    /// assert_eq!(r.skeleton(), serde_json::json!({
    ///     "apiVersion": "v1", "kind": "ConfigMap",
    ///     "metadata": {"name": "web", "namespace": "shop"}}));
    /// ```
    pub fn skeleton(&self) -> Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), Value::from(self.name.clone()));
        if let Some(ns) = &self.namespace {
            metadata.insert("namespace".into(), Value::from(ns.clone()));
        }
        serde_json::json!({
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": metadata,
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {}/{}", self.api_version, self.kind, ns, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn missing_fields_are_empty_not_errors() {
        let obj = Object::from(json!({}));
        assert_eq!(obj.name(), "");
        assert_eq!(obj.generation(), None);
        assert!(obj.labels().is_empty());
        assert!(obj.annotations().is_empty());
    }

    #[test]
    fn non_string_labels_are_skipped() {
        let obj = Object::from(json!({"metadata": {"labels": {"a": "1", "b": 2}}}));
        assert_eq!(obj.labels().len(), 1);
    }

    #[test]
    fn parse_rejects_non_objects() {
        assert!(Object::parse("[1]").is_err());
        assert!(Object::parse("{").is_err());
    }

    #[test]
    fn get_as_names_the_path() {
        let obj = Object::from(json!({"spec": {"replicas": "three"}}));
        let err = obj.get_as::<u32>("spec.replicas").unwrap_err();
        assert!(
            err.message().starts_with("spec.replicas: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn object_ref_serializes_camel_case() {
        let r = ObjectRef::new("v1", "Namespace", None, "a");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "namespace": null, "name": "a"})
        );
        assert_eq!(
            r.skeleton(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
        );
    }
}
