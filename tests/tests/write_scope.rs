//! A plugin can do only what it declared and what the operator granted it,
//! tried as an attacker would with the `probe` plugin's `smuggle` behaviour:
//! it returns intents on ConfigMaps (a kind it declares) whose target
//! namespace or name carries `/`, `?`, `%` or `..`, which would otherwise
//! move the request onto a Secret, the namespace itself, or change its
//! query. Every such outcome is refused before any request, named in the
//! log and counted; the victims are untouched. The same holds for writes
//! outside `--namespace` and outside a plugin's `NAME.scope.json` grant,
//! which also hides other namespaces from the plugin's reads and calls.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, PostParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{Host, sample};
use kubewasm_e2e::probe::{self, MARK};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const SMUGGLED: &str = "probe.kubewasm.dev/smuggled";
const READ: &str = "probe.kubewasm.dev/read";
const READ_RESULT: &str = "probe.kubewasm.dev/read-result";

/// A ConfigMap the probe reconciles with `behave`, and these annotations.
async fn probe_configmap(
    ns: &TestNamespace,
    name: &str,
    behave: &str,
    annotations: serde_json::Value,
) {
    let mut cm = probe::configmap(name, behave, &[("k", "v")]);
    cm.metadata.annotations = serde_json::from_value(annotations).unwrap();
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

/// A smuggling attempt: an intent type and the namespace/name it targets.
fn smuggle(intent: &str, namespace: Option<&str>, name: Option<&str>) -> serde_json::Value {
    let mut annotations = json!({"probe.kubewasm.dev/smuggle-intent": intent});
    if let Some(ns) = namespace {
        annotations["probe.kubewasm.dev/smuggle-namespace"] = json!(ns);
    }
    if let Some(name) = name {
        annotations["probe.kubewasm.dev/smuggle-name"] = json!(name);
    }
    annotations
}

async fn victim_secret(ns: &TestNamespace) -> Secret {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "victim"},
        "stringData": {"password": "hunter2"}
    }))
    .unwrap();
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .unwrap()
}

#[tokio::test]
async fn smuggled_names_never_reach_a_request() {
    let ns = TestNamespace::create("smuggle").await.unwrap();
    let victim = victim_secret(&ns).await;
    let n = ns.name();
    let secret_path = format!("{n}/secrets/victim?x=");
    // Each shape once per intent type that puts a name into a URL; the
    // comment says where the request would have landed.
    let attempts: Vec<(&str, serde_json::Value)> = vec![
        // PATCH /api/v1/namespaces/{n}/secrets/victim?x=/configmaps/a
        ("a", smuggle("merge-patch", Some(&secret_path), None)),
        // DELETE of the same Secret.
        ("b", smuggle("delete", Some(&secret_path), None)),
        // JSON patch, the same Secret.
        ("c", smuggle("json-patch", Some(&secret_path), None)),
        // .../configmaps/../secrets/victim: the Secret again.
        ("d", smuggle("merge-patch", None, Some("../secrets/victim"))),
        // DELETE .../namespaces/{n}/configmaps/.. : the namespace itself.
        ("e", smuggle("delete", None, Some(".."))),
        // A query smuggled through the name (field manager, dryRun).
        ("f", smuggle("apply", None, Some("f?fieldManager=kubectl"))),
        // Percent-encoded slashes.
        (
            "g",
            smuggle("merge-patch", None, Some("..%2Fsecrets%2Fvictim")),
        ),
        // Empty path segments.
        ("h", smuggle("delete", Some(&format!("{n}//")), None)),
        // Create into a path that is not a namespace.
        (
            "i",
            smuggle("create", Some(&format!("{n}/secrets")), Some("victim")),
        ),
        // An Event recorded into a path that is not a namespace.
        ("j", smuggle("event", Some(&secret_path), None)),
    ];
    for (name, annotations) in &attempts {
        probe_configmap(&ns, name, "smuggle", annotations.clone()).await;
    }
    probe_configmap(&ns, "good", "mark", json!({})).await;
    let host = Host::start(&ns, &[("probe", None)], &["--namespace", n]);

    // Every attempt is refused and named; the well-behaved object is marked,
    // so the host was working all along.
    host.eventually(WAIT, || async {
        let good = ns.api::<ConfigMap>().get("good").await?;
        let marked = good
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(MARK);
        anyhow::ensure!(marked, "good is not marked yet");
        let log = host.log();
        for (name, _) in &attempts {
            let object = format!("object={n}/{name} ");
            let refused = log.lines().any(|l| {
                l.contains("reconcile failed")
                    && l.contains("malformed intent")
                    && l.contains(&object)
            });
            anyhow::ensure!(refused, "attempt {name} was not refused yet");
        }
        Ok(())
    })
    .await;

    let log = host.log();
    for field in [
        "target.namespace",
        "target.name",
        "object.metadata.name",
        "object.metadata.namespace",
        "regarding.namespace",
    ] {
        assert!(log.contains(field), "no refusal names {field}:\n{log}");
    }
    assert!(log.contains("which would change the request URL"), "{log}");

    // The victims are untouched: the Secret keeps its resourceVersion and
    // data, the namespace is not being deleted, and no ConfigMap or Event
    // appeared anywhere else.
    let secret = ns.api::<Secret>().get("victim").await.unwrap();
    assert_eq!(
        secret.metadata.resource_version, victim.metadata.resource_version,
        "the victim Secret was modified"
    );
    assert!(
        !secret
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(SMUGGLED),
        "the victim Secret was labelled"
    );
    let namespace = Api::<Namespace>::all(ns.client().clone())
        .get(n)
        .await
        .unwrap();
    assert!(
        namespace.metadata.deletion_timestamp.is_none(),
        "the namespace is being deleted"
    );
    for (name, _) in &attempts {
        let cm = ns.api::<ConfigMap>().get(name).await.unwrap();
        assert!(
            !cm.metadata
                .labels
                .unwrap_or_default()
                .contains_key(SMUGGLED),
            "{name} was written"
        );
    }

    // Counted: one failed reconcile per attempt at least.
    let metrics = host.metrics().unwrap();
    let refused = sample(
        &metrics,
        "kubewasm_reconciles_total{plugin=\"probe\",result=\"malformed_intent\"}",
    )
    .unwrap_or(0.0);
    assert!(
        refused >= attempts.len() as f64,
        "{refused} refusals counted for {} attempts:\n{metrics}",
        attempts.len()
    );
}

#[tokio::test]
async fn the_namespace_flag_refuses_writes_elsewhere() {
    let inside = TestNamespace::create("confined").await.unwrap();
    let outside = TestNamespace::create("elsewhere").await.unwrap();
    let target: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "target"}, "data": {"k": "v"}}))
            .unwrap();
    let target = outside
        .api::<ConfigMap>()
        .create(&PostParams::default(), &target)
        .await
        .unwrap();
    probe_configmap(
        &inside,
        "patch-out",
        "smuggle",
        smuggle("merge-patch", Some(outside.name()), Some("target")),
    )
    .await;
    probe_configmap(
        &inside,
        "delete-out",
        "smuggle",
        smuggle("delete", Some(outside.name()), Some("target")),
    )
    .await;
    let host = Host::start(&inside, &[("probe", None)], &["--namespace", inside.name()]);

    let grant_refusal = format!(
        "namespace \"{}\" is outside the plugin's grant (it may act in: {})",
        outside.name(),
        inside.name()
    );
    host.eventually(WAIT, || async {
        let log = host.log();
        for name in ["patch-out", "delete-out"] {
            let object = format!("object={}/{name} ", inside.name());
            let refused = log
                .lines()
                .any(|l| l.contains(&grant_refusal) && l.contains(&object));
            anyhow::ensure!(refused, "{name} was not refused yet");
        }
        Ok(())
    })
    .await;
    let after = outside.api::<ConfigMap>().get("target").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, target.metadata.resource_version,
        "the ConfigMap outside --namespace was changed"
    );
    let metrics = host.metrics().unwrap();
    for intent in ["merge-patch", "delete"] {
        let series = format!(
            "kubewasm_intents_total{{plugin=\"probe\",result=\"refused\",type=\"{intent}\"}}"
        );
        assert!(
            sample(&metrics, &series).unwrap_or(0.0) >= 1.0,
            "{series} not counted:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn a_scope_file_confines_calls_reads_and_writes() {
    let mine = TestNamespace::create("granted").await.unwrap();
    let theirs = TestNamespace::create("not-granted").await.unwrap();
    // In the granted namespace: an object to mark, reads of both namespaces,
    // and a write into the other one.
    probe_configmap(&mine, "mark-me", "mark", json!({})).await;
    let other_path = format!("{}/secret-config", theirs.name());
    let own_path = format!("{}/own-config", mine.name());
    probe_configmap(&mine, "read-theirs", "read", json!({READ: other_path})).await;
    probe_configmap(&mine, "read-own", "read", json!({READ: own_path})).await;
    probe_configmap(
        &mine,
        "write-theirs",
        "smuggle",
        smuggle("merge-patch", Some(theirs.name()), Some("secret-config")),
    )
    .await;
    // Both read targets exist, and the other namespace has an object the
    // probe would mark if it were called for it.
    for (ns, name) in [(&theirs, "secret-config"), (&mine, "own-config")] {
        probe_configmap(ns, name, "requeue", json!({})).await;
    }
    probe_configmap(&theirs, "not-mine", "mark", json!({})).await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        kubewasm_e2e::host::component("probe"),
        dir.path().join("probe.wasm"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("probe.scope.json"),
        json!({"namespaces": [mine.name()]}).to_string(),
    )
    .unwrap();
    let host = Host::spawn(&mine, dir, &[]);

    let annotation = |cm: ConfigMap, key: &str| {
        cm.metadata
            .annotations
            .unwrap_or_default()
            .get(key)
            .cloned()
    };
    host.eventually(WAIT, || async {
        let cms = mine.api::<ConfigMap>();
        anyhow::ensure!(annotation(cms.get("mark-me").await?, MARK).is_some());
        anyhow::ensure!(
            annotation(cms.get("read-own").await?, READ_RESULT).as_deref() == Some("found"),
            "read-own has not read its namespace yet"
        );
        let theirs = annotation(cms.get("read-theirs").await?, READ_RESULT).unwrap_or_default();
        anyhow::ensure!(theirs.starts_with("error"), "read-theirs: {theirs:?}");
        anyhow::ensure!(
            theirs.contains("outside the namespaces the operator granted it"),
            "the read error does not name the grant: {theirs}"
        );
        anyhow::ensure!(
            host.log().contains("is outside the plugin's grant"),
            "write-theirs not refused yet"
        );
        Ok(())
    })
    .await;

    // Nothing in the other namespace was written or even reconciled.
    let other = theirs.api::<ConfigMap>();
    let not_mine = other.get("not-mine").await.unwrap();
    assert!(
        annotation(not_mine, MARK).is_none(),
        "a call outside the grant"
    );
    let target = other.get("secret-config").await.unwrap();
    assert!(
        !target
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(SMUGGLED),
        "a write outside the grant"
    );
    let log = host.log();
    assert!(
        !log.contains(&format!("object={}/", theirs.name())),
        "the plugin was called for an object outside its grant:\n{log}"
    );
}
