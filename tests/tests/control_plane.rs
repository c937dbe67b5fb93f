//! The test control plane behaves like a real cluster: objects persist,
//! CRDs serve custom resources with their schema enforced, and RBAC decides
//! what a ServiceAccount token may do.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kubewasm_e2e::service_account::{create_account, token};
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_api_group};
use serde_json::json;

const FIELD_MANAGER: &str = "kubewasm-e2e";

/// The HTTP status of a failed API call, or the error itself if it is not one.
fn status_code<T: std::fmt::Debug>(result: kube::Result<T>) -> anyhow::Result<u16> {
    match result {
        Err(kube::Error::Api(status)) => Ok(status.code),
        Err(other) => Err(other).context("expected an API error status"),
        Ok(value) => {
            bail!("expected the API server to refuse the request, but it returned {value:?}")
        }
    }
}

#[tokio::test]
async fn control_plane_is_ready_and_serves_built_in_kinds() -> anyhow::Result<()> {
    let control_plane = ControlPlane::shared().await?;
    let client = control_plane.client().await?;

    let ready = client
        .request_text(http_get("/readyz")?)
        .await
        .context("GET /readyz")?;
    assert_eq!(ready, "ok");

    let version = client.apiserver_version().await?;
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "37"),
        "{version:?}"
    );

    let core = client.list_core_api_resources("v1").await?;
    let kinds: Vec<&str> = core.resources.iter().map(|r| r.kind.as_str()).collect();
    for kind in ["ConfigMap", "Namespace", "Pod", "Secret", "ServiceAccount"] {
        assert!(kinds.contains(&kind), "core/v1 lacks {kind}: {kinds:?}");
    }
    assert!(
        control_plane.admin_token().is_some()
            || std::env::var_os("KUBEWASM_TEST_KUBECONFIG").is_some()
    );
    Ok(())
}

fn http_get(path: &str) -> anyhow::Result<http::Request<Vec<u8>>> {
    http::Request::get(path)
        .body(Vec::new())
        .context("building a GET request")
}

#[tokio::test]
async fn configmap_is_created_and_read_back() -> anyhow::Result<()> {
    let ns = TestNamespace::create("configmap").await?;
    let configmaps: Api<ConfigMap> = ns.api();

    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            labels: Some(BTreeMap::from([("app".into(), "kubewasm-e2e".into())])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("greeting".into(), "hello".into())])),
        ..Default::default()
    };
    let created = configmaps.create(&PostParams::default(), &cm).await?;
    assert!(created.metadata.uid.is_some(), "the server assigns a uid");

    let read = configmaps.get("settings").await?;
    assert_eq!(read.metadata.namespace.as_deref(), Some(ns.name()));
    assert_eq!(read.metadata.uid, created.metadata.uid);
    assert_eq!(read.data, cm.data);

    let listed = configmaps
        .list(&ListParams::default().labels("app=kubewasm-e2e"))
        .await?;
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    assert_eq!(names, ["settings"]);
    Ok(())
}

#[tokio::test]
async fn crd_and_custom_resource_apply() -> anyhow::Result<()> {
    let ns = TestNamespace::create("crd").await?;
    let group = unique_api_group();
    let crd_name = format!("widgets.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": crd_name },
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": { "plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList" },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": { "size": { "type": "integer", "minimum": 1 } }
                        },
                        "status": { "type": "object", "x-kubernetes-preserve-unknown-fields": true }
                    }
                }}
            }]
        }
    }))?;

    let crds: Api<CustomResourceDefinition> = Api::all(ns.client().clone());
    let ssa = PatchParams::apply(FIELD_MANAGER);
    crds.patch(&crd_name, &ssa, &Patch::Apply(&crd)).await?;
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds.clone(), &crd_name, conditions::is_crd_established()),
    )
    .await
    .context("the CRD was not established within 30s")??;

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> =
        Api::namespaced_with(ns.client().clone(), ns.name(), &resource);
    let widget = json!({
        "apiVersion": format!("{group}/v1"),
        "kind": "Widget",
        "metadata": { "name": "gear" },
        "spec": { "size": 3 }
    });
    // Discovery of a new CRD can lag its Established condition by a moment.
    eventually(Duration::from_secs(10), || async {
        widgets
            .patch("gear", &ssa, &Patch::Apply(&widget))
            .await
            .context("apply Widget gear")
    })
    .await?;

    let read = widgets.get("gear").await?;
    assert_eq!(read.data["spec"]["size"], 3);
    assert_eq!(read.metadata.namespace.as_deref(), Some(ns.name()));
    let managers: Vec<_> = read
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert_eq!(
        managers,
        [FIELD_MANAGER],
        "server-side apply records the field manager"
    );

    // The CRD's schema is enforced: a size below the minimum is invalid (422).
    let too_small = json!({
        "apiVersion": format!("{group}/v1"),
        "kind": "Widget",
        "metadata": { "name": "speck" },
        "spec": { "size": 0 }
    });
    let code = status_code(
        widgets
            .patch("speck", &ssa, &Patch::Apply(&too_small))
            .await,
    )?;
    assert_eq!(
        code, 422,
        "a Widget violating the schema must be rejected as invalid"
    );
    Ok(())
}

#[tokio::test]
async fn service_account_token_is_limited_by_rbac() -> anyhow::Result<()> {
    let ns = TestNamespace::create("rbac").await?;
    let other = TestNamespace::create("rbac-other").await?;
    let pp = PostParams::default();

    create_account(&ns, "reader").await?;
    let role = Role {
        metadata: ObjectMeta {
            name: Some("configmap-reader".into()),
            ..Default::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        }]),
    };
    ns.api::<Role>().create(&pp, &role).await?;
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some("reader-reads-configmaps".into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "configmap-reader".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "reader".into(),
            namespace: Some(ns.name().into()),
            ..Default::default()
        }]),
    };
    ns.api::<RoleBinding>().create(&pp, &binding).await?;
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("visible".into());
    ns.api::<ConfigMap>().create(&pp, &cm).await?;
    other.api::<ConfigMap>().create(&pp, &cm).await?;

    let token = token(&ns, "reader").await?;
    let reader = ns.control_plane().client_with_token(&token).await?;

    // The API server authenticates the token as the ServiceAccount.
    let review = Api::<SelfSubjectReview>::all(reader.clone())
        .create(&pp, &SelfSubjectReview::default())
        .await?;
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{}:reader", ns.name()).as_str())
    );

    // Allowed by the Role (RBAC bindings reach the authorizer's cache shortly).
    let own_configmaps: Api<ConfigMap> = Api::namespaced(reader.clone(), ns.name());
    let listed = eventually(Duration::from_secs(10), || async {
        own_configmaps
            .list(&ListParams::default())
            .await
            .context("list configmaps as reader")
    })
    .await?;
    assert!(
        listed
            .items
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some("visible"))
    );
    assert_eq!(
        own_configmaps
            .get("visible")
            .await?
            .metadata
            .name
            .as_deref(),
        Some("visible")
    );

    // Refused (403 Forbidden): other verbs, other resources, other namespaces.
    let mut new_cm = ConfigMap::default();
    new_cm.metadata.name = Some("written-by-reader".into());
    assert_eq!(
        status_code(own_configmaps.create(&pp, &new_cm).await)?,
        403,
        "create configmaps"
    );
    let secrets: Api<Secret> = Api::namespaced(reader.clone(), ns.name());
    assert_eq!(
        status_code(secrets.list(&ListParams::default()).await)?,
        403,
        "list secrets"
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(reader, other.name());
    assert_eq!(
        status_code(elsewhere.get("visible").await)?,
        403,
        "get a configmap in another namespace"
    );

    // A made-up token is not authenticated at all (401).
    let stranger = ns
        .control_plane()
        .client_with_token("not-a-real-token")
        .await?;
    let code = status_code(
        Api::<ConfigMap>::namespaced(stranger, ns.name())
            .list(&ListParams::default())
            .await,
    )?;
    assert_eq!(code, 401);
    Ok(())
}
