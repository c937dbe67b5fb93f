//! CustomResourceDefinitions the tests create in their unique API groups
//! ([`unique_api_group`](crate::unique_api_group)).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::json;

/// A CRD `<kind>s.<group>` serving `v1` (the storage version) with any
/// content (`x-kubernetes-preserve-unknown-fields`), namespaced or
/// cluster-scoped. Add a status subresource or a schema to its
/// `spec.versions[0]` where a test needs one.
pub fn schemaless(group: &str, kind: &str, namespaced: bool) -> CustomResourceDefinition {
    let plural = format!("{}s", kind.to_lowercase());
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "names": {"plural": plural, "singular": kind.to_lowercase(), "kind": kind},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "x-kubernetes-preserve-unknown-fields": true
                }}
            }]
        }
    }))
    .expect("a valid CustomResourceDefinition")
}
