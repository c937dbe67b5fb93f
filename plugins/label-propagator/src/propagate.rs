//! The pure part: which labels an object should carry, and the apply that
//! puts them there, if any.
//!
//! The plugin remembers which labels it propagated in an annotation on the
//! object. Labels it propagated earlier but the Namespace no longer has are
//! then removed by simply not applying them again: server-side apply drops
//! fields a manager stops sending, as long as no other manager owns them.

use std::collections::BTreeMap;

use kubewasm_guest::{Apply, Object};
use serde_json::{Map, Value, json};

use crate::settings::Settings;

/// Annotation listing the label keys the plugin propagated, comma-separated
/// and sorted.
pub const PROPAGATED: &str = "label-propagator.kubewasm.dev/propagated";

/// The labels `object` should carry: the chosen labels the Namespace has.
pub fn wanted_labels(
    namespace_labels: &BTreeMap<String, String>,
    settings: &Settings,
) -> BTreeMap<String, String> {
    settings
        .labels
        .iter()
        .filter_map(|key| Some((key.clone(), namespace_labels.get(key)?.clone())))
        .collect()
}

/// The apply that gives `object` the labels `wanted`, or none if it already
/// carries exactly them: every wanted label with the wanted value, no label
/// left over from an earlier propagation, and an up-to-date annotation.
pub fn apply_for(object: &Object, wanted: &BTreeMap<String, String>) -> Option<Apply> {
    let current = object.labels();
    let annotation =
        (!wanted.is_empty()).then(|| wanted.keys().cloned().collect::<Vec<_>>().join(","));
    let previously: Vec<&str> = object
        .annotation(PROPAGATED)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let values_match = wanted.iter().all(|(k, v)| current.get(k) == Some(v));
    let no_leftovers = previously
        .iter()
        .all(|k| wanted.contains_key(*k) || !current.contains_key(*k));
    let annotation_matches = object.annotation(PROPAGATED) == annotation.as_deref();
    if values_match && no_leftovers && annotation_matches {
        return None;
    }
    let mut metadata = Map::new();
    if let Some(annotation) = annotation {
        metadata.insert("labels".into(), json!(wanted));
        metadata.insert("annotations".into(), json!({ PROPAGATED: annotation }));
    }
    Some(Apply::fields(
        &object.object_ref(),
        json!({ "metadata": Value::Object(metadata) }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::parse(r#"{"labels": ["team", "cost-center"]}"#).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn object(labels: Value, annotations: Value) -> Object {
        Object::from(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "n", "labels": labels, "annotations": annotations}}))
    }

    #[test]
    fn only_chosen_labels_are_wanted() {
        let ns = labels(&[("team", "a"), ("kubernetes.io/metadata.name", "n")]);
        assert_eq!(wanted_labels(&ns, &settings()), labels(&[("team", "a")]));
    }

    #[test]
    fn missing_label_is_applied_with_the_annotation() {
        let apply = apply_for(
            &object(json!({"app": "web"}), json!({})),
            &labels(&[("team", "a")]),
        )
        .unwrap();
        assert_eq!(
            apply.object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
                "name": "c", "namespace": "n",
                "labels": {"team": "a"},
                "annotations": {PROPAGATED: "team"}}})
        );
        assert!(apply.force);
    }

    #[test]
    fn up_to_date_object_needs_nothing() {
        let obj = object(
            json!({"team": "a", "app": "web"}),
            json!({PROPAGATED: "team"}),
        );
        assert_eq!(apply_for(&obj, &labels(&[("team", "a")])), None);
        let untouched = object(json!({"app": "web"}), json!({}));
        assert_eq!(apply_for(&untouched, &BTreeMap::new()), None);
    }

    #[test]
    fn changed_value_is_applied() {
        let obj = object(json!({"team": "old"}), json!({PROPAGATED: "team"}));
        let apply = apply_for(&obj, &labels(&[("team", "new")])).unwrap();
        assert_eq!(apply.object["metadata"]["labels"], json!({"team": "new"}));
    }

    #[test]
    fn label_removed_from_namespace_is_released() {
        let obj = object(
            json!({"team": "a", "cost-center": "42"}),
            json!({PROPAGATED: "cost-center,team"}),
        );
        let apply = apply_for(&obj, &labels(&[("team", "a")])).unwrap();
        assert_eq!(apply.object["metadata"]["labels"], json!({"team": "a"}));
        assert_eq!(apply.object["metadata"]["annotations"][PROPAGATED], "team");
        let last = object(json!({"team": "a"}), json!({PROPAGATED: "team"}));
        let release = apply_for(&last, &BTreeMap::new()).unwrap();
        assert_eq!(
            release.object["metadata"],
            json!({"name": "c", "namespace": "n"})
        );
    }

    #[test]
    fn label_owned_by_someone_else_is_not_fought_over() {
        // A user set `team` themselves; the plugin never propagated it.
        let obj = object(json!({"team": "mine"}), json!({}));
        assert_eq!(apply_for(&obj, &BTreeMap::new()), None);
    }
}
