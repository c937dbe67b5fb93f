//! The Python example plugin (`plugins/python/configmap-validator`, built
//! with componentize-py by `plugins/build.sh`) in `kubewasm run` against the
//! real control plane: what its user sees is an annotation listing the
//! missing keys and a Warning Event on the ConfigMap, both gone (the Event
//! followed by a Normal one) once the keys are added.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::{TestNamespace, field_managers};
use serde_json::json;

/// Generous: the first load compiles an 18 MB component on a busy machine.
const WAIT: Duration = Duration::from_secs(180);
const ANNOTATION: &str = "kubewasm.dev/missing-keys";
const CONTROLLER: &str = "kubewasm.dev/configmap-validator";

fn missing_keys(cm: &ConfigMap) -> Option<String> {
    cm.metadata.annotations.as_ref()?.get(ANNOTATION).cloned()
}

/// The validator's Events about `name` with `reason`.
async fn events(ns: &TestNamespace, name: &str, reason: &str) -> anyhow::Result<Vec<Event>> {
    let found = ns.events(name, reason).await?;
    Ok(found
        .into_iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(CONTROLLER))
        .collect())
}

#[tokio::test]
async fn python_validator_annotates_and_reports_missing_keys() {
    let ns = TestNamespace::create("loop-py").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    for (name, labels) in [
        ("app-config", json!({"kubewasm.dev/validate": "true"})),
        ("unselected", json!({})),
    ] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "data": {"color": "blue"}
        }))
        .unwrap();
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    let settings = json!({"requiredKeys": ["team", "owner"]});
    let host = Host::start(
        &ns,
        &[("configmap-validator", Some(settings))],
        &["--namespace", ns.name()],
    );

    let listed = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("app-config").await?;
            missing_keys(&cm).ok_or_else(|| anyhow::anyhow!("no annotation yet"))
        })
        .await;
    assert_eq!(listed, "owner,team");
    let cm = configmaps.get("app-config").await.unwrap();
    let managers = field_managers(&cm.metadata);
    assert!(
        managers.contains(&"kubewasm/configmap-validator".to_string()),
        "{managers:?}"
    );
    let warning = host
        .eventually(WAIT, || async {
            let found = events(&ns, "app-config", "MissingKeys").await?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no MissingKeys Event yet"))
        })
        .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.action.as_deref(), Some("Validate"));
    assert_eq!(
        warning.note.as_deref(),
        Some(
            format!(
                "ConfigMap {}/app-config is missing required keys: owner, team",
                ns.name()
            )
            .as_str()
        )
    );

    // The user adds the keys: the annotation goes, a Normal Event says so.
    configmaps
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"owner": "shop", "team": "payments"}})),
        )
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        let cm = configmaps.get("app-config").await?;
        anyhow::ensure!(missing_keys(&cm).is_none(), "annotation still there");
        Ok(())
    })
    .await;
    let valid = host
        .eventually(WAIT, || async {
            let found = events(&ns, "app-config", "Valid").await?;
            found
                .into_iter()
                .next()
                .ok_or_else(|| anyhow::anyhow!("no Valid Event yet"))
        })
        .await;
    assert_eq!(valid.type_.as_deref(), Some("Normal"));

    // A ConfigMap without the label is not the validator's business.
    let unselected = configmaps.get("unselected").await.unwrap();
    assert_eq!(missing_keys(&unselected), None);
    assert!(
        events(&ns, "unselected", "MissingKeys")
            .await
            .unwrap()
            .is_empty()
    );
}
