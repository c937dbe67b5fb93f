//! The C example plugin (`plugins/c/configmap-size-guard`, built with
//! clang-19 and `kubewasm componentize` by `plugins/build.sh`) in `kubewasm
//! run` against the real control plane: what its user sees is the size
//! annotation on every ConfigMap, and on one over `maxBytes` the `oversize`
//! label and a Warning Event; the label goes once the ConfigMap shrinks.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::{TestNamespace, field_managers};
use serde_json::json;

/// Generous for a busy machine; the 100 KB component compiles in well under a second.
const WAIT: Duration = Duration::from_secs(120);
const BYTES: &str = "size-guard.kubewasm.dev/bytes";
const OVERSIZE: &str = "size-guard.kubewasm.dev/oversize";

fn annotation(cm: &ConfigMap) -> Option<String> {
    cm.metadata.annotations.as_ref()?.get(BYTES).cloned()
}

fn oversize(cm: &ConfigMap) -> Option<String> {
    cm.metadata.labels.as_ref()?.get(OVERSIZE).cloned()
}

#[tokio::test]
async fn c_size_guard_annotates_and_flags_oversize_configmaps() {
    let ns = TestNamespace::create("loop-c").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    for (name, value) in [("small", "blue"), ("big", "0123456789abcdefXYZ")] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name},
            "data": {"k": value}
        }))
        .unwrap();
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    let settings = json!({"maxBytes": 16});
    let host = Host::start(
        &ns,
        &[("configmap-size-guard", Some(settings))],
        &["--namespace", ns.name()],
    );

    let big = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("big").await?;
            anyhow::ensure!(oversize(&cm).is_some(), "no oversize label yet");
            Ok(cm)
        })
        .await;
    assert_eq!(annotation(&big).as_deref(), Some("19"));
    assert_eq!(oversize(&big).as_deref(), Some("true"));
    let managers = field_managers(&big.metadata);
    assert!(
        managers.contains(&"kubewasm/configmap-size-guard".to_string()),
        "{managers:?}"
    );
    let warning = host
        .eventually(WAIT, || async {
            let found = ns.events("big", "TooLarge").await?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no TooLarge Event yet"))
        })
        .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.action.as_deref(), Some("Measure"));
    assert_eq!(
        warning.note.as_deref(),
        Some("ConfigMap holds 19 bytes, over the limit of 16")
    );

    let small = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("small").await?;
            annotation(&cm).ok_or_else(|| anyhow::anyhow!("no annotation yet"))
        })
        .await;
    assert_eq!(small, "4");
    let small = configmaps.get("small").await.unwrap();
    assert_eq!(oversize(&small), None);

    // The user shrinks the big one: the size follows and the label goes
    // (the plugin stops applying it, so server-side apply removes it).
    configmaps
        .patch(
            "big",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "small"}})),
        )
        .await
        .unwrap();
    let shrunk = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("big").await?;
            anyhow::ensure!(oversize(&cm).is_none(), "oversize label still there");
            Ok(cm)
        })
        .await;
    assert_eq!(annotation(&shrunk).as_deref(), Some("5"));
}
