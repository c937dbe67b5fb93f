//! Tenancy on the real control plane: what a namespace's owner can do
//! with only namespace rights (create the account, its RBAC, the host's
//! impersonation binding and a Plugin, which then reconciles), what the
//! admission policy refuses (a Plugin naming an account its author may
//! not act as), and a host that may not act as an account until the
//! namespace opts in.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::cluster_plugins::{Fixture, SELECTOR_LABEL, condition, host_args};
use kubewasm_e2e::host::{Host, component};
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::service_account::HostAccount;
use kubewasm_e2e::teams::*;
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::{Value, json};

#[tokio::test]
async fn a_namespace_owner_runs_a_plugin_without_cluster_admin_and_others_cannot_borrow_its_account()
 {
    apply_deploy(&["tenancy.yaml", "admission.yaml"]).await;
    let fx = Fixture::start("nsp-owner").await;
    let ns = fx.ns.name().to_string();
    // alice owns the namespace. The built-in `admin` role would give her
    // this (and kubewasm-plugins-edit through aggregation), but the test
    // control plane runs no kube-controller-manager to aggregate roles, so
    // the owner's rights are spelled out and kubewasm-plugins-edit bound.
    let owner: Role = serde_json::from_value(json!({
        "metadata": {"name": "namespace-owner"},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create", "impersonate"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "update", "patch", "delete"]},
            {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
        ],
    }))
    .unwrap();
    fx.ns
        .api::<Role>()
        .create(&PostParams::default(), &owner)
        .await
        .unwrap();
    bind_user(&fx.ns, "alice", "Role", "namespace-owner").await;
    bind_user(&fx.ns, "alice", "ClusterRole", "kubewasm-plugins-edit").await;
    // bob may edit Plugins but not act as the namespace's accounts.
    bind_user(&fx.ns, "bob", "ClusterRole", "kubewasm-plugins-edit").await;

    // Everything from here on is alice's: account, its Role and binding,
    // the host's impersonation binding, the module and the Plugin.
    let cluster = fx.ns.control_plane();
    let as_alice = cluster.client_as("alice").await.unwrap();
    let create = |kind: &str, object: Value| {
        let client = as_alice.clone();
        let ns = ns.clone();
        let kind = kind.to_string();
        async move {
            let (group, version, plural) = match kind.as_str() {
                "ServiceAccount" => ("", "v1", "serviceaccounts"),
                "ConfigMap" => ("", "v1", "configmaps"),
                "Role" => ("rbac.authorization.k8s.io", "v1", "roles"),
                "RoleBinding" => ("rbac.authorization.k8s.io", "v1", "rolebindings"),
                _ => ("kubewasm.dev", "v1alpha1", "plugins"),
            };
            let gvk = GroupVersionKind::gvk(group, version, &kind);
            let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
            let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
            let mut object = object;
            object["apiVersion"] = json!(resource.api_version);
            object["kind"] = json!(kind);
            let object: DynamicObject = serde_json::from_value(object).unwrap();
            api.create(&PostParams::default(), &object).await
        }
    };
    let ok = |what: &str, result: kube::Result<DynamicObject>| {
        result.unwrap_or_else(|e| panic!("alice could not create {what}: {e}"));
    };
    ok(
        "a ServiceAccount",
        create("ServiceAccount", json!({"metadata": {"name": ACCOUNT}})).await,
    );
    let rules = json!([
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]);
    ok(
        "a Role",
        create(
            "Role",
            json!({"metadata": {"name": ACCOUNT}, "rules": rules}),
        )
        .await,
    );
    let subject = json!([{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns}]);
    let role_ref =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT});
    ok(
        "the account's RoleBinding",
        create(
            "RoleBinding",
            json!({"metadata": {"name": ACCOUNT}, "roleRef": role_ref, "subjects": subject}),
        )
        .await,
    );
    let host =
        json!([{"kind": "ServiceAccount", "name": "kubewasm", "namespace": "kubewasm-system"}]);
    let impersonate = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubewasm-impersonate"});
    ok(
        "the host's impersonation RoleBinding",
        create("RoleBinding", json!({"metadata": {"name": "kubewasm-impersonate"}, "roleRef": impersonate, "subjects": host})).await,
    );
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    let module = json!({"metadata": {"name": "probe-module"}, "binaryData": {"probe.wasm": k8s_openapi::ByteString(probe_bytes)}});
    ok("the module ConfigMap", create("ConfigMap", module).await);
    let name = unique_name("probe");
    let plugin = |name: &str| {
        json!({
            "metadata": {"name": name, "labels": {SELECTOR_LABEL: fx.selector}},
            "spec": {
                "module": {"configMap": {"name": "probe-module", "key": "probe.wasm"}},
                "settings": {"mark": "alice"},
                "serviceAccountName": ACCOUNT,
                "grants": {"write": [{"kind": "ConfigMap"}, {"group": "*", "kind": "Gadget"}], "read": [{"group": "*", "kind": "*"}]},
            },
        })
    };
    ok("the Plugin", create("Plugin", plugin(&name)).await);
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    fx.marked("a", "alice").await;
    status_until(&fx, &name, "Ready", |s| {
        condition(s, "Ready") == ("True", "Serving")
    })
    .await;

    // bob may create Plugins, but not one acting as an account he may not
    // act as himself: the admission policy refuses it, naming the account.
    let gvk = GroupVersionKind::gvk("kubewasm.dev", "v1alpha1", "Plugin");
    let as_bob = cluster.client_as("bob").await.unwrap();
    let bobs: Api<DynamicObject> = Api::namespaced_with(as_bob, &ns, &ApiResource::from_gvk(&gvk));
    let mut object = plugin("bobs");
    object["apiVersion"] = json!("kubewasm.dev/v1alpha1");
    object["kind"] = json!("Plugin");
    let refused = bobs
        .create(
            &PostParams::default(),
            &serde_json::from_value(object).unwrap(),
        )
        .await
        .expect_err("bob may not act as the team's account");
    let message = refused.to_string();
    assert!(
        message.contains(&format!("you may not act as ServiceAccount {ns}/{ACCOUNT}")),
        "{message}"
    );
}

#[tokio::test]
async fn a_host_not_allowed_to_act_as_the_account_refuses_the_plugin_until_the_namespace_opts_in() {
    apply_deploy(&["tenancy.yaml"]).await;
    kubewasm_e2e::cluster_plugins::install_crds().await;
    let ns = TestNamespace::create("nsp-optin").await.unwrap();
    // The host as a ServiceAccount with what a host serving plugin
    // resources needs, and no impersonation anywhere.
    let empty = tempfile::tempdir().unwrap();
    let account = HostAccount::create_with(&ns, empty.path(), |role| {
        let rules: Vec<PolicyRule> = serde_json::from_value(json!([
            {"apiGroups": ["kubewasm.dev"], "resources": ["clusterplugins", "plugins"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["kubewasm.dev"], "resources": ["clusterplugins/status", "plugins/status"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        ]))
        .unwrap();
        role.rules.get_or_insert_with(Vec::new).extend(rules);
    })
    .await
    .unwrap();
    let selector = unique_name("nsp-optin");
    let args = host_args(&ns, &selector);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let host = Host::spawn_command(account.command(), tempfile::tempdir().unwrap(), &args);
    let gvk = GroupVersionKind::gvk("kubewasm.dev", "v1alpha1", "ClusterPlugin");
    let fx = Fixture {
        plugins: Api::all_with(ns.client().clone(), &ApiResource::from_gvk(&gvk)),
        ns,
        host,
        selector,
    };
    team(&fx, full_rules()).await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    let name = unique_name("probe");
    apply_plugin(&fx, &name, json!({"mark": "opted-in"})).await;
    let status = status_until(&fx, &name, "ImpersonationDenied", |s| {
        condition(s, "Ready") == ("False", "ImpersonationDenied")
    })
    .await;
    let message = status["failed"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("impersonate"), "{status}");
    let a = configmaps.get("a").await.unwrap();
    assert_eq!(
        probe::annotation(&a, MARK),
        None,
        "served without impersonation"
    );

    // The namespace opts in: the host may act as its accounts.
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "kubewasm-impersonate"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kubewasm-impersonate"},
        "subjects": [{"kind": "ServiceAccount", "name": "kubewasm", "namespace": fx.ns.name()}],
    }))
    .unwrap();
    fx.ns
        .api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    fx.marked("a", "opted-in").await;
    status_until(&fx, &name, "Ready", |s| {
        condition(s, "Ready") == ("True", "Serving")
    })
    .await;
}
