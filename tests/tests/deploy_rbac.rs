//! The RBAC of `deploy/`, asked of the API server (SubjectAccessReview):
//! the host's ServiceAccount, with the example plugins' roles, may do what
//! the host and the example plugins need and nothing more.
//!
//! The base uses fixed names (namespace `kubewasm-system`, ClusterRole
//! `kubewasm-host`), so every test here is idempotent and tolerates running
//! next to the others and again on the same cluster. No kubelet runs, so the
//! Deployment never gets Pods; the tests check what the API server stores.
//! The other `deploy_*.rs` files test the rest of `deploy/`.

use std::time::Duration;

use anyhow::{Context, ensure};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use kubewasm_e2e::deploy::{NAMESPACE, apply_base, kubectl};
use kubewasm_e2e::{ControlPlane, eventually};

/// The host's ServiceAccount, as RBAC names it.
const HOST_USER: &str = "system:serviceaccount:kubewasm-system:kubewasm";

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
        // Shard ring members list their peers and delete stale Leases.
        ("list", "leases.coordination.k8s.io", OWN),
        ("delete", "leases.coordination.k8s.io", OWN),
        // label-propagator.
        ("watch", "namespaces", CLUSTER),
        ("list", "deployments.apps", CLUSTER),
        ("patch", "deployments.apps", OTHER),
        ("patch", "services", OTHER),
        // website.
        ("watch", "websites.demo.kubewasm.dev", CLUSTER),
        ("patch", "websites.demo.kubewasm.dev/status", OTHER),
        // Its finalizer, added and removed by the host.
        ("patch", "websites.demo.kubewasm.dev", OTHER),
        ("create", "configmaps", OTHER),
        // Its finalizing cleanup.
        ("delete", "configmaps", OTHER),
        // configmap-hasher.
        ("patch", "configmaps", OTHER),
        // Promoting a plugin resource's shadow (spec.shadow.promoteAfter).
        ("patch", "clusterplugins.kubewasm.dev", CLUSTER),
        ("patch", "plugins.kubewasm.dev", OTHER),
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
        ("delete", "leases.coordination.k8s.io", OTHER),
        (
            "update",
            "customresourcedefinitions.apiextensions.k8s.io",
            CLUSTER,
        ),
        ("delete", "secrets", OTHER),
        ("create", "deployments.apps", OTHER),
        ("patch", "namespaces", CLUSTER),
        ("delete", "websites.demo.kubewasm.dev", OTHER),
        ("update", "websites.demo.kubewasm.dev", OTHER),
        // Plugin resources are the operators' and teams': only patched.
        ("create", "clusterplugins.kubewasm.dev", CLUSTER),
        ("delete", "plugins.kubewasm.dev", OTHER),
        ("update", "plugins.kubewasm.dev", OTHER),
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
