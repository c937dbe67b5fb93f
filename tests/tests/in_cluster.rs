//! The host as it runs in a pod: in-cluster configuration (the service host
//! and port in the environment, the ServiceAccount token and CA at the
//! standard path) and only the RBAC `kubewasm rbac` generates for its
//! plugins. The standard path is bind-mounted in a private mount namespace
//! (`unshare`), so nothing on the machine changes.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kubewasm_e2e::host::{Host, component, kubewasm_binary};
use kubewasm_e2e::{TestNamespace, eventually, unique_name};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const MARK: &str = "probe.kubewasm.dev/mark";

/// Mounts `$1` at the ServiceAccount path in a private mount namespace,
/// then runs the rest of the arguments.
const IN_POD: &str = "set -e
mount -t tmpfs kubewasm-e2e /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind \"$1\" /run/secrets/kubernetes.io/serviceaccount
shift
exec \"$@\"";

async fn create_configmap(ns: &TestNamespace, name: &str) {
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"probe.kubewasm.dev/behave": "mark"}},
    }))
    .unwrap();
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

/// The ClusterRole and binding `kubewasm rbac` prints for `plugins`.
fn generated_rbac(plugins: &Path, name: &str, ns: &str) -> (ClusterRole, ClusterRoleBinding) {
    let output = Command::new(kubewasm_binary())
        .args(["rbac", "--plugins"])
        .arg(plugins)
        .args([
            "--name",
            name,
            "--service-account",
            "kubewasm",
            "--namespace",
            ns,
        ])
        .output()
        .expect("kubewasm rbac runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut docs = text.split("\n---\n");
    let role = serde_saphyr::from_str(docs.next().unwrap()).unwrap();
    let binding = serde_saphyr::from_str(docs.next().unwrap()).unwrap();
    (role, binding)
}

/// The compile cache `kubewasm` uses by default for this user.
fn machine_compile_cache() -> std::path::PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set")
        .join("kubewasm/compiled")
}

/// The host in a pod of ServiceAccount `kubewasm`, with the RBAC `kubewasm
/// rbac` generates for `plugins` (after `edit`), bound as ClusterRole
/// `.role_name`.
struct InPod {
    host: Host,
    role: ClusterRole,
    role_name: String,
    /// The mounted ServiceAccount files and the host's home, kept while it runs.
    _files: [tempfile::TempDir; 2],
}

impl InPod {
    async fn start(
        ns: &TestNamespace,
        plugins: &[&str],
        settings: Option<(&str, serde_json::Value)>,
        edit: impl FnOnce(&mut ClusterRole),
    ) -> InPod {
        let client = ns.client().clone();
        let accounts: Api<ServiceAccount> = ns.api();
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": "kubewasm"}})).unwrap();
        accounts
            .create(&PostParams::default(), &account)
            .await
            .unwrap();

        let dir = tempfile::tempdir().unwrap();
        for plugin in plugins {
            let wasm = dir.path().join(format!("{plugin}.wasm"));
            std::fs::copy(component(plugin), wasm).unwrap();
        }
        if let Some((plugin, settings)) = settings {
            let file = dir.path().join(format!("{plugin}.settings.json"));
            std::fs::write(file, settings.to_string()).unwrap();
        }
        let role_name = unique_name("kubewasm-e2e");
        let (mut role, binding) = generated_rbac(dir.path(), &role_name, ns.name());
        edit(&mut role);
        let apply = PatchParams::apply("kubewasm-e2e").force();
        let roles: Api<ClusterRole> = Api::all(client.clone());
        roles
            .patch(&role_name, &apply, &Patch::Apply(&role))
            .await
            .unwrap();
        Api::<ClusterRoleBinding>::all(client.clone())
            .patch(&role_name, &apply, &Patch::Apply(&binding))
            .await
            .unwrap();

        // What kubelet mounts into a pod: token, CA and namespace.
        let request: TokenRequest =
            serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
        let token = accounts
            .create_token_request("kubewasm", &PostParams::default(), &request)
            .await
            .unwrap()
            .status
            .and_then(|s| s.token)
            .expect("TokenRequest returned a token");
        let kubeconfig = Kubeconfig::read_from(ns.control_plane().kubeconfig_path()).unwrap();
        let cluster = kubeconfig.clusters[0].cluster.clone().unwrap();
        let ca = base64::engine::general_purpose::STANDARD
            .decode(cluster.certificate_authority_data.unwrap())
            .unwrap();
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(secrets.path().join("token"), token).unwrap();
        std::fs::write(secrets.path().join("ca.crt"), ca).unwrap();
        std::fs::write(secrets.path().join("namespace"), ns.name()).unwrap();
        let server: http::Uri = cluster.server.unwrap().parse().unwrap();
        let home = tempfile::tempdir().unwrap();

        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private"]);
        // Without root, a user namespace grants the mounts.
        let uid = Command::new("id").arg("-u").output().unwrap().stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            command.arg("--map-root-user");
        }
        command
            .args(["sh", "-c", IN_POD, "in-pod"])
            .arg(secrets.path())
            .arg(kubewasm_binary())
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            // The compiled-plugin cache of the machine, not of the private
            // home: the JavaScript plugin takes half a minute to compile.
            .env("KUBEWASM_COMPILE_CACHE", machine_compile_cache())
            .env("KUBERNETES_SERVICE_HOST", server.host().unwrap())
            .env(
                "KUBERNETES_SERVICE_PORT",
                server.port_u16().unwrap().to_string(),
            );
        let host = Host::spawn_command(command, dir, &["--namespace", ns.name()]);
        InPod {
            host,
            role,
            role_name,
            _files: [secrets, home],
        }
    }
}

#[tokio::test]
async fn in_a_pod_with_generated_rbac_the_host_reconciles_and_names_missing_permissions() {
    let ns = TestNamespace::create("in-cluster").await.unwrap();
    let InPod {
        host,
        mut role,
        role_name,
        _files,
    } = InPod::start(&ns, &["probe"], None, |_| {}).await;
    let apply = PatchParams::apply("kubewasm-e2e").force();
    let roles: Api<ClusterRole> = Api::all(ns.client().clone());

    create_configmap(&ns, "allowed").await;
    let configmaps: Api<ConfigMap> = ns.api();
    eventually(WAIT, || async {
        let cm = configmaps.get("allowed").await?;
        anyhow::ensure!(
            cm.metadata
                .annotations
                .unwrap_or_default()
                .contains_key(MARK)
        );
        Ok(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));
    let log = host.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the generated RBAC was not enough:\n{log}"
    );

    // Take `patch` on ConfigMaps away: the plugin's write is refused by the
    // API server and the error names the missing permission.
    for rule in role.rules.iter_mut().flatten() {
        if rule
            .resources
            .as_ref()
            .is_some_and(|r| r.contains(&"configmaps".to_string()))
        {
            rule.verbs.retain(|v| v != "patch");
        }
    }
    roles
        .patch(&role_name, &apply, &Patch::Apply(&role))
        .await
        .unwrap();
    create_configmap(&ns, "denied").await;
    eventually(WAIT, || async {
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
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));
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

    eventually(WAIT, || async {
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
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));
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
    eventually(WAIT, || async {
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
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", host.log()));
    let log = host.log();
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the generated RBAC was not enough:\n{log}"
    );
}
