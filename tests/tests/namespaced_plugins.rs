//! Namespaced `Plugin` resources on the real control plane: a team's
//! plugin runs only in its namespace and writes as the ServiceAccount it
//! names, so the API server, not only the host, bounds what it can change.
//!
//! The hosts here authenticate as the cluster admin, who may impersonate
//! anyone; the ServiceAccount's own RBAC is what each write is checked
//! against, which the tests show by taking it away.

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::cluster_plugins::{Fixture, SELECTOR_LABEL, WAIT, condition, host_args};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::host::component;
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::service_account::HostAccount;
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::{Value, json};

const ACCOUNT: &str = "team-bot";

/// The team's side: a ServiceAccount, a Role with `rules` bound to it, and
/// the probe's module in a ConfigMap.
async fn team(fx: &Fixture, rules: Value) {
    team_in(&fx.ns, rules).await
}

/// [`team`] in namespace `team`.
async fn team_in(team: &TestNamespace, rules: Value) {
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
    apply_plugin_in(&fx.ns, &fx.selector, name, settings).await
}

/// [`apply_plugin`] in namespace `ns`, for the host serving `selector`.
async fn apply_plugin_in(ns: &TestNamespace, selector: &str, name: &str, settings: Value) {
    let object = json!({
        "apiVersion": "kubewasm.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": name, "labels": {SELECTOR_LABEL: selector}},
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
    plugins(ns)
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
    // What it did shows in the status too (written every 2 s here, 30 s by
    // default).
    let status = status_until(&fx, &name, "counts", |s| {
        s["counts"]["reconciles"].as_i64() >= Some(1)
            && s["counts"]["writes"].as_i64() >= Some(1)
            && s["lastReconcileTime"].is_string()
    })
    .await;
    assert_eq!(status["counts"]["errors"], 0, "{status}");
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
        managers.contains(&format!("kubewasm/{}/probe", fx.ns.name())),
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

    // Access revoked: the next check (every poll, or now, on
    // `requested-at`) unloads the plugin.
    let revoked = json!({"rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]},
    ]});
    fx.ns
        .api::<Role>()
        .patch(ACCOUNT, &PatchParams::default(), &Patch::Merge(&revoked))
        .await
        .unwrap();
    let requested = json!({"metadata": {"annotations": {"kubewasm.dev/requested-at": "1"}}});
    plugins(&fx.ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(&requested))
        .await
        .unwrap();
    status_until(&fx, &name, "unloaded", |s| {
        condition(s, "Ready") == ("False", "ReadNotPermitted") && s["serving"].is_null()
    })
    .await;
    fx.host
        .logged(WAIT, "access revoked: plugin unloaded")
        .await;
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let b = configmaps.get("b").await.unwrap();
    assert_eq!(
        probe::annotation(&b, MARK),
        None,
        "served after the access was revoked"
    );
}

/// `kubectl apply --server-side` of files under `deploy/`.
async fn apply_deploy(files: &[&str]) {
    let dir = kubewasm_e2e::deploy::deploy_dir();
    let mut args = vec!["apply".to_string(), "--server-side".to_string()];
    for file in files {
        args.push("-f".into());
        args.push(dir.join(file).to_string_lossy().into_owned());
    }
    kubewasm_e2e::deploy::kubectl(args.iter().map(String::as_str), None)
        .await
        .expect("deploy files apply");
}

/// Binds ClusterRole `role` to user `user` in `ns`.
async fn bind_user(ns: &TestNamespace, user: &str, kind: &str, role: &str) {
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

#[tokio::test]
async fn two_teams_run_the_same_plugin_side_by_side_in_one_host() {
    let fx = Fixture::start("nsp-team-a").await;
    let team_b = TestNamespace::create("nsp-team-b").await.unwrap();
    team(&fx, full_rules()).await;
    team_in(&team_b, full_rules()).await;
    let (a_maps, b_maps): (Api<ConfigMap>, Api<ConfigMap>) = (fx.ns.api(), team_b.api());
    probe::create_configmap(&a_maps, "x", "mark", &[]).await;
    probe::create_configmap(&b_maps, "x", "mark", &[]).await;

    // The same component (describe name `probe`), two settings, one host.
    apply_plugin(&fx, "probe", json!({"mark": "from-a"})).await;
    apply_plugin_in(&team_b, &fx.selector, "probe", json!({"mark": "from-b"})).await;
    fx.marked("x", "from-a").await;
    fx.host
        .eventually(WAIT, || async {
            let x = b_maps.get("x").await?;
            let mark = probe::annotation(&x, MARK);
            anyhow::ensure!(mark.as_deref() == Some("from-b"), "team-b's x: {mark:?}");
            Ok(())
        })
        .await;
    for ns in [&fx.ns, &team_b] {
        let status = plugins(ns).get("probe").await.unwrap().data["status"].clone();
        assert_eq!(condition(&status, "Ready"), ("True", "Serving"), "{status}");
        let x = ns.api::<ConfigMap>().get("x").await.unwrap();
        let managers: Vec<String> = x
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(
            managers.contains(&format!("kubewasm/{}/probe", ns.name())),
            "{managers:?}"
        );
    }
    // Each team's queue and metrics are its own.
    for ns in [&fx.ns, &team_b] {
        let id = format!("{}/probe", ns.name());
        let ok = fx.host.metric_with(
            "kubewasm_reconciles_total",
            &[("plugin", &id), ("result", "ok")],
        );
        assert!(
            ok.is_some_and(|n| n >= 1.0),
            "no ok reconcile counted for {id}"
        );
    }
}
