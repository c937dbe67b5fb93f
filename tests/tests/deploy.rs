//! `deploy/` as a cluster operator uses it: the base applies server-side
//! (again and again, as re-runs and upgrades do) and creates the host's
//! objects with the probes, limits and least-privilege RBAC it promises; the
//! plugin ConfigMap filled the way `deploy/README.md` says survives
//! re-applying the base; the monitoring objects agree with each other and
//! name only metrics the host exports; promtool accepts the rules and their
//! unit tests; the Dockerfile builds the workspace's Rust version.
//!
//! The base uses fixed names (namespace `kubewasm-system`, ClusterRole
//! `kubewasm-host`), so every test here is idempotent and tolerates running
//! next to the others and again on the same cluster. No kubelet runs, so the
//! Deployment never gets Pods; the tests check what the API server stores.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, Namespace, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};
use kubewasm_e2e::{ControlPlane, eventually};
use serde_json::Value;

/// The namespace the base installs into.
const NAMESPACE: &str = "kubewasm-system";
/// The host's ServiceAccount, as RBAC names it.
const HOST_USER: &str = "system:serviceaccount:kubewasm-system:kubewasm";
/// The field manager `deploy/README.md` fills the plugin ConfigMap with.
const PLUGINS_FIELD_MANAGER: &str = "kubewasm-plugins";

/// The metrics the dashboard shows and the alerts may read (host/src/metrics.rs
/// exports a few more, not yet on the dashboard), and whether each is a
/// histogram (whose series are `_bucket`, `_sum` and `_count`).
const METRICS: &[(&str, bool)] = &[
    ("kubewasm_events_received_total", false),
    ("kubewasm_queue_depth", false),
    ("kubewasm_queue_latency_seconds", true),
    ("kubewasm_reconcile_duration_seconds", true),
    ("kubewasm_reconciles_total", false),
    ("kubewasm_intents_total", false),
    ("kubewasm_watch_restarts_total", false),
    ("kubewasm_relists_total", false),
    ("kubewasm_objects_undecodable_total", false),
    ("kubewasm_cached_objects", false),
    ("kubewasm_plugin_loads_total", false),
    ("kubewasm_plugin_load_failing", false),
    ("kubewasm_plugin_info", false),
    ("kubewasm_leader", false),
];

/// The values of `kubewasm_reconciles_total{result}`.
const RECONCILE_RESULTS: &[&str] = &[
    "ok",
    "error",
    "trap",
    "timeout",
    "memory_limit",
    "result_too_large",
    "malformed_intent",
    "refused",
    "apply_failed",
    "conflict",
    "loop",
];

/// The alerts `deploy/monitoring/rules.yaml` promises.
const ALERTS: &[&str] = &[
    "KubewasmReconcileErrors",
    "KubewasmPluginTraps",
    "KubewasmObjectsUndecodable",
    "KubewasmPluginReloadFailing",
    "KubewasmNoLeader",
    "KubewasmQueueGrowing",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

/// Every document of a (multi-document) YAML text, as JSON values.
fn yaml_documents(text: &str, origin: &str) -> anyhow::Result<Vec<Value>> {
    // Empty documents are skipped.
    serde_saphyr::from_multiple(text).with_context(|| format!("{origin}: invalid YAML"))
}

fn yaml_file(path: &Path) -> anyhow::Result<Value> {
    serde_saphyr::from_str(&read(path)?)
        .with_context(|| format!("{}: invalid YAML", path.display()))
}

// ---------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------

/// The `kubectl` the tests run: `$KUBECTL` if set; else the one
/// `tests/control-plane/cluster.sh build` built next to the control plane
/// (the same Kubernetes version as the API server, and kustomize with it);
/// else `kubectl` from `PATH`.
fn kubectl_path() -> anyhow::Result<PathBuf> {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KUBECTL
        .get_or_init(|| find_kubectl().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_kubectl() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let script = ControlPlane::cluster_script();
    let bin_dir = Command::new("bash")
        .arg(&script)
        .arg("bin-dir")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {} bin-dir", script.display()))?;
    if bin_dir.status.success() {
        let built = PathBuf::from(String::from_utf8_lossy(&bin_dir.stdout).trim()).join("kubectl");
        if built.is_file() {
            return Ok(built);
        }
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file());
    on_path.with_context(|| {
        format!(
            "no kubectl: set KUBECTL, run `{} build` (it builds one next to the control \
             plane), or put kubectl on PATH",
            script.display()
        )
    })
}

/// Runs kubectl against the test cluster (`KUBECONFIG` set to the control
/// plane's) with `stdin` as its input, in the repository root; returns its
/// standard output, or an error naming the command and quoting its output.
async fn kubectl<I, S>(args: I, stdin: Option<Vec<u8>>) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let kubeconfig = ControlPlane::shared()
        .await?
        .kubeconfig_path()
        .to_path_buf();
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    tokio::task::spawn_blocking(move || run_kubectl(&args, Some(&kubeconfig), stdin))
        .await
        .context("the kubectl task failed")?
}

/// Runs kubectl without a cluster (e.g. `kubectl kustomize`).
fn kubectl_offline(args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<_> = args.iter().map(Into::into).collect();
    run_kubectl(&args, None, None)
}

fn run_kubectl(
    args: &[std::ffi::OsString],
    kubeconfig: Option<&Path>,
    stdin: Option<Vec<u8>>,
) -> anyhow::Result<String> {
    use std::io::Write;

    let path = kubectl_path()?;
    let shown = format!(
        "{} {}",
        path.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut command = Command::new(&path);
    command
        .args(args)
        .current_dir(repo_root())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kubeconfig {
        Some(kubeconfig) => command.env("KUBECONFIG", kubeconfig),
        None => command.env_remove("KUBECONFIG"),
    };
    let mut child = command
        .spawn()
        .with_context(|| format!("failed to start `{shown}`"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(&input)
            .with_context(|| format!("failed to write the input of `{shown}`"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to run `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// `kubectl apply --server-side -k deploy/`, exactly as README.md says.
async fn apply_base() -> anyhow::Result<String> {
    kubectl(["apply", "--server-side", "-k", "deploy/"], None).await
}

// ---------------------------------------------------------------------------
// The base in the cluster
// ---------------------------------------------------------------------------

/// RBAC rules as a set of (API group, resource, verb), so the order and
/// grouping of rules does not matter.
fn rule_set(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut set = BTreeSet::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    set.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    set
}

fn expected_rules(entries: &[(&str, &str, &[&str])]) -> BTreeSet<(String, String, String)> {
    entries
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

fn env_of<'a>(container: &'a Container, name: &str) -> anyhow::Result<&'a EnvVar> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .with_context(|| format!("container {} has no env {name}", container.name))
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn check_pod_spec(pod: &PodSpec) -> anyhow::Result<()> {
    assert_eq!(pod.service_account_name.as_deref(), Some("kubewasm"));
    assert_eq!(pod.termination_grace_period_seconds, Some(30));
    let pod_security = pod
        .security_context
        .as_ref()
        .context("no pod securityContext")?;
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    assert_eq!(
        pod_security
            .seccomp_profile
            .as_ref()
            .map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    let anti_affinity = pod
        .affinity
        .as_ref()
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .context("no podAntiAffinity")?;
    let preferred = anti_affinity
        .preferred_during_scheduling_ignored_during_execution
        .as_deref()
        .unwrap_or_default();
    assert!(
        preferred
            .iter()
            .any(|t| t.pod_affinity_term.topology_key == "kubernetes.io/hostname"),
        "no preferred anti-affinity across nodes: {anti_affinity:?}"
    );
    assert!(
        anti_affinity
            .required_during_scheduling_ignored_during_execution
            .is_none(),
        "anti-affinity must be preferred, not required: a one-node cluster still runs both"
    );

    let [container] = pod.containers.as_slice() else {
        bail!("expected one container, got {:?}", pod.containers);
    };
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/kubewasm/kubewasm:0.1.0")
    );
    assert_eq!(
        container.args.as_deref().unwrap_or_default(),
        [
            "run",
            "--plugins=/etc/kubewasm/plugins",
            "--admin-addr=0.0.0.0:9090",
            "--leader-elect",
            "--leader-elect-namespace=$(POD_NAMESPACE)",
            "--log-format=json",
        ]
    );
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        let from = env_of(container, name)?
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .with_context(|| format!("env {name} is not from the downward API"))?;
        assert_eq!(from.field_path, field, "env {name}");
    }

    let admin = container
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("admin"))
        .context("no port named admin")?;
    assert_eq!(admin.container_port, 9090);
    for (probe, path) in [
        (&container.liveness_probe, "/livez"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .with_context(|| format!("no HTTP probe on {path}"))?;
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(get.port, IntOrString::String("admin".into()));
    }

    let resources = container.resources.as_ref().context("no resources")?;
    let quantity = |map: &Option<BTreeMap<String, _>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .map(|q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| q.0.clone())
    };
    assert_eq!(
        quantity(&resources.requests, "cpu").as_deref(),
        Some("100m")
    );
    assert_eq!(
        quantity(&resources.requests, "memory").as_deref(),
        Some("128Mi")
    );
    assert_eq!(
        quantity(&resources.limits, "memory").as_deref(),
        Some("512Mi")
    );
    assert_eq!(quantity(&resources.limits, "cpu"), None, "no CPU limit");

    let security = container
        .security_context
        .as_ref()
        .context("no container securityContext")?;
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.run_as_user, Some(65532));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );

    // The plugin directory is the kubewasm-plugins ConfigMap, mounted whole
    // (a subPath mount would never see updates).
    let mount = |path: &str| {
        container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == path)
            .with_context(|| format!("nothing mounted at {path}"))
    };
    let volume = |name: &str| {
        pod.volumes
            .iter()
            .flatten()
            .find(|v| v.name == name)
            .with_context(|| format!("no volume {name}"))
    };
    let plugins = mount("/etc/kubewasm/plugins")?;
    assert_eq!(plugins.sub_path, None);
    assert_eq!(
        volume(&plugins.name)?
            .config_map
            .as_ref()
            .map(|c| c.name.as_str()),
        Some("kubewasm-plugins")
    );
    // The compile cache is writable although the root filesystem is not.
    let cache = mount("/var/cache/kubewasm")?;
    assert!(
        volume(&cache.name)?.empty_dir.is_some(),
        "the cache is not an emptyDir"
    );
    assert_ne!(cache.read_only, Some(true));
    let compile_cache = env_of(container, "KUBEWASM_COMPILE_CACHE")?
        .value
        .as_deref();
    assert_eq!(compile_cache, Some("/var/cache/kubewasm/compiled"));
    Ok(())
}

#[tokio::test]
async fn base_applies_server_side_and_creates_the_host_objects() -> anyhow::Result<()> {
    apply_base().await?;
    // Applying again (a re-run, an upgrade) changes nothing and fails nothing.
    let again = apply_base().await?;
    assert!(
        again.contains("deployment.apps/kubewasm serverside-applied"),
        "{again}"
    );

    let client = ControlPlane::shared().await?.client().await?;

    let namespace = Api::<Namespace>::all(client.clone()).get(NAMESPACE).await?;
    let ns_labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(
        ns_labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    assert_eq!(
        ns_labels.get("app.kubernetes.io/name").map(String::as_str),
        Some("kubewasm")
    );

    Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm")
        .await
        .context("the ServiceAccount kubewasm")?;

    let deployment = Api::<Deployment>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm")
        .await
        .context("the Deployment kubewasm")?;
    let spec = deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(
        labels_match(&selector, &pod_labels),
        "{selector:?} vs {pod_labels:?}"
    );
    check_pod_spec(spec.template.spec.as_ref().context("no pod spec")?)?;

    // The metrics Service and the PodDisruptionBudget select the host's pods.
    let service = Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-admin")
        .await?;
    let service_spec = service.spec.context("Service without spec")?;
    assert!(labels_match(
        &service_spec.selector.clone().unwrap_or_default(),
        &pod_labels
    ));
    let ports = service_spec.ports.unwrap_or_default();
    assert!(
        ports.iter().any(|p| p.name.as_deref() == Some("admin")
            && p.port == 9090
            && p.target_port == Some(IntOrString::String("admin".into()))),
        "{ports:?}"
    );
    let pdb = Api::<PodDisruptionBudget>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm")
        .await?
        .spec
        .context("PodDisruptionBudget without spec")?;
    assert_eq!(pdb.min_available, Some(IntOrString::Int(1)));
    assert!(labels_match(
        &pdb.selector
            .and_then(|s| s.match_labels)
            .unwrap_or_default(),
        &pod_labels
    ));

    Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-plugins")
        .await
        .context("the plugin ConfigMap kubewasm-plugins")?;

    // RBAC for the host itself: cluster-wide reads of the kinds that
    // announce new kinds, and Events; Leases only in its own namespace.
    let host_role = Api::<ClusterRole>::all(client.clone())
        .get("kubewasm-host")
        .await?;
    assert_eq!(
        rule_set(host_role.rules.as_deref().unwrap_or_default()),
        expected_rules(&[
            (
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                &["get", "list", "watch"]
            ),
            (
                "apiregistration.k8s.io",
                "apiservices",
                &["get", "list", "watch"]
            ),
            ("", "events", &["create", "patch"]),
            ("events.k8s.io", "events", &["create", "patch"]),
        ])
    );
    let leases = Api::<Role>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-leader-election")
        .await?;
    assert_eq!(
        rule_set(leases.rules.as_deref().unwrap_or_default()),
        expected_rules(&[(
            "coordination.k8s.io",
            "leases",
            &["get", "create", "update"]
        )])
    );
    let host_binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get("kubewasm-host")
        .await?;
    let lease_binding = Api::<RoleBinding>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-leader-election")
        .await?;
    for (binding, role_ref, subjects) in [
        (
            "kubewasm-host",
            &host_binding.role_ref,
            &host_binding.subjects,
        ),
        (
            "kubewasm-leader-election",
            &lease_binding.role_ref,
            &lease_binding.subjects,
        ),
    ] {
        assert_eq!(
            role_ref.name, binding,
            "the binding {binding} grants another role"
        );
        let subjects = subjects.as_deref().unwrap_or_default();
        assert!(
            subjects.iter().any(|s| s.kind == "ServiceAccount"
                && s.name == "kubewasm"
                && s.namespace.as_deref() == Some(NAMESPACE)),
            "{subjects:?}"
        );
    }
    Ok(())
}

/// Whether the host's ServiceAccount may `verb` `resource` in `namespace`
/// (cluster-wide if `None`). `resource` is written as kubectl writes it,
/// `plural[.group][/subresource]`, e.g. `websites.demo.kubewasm.dev/status`.
async fn host_may(
    client: &kube::Client,
    verb: &str,
    resource: &str,
    namespace: Option<&str>,
) -> anyhow::Result<bool> {
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, sub)) => (resource, Some(sub.to_string())),
        None => (resource, None),
    };
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(HOST_USER.into()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{NAMESPACE}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                subresource,
                namespace: namespace.map(Into::into),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .context("SubjectAccessReview")?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[tokio::test]
async fn host_service_account_gets_what_the_host_and_example_plugins_need_and_no_more()
-> anyhow::Result<()> {
    apply_base().await?;
    let example = [
        "apply",
        "--server-side",
        "-f",
        "deploy/examples/plugins-rbac.yaml",
    ];
    kubectl(example, None).await?;
    let client = ControlPlane::shared().await?.client().await?;

    const CLUSTER: Option<&str> = None;
    const OTHER: Option<&str> = Some("default");
    const OWN: Option<&str> = Some(NAMESPACE);
    let allowed = [
        // The host.
        (
            "watch",
            "customresourcedefinitions.apiextensions.k8s.io",
            CLUSTER,
        ),
        ("list", "apiservices.apiregistration.k8s.io", CLUSTER),
        ("create", "events.events.k8s.io", OTHER),
        ("patch", "events", OTHER),
        ("update", "leases.coordination.k8s.io", OWN),
        ("create", "leases.coordination.k8s.io", OWN),
        // label-propagator.
        ("watch", "namespaces", CLUSTER),
        ("list", "deployments.apps", CLUSTER),
        ("patch", "deployments.apps", OTHER),
        ("patch", "services", OTHER),
        // website.
        ("watch", "websites.demo.kubewasm.dev", CLUSTER),
        ("patch", "websites.demo.kubewasm.dev/status", OTHER),
        ("create", "configmaps", OTHER),
        // configmap-hasher.
        ("patch", "configmaps", OTHER),
    ];
    for (verb, resource, namespace) in allowed {
        // RBAC changes reach the authorizer's cache asynchronously.
        eventually(Duration::from_secs(10), || async {
            ensure!(
                host_may(&client, verb, resource, namespace).await?,
                "{HOST_USER} may not {verb} {resource} in {namespace:?}"
            );
            Ok(())
        })
        .await?;
    }
    let denied = [
        ("get", "secrets", OTHER),
        ("list", "secrets", CLUSTER),
        ("update", "leases.coordination.k8s.io", OTHER),
        ("create", "leases.coordination.k8s.io", Some("kube-system")),
        (
            "update",
            "customresourcedefinitions.apiextensions.k8s.io",
            CLUSTER,
        ),
        ("delete", "configmaps", OTHER),
        ("create", "deployments.apps", OTHER),
        ("patch", "namespaces", CLUSTER),
        ("patch", "websites.demo.kubewasm.dev", OTHER),
        ("create", "pods", OTHER),
        (
            "escalate",
            "clusterroles.rbac.authorization.k8s.io",
            CLUSTER,
        ),
    ];
    for (verb, resource, namespace) in denied {
        assert!(
            !host_may(&client, verb, resource, namespace).await?,
            "{HOST_USER} may {verb} {resource} in {namespace:?}"
        );
    }
    Ok(())
}

/// The files a ConfigMap volume of `cm` holds, by name.
fn mounted_files(cm: ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let text = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()));
    let binary = cm
        .binary_data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0));
    text.chain(binary).collect()
}

/// `kubectl create configmap kubewasm-plugins ... --from-file=DIR
/// --dry-run=client -o yaml | kubectl apply --server-side
/// --field-manager=kubewasm-plugins -f -`, as deploy/README.md says.
async fn fill_plugins_configmap(dir: &Path) -> anyhow::Result<()> {
    let from_file = format!("--from-file={}/", dir.display());
    let manifest = kubectl(
        [
            "create",
            "configmap",
            "kubewasm-plugins",
            "--namespace",
            NAMESPACE,
            &from_file,
            "--dry-run=client",
            "-o",
            "yaml",
        ],
        None,
    )
    .await?;
    kubectl(
        [
            "apply",
            "--server-side",
            &format!("--field-manager={PLUGINS_FIELD_MANAGER}"),
            "-f",
            "-",
        ],
        Some(manifest.into_bytes()),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn plugin_configmap_filled_as_documented_survives_reapplying_the_base() -> anyhow::Result<()>
{
    apply_base().await?;
    let client = ControlPlane::shared().await?.client().await?;
    let configmaps = Api::<ConfigMap>::namespaced(client, NAMESPACE);

    // A component larger than the 256 KiB a client-side apply could keep in
    // its last-applied annotation, and one small one, with settings.
    let dir = tempfile::tempdir()?;
    let big: Vec<u8> = (0..300 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain([0xff, 0xfe])
        .collect();
    std::fs::write(dir.path().join("big.wasm"), &big)?;
    std::fs::write(dir.path().join("small.wasm"), b"\0asm\x0d\0\x01\0")?;
    std::fs::write(
        dir.path().join("big.settings.json"),
        r#"{"labels": ["team"]}"#,
    )?;
    fill_plugins_configmap(dir.path()).await?;

    // kubectl puts a file under binaryData unless it is valid UTF-8; the
    // mounted files are the same either way.
    let check = |cm: ConfigMap, want_small: bool| -> anyhow::Result<()> {
        let files = mounted_files(cm);
        ensure!(
            files.get("big.wasm") == Some(&big),
            "big.wasm is missing or changed; files: {:?}",
            files.keys().collect::<Vec<_>>()
        );
        ensure!(
            files.contains_key("small.wasm") == want_small,
            "small.wasm present: {}, expected {want_small}",
            files.contains_key("small.wasm")
        );
        ensure!(
            files.get("big.settings.json").map(Vec::as_slice)
                == Some(br#"{"labels": ["team"]}"#.as_slice()),
            "settings missing or changed: {:?}",
            files.keys().collect::<Vec<_>>()
        );
        Ok(())
    };
    check(configmaps.get("kubewasm-plugins").await?, true)?;

    // Applying the base again, server-side or client-side, keeps the plugins.
    apply_base().await?;
    check(configmaps.get("kubewasm-plugins").await?, true)
        .context("after `kubectl apply --server-side -k deploy/`")?;
    kubectl(["apply", "-k", "deploy/"], None).await?;
    check(configmaps.get("kubewasm-plugins").await?, true)
        .context("after `kubectl apply -k deploy/`")?;

    // Filling it again from a directory without a plugin removes that plugin.
    std::fs::remove_file(dir.path().join("small.wasm"))?;
    fill_plugins_configmap(dir.path()).await?;
    check(configmaps.get("kubewasm-plugins").await?, false)
        .context("after removing small.wasm from the directory")?;
    Ok(())
}

/// `to` relative to the directory `from` (both absolute), as kustomize
/// wants local resources.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    std::iter::repeat_n(Path::new(".."), from.len() - common)
        .map(Path::to_path_buf)
        .chain(to[common..].iter().map(|c| PathBuf::from(c.as_os_str())))
        .collect()
}

#[tokio::test]
async fn readme_overlay_with_plugin_rbac_image_and_plugins_from_an_image_applies()
-> anyhow::Result<()> {
    // The overlay deploy/README.md shows, in a directory of the operator's.
    let overlay = tempfile::tempdir()?;
    let base = relative_path(
        &overlay.path().canonicalize()?,
        &deploy_dir().canonicalize()?,
    );
    for file in ["plugins-rbac.yaml", "plugins-image-volume.yaml"] {
        std::fs::copy(
            deploy_dir().join("examples").join(file),
            overlay.path().join(file),
        )?;
    }
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\n\
             kind: Kustomization\n\
             resources:\n  - {}\n  - plugins-rbac.yaml\n\
             images:\n  - name: ghcr.io/kubewasm/kubewasm\n    \
             newName: registry.example.com/kubewasm\n    newTag: 0.1.0\n\
             patches:\n  - path: plugins-image-volume.yaml\n",
            base.display()
        ),
    )?;
    let dir = overlay.path().display().to_string();

    let rendered = kubectl_offline(&["kustomize", &dir])?;
    let objects = yaml_documents(&rendered, "the README's overlay")?;
    let deployment = objects
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .context("no Deployment")?;
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["image"],
        "registry.example.com/kubewasm:0.1.0"
    );
    let volumes = pod["volumes"].as_array().context("no volumes")?;
    let plugins = volumes
        .iter()
        .find(|v| v["name"] == "plugins")
        .context("no plugins volume")?;
    assert!(plugins["image"]["reference"].is_string(), "{plugins}");
    assert!(plugins.get("configMap").is_none(), "two sources: {plugins}");
    let plugin_roles = objects
        .iter()
        .filter(|o| {
            o["kind"] == "ClusterRole" && o["metadata"]["labels"]["kubewasm.dev/plugin"].is_string()
        })
        .count();
    assert_eq!(plugin_roles, 3);

    // The API server accepts it (a dry run: the other tests check the base).
    kubectl(
        ["apply", "--server-side", "--dry-run=server", "-k", &dir],
        None,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Monitoring (offline: the Prometheus Operator's CRDs are not installed)
// ---------------------------------------------------------------------------

/// The metric names an expression reads: every `kubewasm_…` identifier,
/// with a histogram's `_bucket`/`_sum`/`_count` suffix removed.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("kubewasm_") {
        let preceded_by_ident = rest[..at].chars().next_back().is_some_and(is_ident);
        let tail = &rest[at..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        if preceded_by_ident {
            continue;
        }
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .filter(|base| METRICS.contains(&(base, true)))
            .unwrap_or(name);
        names.insert(base.to_string());
    }
    names
}

fn known_metrics() -> BTreeSet<String> {
    METRICS.iter().map(|(name, _)| name.to_string()).collect()
}

/// deploy/monitoring/rules.yaml as JSON.
fn rules_file() -> anyhow::Result<Value> {
    yaml_file(&deploy_dir().join("monitoring/rules.yaml"))
}

fn alert_rules(groups: &Value) -> Vec<&Value> {
    groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .collect()
}

/// Every PromQL expression of the dashboard: panel targets and variable
/// queries.
fn dashboard_expressions(dashboard: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", Value::String(s)) => out.push(s.clone()),
                        ("query", Value::String(s)) if s.contains("kubewasm_") => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

fn dashboard() -> anyhow::Result<Value> {
    let path = deploy_dir().join("monitoring/grafana-dashboard.json");
    serde_json::from_str(&read(&path)?).with_context(|| format!("{}: invalid JSON", path.display()))
}

#[test]
fn monitoring_kustomization_carries_the_rules_file_and_scrapes_the_admin_port() -> anyhow::Result<()>
{
    let rendered = kubectl_offline(&["kustomize", "deploy/monitoring/"])?;
    let objects = yaml_documents(&rendered, "kubectl kustomize deploy/monitoring/")?;
    let kinds: BTreeSet<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["ConfigMap", "PrometheusRule", "ServiceMonitor"])
    );
    let of_kind = |kind: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind)
            .with_context(|| format!("no {kind}"))
    };
    for object in &objects {
        assert_eq!(object["metadata"]["namespace"], NAMESPACE, "{object}");
    }

    // The PrometheusRule carries rules.yaml's groups, unchanged.
    let rules = rules_file()?;
    let carried = &of_kind("PrometheusRule")?["spec"]["groups"];
    if carried != &rules["groups"] {
        let (ours, theirs) = (alert_rules(carried), alert_rules(&rules["groups"]));
        let first_difference = (0..ours.len().max(theirs.len()))
            .find(|&i| ours.get(i) != theirs.get(i))
            .and_then(|i| ours.get(i).or(theirs.get(i)))
            .map_or("the groups".into(), |r| r["alert"].to_string());
        bail!(
            "prometheusrule.yaml and rules.yaml differ (first in {first_difference}): \
             regenerate prometheusrule.yaml with the command in its header"
        );
    }

    // The ServiceMonitor selects the base's metrics Service, on its port.
    let base = yaml_documents(&kubectl_offline(&["kustomize", "deploy/"])?, "deploy/")?;
    let service = base
        .iter()
        .find(|o| o["kind"] == "Service")
        .context("the base has no Service")?;
    let monitor = of_kind("ServiceMonitor")?;
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .context("ServiceMonitor without matchLabels")?;
    ensure!(!selector.is_empty(), "empty ServiceMonitor selector");
    for (key, value) in selector {
        assert_eq!(
            &service["metadata"]["labels"][key], value,
            "Service label {key}"
        );
    }
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["path"], "/metrics");
    let port = endpoint["port"].as_str().context("endpoint without port")?;
    let service_ports = service["spec"]["ports"]
        .as_array()
        .context("Service without ports")?;
    assert!(
        service_ports.iter().any(|p| p["name"] == port),
        "the Service has no port {port}: {service_ports:?}"
    );

    // The dashboard ConfigMap is the dashboard file, for Grafana's sidecar.
    let dashboard_cm = of_kind("ConfigMap")?;
    assert_eq!(dashboard_cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let embedded: Value = serde_json::from_str(
        dashboard_cm["data"]["kubewasm.json"]
            .as_str()
            .context("no kubewasm.json in the dashboard ConfigMap")?,
    )?;
    assert_eq!(embedded, dashboard()?);
    Ok(())
}

#[test]
fn alerts_use_only_exported_metrics_and_tell_what_to_do() -> anyhow::Result<()> {
    let rules = rules_file()?;
    let groups = rules["groups"]
        .as_array()
        .context("rules.yaml without groups")?;
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["name"], "kubewasm");
    let alerts = alert_rules(&rules["groups"]);
    let names: Vec<&str> = alerts.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(names, ALERTS);

    let known = known_metrics();
    for alert in alerts {
        let name = alert["alert"].as_str().unwrap_or_default();
        let expr = alert["expr"].as_str().context("alert without expr")?;
        let used = metrics_in(expr);
        ensure!(!used.is_empty(), "{name} reads no kubewasm metric: {expr}");
        let unknown: Vec<_> = used.difference(&known).collect();
        ensure!(
            unknown.is_empty(),
            "{name} reads unknown metrics {unknown:?}"
        );
        // Every result value an expression names is one the host reports.
        for part in expr.split("result").skip(1) {
            let Some(values) = part
                .strip_prefix("=~\"")
                .or_else(|| part.strip_prefix("!=\""))
                .or_else(|| part.strip_prefix("=\""))
                .and_then(|v| v.split('"').next())
            else {
                continue;
            };
            for value in values.split('|') {
                ensure!(
                    RECONCILE_RESULTS.contains(&value),
                    "{name}: result {value:?} is not a reconcile result"
                );
            }
        }
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        ensure!(
            ["warning", "critical"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for annotation in ["summary", "description"] {
            let text = alert["annotations"][annotation]
                .as_str()
                .unwrap_or_default();
            ensure!(text.len() > 20, "{name}: no useful {annotation}: {text:?}");
        }
    }
    Ok(())
}

#[test]
fn dashboard_shows_every_exported_metric_and_no_other() -> anyhow::Result<()> {
    let dashboard = dashboard()?;
    let expressions = dashboard_expressions(&dashboard);
    ensure!(!expressions.is_empty(), "the dashboard has no queries");
    let used: BTreeSet<String> = expressions.iter().flat_map(|e| metrics_in(e)).collect();
    let known = known_metrics();
    let unknown: Vec<_> = used.difference(&known).collect();
    let missing: Vec<_> = known.difference(&used).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard reads unknown metrics {unknown:?}"
    );
    assert!(
        missing.is_empty(),
        "the dashboard has no panel for {missing:?}"
    );

    // Grafana needs unique panel ids and a title on every panel.
    let panels = dashboard["panels"].as_array().context("no panels")?;
    let ids: BTreeSet<_> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are missing or repeated");
    assert!(
        panels
            .iter()
            .all(|p| p["title"].as_str().is_some_and(|t| !t.is_empty()))
    );
    Ok(())
}

/// Replaces Grafana's variables so a dashboard query is plain PromQL.
fn as_promql(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$__range", "1h")
        .replace("$namespace", ".*")
        .replace("$plugin", ".*")
}

#[test]
fn promtool_accepts_the_rules_their_tests_and_the_dashboard_queries() -> anyhow::Result<()> {
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("promtool").is_file())
    });
    // tests/run.sh installs Debian's prometheus package; without promtool
    // the rules would go unchecked, so this fails rather than skips.
    ensure!(
        on_path,
        "promtool is not on PATH: install Debian's prometheus package (tests/run.sh does)"
    );
    let promtool = |args: &[&OsStr]| -> anyhow::Result<()> {
        let output = Command::new("promtool")
            .args(args)
            .current_dir(repo_root())
            .output()
            .context("failed to run promtool")?;
        ensure!(
            output.status.success(),
            "promtool {:?} failed:\n{}{}",
            args,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    };
    let os = |s: &'static str| OsStr::new(s);
    promtool(&[os("check"), os("rules"), os("deploy/monitoring/rules.yaml")])?;
    promtool(&[
        os("test"),
        os("rules"),
        os("deploy/monitoring/rules.test.yaml"),
    ])?;

    // Every dashboard query parses: check them as recording rules.
    let records: Vec<Value> = dashboard_expressions(&dashboard()?)
        .iter()
        .filter(|e| !e.starts_with("label_values("))
        .enumerate()
        .map(|(i, expr)| serde_json::json!({"record": format!("dashboard:query_{i}"), "expr": as_promql(expr)}))
        .collect();
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    let text = serde_saphyr::to_string(
        &serde_json::json!({"groups": [{"name": "dashboard", "rules": records}]}),
    )?;
    std::fs::write(file.path(), text)?;
    promtool(&[os("check"), os("rules"), file.path().as_os_str()])
        .context("a dashboard query is not valid PromQL")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The image
// ---------------------------------------------------------------------------

#[test]
fn dockerfile_builds_the_host_with_the_workspace_toolchain() -> anyhow::Result<()> {
    let dockerfile = read(&deploy_dir().join("Dockerfile"))?;
    let manifest = read(&repo_root().join("Cargo.toml"))?;
    let setting = |key: &str| {
        manifest
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().strip_prefix('='))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("no {key} in Cargo.toml"))
    };
    let rust_version = setting("rust-version")?.trim_matches('"').to_string();
    let from: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert_eq!(
        from,
        [
            format!("rust:{rust_version}-bookworm AS build").as_str(),
            "gcr.io/distroless/cc-debian12:nonroot",
        ]
    );
    assert!(dockerfile.contains("cargo build --release --locked -p kubewasm"));
    assert!(dockerfile.contains("\nUSER 65532"));
    assert!(dockerfile.contains("\nENTRYPOINT [\"/kubewasm\"]"));

    // Cargo loads the whole workspace, so every member (and the WIT the
    // bindings are generated from) must be copied into the build stage.
    let members = setting("members")?;
    let members: Vec<&str> = members
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    ensure!(!members.is_empty(), "no workspace members found");
    let ignore = read(&deploy_dir().join("Dockerfile.dockerignore"))?;
    for member in members.iter().copied().chain(["wit"]) {
        // A member inside another folder (guest-sdk/selector) comes with it.
        let dir = member.split('/').next().unwrap_or(member);
        assert!(
            dockerfile.contains(&format!("\nCOPY {dir} ./{dir}\n")),
            "the Dockerfile does not copy {dir}/ (workspace member {member})"
        );
        assert!(
            ignore.lines().any(|l| l == format!("!{dir}/")),
            "Dockerfile.dockerignore leaves {dir}/ out of the build context"
        );
    }
    Ok(())
}
