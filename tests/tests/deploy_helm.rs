//! `deploy/helm/kubewasm`, the Helm chart kept in step with the kustomize
//! base: with its default values `helm template` renders the objects of
//! `kubectl kustomize deploy/` (once Helm's own labels and annotation are
//! dropped), and they apply server-side; other values land where they
//! should and bad ones are refused with a reason; and `helm install`,
//! `upgrade` and `uninstall` against the test control plane do what
//! `deploy/README.md` ("Helm") says.
//!
//! Helm is `$KUBEWASM_HELM` (`tests/run.sh` sets it) or the one
//! `tests/tools/helm.sh` builds. Like the other `deploy_*.rs` files, these
//! tests use fixed names and are idempotent on a shared cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kubewasm_e2e::deploy::{
    CHART, Key, NAMESPACE, apply_base, by_key, deploy_dir, differences, helm, helm_offline,
    kubectl, kubectl_offline, read, yaml_documents, yaml_file,
};
use kubewasm_e2e::host::repo;
use kubewasm_e2e::{ControlPlane, eventually};
use serde_json::{Value, json};

/// The labels Helm's charts add and the kustomize base does not have.
const HELM_LABELS: &[&str] = &[
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
];

/// Objects Helm keeps on `helm uninstall`.
const RESOURCE_POLICY: &str = "helm.sh/resource-policy";

/// The tests that write to the cluster both touch its kubewasm CRDs (one
/// applies them, the other lets Helm adopt them): one at a time.
static CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `kubectl kustomize deploy/`, by key.
fn render_base() -> anyhow::Result<BTreeMap<Key, Value>> {
    let text = kubectl_offline(&["kustomize", "deploy/"])?;
    by_key(
        yaml_documents(&text, "kubectl kustomize deploy/")?,
        "the base",
    )
}

/// `helm template RELEASE deploy/helm/kubewasm --namespace NAMESPACE ARGS`.
fn render_chart(release: &str, namespace: &str, args: &[&str]) -> anyhow::Result<Vec<Value>> {
    let mut command = vec!["template", release, CHART, "--namespace", namespace];
    command.extend_from_slice(args);
    let text = helm_offline(&command)?;
    yaml_documents(&text, "helm template")
}

/// The object without what only Helm adds: its labels (wherever a label
/// map is, selectors included) and the resource policy; label and
/// annotation maps left empty are removed.
fn without_helm_metadata(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if HELM_LABELS.contains(&k.as_str()) || k == RESOURCE_POLICY {
                    continue;
                }
                let v = without_helm_metadata(v);
                let emptied = (k == "labels" || k == "annotations")
                    && v.as_object().is_some_and(|m| m.is_empty());
                if !emptied {
                    out.insert(k.clone(), v);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(without_helm_metadata).collect()),
        other => other.clone(),
    }
}

#[test]
fn default_values_render_the_kustomize_base() -> anyhow::Result<()> {
    let base = render_base()?;
    let chart = by_key(render_chart("kubewasm", NAMESPACE, &[])?, "helm template")?;

    let base_keys: BTreeSet<&Key> = base.keys().collect();
    let chart_keys: BTreeSet<&Key> = chart.keys().collect();
    ensure!(
        base_keys == chart_keys,
        "the chart and the base render different objects:\n  only in the base: {:?}\n  only in \
         the chart: {:?}",
        base_keys.difference(&chart_keys).collect::<Vec<_>>(),
        chart_keys.difference(&base_keys).collect::<Vec<_>>()
    );

    let mut report = Vec::new();
    for (key, base_object) in &base {
        let chart_object = &chart[key];
        let mut diffs = Vec::new();
        differences(
            ("the base", "the chart"),
            "",
            base_object,
            &without_helm_metadata(chart_object),
            &mut diffs,
        );
        if !diffs.is_empty() {
            let hint = if key.1 == "CustomResourceDefinition" {
                " (run deploy/helm/sync-crds.sh after regenerating deploy/crds/)"
            } else {
                ""
            };
            report.push(format!("{key:?}{hint}:\n    {}", diffs.join("\n    ")));
        }

        // What Helm adds: its standard labels on every object, and the
        // resource policy on the CRDs and the namespace only.
        let labels = &chart_object["metadata"]["labels"];
        for (label, value) in [
            ("app.kubernetes.io/name", "kubewasm"),
            ("app.kubernetes.io/instance", "kubewasm"),
            ("app.kubernetes.io/managed-by", "Helm"),
            ("app.kubernetes.io/version", env!("CARGO_PKG_VERSION")),
            ("helm.sh/chart", "kubewasm-0.1.0"),
        ] {
            assert_eq!(labels[label], value, "label {label} of {key:?}");
        }
        let kept = matches!(key.1.as_str(), "CustomResourceDefinition" | "Namespace");
        let policy = &chart_object["metadata"]["annotations"][RESOURCE_POLICY];
        assert_eq!(
            policy,
            &if kept { json!("keep") } else { Value::Null },
            "{RESOURCE_POLICY} of {key:?}"
        );
    }
    ensure!(
        report.is_empty(),
        "the chart's objects differ from the base's (helm template vs kubectl kustomize):\n{}",
        report.join("\n")
    );
    Ok(())
}

/// The chart's own metadata: its appVersion is the workspace's version (the
/// default image tag), and `helm lint --strict` finds nothing.
#[test]
fn chart_follows_the_workspace_and_lints_clean() -> anyhow::Result<()> {
    let chart = yaml_file(&deploy_dir().join("helm/kubewasm/Chart.yaml"))?;
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "kubewasm");
    assert_eq!(chart["version"], "0.1.0");
    let manifest = read(&repo().join("Cargo.toml"))?;
    let workspace_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version")?.trim().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .context("no version in Cargo.toml")?;
    assert_eq!(
        chart["appVersion"], workspace_version,
        "Chart.yaml's appVersion is not the workspace version in Cargo.toml"
    );

    let lint = helm_offline(&["lint", "--strict", CHART])?;
    assert!(
        lint.contains("1 chart(s) linted, 0 chart(s) failed"),
        "{lint}"
    );
    Ok(())
}

/// The host's arguments: the base's, then `more`.
fn host_args(leader_election: bool, plugin_resources: bool, more: &[&str]) -> Value {
    let mut args = vec!["run", "--plugins=/etc/kubewasm/plugins"];
    if plugin_resources {
        args.push("--plugin-resources");
    }
    args.push("--admin-addr=0.0.0.0:9090");
    if leader_election {
        args.extend([
            "--leader-elect",
            "--leader-elect-namespace=$(POD_NAMESPACE)",
        ]);
    }
    args.extend(more);
    json!(args)
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> anyhow::Result<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name} rendered"))
}

/// Asserts that no object of these kinds was rendered.
fn assert_no_kind(objects: &[Value], absent: &[&str]) {
    let rendered: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    for kind in absent {
        assert!(!rendered.contains(kind), "a {kind} rendered: {rendered:?}");
    }
}

#[test]
fn other_values_land_where_they_belong() -> anyhow::Result<()> {
    // Another release name and namespace, a pinned image, three replicas,
    // more flags, plugins from an image, and no namespace or CRDs.
    let objects = render_chart(
        "team",
        "platform",
        &[
            "--set",
            "image.repository=registry.example.com/kubewasm,image.tag=0.2.0,replicas=3",
            "--set",
            "logFormat=text,resources.limits.memory=1Gi",
            "--set",
            "plugins.image.reference=registry.example.com/plugins:1.0.0",
            "--set",
            "namespace.create=false,crds.install=false",
            "--set-json",
            r#"extraArgs=["--concurrency=16","--log=kubewasm=debug"]"#,
            "--set-json",
            r#"nodeSelector={"kubernetes.io/os":"linux"}"#,
            "--set-json",
            r#"tolerations=[{"key":"system","operator":"Exists","effect":"NoSchedule"}]"#,
        ],
    )?;
    for object in &objects {
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            assert_eq!(ns, "platform", "{}", object["metadata"]);
        }
    }
    assert_no_kind(
        &objects,
        &["Namespace", "CustomResourceDefinition", "ConfigMap"],
    );

    // The release name is not "kubewasm", so names are <release>-kubewasm.
    let deployment = find(&objects, "Deployment", "team-kubewasm")?;
    assert_eq!(deployment["spec"]["replicas"], 3);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "team-kubewasm");
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], "system");
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/kubewasm:0.2.0");
    assert_eq!(
        container["args"],
        host_args(
            true,
            true,
            &[
                "--log-format=text",
                "--concurrency=16",
                "--log=kubewasm=debug"
            ]
        )
    );
    assert_eq!(
        container["resources"],
        json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}})
    );
    let plugins = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "plugins"))
        .context("no plugins volume")?;
    assert_eq!(
        plugins,
        &json!({"name": "plugins", "image": {
            "reference": "registry.example.com/plugins:1.0.0", "pullPolicy": "IfNotPresent"}})
    );

    let binding = find(&objects, "ClusterRoleBinding", "team-kubewasm-host")?;
    assert_eq!(binding["roleRef"]["name"], "team-kubewasm-host");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "team-kubewasm", "namespace": "platform"}])
    );
    find(&objects, "ClusterRole", "team-kubewasm-host")?;
    find(&objects, "Role", "team-kubewasm-leader-election")?;
    find(&objects, "Service", "team-kubewasm-admin")?;
    let pdb = find(&objects, "PodDisruptionBudget", "team-kubewasm")?;
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // One replica without leader election or plugin resources: no Lease
    // or ConfigMap/Secret permissions, no election flags, and no
    // PodDisruptionBudget to block drains. An image digest wins over the tag.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let objects = render_chart(
        "kubewasm",
        NAMESPACE,
        &[
            "--set",
            "replicas=1,leaderElection.enabled=false,pluginResources.enabled=false",
            "--set",
            &format!("image.digest={digest}"),
        ],
    )?;
    assert_no_kind(&objects, &["Role", "RoleBinding", "PodDisruptionBudget"]);
    let container =
        &find(&objects, "Deployment", "kubewasm")?["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/kubewasm/kubewasm@{digest}")
    );
    assert_eq!(
        container["args"],
        host_args(false, false, &["--log-format=json"])
    );
    let host_role = find(&objects, "ClusterRole", "kubewasm-host")?;
    assert!(
        !host_role["rules"].to_string().contains("clusterplugins"),
        "{host_role}"
    );
    Ok(())
}

#[test]
fn bad_values_are_refused_with_a_reason() -> anyhow::Result<()> {
    for (set, reason) in [
        (
            "replicas=2,leaderElection.enabled=false",
            "replicas > 1 needs leaderElection.enabled",
        ),
        ("logFormat=yaml", "logFormat"),
        // A typo is an error rather than silently ignored.
        ("replica=3", "replica"),
        ("extraArgs={concurrency=16}", "extraArgs"),
    ] {
        let error = render_chart("kubewasm", NAMESPACE, &["--set", set])
            .err()
            .with_context(|| format!("--set {set} rendered"))?;
        let message = format!("{error:#}");
        assert!(
            message.contains(reason),
            "--set {set}: the error does not name {reason:?}:\n{message}"
        );
    }
    Ok(())
}

/// Documents of `objects` as one multi-document YAML stream (JSON is YAML).
fn stream(objects: &[&Value]) -> Vec<u8> {
    objects
        .iter()
        .map(|o| format!("---\n{o}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The chart's rendering applies server-side over the kustomize base (as
/// when a cluster installed with kustomize moves to Helm): the CRDs for
/// real, the rest as a server-side dry run, so the base's objects, which the
/// other tests check, stay as they are.
#[tokio::test]
async fn rendering_applies_server_side() -> anyhow::Result<()> {
    let _cluster = CLUSTER.lock().await;
    apply_base().await?;
    let objects = render_chart("kubewasm", NAMESPACE, &[])?;
    let (crds, rest): (Vec<&Value>, Vec<&Value>) = objects
        .iter()
        .partition(|o| o["kind"] == "CustomResourceDefinition");
    ensure!(crds.len() == 2, "expected two CRDs, got {}", crds.len());

    // kubectl's own field manager, as for the base: the chart's objects in
    // place of the base's. The CRDs are the cluster's: the release of the
    // test below adopts them and labels them with its own instance; these
    // take them back.
    let applied = kubectl(
        ["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(stream(&crds)),
    )
    .await?;
    assert_eq!(
        applied.matches("serverside-applied").count(),
        2,
        "{applied}"
    );
    let dry_run = kubectl(
        ["apply", "--server-side", "--dry-run=server", "-f", "-"],
        Some(stream(&rest)),
    )
    .await?;
    assert_eq!(
        dry_run
            .matches("serverside-applied (server dry run)")
            .count(),
        rest.len(),
        "{dry_run}"
    );

    let client = ControlPlane::shared().await?.client().await?;
    for crd in crds {
        let name = crd["metadata"]["name"]
            .as_str()
            .context("CRD without name")?;
        let stored = Api::<CustomResourceDefinition>::all(client.clone())
            .get(name)
            .await?;
        let annotations = stored.metadata.annotations.unwrap_or_default();
        assert_eq!(
            annotations.get(RESOURCE_POLICY).map(String::as_str),
            Some("keep")
        );
    }
    Ok(())
}

/// `helm install`, `upgrade` and `uninstall` as deploy/README.md shows them,
/// into a namespace of their own (the release's names are then
/// `kubewasm-helm-e2e*`, clear of the base's; the CRDs are the cluster's).
#[tokio::test]
async fn install_upgrade_and_uninstall_with_helm() -> anyhow::Result<()> {
    const RELEASE: &str = "kubewasm-helm-e2e";
    let _cluster = CLUSTER.lock().await;
    let ns = RELEASE;
    let client = ControlPlane::shared().await?.client().await?;
    // A run that failed half-way left its release behind.
    helm([
        "uninstall",
        RELEASE,
        "--namespace",
        ns,
        "--ignore-not-found",
    ])
    .await?;

    // Helm stores the release in its namespace, so the namespace exists
    // first; the chart then takes it over and sets its Pod Security labels.
    let namespaces = Api::<Namespace>::all(client.clone());
    if namespaces.get_opt(ns).await?.is_none() {
        let mut namespace = Namespace::default();
        namespace.metadata.name = Some(ns.into());
        namespaces
            .create(&PostParams::default(), &namespace)
            .await?;
    }
    let installed = helm([
        "install",
        RELEASE,
        CHART,
        "--namespace",
        ns,
        "--take-ownership",
    ])
    .await?;
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    // The release notes say how to load plugins into this release.
    assert!(
        installed.contains(&format!(
            "kubectl create configmap {RELEASE}-plugins --namespace {ns}"
        )),
        "{installed}"
    );

    let labels = namespaces
        .get(ns)
        .await?
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("Helm")
    );
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns);
    let deployment = deployments.get(RELEASE).await?;
    assert_eq!(deployment.spec.replicas, Some(2));
    let binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get(&format!("{RELEASE}-host"))
        .await?;
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects[0].namespace.as_deref(), Some(ns));

    // Plugins go into the ConfigMap under their own field manager, as for
    // the base; an upgrade leaves them alone.
    let plugins = format!("{RELEASE}-plugins");
    let configmap = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": plugins, "namespace": ns},
        "data": {"label-propagator.settings.json": "{\"labels\": [\"team\"]}"},
    });
    kubectl(
        [
            "apply",
            "--server-side",
            "--field-manager=kubewasm-plugins",
            "-f",
            "-",
        ],
        Some(configmap.to_string().into_bytes()),
    )
    .await?;
    let upgraded = helm([
        "upgrade",
        RELEASE,
        CHART,
        "--namespace",
        ns,
        "--set",
        "replicas=3,image.tag=0.2.0",
    ])
    .await?;
    assert!(upgraded.contains("REVISION: 2"), "{upgraded}");
    let spec = deployments.get(RELEASE).await?.spec;
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.context("no pod spec")?;
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("ghcr.io/kubewasm/kubewasm:0.2.0")
    );
    let data = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(&plugins)
        .await?
        .data
        .unwrap_or_default();
    assert!(
        data.contains_key("label-propagator.settings.json"),
        "helm upgrade dropped the plugin files: {data:?}"
    );

    // Uninstalling removes the host but keeps the namespace and the CRDs
    // (every ClusterPlugin and Plugin would go with them).
    helm(["uninstall", RELEASE, "--namespace", ns]).await?;
    let roles = Api::<ClusterRole>::all(client.clone());
    eventually(Duration::from_secs(30), || async {
        ensure!(
            deployments.get_opt(RELEASE).await?.is_none(),
            "Deployment still there"
        );
        ensure!(
            roles.get_opt(&format!("{RELEASE}-host")).await?.is_none(),
            "ClusterRole still there"
        );
        Ok(())
    })
    .await?;
    let namespace = namespaces.get(ns).await?;
    assert!(
        namespace.metadata.deletion_timestamp.is_none(),
        "helm uninstall deleted the namespace"
    );
    let crds = Api::<CustomResourceDefinition>::all(client);
    for crd in ["clusterplugins.kubewasm.dev", "plugins.kubewasm.dev"] {
        let stored = crds.get(crd).await?;
        assert!(
            stored.metadata.deletion_timestamp.is_none(),
            "helm uninstall deleted the CRD {crd}"
        );
    }
    Ok(())
}
