//! Namespaced `Plugin` resources on the real control plane: a team's
//! plugin runs only in its namespace and writes as the ServiceAccount it
//! names, so the API server, not only the host, bounds what it can change.
//!
//! The hosts here authenticate as the cluster admin, who may impersonate
//! anyone; the ServiceAccount's own RBAC is what each write is checked
//! against, which the tests show by taking it away.

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::cluster_plugins::{Fixture, SELECTOR_LABEL, WAIT, condition};
use kubewasm_e2e::host::component;
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::{Value, json};

const ACCOUNT: &str = "team-bot";

/// The team's side: a ServiceAccount, a Role with `rules` bound to it, and
/// the probe's module in a ConfigMap.
async fn team(fx: &Fixture, rules: Value) {
    let ns = fx.ns.name();
    let accounts: Api<ServiceAccount> = fx.ns.api();
    let account = serde_json::from_value(json!({"metadata": {"name": ACCOUNT}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let role: Role =
        serde_json::from_value(json!({"metadata": {"name": ACCOUNT}, "rules": rules})).unwrap();
    fx.ns
        .api::<Role>()
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    bind(&fx.ns).await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    fx.module_configmap("probe-module", "probe.wasm", probe_bytes)
        .await;
    assert!(!ns.is_empty());
}

/// Binds the Role to the account (again, after [`unbind`]).
async fn bind(ns: &TestNamespace) {
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

async fn unbind(ns: &TestNamespace) {
    ns.api::<RoleBinding>()
        .delete(ACCOUNT, &DeleteParams::default())
        .await
        .unwrap();
}

/// What the probe needs: read everything it subscribes to (ConfigMaps and
/// any Gadget kind another test created), write ConfigMaps and Events.
fn full_rules() -> Value {
    json!([
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "update", "patch", "delete"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ])
}

fn plugins(ns: &TestNamespace) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kubewasm.dev", "v1alpha1", "Plugin");
    Api::namespaced_with(ns.client().clone(), ns.name(), &ApiResource::from_gvk(&gvk))
}

/// Applies Plugin `name` in the fixture's namespace running the probe from
/// its module ConfigMap, as [`ACCOUNT`].
async fn apply_plugin(fx: &Fixture, name: &str, settings: Value) {
    let object = json!({
        "apiVersion": "kubewasm.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "labels": {SELECTOR_LABEL: fx.selector}},
        "spec": {
            "module": {"configMap": {"name": "probe-module", "key": "probe.wasm"}},
            "settings": settings,
            "serviceAccountName": ACCOUNT,
            "grants": {
                "write": [{"group": "*", "kind": "*"}],
                "read": [{"group": "*", "kind": "*"}],
            },
        },
    });
    plugins(&fx.ns)
        .patch(
            name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("apply Plugin {name}: {e}"));
}

async fn status_until(
    fx: &Fixture,
    name: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let api = plugins(&fx.ns);
    fx.host
        .eventually(WAIT, || async {
            let object = api.get(name).await?;
            let status = object.data.get("status").cloned().unwrap_or(Value::Null);
            anyhow::ensure!(
                check(&status),
                "{name}: waiting for {what}; status {status}"
            );
            Ok(status)
        })
        .await
}

/// The notes of the Events about Plugin `name` with `reason`.
async fn event_notes(fx: &Fixture, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = fx.ns.api();
    let listed = events
        .list(&ListParams::default().fields(&format!("regarding.name={name}")))
        .await
        .unwrap();
    listed
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn a_plugin_writes_in_its_namespace_as_its_service_account() {
    let fx = Fixture::start("nsp-writes").await;
    team(&fx, full_rules()).await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let name = unique_name("probe");
    apply_plugin(&fx, &name, json!({"mark": "team"})).await;
    fx.marked("a", "team").await;
    let status = status_until(&fx, &name, "Ready", |s| {
        condition(s, "Ready") == ("True", "Serving")
    })
    .await;
    assert_eq!(status["serving"]["name"], "probe");
    let loaded = event_notes(&fx, &name, "Loaded").await;
    assert!(loaded.iter().any(|n| n.contains("probe")), "{loaded:?}");
    let written = configmaps.get("a").await.unwrap();
    let managers: Vec<_> = written
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(
        managers.contains(&"kubewasm/probe".to_string()),
        "{managers:?}"
    );

    // Without the account's RoleBinding the same plugin can no longer
    // write, although the host itself (the cluster admin) could: every
    // write is made as the account.
    unbind(&fx.ns).await;
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    let user = format!("system:serviceaccount:{}:{ACCOUNT}", fx.ns.name());
    fx.host
        .eventually(WAIT, || async {
            let log = fx.host.log();
            anyhow::ensure!(
                log.lines().any(|l| l.contains("write failed")
                    && l.contains(&user)
                    && l.contains("forbidden")),
                "no forbidden write as {user} logged yet"
            );
            Ok(())
        })
        .await;
    let b = configmaps.get("b").await.unwrap();
    assert_eq!(
        probe::annotation(&b, MARK),
        None,
        "written without the account's rights"
    );

    // Bound again: the retried key is written.
    bind(&fx.ns).await;
    fx.marked("b", "team").await;
}

#[tokio::test]
async fn a_plugin_cannot_write_outside_its_namespace() {
    let fx = Fixture::start("nsp-confined").await;
    team(&fx, full_rules()).await;
    let other = TestNamespace::create("nsp-other").await.unwrap();
    let others: Api<ConfigMap> = other.api();
    probe::create_configmap(&others, "target", "mark", &[]).await;
    let name = unique_name("probe");
    apply_plugin(&fx, &name, json!({"mark": "team"})).await;
    status_until(&fx, &name, "Ready", |s| {
        condition(s, "Ready") == ("True", "Serving")
    })
    .await;

    // Not called for objects of another namespace.
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "own", "mark", &[]).await;
    fx.marked("own", "team").await;
    let target = others.get("target").await.unwrap();
    assert_eq!(
        probe::annotation(&target, MARK),
        None,
        "called for another namespace"
    );

    // An intent aimed at another namespace is refused by the host...
    let mut hostile = probe::configmap("hostile", "smuggle", &[]);
    hostile.metadata.annotations = Some(
        [
            (
                "probe.kubewasm.dev/smuggle-namespace".to_string(),
                other.name().to_string(),
            ),
            (
                "probe.kubewasm.dev/smuggle-name".to_string(),
                "target".to_string(),
            ),
        ]
        .into(),
    );
    configmaps
        .create(&PostParams::default(), &hostile)
        .await
        .unwrap();
    fx.host
        .eventually(WAIT, || async {
            let refused = fx
                .host
                .metric_with("kubewasm_intents_total", &[("result", "refused")])
                .unwrap_or(0.0);
            anyhow::ensure!(refused >= 1.0, "no refused intent counted yet");
            Ok(())
        })
        .await;
    let target = others.get("target").await.unwrap();
    assert_eq!(probe::annotation(&target, MARK), None);
    assert!(
        target.metadata.annotations.unwrap_or_default().is_empty(),
        "the other namespace's ConfigMap was changed"
    );

    // ...and would be by the API server too: the account the host acts as
    // has no rights there.
    let user = format!("system:serviceaccount:{}:{ACCOUNT}", fx.ns.name());
    let as_account = fx.ns.control_plane().client_as(&user).await.unwrap();
    let patch = json!({"metadata": {"annotations": {MARK: "smuggled"}}});
    let refused = Api::<ConfigMap>::namespaced(as_account, other.name())
        .patch("target", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("the account may not write in another namespace");
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 403),
        "{refused}"
    );
}

#[tokio::test]
async fn a_plugin_whose_account_may_not_read_waits_for_the_grant() {
    let fx = Fixture::start("nsp-reads").await;
    // The module may be read, but nothing may be listed.
    let rules = json!([
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]},
    ]);
    team(&fx, rules).await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    let name = unique_name("probe");
    apply_plugin(&fx, &name, json!({"mark": "late"})).await;
    let status = status_until(&fx, &name, "ReadNotPermitted", |s| {
        condition(s, "Ready") == ("False", "ReadNotPermitted")
    })
    .await;
    let message = status["failed"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("list") && message.contains("configmaps"),
        "{status}"
    );
    let refused = event_notes(&fx, &name, "Refused").await;
    assert!(
        refused.iter().any(|n| n.contains("ReadNotPermitted")),
        "{refused:?}"
    );
    let a = configmaps.get("a").await.unwrap();
    assert_eq!(
        probe::annotation(&a, MARK),
        None,
        "served without read access"
    );

    // The team grants the reads (applied after the Plugin, as `kubectl
    // apply -f dir/` may do): the plugin serves without another change.
    let role = json!({"rules": full_rules()});
    fx.ns
        .api::<Role>()
        .patch(ACCOUNT, &PatchParams::default(), &Patch::Merge(&role))
        .await
        .unwrap();
    fx.marked("a", "late").await;
    status_until(&fx, &name, "Ready", |s| {
        condition(s, "Ready") == ("True", "Serving")
    })
    .await;
}
