//! Host-managed finalizers end to end: the `kubewasm run` binary with the
//! `website` plugin (finalizer `kubewasm.dev/website` on Websites) against
//! the real control plane, and `kubewasm release-finalizers` for a plugin
//! that is gone.
//!
//! The control plane runs no garbage collector, so a child ConfigMap that
//! disappears was deleted by the plugin's cleanup, and one that stays was
//! not.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Resource, ResourceExt};
use kubewasm_e2e::host::{Host, command};
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const FINALIZER: &str = "kubewasm.dev/website";

fn host(ns: &TestNamespace) -> Host {
    Host::start(ns, &[("website", None)], &["--namespace", ns.name()])
}

async fn create_website(websites: &Api<DynamicObject>, name: &str) {
    let site: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": name},
        "spec": {"title": "Hello", "content": "Cleaned up by Wasm."}
    }))
    .unwrap();
    websites
        .create(&PostParams::default(), &site)
        .await
        .unwrap();
}

/// Waits for the Website's child ConfigMap, then checks the Website
/// already carries the finalizer: the host adds it before the intents of
/// the first reconcile that writes, so it can never be missing once the
/// child exists.
async fn wait_for_child(
    host: &Host,
    ns: &TestNamespace,
    websites: &Api<DynamicObject>,
    name: &str,
) {
    let configmaps: Api<ConfigMap> = ns.api();
    host.eventually(WAIT, || async { Ok(configmaps.get(name).await?) })
        .await;
    let site = websites.get(name).await.unwrap();
    assert_eq!(site.finalizers(), [FINALIZER], "{site:?}");
}

/// The Events about `name` with `reason`.
async fn events(ns: &TestNamespace, name: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = ns.api();
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

/// The resourceVersion at which `name` is deleted, watched from `from`
/// (etcd revisions: the API server's own write order), and when the test
/// saw it.
async fn deleted_at<K>(api: Api<K>, name: String, from: String) -> anyhow::Result<(u64, Instant)>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let mut stream = api
        .watch(&WatchParams::default().timeout(290), &from)
        .await?
        .boxed();
    while let Some(event) = stream.try_next().await? {
        if let WatchEvent::Deleted(object) = event
            && object.meta().name.as_deref() == Some(&name)
        {
            let rv = object.meta().resource_version.clone().unwrap_or_default();
            return Ok((rv.parse().context("resourceVersion")?, Instant::now()));
        }
    }
    bail!("the watch ended before {name} was deleted")
}

/// Watches for the deletion of `name` from now on.
async fn watch_deletion<K>(
    api: &Api<K>,
    name: &str,
) -> tokio::task::JoinHandle<anyhow::Result<(u64, Instant)>>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let from = api
        .list_metadata(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let (api, name) = (api.clone(), name.to_string());
    tokio::spawn(async move {
        tokio::time::timeout(WAIT, deleted_at(api, name, from))
            .await
            .context("not deleted in time")?
    })
}

fn metric(host: &Host, labels: &[(&str, &str)]) -> f64 {
    host.metric_with("kubewasm_intents_total", labels)
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_deleted_website_is_cleaned_up_before_it_goes() {
    let ns = TestNamespace::create("fin-cleanup").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let host = host(&ns);
    create_website(&websites, "blog").await;
    wait_for_child(&host, &ns, &websites, "blog").await;
    host.eventually(WAIT, || async {
        let added = metric(
            &host,
            &[
                ("plugin", "website"),
                ("type", "finalizer-add"),
                ("result", "applied"),
            ],
        );
        ensure!(added == 1.0, "finalizer-add applied {added} times");
        Ok(())
    })
    .await;

    let website_gone = watch_deletion(&websites, "blog").await;
    let child_gone = watch_deletion(&configmaps, "blog").await;
    let deleted = Instant::now();
    websites
        .delete("blog", &DeleteParams::default())
        .await
        .unwrap();
    let (website_rv, gone) = website_gone.await.unwrap().unwrap();
    eprintln!("Website delete → gone: {:?}", gone - deleted);
    let (child_rv, _) = child_gone.await.unwrap().unwrap();

    // The plugin's cleanup (the child deleted, the Finalized Event) landed
    // before the Website went, in the API server's own write order.
    assert!(
        child_rv < website_rv,
        "child deleted at {child_rv}, Website at {website_rv}"
    );
    // The first Finalized Event (the idempotent cleanup may run again
    // before the host sees the finalizer gone).
    let finalized = events(&ns, "blog", "Finalized").await;
    let event_rv: u64 = finalized
        .iter()
        .filter_map(|e| e.metadata.resource_version.as_deref()?.parse().ok())
        .min()
        .unwrap_or_else(|| panic!("no Finalized Event: {finalized:?}"));
    assert!(
        event_rv < website_rv,
        "Event at {event_rv}, Website gone at {website_rv}"
    );
    assert!(
        finalized[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("Deleted ConfigMap blog"),
        "{finalized:?}"
    );
    assert!(websites.get_opt("blog").await.unwrap().is_none());
    assert!(configmaps.get_opt("blog").await.unwrap().is_none());

    host.eventually(WAIT, || async {
        let removed = metric(
            &host,
            &[
                ("plugin", "website"),
                ("type", "finalizer-remove"),
                ("result", "applied"),
            ],
        );
        ensure!(removed == 1.0, "finalizer-remove applied {removed} times");
        // The deletion still reaches the plugin once the Website is gone.
        ensure!(
            host.log()
                .lines()
                .any(|l| l.contains("Website deleted") && l.contains("website=blog")),
            "the plugin has not seen the deletion"
        );
        Ok(())
    })
    .await;
    assert!(
        host.log().contains("finalizer-remove"),
        "the removal is logged"
    );
    ns.delete().await.unwrap();
}

/// A ValidatingAdmissionPolicy (and its binding) that refuses deleting
/// ConfigMaps in `ns`: the website's cleanup fails until it is unbound.
/// Returns the APIs of policies and bindings.
async fn refuse_configmap_deletes(
    ns: &TestNamespace,
    name: &str,
) -> (Api<DynamicObject>, Api<DynamicObject>) {
    let client = ns.client().clone();
    let resource = |kind: &str, plural: &str| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind),
            plural,
        )
    };
    let policies: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    );
    let bindings: Api<DynamicObject> = Api::all_with(
        client,
        &resource(
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
        ),
    );
    let policy: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["DELETE"], "resources": ["configmaps"],
            }]},
            "validations": [{"expression": "false", "message": "ConfigMaps here may not be deleted (test)"}],
        }
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let binding: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": ns.name(),
            }}},
        }
    }))
    .unwrap();
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    // Policies reach the admission chain asynchronously: wait until a
    // dry-run delete of a canary is refused.
    let configmaps: Api<ConfigMap> = ns.api();
    let canary: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "canary"}})).unwrap();
    configmaps
        .create(&PostParams::default(), &canary)
        .await
        .unwrap();
    kubewasm_e2e::eventually(WAIT, || async {
        let refused = configmaps
            .delete("canary", &DeleteParams::default().dry_run())
            .await
            .is_err();
        ensure!(refused, "the policy does not refuse deletes yet");
        Ok(())
    })
    .await
    .unwrap();
    (policies, bindings)
}

#[tokio::test]
async fn a_failing_cleanup_keeps_the_website_until_it_succeeds() {
    let ns = TestNamespace::create("fin-failing").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let host = host(&ns);
    create_website(&websites, "shop").await;
    wait_for_child(&host, &ns, &websites, "shop").await;

    let name = unique_name("fin-refuse-deletes");
    let (policies, bindings) = refuse_configmap_deletes(&ns, &name).await;
    websites
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    // The cleanup fails and is retried with backoff; the Website stays,
    // terminating, with the finalizer; no Finalized Event.
    host.eventually(WAIT, || async {
        let failed = metric(
            &host,
            &[
                ("plugin", "website"),
                ("type", "delete"),
                ("result", "failed"),
            ],
        );
        ensure!(failed >= 2.0, "the cleanup failed {failed} times");
        Ok(())
    })
    .await;
    let site = websites.get("shop").await.unwrap();
    assert!(site.metadata.deletion_timestamp.is_some());
    assert_eq!(site.finalizers(), [FINALIZER]);
    assert!(configmaps.get_opt("shop").await.unwrap().is_some());
    assert!(events(&ns, "shop", "Finalized").await.is_empty());
    assert_eq!(
        metric(
            &host,
            &[("plugin", "website"), ("type", "finalizer-remove")]
        ),
        0.0
    );
    assert!(
        host.log().contains("ConfigMaps here may not be deleted"),
        "the refusal is logged"
    );

    // Fixed: the next retry cleans up and the Website goes.
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        ensure!(
            websites.get_opt("shop").await?.is_none(),
            "the Website is still there"
        );
        Ok(())
    })
    .await;
    assert!(configmaps.get_opt("shop").await.unwrap().is_none());
    // At least once: the child's deletion reconciles its owner, which can
    // run the (idempotent) cleanup again before the host sees the
    // finalizer gone.
    assert!(!events(&ns, "shop", "Finalized").await.is_empty());
    policies
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    ns.delete().await.unwrap();
}

/// Runs `kubewasm release-finalizers ARGS` against the test cluster.
fn release_finalizers(ns: &TestNamespace, args: &[&str]) -> (bool, String, String) {
    let output = command(ns.control_plane())
        .arg("release-finalizers")
        .args(args)
        .output()
        .expect("kubewasm release-finalizers runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_unloaded_plugins_finalizer_blocks_deletion_until_released() {
    let ns = TestNamespace::create("fin-release").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let host = host(&ns);
    create_website(&websites, "docs").await;
    wait_for_child(&host, &ns, &websites, "docs").await;

    // The plugin is removed: the host warns that its finalizer is orphaned
    // and names the command that releases it.
    std::fs::remove_file(host.plugin_dir().join("website.wasm")).unwrap();
    host.logged(WAIT, "finalizer is no longer managed").await;
    assert!(
        host.log().contains(
            "kubewasm release-finalizers --finalizer kubewasm.dev/website --kind Website.demo.kubewasm.dev"
        ),
        "{}",
        host.log()
    );
    websites
        .delete("docs", &DeleteParams::default())
        .await
        .unwrap();
    // Nothing removes the finalizer: the Website stays, terminating.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let site = websites.get("docs").await.unwrap();
    assert!(site.metadata.deletion_timestamp.is_some());
    assert_eq!(site.finalizers(), [FINALIZER]);

    let kind = [
        "--kind",
        "Website.demo.kubewasm.dev",
        "--namespace",
        ns.name(),
    ];
    let (ok, out, err) = release_finalizers(
        &ns,
        &[&["--plugin", "website", "--dry-run"][..], &kind].concat(),
    );
    assert!(ok, "{out}{err}");
    let object = format!("Website.demo.kubewasm.dev {}/docs", ns.name());
    assert!(out.contains(&format!("would release {object}\n")), "{out}");
    assert!(
        out.contains("would release finalizer kubewasm.dev/website from 1 object (Website.demo.kubewasm.dev: 1); 0 failed"),
        "{out}"
    );
    assert_eq!(
        websites.get("docs").await.unwrap().finalizers(),
        [FINALIZER]
    );

    let (ok, out, err) =
        release_finalizers(&ns, &[&["--finalizer", FINALIZER][..], &kind].concat());
    assert!(ok, "{out}{err}");
    assert!(out.contains(&format!("released {object}\n")), "{out}");
    assert!(
        out.contains("released finalizer kubewasm.dev/website from 1 object"),
        "{out}"
    );
    kubewasm_e2e::eventually(WAIT, || async {
        ensure!(
            websites.get_opt("docs").await?.is_none(),
            "the Website is still there"
        );
        Ok(())
    })
    .await
    .unwrap();
    // No cleanup ran: the child stays (and, in a cluster with a garbage
    // collector, would go with its owner).
    assert!(configmaps.get_opt("docs").await.unwrap().is_some());

    // Nothing left to release; a kind the cluster does not serve is named.
    let (ok, out, _) = release_finalizers(&ns, &[&["--plugin", "website"][..], &kind].concat());
    assert!(ok);
    assert!(
        out.contains("released finalizer kubewasm.dev/website from 0 objects"),
        "{out}"
    );
    let (ok, _, err) =
        release_finalizers(&ns, &["--plugin", "website", "--kind", "Nope.example.com"]);
    assert!(!ok);
    assert!(
        err.contains("--kind Nope.example.com: the cluster serves no such kind"),
        "{err}"
    );
    ns.delete().await.unwrap();
}

#[tokio::test]
async fn other_finalizers_are_kept_and_a_terminating_object_without_ours_is_left_alone() {
    let ns = TestNamespace::create("fin-others").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let host = host(&ns);
    let site: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": "wiki", "finalizers": ["example.com/keep"]},
        "spec": {"title": "Hello", "content": "Two finalizers."}
    }))
    .unwrap();
    websites
        .create(&PostParams::default(), &site)
        .await
        .unwrap();
    host.eventually(WAIT, || async { Ok(configmaps.get("wiki").await?) })
        .await;
    // Appended to the list the host read, not replacing it.
    assert_eq!(
        websites.get("wiki").await.unwrap().finalizers(),
        ["example.com/keep", FINALIZER]
    );

    websites
        .delete("wiki", &DeleteParams::default())
        .await
        .unwrap();
    // The cleanup ran and only the host's own entry went.
    host.eventually(WAIT, || async {
        let site = websites.get("wiki").await?;
        ensure!(
            site.finalizers() == ["example.com/keep"],
            "finalizers: {:?}",
            site.finalizers()
        );
        Ok(())
    })
    .await;
    assert!(configmaps.get_opt("wiki").await.unwrap().is_none());
    let finalized = events(&ns, "wiki", "Finalized").await.len();
    assert!(finalized >= 1);
    // Still terminating, now without the plugin's finalizer: nothing of
    // the plugin's to clean up, so it is not called again.
    host.eventually(WAIT, || async {
        let skipped = host
            .metric_with(
                "kubewasm_reconciles_total",
                &[("plugin", "website"), ("result", "terminating")],
            )
            .unwrap_or(0.0);
        ensure!(skipped >= 1.0, "no reconcile skipped as terminating yet");
        Ok(())
    })
    .await;
    assert_eq!(events(&ns, "wiki", "Finalized").await.len(), finalized);

    // Whoever owns the other finalizer lets go: the Website goes, and the
    // plugin sees the deletion.
    let release: kube::api::Patch<()> = kube::api::Patch::Json(
        serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/keep"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
        ]))
        .unwrap(),
    );
    websites
        .patch("wiki", &Default::default(), &release)
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        ensure!(
            websites.get_opt("wiki").await?.is_none(),
            "the Website is still there"
        );
        ensure!(
            host.log()
                .lines()
                .any(|l| l.contains("Website deleted") && l.contains("website=wiki")),
            "the plugin has not seen the deletion"
        );
        Ok(())
    })
    .await;
    ns.delete().await.unwrap();
}
