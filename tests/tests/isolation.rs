//! Plugins are isolated from each other in the cluster: a plugin that traps,
//! runs out of time or asks for a write outside its declared scope changes
//! nothing, backs off, and the other plugins go on; two plugins writing one
//! object each own their fields. Uses the `probe` test plugin (its
//! behaviour is chosen per object by a label) and `label-propagator`.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kubewasm_e2e::host::Host;
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::{TestNamespace, eventually, field_managers};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// A namespace labelled with a label key of its own, and the settings that
/// make label-propagator copy that label.
async fn labelled_namespace(prefix: &str) -> (TestNamespace, String, Value) {
    let ns = TestNamespace::create(prefix).await.unwrap();
    let team = format!("team-{}", ns.name());
    ns.label(json!({&team: "blue"})).await.unwrap();
    let settings = json!({"labels": [&team]});
    (ns, team, settings)
}

async fn create_configmap(ns: &TestNamespace, name: &str, behave: &str) {
    probe::create_configmap(&ns.api(), name, behave, &[("k", "v")]).await;
}

/// The fields (as `managedFields` spells them) one manager owns.
fn owned_by(cm: &ConfigMap, manager: &str) -> String {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(manager))
        .map(|m| serde_json::to_string(&m.fields_v1).unwrap())
        .collect()
}

/// The log shows `key` backed off at least `failures` times in a row.
fn backed_off(log: &str, name: &str, failures: u32) -> bool {
    log.lines().any(|line| {
        line.contains("backing off")
            && line.contains("plugin: \"probe\"")
            && line.contains(&format!("name: \"{name}\""))
            && line.contains(&format!("failures={failures}"))
    })
}

#[tokio::test]
async fn misbehaving_calls_change_nothing_back_off_and_spare_other_plugins() {
    let (ns, team, settings) = labelled_namespace("isolation").await;
    for (name, behave) in [
        ("good", "mark"),
        ("trap", "trap"),
        ("spin", "spin"),
        ("scope", "out-of-scope"),
    ] {
        create_configmap(&ns, name, behave).await;
    }
    let host = Host::start(
        &ns,
        &[("probe", None), ("label-propagator", Some(settings))],
        &["--namespace", ns.name(), "--call-timeout-ms", "500"],
    );
    let configmaps: Api<ConfigMap> = ns.api();

    // label-propagator labels all four, including the ones the probe fails
    // on; the probe marks the good one.
    eventually(WAIT, || async {
        for name in ["good", "trap", "spin", "scope"] {
            let cm = configmaps.get(name).await?;
            let labels = cm.metadata.labels.unwrap_or_default();
            anyhow::ensure!(labels.contains_key(&team), "{name} is not labelled yet");
        }
        let good = configmaps.get("good").await?;
        let annotations = good.metadata.annotations.unwrap_or_default();
        anyhow::ensure!(annotations.get(MARK).map(String::as_str) == Some("seen"));
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // Each failure is reported with its cause and backs off, again and again.
    eventually(WAIT, || async {
        let log = host.log();
        for (name, cause) in [
            ("trap", "plugin probe trapped"),
            ("spin", "plugin probe exceeded its time limit of 500ms"),
            ("scope", "refused, nothing of this outcome was sent"),
        ] {
            anyhow::ensure!(log.contains(cause), "no {cause:?} in the log");
            anyhow::ensure!(backed_off(&log, name, 3), "{name} did not back off 3 times");
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let log = host.log();
    assert!(
        log.contains("Secret") && log.contains("write scope"),
        "the refusal names the kind and the scope:\n{log}"
    );

    // The probe changed nothing on the objects it failed on, and the Secret
    // it asked for was never created.
    for name in ["trap", "spin", "scope"] {
        let cm = configmaps.get(name).await.unwrap();
        assert!(
            !cm.metadata
                .annotations
                .unwrap_or_default()
                .contains_key(MARK)
        );
    }
    let secrets: Api<Secret> = ns.api();
    assert!(secrets.get_opt("scope").await.unwrap().is_none());
}

#[tokio::test]
async fn two_plugins_writing_one_object_each_own_their_fields() {
    let (ns, team, settings) = labelled_namespace("managers").await;
    create_configmap(&ns, "shared", "mark").await;
    let _host = Host::start(
        &ns,
        &[("probe", None), ("label-propagator", Some(settings))],
        &["--namespace", ns.name()],
    );
    let configmaps: Api<ConfigMap> = ns.api();
    let cm = eventually(WAIT, || async {
        let cm = configmaps.get("shared").await?;
        let labelled = cm
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(&team));
        let marked = cm
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MARK));
        anyhow::ensure!(labelled && marked, "labelled: {labelled}, marked: {marked}");
        Ok(cm)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    let all = field_managers(&cm.metadata);
    assert!(all.contains(&"kubewasm/probe".to_string()), "{all:?}");
    assert!(
        all.contains(&"kubewasm/label-propagator".to_string()),
        "{all:?}"
    );
    let probe = owned_by(&cm, "kubewasm/probe");
    let propagator = owned_by(&cm, "kubewasm/label-propagator");
    assert!(probe.contains(&format!("f:{MARK}")), "probe owns {probe}");
    assert!(!probe.contains(&format!("f:{team}")), "probe owns {probe}");
    assert!(
        propagator.contains(&format!("f:{team}")),
        "label-propagator owns {propagator}"
    );
    assert!(
        !propagator.contains(&format!("f:{MARK}")),
        "label-propagator owns {propagator}"
    );
}

/// Waits until `host` has reported a reconcile loop of the probe on
/// ConfigMap `name` in `ns` and backed its key off three times.
async fn loop_reported(host: &Host, ns: &TestNamespace, name: &str) {
    host.eventually(WAIT, || async {
        let log = host.log();
        anyhow::ensure!(
            log.lines().any(|l| l.contains("reconcile loop")
                && l.contains("plugin=probe")
                && l.contains(&format!("{}/{name}", ns.name()))),
            "no reconcile loop reported for {name}"
        );
        anyhow::ensure!(backed_off(&log, name, 3), "{name} did not back off 3 times");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_plugin_that_changes_an_object_on_every_call_is_reported_and_backs_off() {
    const CHURN: &str = "probe.kubewasm.dev/churn";
    let ns = TestNamespace::create("churn").await.unwrap();
    create_configmap(&ns, "churn", "churn").await;
    let host = Host::start(&ns, &[("probe", None)], &["--namespace", ns.name()]);
    let configmaps: Api<ConfigMap> = ns.api();

    // Each write is a change that calls the plugin again, which writes
    // again: the host names the loop and backs the key off, again and again.
    loop_reported(&host, &ns, "churn").await;

    // Backing off bounds the writes: the loop is reported after 10 writes,
    // and each retry that still loops adds one. Unchecked, the plugin would
    // write as fast as the client's rate limit allows (20 a second).
    let count: u64 = configmaps
        .get("churn")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default()
        .get(CHURN)
        .and_then(|n| n.parse().ok())
        .expect("the plugin wrote its counter");
    let reports = host.count("reconcile loop") as u64;
    eprintln!("churn: {count} writes, {reports} loop reports");
    assert!(
        (10..=10 + reports + 1).contains(&count),
        "{count} writes for {reports} loop reports:\n{}",
        host.log()
    );
}

/// The loop through a child: an owner that rewrites its child on every
/// call is woken by each of its own writes to the child (`owns`), so it is
/// reported and backed off like a plugin that changes its own object on
/// every call; without that, it would write forever, unreported.
#[tokio::test]
async fn an_owner_rewriting_its_child_on_every_call_is_reported_and_backs_off() {
    let ns = TestNamespace::create("churn-child").await.unwrap();
    create_configmap(&ns, "owner", "churn-child").await;
    let host = Host::start(&ns, &[("probe", None)], &["--namespace", ns.name()]);
    let configmaps: Api<ConfigMap> = ns.api();

    loop_reported(&host, &ns, "owner").await;

    // The child was written by the owner's reconciles, woken by the child.
    let child = configmaps.get("owner-child").await.unwrap();
    let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.name.as_str(), owner.controller),
        ("owner", Some(true))
    );
    let count: u64 = child.data.unwrap()["n"].parse().unwrap();
    let reports = host.count("reconcile loop") as u64;
    eprintln!("churn-child: {count} writes, {reports} loop reports");
    assert!(
        (10..=10 + reports + 1).contains(&count),
        "{count} writes for {reports} loop reports:\n{}",
        host.log()
    );
    assert!(host.log().contains("via=Owner"), "{}", host.log());
}
