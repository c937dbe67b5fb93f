//! Plugins shipped as `ClusterPlugin` resources into a running host, on the
//! real control plane and the real test registry: `kubectl apply` loads a
//! plugin from a ConfigMap or an OCI artifact, a new digest swaps it, a bad
//! module or bad settings leave the working version serving, and the
//! resource's status and Events say what serves and what failed.
//!
//! Each test runs its own host, which serves only the ClusterPlugins
//! labelled with the test's own selector (`--plugin-selector`), and confines
//! each plugin to the test's namespace (`spec.namespaces`).

use std::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubewasm_e2e::cluster_plugins::{
    Fixture, WAIT, condition, host_args, push, sha256, spawn_host,
};
use kubewasm_e2e::host::{self, component};
use kubewasm_e2e::probe;
use kubewasm_e2e::registry::TestRegistry;
use kubewasm_e2e::unique_name;
use serde_json::{Value, json};

#[tokio::test]
async fn a_configmap_module_serves_swaps_on_new_settings_and_keeps_serving_when_rejected() {
    let fx = Fixture::start("cp-configmap").await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes.clone())
        .await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let name = unique_name("probe-cm");
    let source = json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}});
    let applied = Instant::now();
    fx.apply(&name, source.clone(), json!({"mark": "v1"})).await;
    fx.marked("a", "v1").await;
    eprintln!(
        "ClusterPlugin applied → first object written: {} ms",
        applied.elapsed().as_millis()
    );
    let status = fx
        .status_until(&name, "Ready", |s| {
            condition(s, "Ready") == ("True", "Serving")
        })
        .await;
    assert_eq!(condition(&status, "Degraded"), ("False", "AsExpected"));
    assert_eq!(status["serving"]["name"], "probe");
    assert_eq!(status["serving"]["digest"], sha256(&probe_bytes));
    assert_eq!(status["observedGeneration"], 1);
    let loaded = fx.event_note(&name, "Loaded").await;
    assert!(
        loaded.contains("probe") && loaded.contains(&sha256(&probe_bytes)),
        "{loaded}"
    );

    // New settings: the plugin is swapped, existing objects resynced.
    fx.apply(&name, source.clone(), json!({"mark": "v2"})).await;
    fx.marked("a", "v2").await;
    fx.status_until(&name, "generation 2 serving", |s| {
        s["observedGeneration"] == 2 && condition(s, "Ready") == ("True", "Serving")
    })
    .await;
    fx.event_note(&name, "Swapped").await;

    // Settings the plugin rejects: v2 keeps serving, the status says why.
    fx.apply(&name, source, json!({"marc": "v3"})).await;
    let status = fx
        .status_until(&name, "Degraded", |s| {
            condition(s, "Degraded") == ("True", "SettingsRejected")
        })
        .await;
    assert_eq!(
        condition(&status, "Ready"),
        ("False", "PreviousVersionServing")
    );
    assert_eq!(status["serving"]["digest"], sha256(&probe_bytes));
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("marc")),
        "{status}"
    );
    let refused = fx.event_note(&name, "LoadFailed").await;
    assert!(refused.contains("still serving: probe"), "{refused}");
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    fx.marked("b", "v2").await;

    // Deleted: unloaded.
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.host
        .logged(WAIT, "plugin resource deleted; plugin unloaded")
        .await;
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_missing_module_or_bad_settings_degrade_only_that_plugin() {
    let fx = Fixture::start("cp-isolation").await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes)
        .await;

    let missing = unique_name("missing");
    fx.apply(
        &missing,
        json!({"configMap": {"name": "no-such-configmap", "key": "p.wasm"}}),
        json!({}),
    )
    .await;
    let rejected = unique_name("rejected");
    fx.apply(
        &rejected,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"unknown": true}),
    )
    .await;
    let status = fx
        .status_until(&missing, "SourceNotFound", |s| {
            condition(s, "Ready") == ("False", "SourceNotFound")
        })
        .await;
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-configmap")),
        "{status}"
    );
    let status = fx
        .status_until(&rejected, "SettingsRejected", |s| {
            condition(s, "Ready") == ("False", "SettingsRejected")
        })
        .await;
    assert!(status.get("serving").is_none_or(Value::is_null), "{status}");

    // A good plugin beside them serves; the host is ready.
    let good = unique_name("good");
    fx.apply(
        &good,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"mark": "ok"}),
    )
    .await;
    probe::create_configmap(&configmaps, "c", "mark", &[]).await;
    fx.marked("c", "ok").await;
    let addr = fx.host.wait_admin_addr(WAIT).await;
    let (code, body) = host::http_get(addr, "/readyz").unwrap();
    assert_eq!(code, 200, "{body}");

    // The missing ConfigMap appears: that plugin loads on the next retry,
    // and is refused as a duplicate of the good one, naming it.
    let later: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "no-such-configmap"},
        "binaryData": {"p.wasm": ByteString(std::fs::read(component("probe")).unwrap())},
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &later)
        .await
        .unwrap();
    let status = fx
        .status_until(&missing, "DuplicateName", |s| {
            condition(s, "Ready") == ("False", "DuplicateName")
        })
        .await;
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&good)),
        "{status}"
    );
    for name in [&missing, &rejected, &good] {
        fx.plugins
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn an_oci_module_swaps_when_its_tag_moves_and_a_bad_digest_keeps_the_old() {
    let fx = Fixture::start("cp-oci").await;
    let registry = TestRegistry::shared().unwrap();
    fx.registry_secret().await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let reference = registry.reference(&format!("e2e/{}", unique_name("probe")), "stable");
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.wasm");
    std::fs::copy(component("probe"), &v1).unwrap();
    let digest1 = push(&v1, &reference);

    let name = unique_name("probe-oci");
    let module = json!({"oci": {"reference": reference, "pullSecret": {"name": "registry"}}});
    fx.apply(&name, module, json!({"mark": "oci"})).await;
    fx.marked("a", "oci").await;
    let status = fx
        .status_until(&name, "serving v1", |s| {
            s["serving"]["digest"] == digest1.as_str()
        })
        .await;
    assert_eq!(status["resolved"]["digest"], digest1.as_str());
    assert_eq!(status["resolved"]["reference"], reference.as_str());

    // A new build under the same tag, then a nudge: swapped to it.
    let v2 = dir.path().join("v2.wasm");
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    std::fs::write(
        &v2,
        host::variant(&probe_bytes, "kubewasm-e2e-variant", b"2"),
    )
    .unwrap();
    let digest2 = push(&v2, &reference);
    assert_ne!(digest1, digest2);
    let nudged = Instant::now();
    fx.plugins
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kubewasm.dev/requested-at": "1"}}})),
        )
        .await
        .unwrap();
    let status = fx
        .status_until(&name, "serving v2", |s| {
            s["serving"]["digest"] == digest2.as_str()
        })
        .await;
    let swap = nudged.elapsed();
    println!(
        "pull + swap after the tag moved: {} ms (status observed)",
        swap.as_millis()
    );
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"));
    let swapped = fx.event_note(&name, "Swapped").await;
    assert!(
        swapped.contains(&digest1) && swapped.contains(&digest2),
        "{swapped}"
    );

    // A digest the registry does not have: v2 keeps serving.
    let missing = format!(
        "{}@sha256:{}",
        reference.rsplit_once(':').unwrap().0,
        "0".repeat(64)
    );
    fx.apply(
        &name,
        json!({"oci": {"reference": missing, "pullSecret": {"name": "registry"}}}),
        json!({"mark": "oci"}),
    )
    .await;
    let status = fx
        .status_until(&name, "PullFailed", |s| {
            condition(s, "Degraded").0 == "True"
        })
        .await;
    assert_eq!(
        condition(&status, "Ready"),
        ("False", "PreviousVersionServing")
    );
    assert_eq!(status["serving"]["digest"], digest2.as_str());
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    fx.marked("b", "oci").await;
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_restarted_host_is_ready_only_once_every_listed_plugin_settled() {
    let fx = Fixture::start("cp-ready").await;
    fx.module_configmap(
        "probe-module",
        "probe.wasm",
        std::fs::read(component("probe")).unwrap(),
    )
    .await;
    let good = unique_name("good");
    fx.apply(
        &good,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"mark": "first"}),
    )
    .await;
    let missing = unique_name("missing");
    fx.apply(
        &missing,
        json!({"configMap": {"name": "no-such-configmap", "key": "p.wasm"}}),
        json!({}),
    )
    .await;
    fx.status_until(&good, "Ready", |s| condition(s, "Ready").0 == "True")
        .await;

    // A second host starting with both already there: once it says it is
    // ready, the good plugin serves in it and the bad one was reported.
    let restarted = spawn_host(&fx.ns, &fx.selector);
    let addr = restarted.wait_admin_addr(WAIT).await;
    restarted
        .eventually(WAIT, || async {
            let (code, body) = host::http_get(addr, "/readyz")?;
            anyhow::ensure!(code == 200, "not ready: {body}");
            Ok(())
        })
        .await;
    let log = restarted.log();
    let line = |needle: &[&str]| {
        log.lines()
            .position(|l| needle.iter().all(|n| l.contains(n)))
    };
    let settled = line(&["plugin resources settled"]);
    let loaded = line(&["plugin installed", "plugin=probe"]);
    let reported = line(&["plugin resource not loaded", &missing]);
    assert!(
        settled.is_some() && loaded < settled && reported < settled && loaded.is_some(),
        "ready before settling: {log}"
    );
    for name in [&missing, &good] {
        fx.plugins
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn dry_run_changes_nothing_and_grants_the_plugin_exceeds_refuse_it() {
    let fx = Fixture::start("cp-dry").await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    fx.module_configmap(
        "probe-module",
        "probe.wasm",
        std::fs::read(component("probe")).unwrap(),
    )
    .await;
    let source = json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}});

    // Grants without what the probe writes: refused, naming the grant.
    let name = unique_name("probe-dry");
    fx.apply_with(
        &name,
        source.clone(),
        json!({"mark": "dry"}),
        json!({"grants": {"write": [{"group": "apps", "kind": "Deployment"}], "read": [{"group": "*", "kind": "*"}]}}),
    )
    .await;
    let status = fx
        .status_until(&name, "GrantMissing", |s| {
            condition(s, "Ready") == ("False", "GrantMissing")
        })
        .await;
    let message = status["failed"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("plugin probe writes") && message.contains("spec.grants.write"),
        "{status}"
    );
    fx.event_note(&name, "Refused").await;

    // Granted, in dry run: the write is sent with dryRun=All, nothing changes.
    fx.apply_with(
        &name,
        source.clone(),
        json!({"mark": "dry"}),
        json!({"dryRun": true}),
    )
    .await;
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    fx.host
        .logged(WAIT, "dry run: sending with dryRun=All")
        .await;
    let cm = configmaps.get("a").await.unwrap();
    assert_eq!(probe::annotation(&cm, probe::MARK), None, "{cm:?}");

    // Dry run off: the same plugin now writes.
    fx.apply_with(
        &name,
        source,
        json!({"mark": "dry"}),
        json!({"dryRun": false}),
    )
    .await;
    fx.marked("a", "dry").await;
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_host_restarted_while_the_registry_is_unreachable_serves_the_cached_digest() {
    let mut fx = Fixture::start("cp-offline").await;
    let registry = TestRegistry::shared().unwrap();
    fx.registry_secret().await;
    let reference = registry.reference(&format!("e2e/{}", unique_name("probe")), "stable");
    let digest = push(&component("probe"), &reference);
    let name = unique_name("probe-offline");
    let module = json!({"oci": {"reference": reference, "pullSecret": {"name": "registry"}}});
    fx.apply(&name, module, json!({"mark": "cached"})).await;
    fx.status_until(&name, "serving", |s| {
        s["serving"]["digest"] == digest.as_str()
    })
    .await;
    fx.host.terminate(std::time::Duration::from_secs(10));

    // A new host sharing the blob cache that cannot reach the registry (it
    // does not trust its CA): it serves the digest the status says the tag
    // resolved to, from the cache, and says the registry failed.
    let args = host_args(&fx.ns, &fx.selector);
    let ca = args.iter().position(|a| a == "--registry-ca").unwrap();
    let args: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != ca && *i != ca + 1)
        .map(|(_, a)| a.as_str())
        .collect();
    fx.host = host::Host::spawn(&fx.ns, tempfile::tempdir().unwrap(), &args);
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "after", "mark", &[]).await;
    fx.marked("after", "cached").await;
    let status = fx
        .status_until(&name, "degraded, serving from the cache", |s| {
            condition(s, "Degraded") == ("True", "PullFailed")
        })
        .await;
    assert_eq!(status["serving"]["digest"], digest.as_str(), "{status}");
    assert_eq!(
        condition(&status, "Ready"),
        ("False", "PreviousVersionServing")
    );
    let message = status["failed"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("from the cache"), "{status}");
}
