//! Namespaced `Plugin` resources on the real control plane: a team's
//! plugin runs only in its namespace and writes as the ServiceAccount it
//! names, so the API server, not only the host, bounds what it can change.
//!
//! The hosts here authenticate as the cluster admin, who may impersonate
//! anyone; the ServiceAccount's own RBAC is what each write is checked
//! against, which the tests show by taking it away.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kubewasm_e2e::cluster_plugins::{Fixture, WAIT, condition};
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::teams::*;
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::json;

#[tokio::test]
async fn a_plugin_writes_in_its_namespace_as_its_service_account() {
    let fx = Fixture::start("nsp-writes").await;
    team(&fx, full_rules()).await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let name = unique_name("probe");
    let applied = std::time::Instant::now();
    apply_plugin(&fx, &name, json!({"mark": "team"})).await;
    fx.marked("a", "team").await;
    // Fetch as the account, load (compile cache), access reviews, then
    // the first write as the account (`--nocapture` shows it).
    eprintln!(
        "Plugin applied → first object written as its account: {} ms",
        applied.elapsed().as_millis()
    );
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
    let managers = managers(&written);
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
        let managers = managers(&x);
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

/// The field managers of `cm`'s `managedFields`.
fn managers(cm: &ConfigMap) -> Vec<String> {
    let fields = cm.metadata.managed_fields.as_deref().unwrap_or_default();
    fields.iter().filter_map(|m| m.manager.clone()).collect()
}

#[tokio::test]
async fn a_service_account_name_that_would_name_another_user_is_refused() {
    let fx = Fixture::start("nsp-sa-name").await;
    // `system:serviceaccount:NS:bot:admin` is not the account `bot`; the
    // name goes into the Impersonate-User header, so the API server refuses
    // it before the host could see it.
    let object = json!({
        "apiVersion": "kubewasm.dev/v1alpha1",
        "kind": "Plugin",
        "metadata": {"name": "borrowed"},
        "spec": {
            "module": {"configMap": {"name": "probe-module", "key": "probe.wasm"}},
            "serviceAccountName": "bot:admin",
            "grants": {"write": [], "read": []},
        },
    });
    let refused = plugins(&fx.ns)
        .patch(
            "borrowed",
            &PatchParams::apply("e2e"),
            &Patch::Apply(&object),
        )
        .await
        .expect_err("a ServiceAccount name with a colon");
    let message = refused.to_string();
    assert!(message.contains("spec.serviceAccountName"), "{message}");
}
