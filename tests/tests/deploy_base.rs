//! `deploy/` as a cluster operator uses it: the base applies server-side
//! (again and again, as re-runs and upgrades do) and creates the host's
//! objects with the probes, limits and least-privilege RBAC it promises; the
//! Dockerfile builds the workspace's Rust version.
//!
//! The base uses fixed names (namespace `kubewasm-system`, ClusterRole
//! `kubewasm-host`), so every test here is idempotent and tolerates running
//! next to the others and again on the same cluster. No kubelet runs, so the
//! Deployment never gets Pods; the tests check what the API server stores.
//! The other `deploy_*.rs` files test the rest of `deploy/`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, Namespace, PodSpec, Service, ServiceAccount,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::Api;
use kubewasm_e2e::ControlPlane;
use kubewasm_e2e::deploy::{NAMESPACE, apply_base, deploy_dir, read};
use kubewasm_e2e::host::repo;

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
            "--plugin-resources",
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
            ("kubewasm.dev", "clusterplugins", &["get", "list", "watch"]),
            ("kubewasm.dev", "plugins", &["get", "list", "watch"]),
            // Promoting a shadow with spec.shadow.promoteAfter.
            ("kubewasm.dev", "clusterplugins", &["patch"]),
            ("kubewasm.dev", "plugins", &["patch"]),
            ("kubewasm.dev", "clusterplugins/status", &["patch"]),
            ("kubewasm.dev", "plugins/status", &["patch"]),
        ])
    );
    // ClusterPlugin modules and pull secrets: read only in its namespace.
    let sources = Api::<Role>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-plugin-sources")
        .await?;
    assert_eq!(
        rule_set(sources.rules.as_deref().unwrap_or_default()),
        expected_rules(&[("", "configmaps", &["get"]), ("", "secrets", &["get"]),])
    );
    let leases = Api::<Role>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-leader-election")
        .await?;
    assert_eq!(
        rule_set(leases.rules.as_deref().unwrap_or_default()),
        expected_rules(&[(
            "coordination.k8s.io",
            "leases",
            // list and delete: shard ring members (--shard-ring).
            &["get", "list", "create", "update", "delete"]
        )])
    );
    let host_binding = Api::<ClusterRoleBinding>::all(client.clone())
        .get("kubewasm-host")
        .await?;
    let lease_binding = Api::<RoleBinding>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-leader-election")
        .await?;
    let sources_binding = Api::<RoleBinding>::namespaced(client.clone(), NAMESPACE)
        .get("kubewasm-plugin-sources")
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
        (
            "kubewasm-plugin-sources",
            &sources_binding.role_ref,
            &sources_binding.subjects,
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

#[test]
fn dockerfile_builds_the_host_with_the_workspace_toolchain() -> anyhow::Result<()> {
    let dockerfile = read(&deploy_dir().join("Dockerfile"))?;
    let manifest = read(&repo().join("Cargo.toml"))?;
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
