//! The 12 MB JavaScript plugin (`configmap-hasher`) shipped through the
//! test registry as a `ClusterPlugin` and hot-swapped in a running host:
//! A, then B (another build), then A again. `kubewasm push` has compiled
//! each build into the compile cache the host shares, so each swap is a pull (the 12 MB layer
//! for A and B, nothing but the manifest for A again) plus a compile-cache
//! hit. Prints each swap's time from `kubectl apply` to the new behaviour on
//! an object; the numbers are recorded in tests/README.md (never asserted:
//! a test is no benchmark).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kubewasm_e2e::cluster_plugins::{Fixture, push};
use kubewasm_e2e::host::{self, component};
use kubewasm_e2e::registry::TestRegistry;
use kubewasm_e2e::unique_name;
use serde_json::json;

/// Generous: a debug host loading 12 MB of JavaScript on a loaded machine.
const SLOW: Duration = Duration::from_secs(300);

#[tokio::test]
async fn the_javascript_plugin_ships_through_the_registry_and_swaps_a_b_a() {
    let fx = Fixture::start("cp-js").await;
    let registry = TestRegistry::shared().unwrap();
    fx.registry_secret().await;

    let dir = tempfile::tempdir().unwrap();
    let a_bytes = std::fs::read(component("configmap-hasher")).unwrap();
    let b_bytes = host::variant(&a_bytes, "kubewasm-e2e-variant", b"b");
    let (a_file, b_file) = (dir.path().join("a.wasm"), dir.path().join("b.wasm"));
    std::fs::write(&a_file, &a_bytes).unwrap();
    std::fs::write(&b_file, &b_bytes).unwrap();
    let repository = format!("e2e/{}", unique_name("hasher"));
    let pushed = Instant::now();
    let digest_a = push(&a_file, &registry.reference(&repository, "a"));
    let digest_b = push(&b_file, &registry.reference(&repository, "b"));
    println!(
        "pushed two {} MB builds in {} ms",
        a_bytes.len() / 1_000_000,
        pushed.elapsed().as_millis()
    );
    let by_digest = |digest: &str| {
        let reference = registry.reference(&repository, "a");
        let (name, _) = reference.rsplit_once(':').unwrap();
        json!({"oci": {"reference": format!("{name}@{digest}"), "pullSecret": {"name": "registry"}}})
    };

    let configmaps: Api<ConfigMap> = fx.ns.api();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hashed", "labels": {"kubewasm.dev/hash": "true"}},
        "data": {"mode": "fast"},
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let name = unique_name("hasher");
    let annotated = |key: &'static str| {
        let configmaps = configmaps.clone();
        async move {
            let cm = configmaps.get("hashed").await?;
            let found = cm
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key(key);
            anyhow::ensure!(found, "no {key} on the ConfigMap yet");
            Ok(())
        }
    };

    // Each step names another annotation in the settings, so the object
    // shows which step's plugin reconciled it.
    let steps = [
        (
            "A (12 MB pull, compile-cache hit)",
            &digest_a,
            "e2e.kubewasm.dev/a1",
        ),
        (
            "B (12 MB pull, compile-cache hit)",
            &digest_b,
            "e2e.kubewasm.dev/b",
        ),
        (
            "A again (blob-cache and compile-cache hits)",
            &digest_a,
            "e2e.kubewasm.dev/a2",
        ),
    ];
    for (what, digest, annotation) in steps {
        let applied = Instant::now();
        fx.apply(&name, by_digest(digest), json!({"annotation": annotation}))
            .await;
        fx.host.eventually(SLOW, || annotated(annotation)).await;
        let took = applied.elapsed();
        let status = fx
            .status_until(&name, "serving the applied digest", |s| {
                s["serving"]["digest"] == digest.as_str()
            })
            .await;
        assert_eq!(status["serving"]["name"], "configmap-hasher");
        println!("{what}: apply to new behaviour in {} ms", took.as_millis());
    }
    let swapped = fx.event_note(&name, "Swapped").await;
    assert!(
        swapped.contains(&digest_b) && swapped.contains(&digest_a),
        "{swapped}"
    );
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.ns.delete().await.unwrap();
}
