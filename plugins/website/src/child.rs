//! The child ConfigMap that holds a Website's page.

use std::collections::BTreeMap;

use kubewasm_guest::{Apply, Error, Object, ObjectRef, OwnerReference};
use serde_json::json;

/// Value of `app.kubernetes.io/managed-by` on every child.
pub const MANAGED_BY: &str = "kubewasm-website";

/// The key of the page in the child's `data`.
pub const PAGE_KEY: &str = "index.html";

/// The child of `website`: a ConfigMap of the same name and namespace.
pub fn child_ref(website: &Object) -> ObjectRef {
    ObjectRef::new("v1", "ConfigMap", website.namespace(), website.name())
}

/// The labels every child carries.
fn labels(website: &Object) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("app.kubernetes.io/instance", website.name().to_string()),
        ("app.kubernetes.io/managed-by", MANAGED_BY.to_string()),
        ("app.kubernetes.io/name", "website".to_string()),
    ])
}

/// The applied configuration of the child: labels, the page, and a
/// controller reference to the Website so it is deleted with it.
pub fn desired(website: &Object, html: &str) -> Result<Apply, Error> {
    let fields = json!({
        "metadata": {"labels": labels(website)},
        "data": {PAGE_KEY: html},
    });
    Ok(Apply::fields(&child_ref(website), fields).owner(OwnerReference::controller(website)?))
}

/// Whether the existing child already holds what `desired` would apply:
/// the same data and every label (other managers may add more labels).
pub fn is_up_to_date(child: &Object, desired: &Apply) -> bool {
    let data_matches = child.value()["data"] == desired.object["data"];
    let current = child.labels();
    let labels_match = desired.object["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| current.get(k).map(String::as_str) == v.as_str());
    data_matches && labels_match
}

#[cfg(test)]
mod tests {
    use super::*;

    fn website() -> Object {
        Object::from(json!({
            "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
            "metadata": {"name": "blog", "namespace": "web", "uid": "u-1"}}))
    }

    #[test]
    fn desired_child_is_owned_and_labelled() {
        let apply = desired(&website(), "<p>x</p>").unwrap();
        assert_eq!(
            apply.object,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "blog", "namespace": "web",
                    "labels": {
                        "app.kubernetes.io/instance": "blog",
                        "app.kubernetes.io/managed-by": "kubewasm-website",
                        "app.kubernetes.io/name": "website"},
                    "ownerReferences": [{
                        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website", "name": "blog",
                        "uid": "u-1", "controller": true, "blockOwnerDeletion": true}]},
                "data": {"index.html": "<p>x</p>"}})
        );
    }

    #[test]
    fn extra_labels_do_not_make_a_child_stale() {
        let apply = desired(&website(), "page").unwrap();
        let mut child = apply.object.clone();
        child["metadata"]["labels"]["team"] = json!("a");
        assert!(is_up_to_date(&Object::from(child.clone()), &apply));
        child["data"]["index.html"] = json!("old page");
        assert!(!is_up_to_date(&Object::from(child), &apply));
    }
}
