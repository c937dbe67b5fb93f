//! Typed access through k8s-openapi (feature `k8s-openapi`, Kubernetes API
//! v1.37).
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kubewasm_guest::{Object, ObjectRef};
//!
//! let object = Object::from(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "web", "namespace": "shop"}, "data": {"k": "v"}}));
//! let cm: ConfigMap = object.to_resource()?;
//! assert_eq!(cm.data.unwrap()["k"], "v");
//! assert_eq!(ObjectRef::of::<ConfigMap>(Some("shop"), "web"), object.object_ref());
//! # Ok::<(), kubewasm_guest::Error>(())
//! ```

use k8s_openapi::Resource;
use serde::de::DeserializeOwned;

use crate::{Error, Object, ObjectRef};

impl Object {
    /// Deserializes the object as the k8s-openapi type `K`, after checking
    /// that `apiVersion` and `kind` are `K`'s.
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::Deployment;
    /// let svc = kubewasm_guest::Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Service"}));
    /// let err = svc.to_resource::<Deployment>().unwrap_err();
    /// assert_eq!(err.to_string(), "expected apps/v1 Deployment, got v1 Service");
    /// ```
    pub fn to_resource<K: Resource + DeserializeOwned>(&self) -> Result<K, Error> {
        if self.api_version() != K::API_VERSION || self.kind() != K::KIND {
            return Err(Error::msg(format!(
                "expected {} {}, got {} {}",
                K::API_VERSION,
                K::KIND,
                self.api_version(),
                self.kind()
            )));
        }
        self.to_typed()
    }
}

impl ObjectRef {
    /// A reference to an object of the k8s-openapi type `K`.
    ///
    /// ```
    /// use k8s_openapi::api::apps::v1::Deployment;
    /// let r = kubewasm_guest::ObjectRef::of::<Deployment>(Some("shop"), "web");
    /// assert_eq!(r.to_string(), "apps/v1 Deployment shop/web");
    /// ```
    pub fn of<K: Resource>(namespace: Option<&str>, name: impl Into<String>) -> Self {
        ObjectRef::new(K::API_VERSION, K::KIND, namespace, name)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;

    use crate::{Event, EventType, Object};

    #[test]
    fn typed_read_of_an_event() {
        let event = Event::new(
            EventType::Applied,
            Object::from(serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"replicas": 2, "selector": {}, "template": {}}})),
        );
        let deployment: Deployment = event.object.to_resource().unwrap();
        assert_eq!(deployment.spec.replicas, Some(2));
    }
}
