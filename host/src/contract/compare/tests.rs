use serde_json::json;

use super::*;
use crate::cluster::cache::StaticObjects;
use crate::contract::intent::{ObjectRef, Patch, Severity};

fn apply(name: &str, labels: Value) -> Intent {
    Intent::Apply {
        object: json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "team-a", "name": name, "labels": labels}
        }),
        status: false,
        force: false,
    }
}

fn event(name: &str, reason: &str) -> Intent {
    Intent::RecordEvent {
        regarding: ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("team-a".into()),
            name: name.into(),
        },
        severity: Severity::Normal,
        reason: reason.into(),
        note: "n".into(),
        action: "a".into(),
    }
}

fn outcome(intents: Vec<Intent>) -> Outcome {
    Outcome {
        intents,
        requeue_after_ms: None,
    }
}

fn nothing_is_a_noop(_: &Intent) -> bool {
    false
}

#[test]
fn the_same_intents_in_another_order_are_equal() {
    let a = outcome(vec![
        apply("x", json!({"a": "1"})),
        event("x", "Seen"),
        apply("y", json!({})),
    ]);
    let b = outcome(vec![
        event("x", "Seen"),
        apply("y", json!({})),
        apply("x", json!({"a": "1"})),
    ]);
    let found = compare(&a, &b, nothing_is_a_noop, 10);
    assert!(found.is_equal(), "{found}");
    assert_eq!(found.to_string(), "no differences\n");
}

#[test]
fn a_changed_field_is_named_by_its_path_with_both_values() {
    let a = outcome(vec![apply("x", json!({"team": "a"}))]);
    let b = outcome(vec![apply("x", json!({"team": "b", "tier": "web"}))]);
    let found = compare(&a, &b, nothing_is_a_noop, 10);
    assert_eq!(found.differences.len(), 1);
    let d = &found.differences[0];
    assert_eq!(
        (d.intent, d.target.as_str()),
        ("apply", "v1 ConfigMap team-a/x")
    );
    let Change::Fields(fields) = &d.change else {
        panic!("{d:?}")
    };
    let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "$.object.metadata.labels.team",
            "$.object.metadata.labels.tier"
        ]
    );
    assert_eq!(fields[0].expected, Some(json!("a")));
    assert_eq!(fields[0].actual, Some(json!("b")));
    assert_eq!(fields[1].expected, None);
    assert_eq!(
        found.to_string(),
        "apply v1 ConfigMap team-a/x:\n    $.object.metadata.labels.team: expected \"a\", actual \"b\"\n    $.object.metadata.labels.tier: expected (absent), actual \"web\"\n"
    );
}

#[test]
fn intents_only_one_side_makes_are_missing_or_added() {
    let a = outcome(vec![apply("x", json!({})), event("x", "One")]);
    let b = outcome(vec![
        event("x", "One"),
        event("x", "Two"),
        apply("z", json!({})),
    ]);
    let found = compare(&a, &b, nothing_is_a_noop, 10);
    let listed: Vec<(&str, &str, &Change)> = found
        .differences
        .iter()
        .map(|d| (d.intent, d.target.as_str(), &d.change))
        .collect();
    // The equal Events about x pair although they stand apart; the other
    // is added.
    assert_eq!(listed.len(), 3, "{found}");
    assert_eq!(
        listed[0],
        ("apply", "v1 ConfigMap team-a/x", &Change::Missing)
    );
    assert_eq!(
        listed[1],
        ("record-event", "v1 ConfigMap team-a/x", &Change::Added)
    );
    assert_eq!(
        listed[2],
        ("apply", "v1 ConfigMap team-a/z", &Change::Added)
    );
    assert!(
        found
            .to_string()
            .contains("apply v1 ConfigMap team-a/z: only in the candidate outcome")
    );
    // Two Events that differ only in their reason pair as one change.
    let found = compare(
        &outcome(vec![event("x", "One")]),
        &outcome(vec![event("x", "Two")]),
        nothing_is_a_noop,
        10,
    );
    assert!(
        matches!(&found.differences[..], [d] if matches!(&d.change, Change::Fields(f) if f[0].path == "$.reason")),
        "{found}"
    );
}

#[test]
fn writes_the_cache_already_holds_are_not_differences() {
    let cache = StaticObjects::new([json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": "team-a", "name": "x", "labels": {"seen": "true"}},
        "data": {"k": "v"}
    })]);
    let noop = |i: &Intent| changes_nothing(&cache, i);
    let holds = apply("x", json!({"seen": "true"}));
    assert!(noop(&holds));
    assert!(!noop(&apply("x", json!({"seen": "false"}))));
    assert!(
        !noop(&apply("not-cached", json!({}))),
        "an object not cached changes"
    );
    assert!(!noop(&event("x", "Seen")), "an Event is always a write");
    let merge = |patch: Value| {
        Intent::MergePatch(Patch {
            target: holds.target(),
            patch,
            status: false,
            resource_version: None,
        })
    };
    assert!(noop(&merge(json!({"data": {"k": "v", "gone": null}}))));
    assert!(!noop(&merge(json!({"data": {"k": null}}))));
    // The serving version re-applies what is there; the candidate does
    // nothing: the same effect on the cluster.
    let found = compare(&outcome(vec![holds]), &outcome(vec![]), noop, 10);
    assert!(found.is_equal(), "{found}");
}

#[test]
fn a_status_apply_is_checked_against_the_status() {
    let cache = StaticObjects::new([json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": "team-a", "name": "x"},
        "status": {"phase": "Ready"}
    })]);
    let status = |phase: &str| Intent::Apply {
        object: json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "team-a", "name": "x"},
            "status": {"phase": phase}
        }),
        status: true,
        force: false,
    };
    assert!(changes_nothing(&cache, &status("Ready")));
    assert!(!changes_nothing(&cache, &status("Failed")));
}

#[test]
fn requeue_delays_and_the_limit() {
    let a = Outcome {
        intents: (0..5).map(|i| apply(&format!("o{i}"), json!({}))).collect(),
        requeue_after_ms: Some(1000),
    };
    let b = Outcome {
        intents: vec![],
        requeue_after_ms: None,
    };
    let found = compare(&a, &b, nothing_is_a_noop, 3);
    assert_eq!(found.differences.len(), 3);
    assert_eq!(
        found.requeue,
        Some(RequeueDifference {
            expected: Some(1000),
            actual: None
        })
    );
    assert!(
        found
            .to_string()
            .ends_with("requeue after: expected 1000 ms, actual none\n")
    );
    let json = serde_json::to_value(&found).unwrap();
    assert_eq!(json["differences"][0]["change"], "missing");
    assert_eq!(json["requeue"]["expected"], 1000);
}

#[test]
fn hostile_names_cannot_forge_lines() {
    let a = outcome(vec![apply("x\nFAKE: y", json!({}))]);
    let found = compare(&a, &outcome(vec![]), nothing_is_a_noop, 10);
    assert_eq!(found.to_string().lines().count(), 1, "{found}");
}
