use super::*;
use crate::shadow::state::{Counts, Sample};

fn sample(n: usize, paths: usize) -> Sample {
    let fields: Vec<serde_json::Value> = (0..paths)
        .map(|p| serde_json::json!({"path": format!(".metadata.annotations.k{p}"), "expected": "v1", "actual": "v2"}))
        .collect();
    Sample {
        at: format!("t{n}"),
        object: format!("ConfigMap ns/o{n}"),
        event: "applied".into(),
        serving: "abc".into(),
        summary: String::new(),
        differences: serde_json::json!({"differences": [
            {"intent": "apply", "target": format!("ConfigMap ns/o{n}"), "change": "fields", "fields": fields},
            {"intent": "delete", "target": "Secret ns/s", "change": "added"},
        ]}),
        unmatched: Vec::new(),
    }
}

fn report(state: State, samples: usize, paths: usize) -> ShadowReport {
    ShadowReport {
        plugin: "probe".into(),
        source: None,
        version: "2.0.0".into(),
        digest: "sha256:new".into(),
        loaded_at: String::new(),
        state,
        counts: Counts {
            equal: 3,
            different: samples as u64,
            dropped: 1,
            ..Counts::default()
        },
        streak: 0,
        promote_after: None,
        recent_differences: (0..samples).map(|n| sample(n, paths)).collect(),
    }
}

#[test]
fn the_summary_keeps_the_newest_differences_and_few_fields() {
    let (status, message) = summary(Some(&report(State::Running, 20, 50)), None);
    assert_eq!(status.state, "Running");
    assert_eq!(status.counts.different, 20);
    assert_eq!(status.counts.equal, 3);
    assert_eq!(status.recent_differences.len(), DIFFERENCES);
    assert_eq!(status.recent_differences[0].object, "ConfigMap ns/o15");
    assert_eq!(status.recent_differences[4].object, "ConfigMap ns/o19");
    for d in &status.recent_differences {
        assert_eq!(d.fields.len(), FIELDS);
        assert!(
            d.fields
                .iter()
                .all(|f| f.chars().count() <= MAX_FIELD_CHARS + 1)
        );
    }
    assert_eq!(
        status.recent_differences[4].fields[0],
        "apply ConfigMap ns/o19: .metadata.annotations.k0"
    );
    assert!(
        message.contains("3 equal, 20 different, 1 dropped"),
        "{message}"
    );
}

#[test]
fn intents_only_one_side_makes_are_named() {
    let (status, _) = summary(Some(&report(State::Running, 1, 1)), None);
    assert_eq!(
        status.recent_differences[0].fields,
        [
            "apply ConfigMap ns/o0: .metadata.annotations.k0",
            "delete Secret ns/s: only the shadow"
        ]
    );
}

#[test]
fn long_paths_are_cut() {
    let mut long = report(State::Running, 1, 1);
    long.recent_differences[0].differences["differences"][0]["fields"][0]["path"] =
        serde_json::json!("x".repeat(10_000));
    let (status, _) = summary(Some(&long), None);
    let field = &status.recent_differences[0].fields[0];
    assert_eq!(field.chars().count(), MAX_FIELD_CHARS + 1, "cut, marked");
}

#[test]
fn states_read_as_condition_reasons() {
    let aborted = report(State::Aborted("plugin trapped".into()), 0, 0);
    let (status, message) = summary(Some(&aborted), None);
    assert_eq!(status.state, "Aborted");
    assert!(message.contains("plugin trapped"), "{message}");

    let failed = (
        [0u8; 32],
        "sha256:bad".to_string(),
        "not a component".to_string(),
    );
    let (status, message) = summary(None, Some(&failed));
    assert_eq!(
        (status.state.as_str(), status.digest.as_str()),
        ("LoadFailed", "sha256:bad")
    );
    assert_eq!(message, "not a component");

    let (status, message) = summary(Some(&report(State::Running, 0, 0)), Some(&failed));
    assert_eq!(status.state, "Running", "the running shadow keeps running");
    assert!(
        message.contains("did not load: not a component"),
        "{message}"
    );

    let (status, _) = summary(None, None);
    assert_eq!(status.state, "Loading");
}

#[test]
fn promote_after_must_be_positive() {
    let spec = |n: Option<i64>| ShadowSpec {
        module: serde_json::from_value(serde_json::json!({"configMap": {"name": "m", "key": "k"}}))
            .unwrap(),
        settings: None,
        promote_after: n,
    };
    assert_eq!(promote_after(&spec(Some(3))), Some(3));
    assert_eq!(promote_after(&spec(Some(0))), None);
    assert_eq!(promote_after(&spec(Some(-1))), None);
    assert_eq!(promote_after(&spec(None)), None);
}
