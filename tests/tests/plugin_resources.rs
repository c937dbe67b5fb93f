//! Plugins shipped as `ClusterPlugin` resources into a running host, on the
//! real control plane and the real test registry: `kubectl apply` loads a
//! plugin from a ConfigMap or an OCI artifact, a new digest swaps it, a bad
//! module or bad settings leave the working version serving, and the
//! resource's status and Events say what serves and what failed.
//!
//! Each test runs its own host, which serves only the ClusterPlugins
//! labelled with the test's own selector (`--plugin-selector`), and confines
//! each plugin to the test's namespace (`spec.namespaces`).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kubewasm_e2e::deploy::{deploy_dir, kubectl};
use kubewasm_e2e::host::{self, Host, component, kubewasm_binary};
use kubewasm_e2e::probe::{self, MARK};
use kubewasm_e2e::registry::TestRegistry;
use kubewasm_e2e::{TestNamespace, unique_name};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(120);
const SELECTOR_LABEL: &str = "e2e.kubewasm.dev/host";

async fn install_crds() {
    let crds = deploy_dir().join("crds/kubewasm.dev.yaml");
    let crds = crds.to_str().expect("a UTF-8 repository path");
    kubectl(["apply", "--server-side", "-f", crds], None)
        .await
        .expect("CRDs apply");
    kubectl(
        [
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/clusterplugins.kubewasm.dev",
        ],
        None,
    )
    .await
    .expect("CRDs established");
}

/// A test's namespace, its host and the API of its ClusterPlugins.
struct Fixture {
    ns: TestNamespace,
    host: Host,
    plugins: Api<DynamicObject>,
    selector: String,
}

impl Fixture {
    async fn start(prefix: &str) -> Fixture {
        install_crds().await;
        let ns = TestNamespace::create(prefix).await.unwrap();
        let selector = unique_name(prefix);
        let host = spawn_host(&ns, &selector);
        let gvk = GroupVersionKind::gvk("kubewasm.dev", "v1alpha1", "ClusterPlugin");
        let plugins = Api::all_with(ns.client().clone(), &ApiResource::from_gvk(&gvk));
        Fixture {
            ns,
            host,
            plugins,
            selector,
        }
    }

    /// Applies ClusterPlugin `name` with `module` and `settings`, confined
    /// to the test's namespace and granted what the probe declares.
    async fn apply(&self, name: &str, module: Value, settings: Value) {
        let object = json!({
            "apiVersion": "kubewasm.dev/v1alpha1",
            "kind": "ClusterPlugin",
            "metadata": {"name": name, "labels": {SELECTOR_LABEL: self.selector}},
            "spec": {
                "module": module,
                "settings": settings,
                "namespaces": [self.ns.name()],
                "grants": {
                    "write": [{"group": "*", "kind": "*"}],
                    "read": [{"group": "*", "kind": "*"}],
                },
            },
        });
        self.plugins
            .patch(
                name,
                &PatchParams::apply("e2e").force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("apply ClusterPlugin {name}: {e}"));
    }

    /// Waits until `name`'s status satisfies `check`; returns the status.
    async fn status_until(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.host
            .eventually(WAIT, || async {
                let object = self.plugins.get(name).await?;
                let status = object.data.get("status").cloned().unwrap_or(Value::Null);
                anyhow::ensure!(
                    check(&status),
                    "{name}: waiting for {what}; status {status}"
                );
                Ok(status)
            })
            .await
    }

    /// Waits until ConfigMap `cm` carries the probe's mark `mark`.
    async fn marked(&self, cm: &str, mark: &str) {
        let configmaps: Api<ConfigMap> = self.ns.api();
        self.host
            .eventually(WAIT, || async {
                let found = probe::annotation(&configmaps.get(cm).await?, MARK);
                anyhow::ensure!(
                    found.as_deref() == Some(mark),
                    "{cm}: mark {found:?}, want {mark}"
                );
                Ok(())
            })
            .await
    }

    /// Events about ClusterPlugin `name` with `reason` (cluster-scoped
    /// objects' Events live in `default`).
    async fn events(&self, name: &str, reason: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.ns.client().clone(), "default");
        let listed = events
            .list(&kube::api::ListParams::default().fields(&format!("regarding.name={name}")))
            .await
            .unwrap();
        listed
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect()
    }

    async fn event_note(&self, name: &str, reason: &str) -> String {
        self.host
            .eventually(WAIT, || async {
                let events = self.events(name, reason).await;
                let note = events.last().and_then(|e| e.note.clone());
                note.ok_or_else(|| anyhow::anyhow!("no {reason} Event on {name} yet"))
            })
            .await
    }
}

/// A host serving the ClusterPlugins labelled with `selector`, reading
/// their modules in `ns`.
fn spawn_host(ns: &TestNamespace, selector: &str) -> Host {
    let registry = TestRegistry::shared().expect("test registry");
    let ca = registry.ca.to_str().unwrap().to_string();
    Host::spawn(
        ns,
        tempfile::tempdir().unwrap(),
        &[
            "--plugin-resources",
            "--plugin-namespace",
            ns.name(),
            "--plugin-selector",
            &format!("{SELECTOR_LABEL}={selector}"),
            "--registry-ca",
            &ca,
            "--oci-cache",
            host_cache().to_str().unwrap(),
        ],
    )
}

/// The hosts' shared OCI blob cache for this test process.
fn host_cache() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kubewasm-e2e-oci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn condition<'a>(status: &'a Value, type_: &str) -> (&'a str, &'a str) {
    let found = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_));
    match found {
        Some(c) => (
            c["status"].as_str().unwrap_or(""),
            c["reason"].as_str().unwrap_or(""),
        ),
        None => ("", ""),
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_configmap_module_serves_swaps_on_new_settings_and_keeps_serving_when_rejected() {
    let fx = Fixture::start("cp-configmap").await;
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    let modules: Api<ConfigMap> = fx.ns.api();
    let module: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "probe-module"},
        "binaryData": {"probe.wasm": ByteString(probe_bytes.clone())},
    }))
    .unwrap();
    modules
        .create(&PostParams::default(), &module)
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let name = unique_name("probe-cm");
    let source = json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}});
    fx.apply(&name, source.clone(), json!({"mark": "v1"})).await;
    fx.marked("a", "v1").await;
    let status = fx
        .status_until(&name, "Ready", |s| {
            condition(s, "Ready") == ("True", "Serving")
        })
        .await;
    assert_eq!(condition(&status, "Degraded"), ("False", "AsExpected"));
    assert_eq!(status["serving"]["name"], "probe");
    assert_eq!(status["serving"]["digest"], sha256(&probe_bytes));
    assert_eq!(status["observedGeneration"], 1);
    let loaded = fx.event_note(&name, "Loaded").await;
    assert!(
        loaded.contains("probe") && loaded.contains(&sha256(&probe_bytes)),
        "{loaded}"
    );

    // New settings: the plugin is swapped, existing objects resynced.
    fx.apply(&name, source.clone(), json!({"mark": "v2"})).await;
    fx.marked("a", "v2").await;
    fx.status_until(&name, "generation 2 serving", |s| {
        s["observedGeneration"] == 2 && condition(s, "Ready") == ("True", "Serving")
    })
    .await;
    fx.event_note(&name, "Swapped").await;

    // Settings the plugin rejects: v2 keeps serving, the status says why.
    fx.apply(&name, source, json!({"marc": "v3"})).await;
    let status = fx
        .status_until(&name, "Degraded", |s| {
            condition(s, "Degraded") == ("True", "SettingsRejected")
        })
        .await;
    assert_eq!(
        condition(&status, "Ready"),
        ("False", "PreviousVersionServing")
    );
    assert_eq!(status["serving"]["digest"], sha256(&probe_bytes));
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("marc")),
        "{status}"
    );
    let refused = fx.event_note(&name, "LoadFailed").await;
    assert!(refused.contains("still serving: probe"), "{refused}");
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    fx.marked("b", "v2").await;

    // Deleted: unloaded.
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.host
        .logged(WAIT, "ClusterPlugin deleted; plugin unloaded")
        .await;
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_missing_module_or_bad_settings_degrade_only_that_plugin() {
    let fx = Fixture::start("cp-isolation").await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    let module: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "probe-module"},
        "binaryData": {"probe.wasm": ByteString(probe_bytes)},
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &module)
        .await
        .unwrap();

    let missing = unique_name("missing");
    fx.apply(
        &missing,
        json!({"configMap": {"name": "no-such-configmap", "key": "p.wasm"}}),
        json!({}),
    )
    .await;
    let rejected = unique_name("rejected");
    fx.apply(
        &rejected,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"unknown": true}),
    )
    .await;
    let status = fx
        .status_until(&missing, "SourceNotFound", |s| {
            condition(s, "Ready") == ("False", "SourceNotFound")
        })
        .await;
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-configmap")),
        "{status}"
    );
    let status = fx
        .status_until(&rejected, "SettingsRejected", |s| {
            condition(s, "Ready") == ("False", "SettingsRejected")
        })
        .await;
    assert!(status.get("serving").is_none_or(Value::is_null), "{status}");

    // A good plugin beside them serves; the host is ready.
    let good = unique_name("good");
    fx.apply(
        &good,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"mark": "ok"}),
    )
    .await;
    probe::create_configmap(&configmaps, "c", "mark", &[]).await;
    fx.marked("c", "ok").await;
    let addr = fx.host.wait_admin_addr(WAIT).await;
    let (code, body) = host::http_get(addr, "/readyz").unwrap();
    assert_eq!(code, 200, "{body}");

    // The missing ConfigMap appears: that plugin loads on the next retry,
    // and is refused as a duplicate of the good one, naming it.
    let later: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "no-such-configmap"},
        "binaryData": {"p.wasm": ByteString(std::fs::read(component("probe")).unwrap())},
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &later)
        .await
        .unwrap();
    let status = fx
        .status_until(&missing, "DuplicateName", |s| {
            condition(s, "Ready") == ("False", "DuplicateName")
        })
        .await;
    assert!(
        status["failed"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&good)),
        "{status}"
    );
    for name in [&missing, &rejected, &good] {
        fx.plugins
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    fx.ns.delete().await.unwrap();
}

/// `kubewasm push FILE REF` with the test registry's credentials; returns
/// the pushed manifest digest.
fn push(file: &std::path::Path, reference: &str) -> String {
    let registry = TestRegistry::shared().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let output = Command::new(kubewasm_binary())
        .args(["push"])
        .arg(file)
        .arg(reference)
        .arg("--auth")
        .arg(&registry.auth)
        .arg("--ca")
        .arg(&registry.ca)
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "push failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let digest = stdout
        .split('@')
        .nth(1)
        .map(|d| d.trim().to_string())
        .unwrap_or_else(|| panic!("no digest in {stdout}"));
    assert!(digest.starts_with("sha256:"), "{stdout}");
    digest
}

#[tokio::test]
async fn an_oci_module_swaps_when_its_tag_moves_and_a_bad_digest_keeps_the_old() {
    let fx = Fixture::start("cp-oci").await;
    let registry = TestRegistry::shared().unwrap();
    let secrets: Api<Secret> = fx.ns.api();
    let auth = std::fs::read(&registry.auth).unwrap();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("registry".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        data: Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(auth),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = fx.ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;

    let reference = registry.reference(&format!("e2e/{}", unique_name("probe")), "stable");
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.wasm");
    std::fs::copy(component("probe"), &v1).unwrap();
    let digest1 = push(&v1, &reference);

    let name = unique_name("probe-oci");
    let module = json!({"oci": {"reference": reference, "pullSecret": {"name": "registry"}}});
    fx.apply(&name, module, json!({"mark": "oci"})).await;
    fx.marked("a", "oci").await;
    let status = fx
        .status_until(&name, "serving v1", |s| {
            s["serving"]["digest"] == digest1.as_str()
        })
        .await;
    assert_eq!(status["resolved"]["digest"], digest1.as_str());
    assert_eq!(status["resolved"]["reference"], reference.as_str());

    // A new build under the same tag, then a nudge: swapped to it.
    let v2 = dir.path().join("v2.wasm");
    let probe_bytes = std::fs::read(component("probe")).unwrap();
    std::fs::write(
        &v2,
        host::variant(&probe_bytes, "kubewasm-e2e-variant", b"2"),
    )
    .unwrap();
    let digest2 = push(&v2, &reference);
    assert_ne!(digest1, digest2);
    let nudged = Instant::now();
    fx.plugins
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"kubewasm.dev/requested-at": "1"}}})),
        )
        .await
        .unwrap();
    let status = fx
        .status_until(&name, "serving v2", |s| {
            s["serving"]["digest"] == digest2.as_str()
        })
        .await;
    let swap = nudged.elapsed();
    println!(
        "pull + swap after the tag moved: {} ms (status observed)",
        swap.as_millis()
    );
    assert_eq!(condition(&status, "Ready"), ("True", "Serving"));
    let swapped = fx.event_note(&name, "Swapped").await;
    assert!(
        swapped.contains(&digest1) && swapped.contains(&digest2),
        "{swapped}"
    );

    // A digest the registry does not have: v2 keeps serving.
    let missing = format!(
        "{}@sha256:{}",
        reference.rsplit_once(':').unwrap().0,
        "0".repeat(64)
    );
    fx.apply(
        &name,
        json!({"oci": {"reference": missing, "pullSecret": {"name": "registry"}}}),
        json!({"mark": "oci"}),
    )
    .await;
    let status = fx
        .status_until(&name, "PullFailed", |s| {
            condition(s, "Degraded").0 == "True"
        })
        .await;
    assert_eq!(
        condition(&status, "Ready"),
        ("False", "PreviousVersionServing")
    );
    assert_eq!(status["serving"]["digest"], digest2.as_str());
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    fx.marked("b", "oci").await;
    fx.plugins
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    fx.ns.delete().await.unwrap();
}

#[tokio::test]
async fn a_restarted_host_is_ready_only_once_every_listed_plugin_settled() {
    let fx = Fixture::start("cp-ready").await;
    let configmaps: Api<ConfigMap> = fx.ns.api();
    let module: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "probe-module"},
        "binaryData": {"probe.wasm": ByteString(std::fs::read(component("probe")).unwrap())},
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &module)
        .await
        .unwrap();
    let good = unique_name("good");
    fx.apply(
        &good,
        json!({"configMap": {"name": "probe-module", "key": "probe.wasm"}}),
        json!({"mark": "first"}),
    )
    .await;
    let missing = unique_name("missing");
    fx.apply(
        &missing,
        json!({"configMap": {"name": "no-such-configmap", "key": "p.wasm"}}),
        json!({}),
    )
    .await;
    fx.status_until(&good, "Ready", |s| condition(s, "Ready").0 == "True")
        .await;

    // A second host starting with both already there: once it says it is
    // ready, the good plugin serves in it and the bad one was reported.
    let restarted = spawn_host(&fx.ns, &fx.selector);
    let addr = restarted.wait_admin_addr(WAIT).await;
    restarted
        .eventually(WAIT, || async {
            let (code, body) = host::http_get(addr, "/readyz")?;
            anyhow::ensure!(code == 200, "not ready: {body}");
            Ok(())
        })
        .await;
    let log = restarted.log();
    let line = |needle: &[&str]| {
        log.lines()
            .position(|l| needle.iter().all(|n| l.contains(n)))
    };
    let settled = line(&["plugin resources settled"]);
    let loaded = line(&["plugin installed", "plugin=probe"]);
    let reported = line(&["plugin resource not loaded", &missing]);
    assert!(
        settled.is_some() && loaded < settled && reported < settled && loaded.is_some(),
        "ready before settling: {log}"
    );
    for name in [&missing, &good] {
        fx.plugins
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    fx.ns.delete().await.unwrap();
}
