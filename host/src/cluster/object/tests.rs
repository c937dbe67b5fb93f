use std::path::Path;

use serde_json::json;

use super::*;
use crate::cluster::cache::load_objects;

fn kind(group: &str, version: &str, kind: &str) -> ResourceKind {
    ResourceKind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
        namespaced: true,
    }
}

/// What the host sent plugins before objects were cached as text: the
/// decoded tree, stripped and completed, written with `Value::to_string`.
fn old_text(kind: &ResourceKind, wire: &str) -> String {
    let mut value: Value = serde_json::from_str(wire).unwrap();
    if let Value::Object(fields) = &mut value {
        if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
            metadata.remove("managedFields");
        }
        fields.insert("apiVersion".into(), Value::String(kind.api_version()));
        fields.insert("kind".into(), Value::String(kind.kind.clone()));
    }
    value.to_string()
}

fn cached(kind: &ResourceKind, wire: &str) -> CachedObject {
    CachedObject::from_wire(kind, serde_json::from_str(wire).unwrap())
}

/// An object as the API server sends it in a list (no apiVersion and
/// kind), with escapes in names, labels and values, non-ASCII text,
/// numbers, managed fields, owner references and finalizers.
fn escaped() -> String {
    json!({
        "metadata": {
            "name": "we\"ird\\name\u{1}",
            "namespace": "ns-é",
            "uid": "1b6e-4c5f",
            "resourceVersion": "123456",
            "labels": {"z": "last", "app": "web\tserver", "k\"q": "v", "e": "é", "a/b": ""},
            "annotations": {"note": "line\nbreak </script> \u{2028} 🚀"},
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "not-me", "uid": "1"},
                {"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website", "name": "blo\\g",
                 "uid": "2", "controller": true, "blockOwnerDeletion": true}
            ],
            "finalizers": ["a.io/x", "kubewasm.dev/we\"b"],
            "deletionTimestamp": "2026-12-04T03:00:00Z",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:data": {"f:a": {}}}}]
        },
        "data": {"n": "1", "big": "x".repeat(2048), "ctl": "\u{7f}\u{0}"},
        "spec": {"replicas": 3, "ratio": 0.1, "neg": -7, "huge": 18446744073709551615u64,
                 "exp": 1e300, "on": false, "nothing": null, "list": [[], {}, [1, [2]]]}
    })
    .to_string()
}

#[test]
fn the_text_is_byte_for_byte_what_plugins_got_from_the_tree() {
    let cm = kind("", "v1", "ConfigMap");
    let wire = escaped();
    let object = cached(&cm, &wire);
    assert_eq!(object.json(), old_text(&cm, &wire));
    assert!(!object.json().contains("managedFields"));
    assert!(object.json().contains(r#""apiVersion":"v1""#));

    // The fixtures plugin templates are tested with, as the informers
    // would get them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let mut fixtures = 0;
    for template in std::fs::read_dir(&root).unwrap().flatten() {
        let Ok(cases) = std::fs::read_dir(template.path().join("fixtures")) else {
            continue;
        };
        for case in cases.flatten() {
            let path = case.path().join("object.yaml");
            if !path.exists() {
                continue;
            }
            for value in load_objects(&path).unwrap() {
                let k = crate::cmd::check::kind_of_object(&value);
                let wire = value.to_string();
                let object = cached(&k, &wire);
                assert_eq!(object.json(), old_text(&k, &wire), "{}", path.display());
                assert_eq!(
                    object.parse(),
                    serde_json::from_str::<Value>(object.json()).unwrap()
                );
                fixtures += 1;
            }
        }
    }
    assert!(
        fixtures >= 4,
        "{fixtures} fixtures read from {}",
        root.display()
    );
}

#[test]
fn every_header_field_reads_back_what_it_names() {
    let object = cached(&kind("", "v1", "ConfigMap"), &escaped());
    let tree = object.parse();
    let metadata = &tree["metadata"];
    assert_eq!(object.name(), metadata["name"]);
    assert_eq!(object.name(), "we\"ird\\name\u{1}");
    assert_eq!(object.namespace(), Some("ns-é"));
    assert_eq!(object.uid(), "1b6e-4c5f");
    assert_eq!(object.resource_version(), Some("123456"));
    let labels: Vec<_> = object.labels().collect();
    assert_eq!(
        labels,
        [
            ("a/b", ""),
            ("app", "web\tserver"),
            ("e", "é"),
            ("k\"q", "v"),
            ("z", "last")
        ]
    );
    for (k, v) in metadata["labels"].as_object().unwrap() {
        assert_eq!(object.label(k), v.as_str(), "{k}");
    }
    assert_eq!(object.label("nope"), None);
    assert_eq!(
        object.controller_owner(),
        Some(OwnerRef {
            api_version: "demo.kubewasm.dev/v1alpha1",
            kind: "Website",
            name: "blo\\g"
        })
    );
    assert!(object.is_being_deleted());
    let finalizers: Vec<_> = object.finalizers().collect();
    assert_eq!(finalizers, ["a.io/x", "kubewasm.dev/we\"b"]);
    assert!(object.has_finalizer("kubewasm.dev/we\"b"));

    // Strings without escapes are spans of the text, not copies.
    let m = &object.meta;
    assert!(matches!(m.uid, Some(Str::At { .. })));
    assert!(
        matches!(m.namespace, Some(Str::At { .. })),
        "é is not escaped"
    );
    assert!(matches!(m.name, Some(Str::Owned(_))));
    assert!(matches!(m.finalizers[0], Str::At { .. }));
    let heap = object.heap_bytes();
    assert!(
        heap > object.json().len() && heap < object.json().len() + 512,
        "{heap}"
    );
}

#[test]
fn an_object_without_metadata_or_with_odd_types_still_has_a_header() {
    let bare = CachedObject::from_value(&json!({"apiVersion": "v1", "kind": "X"}));
    assert_eq!((bare.name(), bare.namespace(), bare.uid()), ("", None, ""));
    assert!(!bare.is_being_deleted() && bare.finalizers().next().is_none());
    assert_eq!(bare.controller_owner(), None);

    // From a YAML file of `kubewasm eval`: numbers where strings belong.
    let odd = json!({"metadata": {"name": "o", "labels": {"n": 1, "s": "x"}, "finalizers": ["f", 2],
                     "ownerReferences": [{"kind": "K", "name": "p", "controller": true}],
                     "deletionTimestamp": null}});
    let odd = CachedObject::from_value(&odd);
    assert_eq!(odd.name(), "o");
    assert_eq!(odd.labels().collect::<Vec<_>>(), [("s", "x")]);
    assert_eq!(odd.label("n"), None);
    assert_eq!(odd.finalizers().collect::<Vec<_>>(), ["f"]);
    assert_eq!(odd.controller_owner(), None, "no apiVersion");
    assert!(!odd.is_being_deleted());

    let null = CachedObject::from_value(&Value::Null);
    assert_eq!((null.json(), null.name()), ("null", ""));
}
