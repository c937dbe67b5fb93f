//! The cluster loop end to end: the `kubewasm run` binary against the real
//! control plane, with the example plugins built by `plugins/build.sh`.
//! Everything asserted is what a user would see in the cluster.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use kubewasm_e2e::crd;
use kubewasm_e2e::host::{Host, http_get, sample};
use kubewasm_e2e::{TestNamespace, eventually, field_managers, unique_api_group};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

async fn label_namespace(ns: &TestNamespace, labels: serde_json::Value) {
    ns.label(labels).await.unwrap();
}

/// A label key no other test's host propagates: every label test runs its own
/// host, some of them cluster-wide, so a shared key like `team` would be
/// copied by one test's host into another test's namespace.
fn team_key(ns: &TestNamespace) -> String {
    format!("team-{}", ns.name())
}

fn config_map(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

#[tokio::test]
async fn label_propagator_labels_objects_of_several_kinds() {
    let ns = TestNamespace::create("loop-labels").await.unwrap();
    let team = team_key(&ns);
    let cost_center = format!("cost-center-{}", ns.name());
    label_namespace(&ns, json!({&team: "blue", &cost_center: "4711"})).await;
    let configmaps: Api<ConfigMap> = ns.api();
    configmaps
        .create(&PostParams::default(), &config_map("before-start"))
        .await
        .unwrap();

    let host = Host::start(
        &ns,
        &[(
            "label-propagator",
            Some(json!({"labels": [&team, &cost_center]})),
        )],
        &[],
    );

    // An object that existed before the host started is labelled...
    let existing = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("before-start").await?;
            anyhow::ensure!(
                cm.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(&team))
                    .map(String::as_str)
                    == Some("blue")
            );
            Ok(cm)
        })
        .await;
    assert_eq!(
        existing.metadata.labels.as_ref().unwrap()[&cost_center],
        "4711"
    );
    let managers = field_managers(&existing.metadata);
    assert!(
        managers.contains(&"kubewasm/label-propagator".to_string()),
        "field managers: {managers:?}"
    );
    // Its first reconcile waited for the Namespace informer it reads from:
    // no call failed on a cache still doing its first list.
    assert!(
        !host.log().contains("not synced yet"),
        "a reconcile ran before the plugin's caches were listed:\n{}",
        host.log()
    );

    // ...in every namespace, each with its own namespace's value...
    let other = TestNamespace::create("loop-labels-other").await.unwrap();
    label_namespace(&other, json!({&team: "green"})).await;
    let other_cms: Api<ConfigMap> = other.api();
    other_cms
        .create(&PostParams::default(), &config_map("elsewhere"))
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        let cm = other_cms.get("elsewhere").await?;
        let value = cm.metadata.labels.unwrap_or_default().get(&team).cloned();
        anyhow::ensure!(value.as_deref() == Some("green"), "{value:?}");
        Ok(())
    })
    .await;

    // ...and so are new objects of another kind.
    let deployments: Api<Deployment> = ns.api();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        let d = deployments.get("web").await?;
        anyhow::ensure!(
            d.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(&team))
                .map(String::as_str)
                == Some("blue")
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn namespace_flag_confines_the_host() {
    let inside = TestNamespace::create("loop-inside").await.unwrap();
    let outside = TestNamespace::create("loop-outside").await.unwrap();
    let team = team_key(&inside);
    for ns in [&inside, &outside] {
        label_namespace(ns, json!({&team: "green"})).await;
        ns.api::<ConfigMap>()
            .create(&PostParams::default(), &config_map("cm"))
            .await
            .unwrap();
    }
    let host = Host::start(
        &inside,
        &[("label-propagator", Some(json!({"labels": [&team]})))],
        &["--namespace", inside.name()],
    );
    let inside_cms: Api<ConfigMap> = inside.api();
    host.eventually(WAIT, || async {
        let cm = inside_cms.get("cm").await?;
        anyhow::ensure!(cm.metadata.labels.is_some_and(|l| l.contains_key(&team)));
        Ok(())
    })
    .await;
    // The inside object is done; the outside one must still be untouched.
    // Both existed before the host started, so its first list would have
    // queued both had it watched both namespaces.
    let cm = outside.api::<ConfigMap>().get("cm").await.unwrap();
    assert!(
        !cm.metadata.labels.unwrap_or_default().contains_key(&team),
        "an object outside --namespace was labelled"
    );
    let seen_outside = format!("object={}/", outside.name());
    assert_eq!(host.count(&seen_outside), 0, "{}", host.log());
}

#[tokio::test]
async fn dry_run_changes_nothing_but_logs_the_writes() {
    let ns = TestNamespace::create("loop-dry").await.unwrap();
    let team = team_key(&ns);
    label_namespace(&ns, json!({&team: "red"})).await;
    let configmaps: Api<ConfigMap> = ns.api();
    configmaps
        .create(&PostParams::default(), &config_map("dry"))
        .await
        .unwrap();
    let host = Host::start(
        &ns,
        &[("label-propagator", Some(json!({"labels": [&team]})))],
        &["--dry-run", "--namespace", ns.name()],
    );
    host.eventually(WAIT, || async {
        // The write the plugin intended, named by plugin, intent and object.
        let object = format!("ConfigMap {}/dry", ns.name());
        anyhow::ensure!(
            host.log()
                .lines()
                .any(|l| l.contains("dry run: sending with dryRun=All")
                    && l.contains("plugin=label-propagator")
                    && l.contains("intent=\"apply\"")
                    && l.contains(&object)),
            "no dry-run write of {object} logged yet"
        );
        Ok(())
    })
    .await;
    let cm = configmaps.get("dry").await.unwrap();
    assert!(!cm.metadata.labels.unwrap_or_default().contains_key(&team));
}

#[tokio::test]
async fn website_plugin_creates_child_and_reports_ready() {
    let ns = TestNamespace::create("loop-website").await.unwrap();
    let websites = ns.websites().await.unwrap();

    let host = Host::start(&ns, &[("website", None)], &[]);
    let site: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": "blog"},
        "spec": {"title": "Hello", "content": "Reconciled by Wasm."}
    }))
    .unwrap();
    websites
        .create(&PostParams::default(), &site)
        .await
        .unwrap();

    let configmaps: Api<ConfigMap> = ns.api();
    let child = host
        .eventually(WAIT, || async { Ok(configmaps.get("blog").await?) })
        .await;
    let owner = &child.metadata.owner_references.unwrap()[0];
    assert_eq!(owner.kind, "Website");
    assert_eq!(owner.name, "blog");
    assert_eq!(owner.controller, Some(true));
    assert!(
        child
            .data
            .unwrap()
            .values()
            .any(|html| html.contains("Hello"))
    );

    let ready = host
        .eventually(WAIT, || async {
            let site = websites.get("blog").await?;
            let conditions = site.data["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ready = conditions.iter().find(|c| c["type"] == "Ready").cloned();
            anyhow::ensure!(
                ready.as_ref().is_some_and(|c| c["status"] == "True"),
                "not ready: {:?}",
                site.data["status"]
            );
            Ok(site)
        })
        .await;
    assert_eq!(ready.data["status"]["observedGeneration"], 1);

    // The plugin reported its pending phase (and asked to be called again)
    // with an Event before the child showed up.
    let events: Api<k8s_openapi::api::core::v1::Event> = ns.api();
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some("blog"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"ChildCreated".to_string()), "{reasons:?}");

    // Deleting the Website delivers its last known state to the plugin.
    websites.delete("blog", &Default::default()).await.unwrap();
    host.eventually(WAIT, || async {
        let log = host.log();
        anyhow::ensure!(
            log.lines().any(|l| l.contains("Website deleted")
                && l.contains("website=blog")
                && l.contains("last_ready_reason=ChildReady")),
            "the plugin has not seen the deletion"
        );
        Ok(())
    })
    .await;
}

/// Polls until `host` says it is running.
async fn running(host: &Host) {
    host.eventually(WAIT, || async {
        anyhow::ensure!(host.log().contains("kubewasm running"), "not running yet");
        Ok(())
    })
    .await;
}

fn mark(annotations: Option<&std::collections::BTreeMap<String, String>>) -> Option<&str> {
    annotations?
        .get("probe.kubewasm.dev/mark")
        .map(String::as_str)
}

#[tokio::test]
async fn a_crd_created_at_runtime_is_reconciled_through_a_wildcard_subscription() {
    let ns = TestNamespace::create("loop-crd").await.unwrap();
    let client = ns.client().clone();
    let group = unique_api_group();
    // probe subscribes to `*/*/Gadget`: no Gadget kind exists yet.
    let host = Host::start(&ns, &[("probe", None)], &[]);
    running(&host).await;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds
        .create(
            &PostParams::default(),
            &crd::schemaless(&group, "Gadget", true),
        )
        .await
        .unwrap();
    let name = crd.metadata.name.unwrap();
    tokio::time::timeout(
        WAIT,
        await_condition(crds.clone(), &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .unwrap();
    let established = Instant::now();

    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Gadget"),
        "gadgets",
    );
    let gadgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &resource);
    let gadget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Gadget",
        "metadata": {"name": "first"}, "spec": {"size": 1}
    }))
    .unwrap();
    // The API server needs a moment (about 2 s here) before it serves the
    // new kind's objects; the host's part starts once one exists.
    eventually(WAIT, || async {
        Ok(gadgets.create(&PostParams::default(), &gadget).await?)
    })
    .await
    .unwrap();
    let accepted = established.elapsed();
    let created = Instant::now();
    let marked = host
        .eventually(WAIT, || async {
            let gadget = gadgets.get("first").await?;
            anyhow::ensure!(mark(gadget.metadata.annotations.as_ref()) == Some("seen"));
            Ok(created.elapsed())
        })
        .await;
    // Measurements, not assertions (the numbers are in tests/README.md).
    eprintln!(
        "measured: CRD established -> API server accepts a Gadget: {accepted:?}; \
         Gadget created -> reconciled and written by the plugin: {marked:?}"
    );

    // Deleting the CRD stops its informer and nothing else.
    crds.delete(&name, &Default::default()).await.unwrap();
    // Either the kind's removal stops it, or its last subscription going
    // away does (whichever the host notices first).
    let group_field = format!("group={group} ");
    host.eventually(WAIT, || async {
        let stopped = host.log().lines().any(|l| {
            (l.contains("stopped informer") || l.contains("stopping informer"))
                && l.contains(&group_field)
                && l.contains("kind=Gadget")
        });
        anyhow::ensure!(stopped, "Gadget informer still running");
        Ok(())
    })
    .await;
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "after", "labels": {"probe.kubewasm.dev/behave": "mark"}}
    }))
    .unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        let cm = configmaps.get("after").await?;
        anyhow::ensure!(mark(cm.metadata.annotations.as_ref()) == Some("seen"));
        Ok(())
    })
    .await;
    let log = host.log();
    let configmap_starts = log
        .lines()
        .filter(|l| l.contains("starting informer group= version=v1 kind=ConfigMap"))
        .count();
    assert_eq!(
        configmap_starts, 1,
        "the ConfigMap informer restarted:\n{log}"
    );
}

#[tokio::test]
async fn javascript_plugin_stamps_content_hashes() {
    let ns = TestNamespace::create("loop-js").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "settings", "labels": {"kubewasm.dev/hash": "true"}},
        "data": {"mode": "fast"}
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let host = Host::start(
        &ns,
        &[("configmap-hasher", None)],
        &["--namespace", ns.name()],
    );

    let hash_of = |cm: &ConfigMap| {
        cm.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubewasm.dev/content-hash").cloned())
    };
    // Compiling the 12 MB JavaScript component takes a while on a cold cache.
    let first = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("settings").await?;
            hash_of(&cm).ok_or_else(|| anyhow::anyhow!("no hash yet"))
        })
        .await;
    let cm = configmaps.get("settings").await.unwrap();
    let managers = field_managers(&cm.metadata);
    assert!(
        managers.contains(&"kubewasm/configmap-hasher".to_string()),
        "{managers:?}"
    );

    configmaps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"mode": "safe"}})),
        )
        .await
        .unwrap();
    let second = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("settings").await?;
            let hash = hash_of(&cm).unwrap_or_default();
            anyhow::ensure!(hash != first, "hash not updated yet");
            Ok(hash)
        })
        .await;
    assert!(!second.is_empty());
}

#[tokio::test]
async fn settings_a_plugin_rejects_stop_only_that_plugin() {
    let ns = TestNamespace::create("bad-settings").await.unwrap();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "marked", "labels": {"probe.kubewasm.dev/behave": "mark"}}
    }))
    .unwrap();
    ns.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    // A mark of this test's own: other tests' hosts may run probe cluster-wide.
    let mark = format!("only-{}", ns.name());
    let mut host = Host::start(
        &ns,
        &[
            ("label-propagator", Some(json!({"labels": []}))),
            ("probe", Some(json!({"mark": &mark}))),
        ],
        &["--namespace", ns.name()],
    );
    // The other plugin runs...
    host.eventually(WAIT, || async {
        let cm = ns.api::<ConfigMap>().get("marked").await?;
        let annotations = cm.metadata.annotations.unwrap_or_default();
        anyhow::ensure!(
            annotations.get("probe.kubewasm.dev/mark") == Some(&mark),
            "not marked by this host yet"
        );
        Ok(())
    })
    .await;
    // ...the host stays up, and the refused plugin is reported by name, once.
    assert!(host.is_running(), "the host exited:\n{}", host.log());
    let log = host.log();
    let reports = log
        .lines()
        .filter(|l| {
            l.contains("label-propagator.settings.json rejected by plugin label-propagator")
                && l.contains("name at least one label")
        })
        .count();
    assert_eq!(reports, 1, "{log}");
    let metrics = host.metrics().unwrap();
    let failing = r#"kubewasm_plugin_load_failing{file="label-propagator.wasm"}"#;
    assert_eq!(sample(&metrics, failing), Some(1.0), "{metrics}");
    let (status, _) = http_get(host.admin_addr().unwrap(), "/readyz").unwrap();
    assert_eq!(status, 200, "the host with one good plugin is ready");
}

#[tokio::test]
async fn strict_settings_refuse_the_start() {
    let ns = TestNamespace::create("strict-settings").await.unwrap();
    let mut host = Host::start(
        &ns,
        &[("label-propagator", Some(json!({"labels": []})))],
        &["--namespace", ns.name(), "--strict-settings"],
    );
    let status = host
        .wait(WAIT)
        .unwrap_or_else(|| panic!("the host kept running:\n{}", host.log()));
    assert_eq!(status.code(), Some(2), "{}", host.log());
    let last = host.log().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("error: invalid plugin settings: settings ")
            && last.contains("label-propagator.settings.json rejected by plugin label-propagator")
            && last.contains("name at least one label"),
        "{last}"
    );
}

#[tokio::test]
async fn a_plugin_that_asks_for_a_requeue_is_called_again_without_a_change() {
    let ns = TestNamespace::create("loop-requeue").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "again", "labels": {"probe.kubewasm.dev/behave": "requeue"}},
    }))
    .unwrap();
    let created = configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let host = Host::start(&ns, &[("probe", None)], &["--namespace", ns.name()]);

    // The probe writes nothing and asks for another call in 300 ms: the host
    // calls it again and again, each time as a resync of the same state.
    let requeued = format!("object={}/again reason=Resync", ns.name());
    host.eventually(WAIT, || async {
        let calls = host
            .log()
            .lines()
            .filter(|l| l.contains(&requeued) && l.contains("reconcile started"))
            .count();
        anyhow::ensure!(calls >= 3, "{calls} requeued calls so far");
        Ok(())
    })
    .await;
    let now = configmaps.get("again").await.unwrap();
    assert_eq!(
        now.metadata.resource_version, created.metadata.resource_version,
        "the calls were requeues, not changes"
    );
}
