use serde_json::json;

use super::report::{Compared, Differences};
use super::*;
use crate::contract::GroupKind;
use crate::contract::intent::Intent;
use crate::contract::selector::LabelSelector;
use crate::controller::Lookup;

fn kinds() -> Vec<ResourceKind> {
    vec![
        ResourceKind {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            plural: "configmaps".into(),
            namespaced: true,
        },
        ResourceKind {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
        },
    ]
}

fn cm(namespace: &str, name: &str, app: &str) -> Arc<CachedObject> {
    Arc::new(CachedObject::from_value(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}
    })))
}

#[test]
fn the_cache_follows_the_events_and_answers_reads_and_lookups() {
    let cache = ReplayCache::new(&kinds());
    let gk = GroupKind::new("", "ConfigMap");
    let all = LabelSelector::default();
    cache.apply(0, Change::Added, &cm("a", "one", "web"));
    cache.apply(0, Change::Added, &cm("b", "two", "db"));
    let reader: &dyn ObjectReader = &cache;
    assert_eq!(reader.list(&gk, None, &all).unwrap().len(), 2);
    let web = LabelSelector::parse("app=web").unwrap();
    assert_eq!(reader.list(&gk, None, &web).unwrap()[0].name(), "one");
    assert_eq!(reader.list(&gk, Some("b"), &all).unwrap()[0].name(), "two");
    cache.apply(0, Change::Modified, &cm("a", "one", "db"));
    assert!(reader.list(&gk, None, &web).unwrap().is_empty());
    cache.apply(0, Change::Deleted, &cm("a", "one", "db"));
    assert!(reader.get(&gk, Some("a"), "one").unwrap().is_none());
    assert!(reader.get(&gk, Some("b"), "two").unwrap().is_some());
    // A kind the recording does not hold reads as one the host does not watch.
    let err = reader
        .get(&GroupKind::new("", "Secret"), Some("a"), "s")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kind Secret in group \"\" is not watched by the host"
    );
    // Lookups (owners, mapped watches) are by exact version.
    let lookup: &dyn Lookup = &cache;
    assert!(lookup.get(&kinds()[0], Some("b"), "two").is_some());
    let mut other = kinds()[0].clone();
    other.version = "v2".into();
    assert!(lookup.get(&other, Some("b"), "two").is_none());
    let mut seen = Vec::new();
    lookup.visit(&kinds()[0], None, &mut |o| seen.push(o.name().to_string()));
    assert_eq!(seen, ["two"]);
}

fn call(name: &str) -> Call {
    Call {
        event: EventType::Applied,
        kind: kinds()[0].clone(),
        object: cm("a", name, "web"),
        via: None,
    }
}

#[test]
fn calls_of_two_versions_pair_by_object() {
    let names = |pairs: Vec<[Option<Call>; 2]>| -> Vec<(Option<String>, Option<String>)> {
        pairs
            .into_iter()
            .map(|[n, o]| {
                (
                    n.map(|c| c.object.name().to_string()),
                    o.map(|c| c.object.name().to_string()),
                )
            })
            .collect()
    };
    let pairs = paired(vec![call("x"), call("y")], Some(vec![call("z"), call("x")]));
    assert_eq!(
        names(pairs),
        [
            (Some("x".into()), Some("x".into())),
            (Some("y".into()), None),
            (None, Some("z".into())),
        ]
    );
    assert_eq!(
        names(paired(vec![call("x")], None)),
        [(Some("x".into()), None)]
    );
}

fn apply(value: &str) -> Outcome {
    Outcome {
        intents: vec![Intent::Apply {
            object: json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "one", "namespace": "a", "labels": {"team": value}}}),
            status: false,
            force: true,
        }],
        requeue_after_ms: None,
    }
}

#[test]
fn answers_compare_by_intents_and_by_failure() {
    let cache = ReplayCache::new(&kinds());
    let same = compared(
        &Answer::Outcome(apply("a")),
        &Answer::Outcome(apply("a")),
        &cache,
        10,
    );
    assert_eq!(same, Differences::None);
    let Differences::Intents(fields) = compared(
        &Answer::Outcome(apply("b")),
        &Answer::Outcome(apply("a")),
        &cache,
        10,
    ) else {
        panic!("intents differ")
    };
    assert_eq!(fields.differences[0].target, "v1 ConfigMap a/one");
    // A version that is not called makes no intents.
    let Differences::Intents(only_new) =
        compared(&Answer::Outcome(apply("a")), &Answer::NotCalled, &cache, 10)
    else {
        panic!("only the new version writes")
    };
    assert_eq!(only_new.differences.len(), 1);
    // An apply the cache already holds changes nothing, whoever makes it.
    cache.apply(
        0,
        Change::Added,
        &Arc::new(CachedObject::from_value(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "one", "namespace": "a", "labels": {"team": "a"}}
        }))),
    );
    assert_eq!(
        compared(&Answer::Outcome(apply("a")), &Answer::NotCalled, &cache, 10),
        Differences::None
    );
    let error = Answer::Error("bad spec".into());
    assert_eq!(compared(&error, &error, &cache, 10), Differences::None);
    assert_eq!(
        compared(&error, &Answer::Outcome(apply("a")), &cache, 10),
        Differences::Answers
    );
    assert_eq!(
        compared(&Answer::Failure("trap".into()), &error, &cache, 10),
        Differences::Answers
    );
}

#[test]
fn the_exit_code_tells_failures_from_differences() {
    let summary = |errors, compared: Option<Compared>| Summary {
        errors,
        compared,
        ..Summary::default()
    };
    assert_eq!(summary(0, None).exit_code(), 0);
    assert_eq!(summary(1, None).exit_code(), 4);
    let c = |differing, new_failures, old_failures| Compared {
        differing,
        new_failures,
        old_failures,
        ..Compared::default()
    };
    assert_eq!(summary(0, Some(c(0, 0, 0))).exit_code(), 0);
    assert_eq!(summary(0, Some(c(3, 0, 0))).exit_code(), 1);
    assert_eq!(summary(1, Some(c(3, 1, 0))).exit_code(), 4);
    // Errors the old version had too are not the new version's failures.
    assert_eq!(summary(2, Some(c(0, 0, 2))).exit_code(), 0);
}
