//! The host throttled (429) by the API server's Priority and Fairness
//! (issue 10 §2): it runs as a ServiceAccount whose requests a tight
//! priority level rejects, honours `Retry-After`, and loses nothing.
//!
//! Each case asserts zero lost reconciles once the fault heals
//! ([`Expected`](kubewasm_e2e::faults::Expected)): every object created or
//! changed around the fault carries the mark of the current plugin for its
//! newest state, and every object deleted meanwhile was handed to the plugin
//! with its last state. The other `faults_*.rs` files hold the other faults.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::flowcontrol::v1::{FlowSchema, PriorityLevelConfiguration};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kubewasm_e2e::faults::Expected;
use kubewasm_e2e::host::{Host, component};
use kubewasm_e2e::service_account::HostAccount;
use kubewasm_e2e::{TestNamespace, eventually, unique_name};
use serde_json::json;

/// Generous: a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(120);

/// The API server's `apiserver_flowcontrol_rejected_requests_total` for one
/// priority level, summed over flow schemas and reasons.
async fn apf_rejected(client: &kube::Client, priority_level: &str) -> f64 {
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(request).await.unwrap();
    let level = format!("priority_level=\"{priority_level}\"");
    text.lines()
        .filter(|l| l.starts_with("apiserver_flowcontrol_rejected_requests_total{"))
        .filter(|l| l.contains(&level))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether a `Duration`'s debug form (`850ms`, `1.2s`) is a second or more.
fn at_least_a_second(delay: &str) -> bool {
    let seconds = ["ms", "µs", "ns"]
        .iter()
        .all(|unit| !delay.ends_with(unit))
        .then(|| delay.strip_suffix('s')?.parse::<f64>().ok())
        .flatten();
    seconds.is_some_and(|s| s >= 1.0)
}

/// A priority level of three seats (one share of the server's 600, nothing
/// lent or borrowed) that rejects what does not fit, and a flow schema
/// sending every request of `user` to it. Returns the flow schema's uid.
async fn tight_priority_level(client: &kube::Client, name: &str, user: &str) -> String {
    let apply = PatchParams::apply("kubewasm-e2e").force();
    let level: PriorityLevelConfiguration = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Reject"}
        }}
    }))
    .unwrap();
    Api::<PriorityLevelConfiguration>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&level))
        .await
        .unwrap();
    let schema: FlowSchema = serde_json::from_value(json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            // Before every default schema a ServiceAccount could match.
            "matchingPrecedence": 300,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "User", "user": {"name": user}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                   "clusterScope": true, "namespaces": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
            }]
        }
    }))
    .unwrap();
    Api::<FlowSchema>::all(client.clone())
        .patch(name, &apply, &Patch::Apply(&schema))
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

#[tokio::test]
async fn throttled_by_priority_and_fairness_the_host_retries_and_loses_nothing() {
    let ns = TestNamespace::create("fault-apf").await.unwrap();
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(component("probe"), plugins.path().join("probe.wasm")).unwrap();
    let account = HostAccount::create(&ns, plugins.path()).await.unwrap();
    let admin = ns.client().clone();
    let name = unique_name("kubewasm-e2e-tight");
    let schema_uid = tight_priority_level(&admin, &name, &account.username()).await;

    // The API server classifies the account's requests by the new schema
    // (it says which in a response header) before the host starts.
    let as_account = account.client().await.unwrap();
    let probe_path = format!("/api/v1/namespaces/{}/configmaps?limit=1", ns.name());
    eventually(WAIT, || async {
        let request = http::Request::get(probe_path.as_str()).body(kube::client::Body::empty())?;
        let response = as_account.send(request).await?;
        let matched = response
            .headers()
            .get("X-Kubernetes-PF-FlowSchema-UID")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        anyhow::ensure!(
            matched.as_deref() == Some(schema_uid.as_str()),
            "classified by flow schema {matched:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
    let rejected_before = apf_rejected(&admin, &name).await;

    // The client-side rate limit lifted: the server's limit is the one hit.
    let extra = [
        "--namespace",
        ns.name(),
        "--kube-qps",
        "1000",
        "--kube-burst",
        "1000",
        "--concurrency",
        "32",
    ];
    let host = Host::spawn_command(account.command(), plugins, &extra);
    let cms: Api<ConfigMap> = ns.api();
    let mut expected = Expected::default();
    let started = Instant::now();
    for i in 0..300 {
        expected.create(&cms, &format!("c{i}"), 0).await;
    }
    let first = expected.converge(&cms, &host).await;
    let created = started.elapsed();

    // More changes while throttled: new objects, changed and deleted ones.
    for i in 0..30 {
        expected.create(&cms, &format!("d{i}"), 1).await;
        expected.change(&cms, &format!("c{i}"), 1).await;
        expected.delete(&cms, &format!("c{}", 100 + i)).await;
    }
    let second = expected.converge(&cms, &host).await;

    // The throttling happened, and the host retried it.
    let rejected = apf_rejected(&admin, &name).await - rejected_before;
    let retried = host.metric("kubewasm_write_retries_total{reason=\"throttled\"}");
    let gave_up =
        host.metric("kubewasm_reconciles_total{plugin=\"probe\",result=\"apply_failed\"}");
    eprintln!(
        "faults: priority and fairness: {rejected} requests rejected (429), {retried} writes \
         retried as throttled, {gave_up} reconciles out of retries (requeued); 300 creates \
         reconciled {:.1} s after the first ({:.1} s after the last), 90 more changes {:.1} s \
         after the last",
        created.as_secs_f64(),
        first.as_secs_f64(),
        second.as_secs_f64()
    );
    assert!(
        rejected >= 1.0,
        "the API server rejected none of the host's requests: the test proves nothing"
    );
    assert!(
        retried >= 1.0,
        "429s were not retried: {}",
        host.metrics().unwrap_or_default()
    );
    // Each throttled write waited at least as long as the server's
    // Retry-After (a whole number of seconds, at least 1).
    let log = host.log();
    let waits: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("retrying a write") && l.contains("throttled"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("delay=")))
        .collect();
    assert!(!waits.is_empty(), "no throttled retry logged:\n{log}");
    let sooner: Vec<&&str> = waits.iter().filter(|d| !at_least_a_second(d)).collect();
    assert!(
        sooner.is_empty(),
        "throttled writes retried sooner than the server's Retry-After: {sooner:?}"
    );

    let dp = DeleteParams::default();
    Api::<FlowSchema>::all(admin.clone())
        .delete(&name, &dp)
        .await
        .unwrap();
    Api::<PriorityLevelConfiguration>::all(admin)
        .delete(&name, &dp)
        .await
        .unwrap();
    account.delete_rbac().await.unwrap();
}
