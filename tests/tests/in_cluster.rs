//! The host as it runs in a pod: in-cluster configuration (the service host
//! and port in the environment, the ServiceAccount token and CA at the
//! standard path) and only the RBAC `kubewasm rbac` generates for its
//! plugins. The standard path is bind-mounted in a private mount namespace
//! (`unshare`), so nothing on the machine changes.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, PostParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{self, Host};
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::service_account::{HostAccount, PodFiles};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

async fn create_configmap(ns: &TestNamespace, name: &str) {
    probe::create_configmap(&ns.api(), name, "mark", &[]).await;
}

/// The host in a pod of ServiceAccount `kubewasm`, with the RBAC `kubewasm
/// rbac` generates for `plugins` (after `edit`).
struct InPod {
    host: Host,
    account: HostAccount,
    /// The mounted ServiceAccount files and the host's home, kept while it runs.
    _files: PodFiles,
}

impl InPod {
    async fn start(
        ns: &TestNamespace,
        plugins: &[&str],
        settings: Option<(&str, serde_json::Value)>,
        edit: impl FnOnce(&mut ClusterRole),
    ) -> InPod {
        let plugins: Vec<_> = plugins
            .iter()
            .map(|plugin| {
                let settings = settings
                    .as_ref()
                    .filter(|(name, _)| name == plugin)
                    .map(|(_, settings)| settings.clone());
                (*plugin, settings)
            })
            .collect();
        let dir = host::example_plugins(&plugins);
        let account = HostAccount::create_with(ns, dir.path(), edit)
            .await
            .unwrap();
        let (command, files) = account.in_pod().unwrap();
        let host = Host::spawn_command(command, dir, &["--namespace", ns.name()]);
        InPod {
            host,
            account,
            _files: files,
        }
    }
}

#[tokio::test]
async fn in_a_pod_with_generated_rbac_the_host_reconciles_and_names_missing_permissions() {
    let ns = TestNamespace::create("in-cluster").await.unwrap();
    let InPod {
        host,
        account,
        _files,
    } = InPod::start(&ns, &["probe"], None, |_| {}).await;

    create_configmap(&ns, "allowed").await;
    let configmaps: Api<ConfigMap> = ns.api();
    host.eventually(WAIT, || async {
        let cm = configmaps.get("allowed").await?;
        anyhow::ensure!(
            cm.metadata
                .annotations
                .unwrap_or_default()
                .contains_key(MARK)
        );
        Ok(())
    })
    .await;
    let log = host.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the generated RBAC was not enough:\n{log}"
    );

    // Take `patch` on ConfigMaps away: the plugin's write is refused by the
    // API server and the error names the missing permission.
    let mut role = account.role().clone();
    for rule in role.rules.iter_mut().flatten() {
        if rule
            .resources
            .as_ref()
            .is_some_and(|r| r.contains(&"configmaps".to_string()))
        {
            rule.verbs.retain(|v| v != "patch");
        }
    }
    account.apply_role(&role).await.unwrap();
    create_configmap(&ns, "denied").await;
    host.eventually(WAIT, || async {
        let log = host.log();
        anyhow::ensure!(
            log.lines().any(
                |l| l.contains("forbidden: missing RBAC to patch configmaps")
                    && l.contains("/denied")
            ),
            "no Forbidden error for the denied write yet"
        );
        Ok(())
    })
    .await;
    let cm = configmaps.get("denied").await.unwrap();
    assert!(
        !cm.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(MARK)
    );
}

#[tokio::test]
async fn a_kind_the_host_may_not_watch_is_skipped_and_reported_and_the_others_run() {
    let ns = TestNamespace::create("in-cluster-watch").await.unwrap();
    let team = format!("team-{}", ns.name());
    ns.label(json!({&team: "blue"})).await.unwrap();
    // label-propagator subscribes to ConfigMaps, Deployments, Services and
    // Namespaces; the host may not list or watch Deployments.
    let InPod { host, _files, .. } = InPod::start(
        &ns,
        &["label-propagator"],
        Some(("label-propagator", json!({"labels": [&team]}))),
        |role| {
            for rule in role.rules.iter_mut().flatten() {
                if rule
                    .resources
                    .as_ref()
                    .is_some_and(|r| r.contains(&"deployments".to_string()))
                {
                    rule.verbs.retain(|v| v != "list" && v != "watch");
                }
            }
        },
    )
    .await;
    let configmaps: Api<ConfigMap> = ns.api();
    configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "still-labelled"}})).unwrap(),
        )
        .await
        .unwrap();

    host.eventually(WAIT, || async {
        let cm = configmaps.get("still-labelled").await?;
        anyhow::ensure!(
            cm.metadata.labels.unwrap_or_default().contains_key(&team),
            "the ConfigMap is not labelled yet"
        );
        let log = host.log();
        anyhow::ensure!(
            log.lines()
                .any(|l| l.contains("missing RBAC to list/watch this kind")
                    && l.contains("kind=Deployment")
                    && l.contains("group=apps")),
            "the forbidden kind is not reported yet"
        );
        Ok(())
    })
    .await;
    // Reported once, not on every retry of the watch.
    assert_eq!(
        host.count("missing RBAC to list/watch"),
        1,
        "{}",
        host.log()
    );
    // A kind it cannot watch does not keep the host from being ready.
    let addr = host.admin_addr().expect("admin address logged");
    let (status, body) = kubewasm_e2e::host::http_get(addr, "/readyz").unwrap();
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_generated_rbac_is_enough_for_every_example_plugin() {
    let ns = TestNamespace::create("in-cluster-examples").await.unwrap();
    let team = format!("team-{}", ns.name());
    ns.label(json!({&team: "blue"})).await.unwrap();
    let websites = ns.websites().await.unwrap();
    let InPod { host, _files, .. } = InPod::start(
        &ns,
        &["label-propagator", "website", "configmap-hasher"],
        Some(("label-propagator", json!({"labels": [&team]}))),
        |_| {},
    )
    .await;

    let configmaps: Api<ConfigMap> = ns.api();
    let hashed: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "hashed", "labels": {"kubewasm.dev/hash": "true"}},
        "data": {"k": "v"}
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &hashed)
        .await
        .unwrap();
    let site: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": "blog"},
        "spec": {"title": "Hello", "content": "Served under least privilege."}
    }))
    .unwrap();
    websites
        .create(&PostParams::default(), &site)
        .await
        .unwrap();

    // Each plugin did its job: labelled, hashed, created a child, set status.
    host.eventually(WAIT, || async {
        let cm = configmaps.get("hashed").await?;
        anyhow::ensure!(
            cm.metadata.labels.unwrap_or_default().contains_key(&team),
            "hashed not labelled"
        );
        anyhow::ensure!(
            cm.metadata
                .annotations
                .unwrap_or_default()
                .contains_key("kubewasm.dev/content-hash"),
            "hashed has no content hash"
        );
        let child = configmaps.get("blog").await?;
        anyhow::ensure!(child.metadata.owner_references.is_some());
        let blog = websites.get("blog").await?;
        let ready = blog.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        anyhow::ensure!(ready, "blog not ready: {}", blog.data["status"]);
        Ok(())
    })
    .await;
    let log = host.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the generated RBAC was not enough:\n{log}"
    );
}
