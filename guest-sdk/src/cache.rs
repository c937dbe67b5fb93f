//! Reads from the host's cache of the cluster.
//!
//! The cache holds what the host's informers hold: the newest state of every
//! object of the kinds loaded plugins subscribe to. A plugin may read only
//! kinds it subscribes to itself; other kinds fail with an error. Objects come
//! back in the version the host watches, whatever version `api_version`
//! names.
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
