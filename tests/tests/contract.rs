//! The plugin contract's versions and host imports end to end: a 0.1.0
//! component beside 0.2.0 ones in `kubewasm run`, and the `now` import,
//! against the real control plane.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::{TestNamespace, field_managers};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// A label key no other test's host propagates (see `cluster_loop.rs`).
fn team_key(ns: &TestNamespace) -> String {
    format!("team-{}", ns.name())
}

/// A component built against the previous contract (`kubewasm:plugin@0.1.0`)
/// runs in the live loop beside current ones: it is loaded, reconciles the
/// ConfigMaps it selects with its settings, writes with its own field
/// manager, and leaves the others alone.
#[tokio::test]
async fn a_contract_0_1_plugin_reconciles_beside_0_2_plugins() {
    let ns = TestNamespace::create("loop-v01").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let selected: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "selected", "labels": {"v01.kubewasm.dev/enabled": "true"}},
        "data": {"k": "v"}
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &selected)
        .await
        .unwrap();
    configmaps
        .create(&PostParams::default(), &config_map("unselected"))
        .await
        .unwrap();

    let host = Host::start(
        &ns,
        &[
            ("v01-labeler", Some(json!({"value": "from-0.1"}))),
            ("label-propagator", Some(json!({"labels": [team_key(&ns)]}))),
        ],
        &[],
    );

    let labelled = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("selected").await?;
            let value = cm
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("v01.kubewasm.dev/labelled"))
                .cloned();
            anyhow::ensure!(value.as_deref() == Some("from-0.1"), "label is {value:?}");
            Ok(cm)
        })
        .await;
    let managers = field_managers(&labelled.metadata);
    assert!(
        managers.contains(&"kubewasm/v01-labeler".to_string()),
        "field managers: {managers:?}"
    );
    // Both contract versions were loaded by the same host.
    assert_eq!(
        host.metric_with(
            "kubewasm_plugin_info",
            &[("plugin", "v01-labeler"), ("contract", "0.1.0")]
        ),
        Some(1.0),
        "{:?}",
        host.metrics()
    );
    assert_eq!(
        host.metric_with(
            "kubewasm_plugin_info",
            &[("plugin", "label-propagator"), ("contract", "0.2.0")]
        ),
        Some(1.0)
    );
    let unselected = configmaps.get("unselected").await.unwrap();
    assert!(
        unselected
            .metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("v01.kubewasm.dev/labelled")),
        "{:?}",
        unselected.metadata.labels
    );
}

/// The `now` import of contract 0.2 hands plugins the host's wall clock:
/// the probe's `clock` behaviour records what it read, in both forms, and
/// both name the same instant, between the test's own readings.
#[tokio::test]
async fn plugins_read_the_host_clock() {
    use k8s_openapi::jiff::Timestamp;
    let ns = TestNamespace::create("loop-clock").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let host = Host::start(&ns, &[("probe", None)], &[]);
    let before = Timestamp::now();
    kubewasm_e2e::probe::create_configmap(&configmaps, "clock", "clock", &[]).await;
    let cm = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("clock").await?;
            anyhow::ensure!(
                kubewasm_e2e::probe::annotation(&cm, "probe.kubewasm.dev/now-ms").is_some(),
                "not read yet"
            );
            Ok(cm)
        })
        .await;
    let after = Timestamp::now();
    let ms: i64 = kubewasm_e2e::probe::annotation(&cm, "probe.kubewasm.dev/now-ms")
        .unwrap()
        .parse()
        .unwrap();
    let rfc3339 = kubewasm_e2e::probe::annotation(&cm, "probe.kubewasm.dev/now").unwrap();
    let read: Timestamp = rfc3339.parse().unwrap();
    // RFC 3339 in whole seconds, UTC; the same instant as the milliseconds.
    assert!(
        rfc3339.ends_with('Z') && !rfc3339.contains('.'),
        "{rfc3339}"
    );
    assert_eq!(read.as_second(), ms.div_euclid(1000), "{rfc3339} vs {ms}");
    assert!(
        before.as_millisecond() - 1000 <= ms && ms <= after.as_millisecond() + 1000,
        "the host's clock {rfc3339} is not between {before} and {after}"
    );
}
