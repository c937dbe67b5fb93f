//! Namespaced `Plugin` fixtures: a team's ServiceAccount, Role and module
//! in a namespace, and helpers to apply Plugins and wait on their status.

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::TestNamespace;
use crate::cluster_plugins::{Fixture, SELECTOR_LABEL, all_grants, apply_object};
use crate::host::component;

pub const ACCOUNT: &str = "team-bot";

/// The team's side: a ServiceAccount, a Role with `rules` bound to it, and
/// the probe's module in a ConfigMap.
pub async fn team(fx: &Fixture, rules: Value) {
    team_in(&fx.ns, rules).await
}

/// [`team`] in namespace `team`.
pub async fn team_in(team: &TestNamespace, rules: Value) {
    let account = serde_json::from_value(json!({"metadata": {"name": ACCOUNT}})).unwrap();
    team.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": ACCOUNT}, "rules": rules})).unwrap();
    team.api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    bind(team).await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    let module: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "probe-module"},
        "binaryData": {"probe.wasm": k8s_openapi::ByteString(probe_bytes)},
    }))
    .unwrap();
    team.api::<ConfigMap>()
        .create(&PostParams::default(), &module)
        .await
        .unwrap();
}

/// Binds the Role to the account (again, after [`unbind`]).
pub async fn bind(ns: &TestNamespace) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": ACCOUNT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": ns.name()}],
    }))
    .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

pub async fn unbind(ns: &TestNamespace) {
    ns.api::<RoleBinding>()
        .delete(ACCOUNT, &DeleteParams::default())
        .await
        .unwrap();
}

/// What the probe needs: read everything it subscribes to (ConfigMaps and
/// any Gadget kind another test created), write ConfigMaps and Events.
pub fn full_rules() -> Value {
    json!([
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "update", "patch", "delete"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

pub fn plugins(ns: &TestNamespace) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kubewasm.dev", "v1alpha1", "Plugin");
    Api::namespaced_with(ns.client().clone(), ns.name(), &ApiResource::from_gvk(&gvk))
}

/// Applies Plugin `name` in the fixture's namespace running the probe from
/// its module ConfigMap, as [`ACCOUNT`].
pub async fn apply_plugin(fx: &Fixture, name: &str, settings: Value) {
    apply_plugin_in(&fx.ns, &fx.selector, name, settings).await
}

/// [`apply_plugin`] in namespace `ns`, for the host serving `selector`.
pub async fn apply_plugin_in(ns: &TestNamespace, selector: &str, name: &str, settings: Value) {
    let object = json!({
        "apiVersion": "kubewasm.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "labels": {SELECTOR_LABEL: selector}},
        "spec": {
            "module": {"configMap": {"name": "probe-module", "key": "probe.wasm"}},
            "settings": settings,
            "serviceAccountName": ACCOUNT,
            "grants": all_grants(),
        },
    });
    apply_object(&plugins(ns), name, &object).await;
}

pub async fn status_until(
    fx: &Fixture,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    fx.status_in(&plugins(&fx.ns), name, what, check).await
}

/// The notes of the Events about Plugin `name` with `reason`.
pub async fn event_notes(fx: &Fixture, name: &str, reason: &str) -> Vec<String> {
    let events = fx.events_in(fx.ns.name(), name, reason).await;
    events.into_iter().filter_map(|e| e.note).collect()
}

/// `kubectl apply --server-side` of files under `deploy/`.
pub async fn apply_deploy(files: &[&str]) {
    let dir = crate::deploy::deploy_dir();
    let mut args = vec!["apply".to_string(), "--server-side".to_string()];
    for file in files {
        args.push("-f".into());
        args.push(dir.join(file).to_string_lossy().into_owned());
    }
    crate::deploy::kubectl(args.iter().map(String::as_str), None)
        .await
        .expect("deploy files apply");
}

/// Binds ClusterRole `role` to user `user` in `ns`.
pub async fn bind_user(ns: &TestNamespace, user: &str, kind: &str, role: &str) {
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": format!("{user}-{role}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    ns.api::<RoleBinding>()
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}
