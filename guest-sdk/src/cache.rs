//! Reads from the host's cache of the cluster.
//!
//! The cache holds what the host's informers hold: the newest state of every
//! object of the kinds loaded plugins subscribe to, own or watch. A plugin
//! may read only kinds it subscribes to, [owns](crate::PluginInfo::owns) or
//! [watches](crate::PluginInfo::watches) itself; other kinds fail with an
//! error. Objects come back in the version the host watches, whatever
//! version `api_version` names.
//!
//! ```
//! use kubewasm_guest::cache;
//!
//! # kubewasm_guest::testing::TestHost::new().object(serde_json::json!({
//! #     "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}}})).install();
//! let namespace = cache::get("v1", "Namespace", None, "team-a")?;
//! assert_eq!(namespace.unwrap().label("team"), Some("a"));
//! # Ok::<(), kubewasm_guest::Error>(())
//! ```

use crate::{Error, Object, ObjectRef};

/// One object, or none if the cache does not have it.
///
/// ```
/// # kubewasm_guest::testing::TestHost::new().install();
/// let cm = kubewasm_guest::cache::get("v1", "ConfigMap", Some("shop"), "web")?;
/// assert!(cm.is_none());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn get(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Object>, Error> {
    let what = || format!("reading {kind} {}", qualified(namespace, name));
    crate::host::get(api_version, kind, namespace, name)
        .map_err(|e| Error::msg(e).context(what()))?
        .map(|json| Object::parse(&json).map_err(|e| e.context(what())))
        .transpose()
}

/// The object a reference names, or none.
///
/// ```
/// use kubewasm_guest::{cache, ObjectRef};
/// # kubewasm_guest::testing::TestHost::new().install();
/// let owner = cache::get_ref(&ObjectRef::new("v1", "Namespace", None, "shop"))?;
/// assert!(owner.is_none());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn get_ref(target: &ObjectRef) -> Result<Option<Object>, Error> {
    get(
        &target.api_version,
        &target.kind,
        target.namespace.as_deref(),
        &target.name,
    )
}

/// Objects of one kind, in one namespace or all (`None`), optionally
/// filtered by a label selector (`app=web,tier in (a,b),!legacy`). The
/// order is the cache's; sort if the output depends on it.
///
/// ```
/// # kubewasm_guest::testing::TestHost::new().install();
/// let web = kubewasm_guest::cache::list("v1", "ConfigMap", Some("shop"), Some("app=web"))?;
/// assert!(web.is_empty());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn list(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<Object>, Error> {
    let what = || match namespace {
        Some(ns) => format!("listing {kind} in {ns}"),
        None => format!("listing {kind}"),
    };
    crate::host::list(api_version, kind, namespace, label_selector)
        .map_err(|e| Error::msg(e).context(what()))?
        .iter()
        .map(|json| Object::parse(json).map_err(|e| e.context(what())))
        .collect()
}

/// The children of `owner` of one kind: objects in the owner's namespace
/// (every namespace if the owner is cluster-scoped) whose controller owner
/// reference (`controller: true`) carries the owner's uid, sorted by
/// namespace and name. A child of a deleted and recreated owner of the same
/// name is not included. Declare the kind with
/// [`PluginInfo::owns`](crate::PluginInfo::owns) so the host caches it and
/// reconciles the owner when a child changes.
///
/// ```
/// use kubewasm_guest::{cache, Object};
/// use serde_json::json;
///
/// let website = Object::from(json!({"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
///     "metadata": {"name": "blog", "namespace": "web", "uid": "u-1"}}));
/// let child = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "ConfigMap",
///     "metadata": {"name": name, "namespace": "web", "ownerReferences": [{
///         "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website", "name": "blog",
///         "uid": uid, "controller": true}]}});
/// kubewasm_guest::testing::TestHost::new()
///     .object(child("blog", "u-1"))
///     .object(child("stale", "u-0")) // owned by an earlier Website "blog"
///     .install();
/// let children = cache::list_owned("v1", "ConfigMap", &website)?;
/// assert_eq!(children.len(), 1);
/// assert_eq!(children[0].name(), "blog");
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn list_owned(api_version: &str, kind: &str, owner: &Object) -> Result<Vec<Object>, Error> {
    if owner.uid().is_none_or(str::is_empty) {
        return Err(Error::msg(format!(
            "{} has no metadata.uid to find its children by",
            owner.object_ref()
        )));
    }
    let mut children: Vec<Object> = list(api_version, kind, owner.namespace(), None)?
        .into_iter()
        .filter(|child| child.is_controlled_by(owner))
        .collect();
    children.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
    Ok(children)
}

/// The children of `owner` of one kind as k8s-openapi types; see
/// [`list_owned`].
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// # kubewasm_guest::testing::TestHost::new().install();
/// let owner = kubewasm_guest::Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Service",
///     "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}}));
/// let maps: Vec<ConfigMap> = kubewasm_guest::cache::list_owned_resources(&owner)?;
/// assert!(maps.is_empty());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[cfg(feature = "k8s-openapi")]
pub fn list_owned_resources<K>(owner: &Object) -> Result<Vec<K>, Error>
where
    K: k8s_openapi::Resource + serde::de::DeserializeOwned,
{
    list_owned(K::API_VERSION, K::KIND, owner)?
        .iter()
        .map(Object::to_resource)
        .collect()
}

/// One object as a k8s-openapi type, or none.
///
/// ```
/// use k8s_openapi::api::core::v1::Namespace;
/// # kubewasm_guest::testing::TestHost::new().install();
/// let ns: Option<Namespace> = kubewasm_guest::cache::get_resource(None, "team-a")?;
/// assert!(ns.is_none());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[cfg(feature = "k8s-openapi")]
pub fn get_resource<K>(namespace: Option<&str>, name: &str) -> Result<Option<K>, Error>
where
    K: k8s_openapi::Resource + serde::de::DeserializeOwned,
{
    get(K::API_VERSION, K::KIND, namespace, name)?
        .map(|object| object.to_resource())
        .transpose()
}

/// Objects of one kind as k8s-openapi types.
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
/// # kubewasm_guest::testing::TestHost::new().install();
/// let maps: Vec<ConfigMap> = kubewasm_guest::cache::list_resources(Some("shop"), None)?;
/// assert!(maps.is_empty());
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[cfg(feature = "k8s-openapi")]
pub fn list_resources<K>(
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<K>, Error>
where
    K: k8s_openapi::Resource + serde::de::DeserializeOwned,
{
    list(K::API_VERSION, K::KIND, namespace, label_selector)?
        .iter()
        .map(Object::to_resource)
        .collect()
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}
