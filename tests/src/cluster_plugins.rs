//! `ClusterPlugin` fixtures for the plugin-resource tests: a namespace, a
//! host serving only the ClusterPlugins labelled with the test's own
//! selector (`--plugin-selector`), and helpers to apply them, wait on their
//! status, read their Events and push modules to the test registry.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::deploy::{deploy_dir, kubectl};
use crate::host::{Host, kubewasm_binary};
use crate::probe::{self, MARK};
use crate::registry::TestRegistry;
use crate::{TestNamespace, unique_name};

pub const WAIT: Duration = Duration::from_secs(120);
pub const SELECTOR_LABEL: &str = "e2e.kubewasm.dev/host";

pub async fn install_crds() {
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
pub struct Fixture {
    pub ns: TestNamespace,
    pub host: Host,
    pub plugins: Api<DynamicObject>,
    pub selector: String,
}

impl Fixture {
    pub async fn start(prefix: &str) -> Fixture {
        Self::start_with(prefix, &[]).await
    }

    /// [`start`](Self::start) with `extra` arguments for the host (e.g.
    /// limits).
    pub async fn start_with(prefix: &str, extra: &[&str]) -> Fixture {
        install_crds().await;
        let ns = TestNamespace::create(prefix).await.unwrap();
        let selector = unique_name(prefix);
        let mut args = host_args(&ns, &selector);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let host = Host::spawn(&ns, tempfile::tempdir().unwrap(), &args);
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
    pub async fn apply(&self, name: &str, module: Value, settings: Value) {
        self.apply_with(name, module, settings, json!({})).await
    }

    /// [`apply`](Self::apply) with the fields of `extra` (e.g. `dryRun`,
    /// `grants`) set in the spec.
    pub async fn apply_with(&self, name: &str, module: Value, settings: Value, extra: Value) {
        let mut object = json!({
            "apiVersion": "kubewasm.dev/v1alpha1",
            "kind": "ClusterPlugin",
            "metadata": {"name": name, "labels": {SELECTOR_LABEL: self.selector}},
            "spec": {
                "module": module,
                "settings": settings,
                "namespaces": [self.ns.name()],
                "grants": all_grants(),
            },
        });
        if let (Some(spec), Some(extra)) = (object["spec"].as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        apply_object(&self.plugins, name, &object).await;
    }

    /// Creates ConfigMap `name` in the test's namespace holding `bytes`
    /// under `binaryData[key]`: a module source for a ClusterPlugin.
    pub async fn module_configmap(&self, name: &str, key: &str, bytes: Vec<u8>) {
        let module: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name},
            "binaryData": {key: k8s_openapi::ByteString(bytes)},
        }))
        .expect("a ConfigMap");
        Api::<ConfigMap>::namespaced(self.ns.client().clone(), self.ns.name())
            .create(&kube::api::PostParams::default(), &module)
            .await
            .unwrap_or_else(|e| panic!("create module ConfigMap {name}: {e}"));
    }

    /// A `kubernetes.io/dockerconfigjson` Secret `registry` in the test's
    /// namespace with the test registry's credentials: a pull secret.
    pub async fn registry_secret(&self) {
        let registry = TestRegistry::shared().unwrap();
        let auth = std::fs::read(&registry.auth).unwrap();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "registry"},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": k8s_openapi::ByteString(auth)},
        }))
        .expect("a Secret");
        Api::<Secret>::namespaced(self.ns.client().clone(), self.ns.name())
            .create(&kube::api::PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("create the pull secret: {e}"));
    }

    /// Waits until `name`'s status satisfies `check`; returns the status.
    pub async fn status_until(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.status_in(&self.plugins, name, what, check).await
    }

    /// [`status_until`](Self::status_until) for an object of `api` (e.g.
    /// a namespaced Plugin).
    pub async fn status_in(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        self.host
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

    /// Waits until ConfigMap `cm` carries the probe's mark `mark`.
    pub async fn marked(&self, cm: &str, mark: &str) {
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
    pub async fn events(&self, name: &str, reason: &str) -> Vec<Event> {
        self.events_in("default", name, reason).await
    }

    /// Events in `namespace` about the object called `name`, with `reason`.
    pub async fn events_in(&self, namespace: &str, name: &str, reason: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.ns.client().clone(), namespace);
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

    pub async fn event_note(&self, name: &str, reason: &str) -> String {
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
pub fn spawn_host(ns: &TestNamespace, selector: &str) -> Host {
    let args = host_args(ns, selector);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Host::spawn(ns, tempfile::tempdir().unwrap(), &args)
}

/// The arguments of [`spawn_host`]'s host, for a host started otherwise
/// (e.g. as a ServiceAccount).
pub fn host_args(ns: &TestNamespace, selector: &str) -> Vec<String> {
    let registry = TestRegistry::shared().expect("test registry");
    let ca = registry.ca.to_str().unwrap().to_string();
    [
        "--plugin-resources",
        "--plugin-namespace",
        ns.name(),
        "--plugin-selector",
        &format!("{SELECTOR_LABEL}={selector}"),
        "--registry-ca",
        &ca,
        "--oci-cache",
        host_cache().to_str().unwrap(),
        "--plugin-status-interval",
        "2",
    ]
    .map(str::to_string)
    .to_vec()
}

/// The hosts' shared OCI blob cache for this test process. The caches of
/// test processes that have ended are removed on the way.
pub fn host_cache() -> std::path::PathBuf {
    let root = std::env::temp_dir().join("kubewasm-e2e-oci");
    let ended = |pid: &str| !std::path::Path::new("/proc").join(pid).exists();
    for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_ok() && ended(&name) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = root.join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Grants of every kind, written and read.
pub fn all_grants() -> Value {
    json!({
        "write": [{"group": "*", "kind": "*"}],
        "read": [{"group": "*", "kind": "*"}],
    })
}

/// Server-side applies `object` (a plugin resource) as `name`; panics
/// naming it if the API server refuses.
pub async fn apply_object(api: &Api<DynamicObject>, name: &str, object: &Value) {
    api.patch(
        name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {} {name}: {e}", object["kind"]));
}

pub fn condition<'a>(status: &'a Value, type_: &str) -> (&'a str, &'a str) {
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

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `kubewasm push FILE REF` with the test registry's credentials; returns
/// the pushed manifest digest. Push loads the component first, through the
/// same compile cache as the hosts the tests start.
pub fn push(file: &std::path::Path, reference: &str) -> String {
    let registry = TestRegistry::shared().unwrap();
    let output = Command::new(kubewasm_binary())
        .args(["push"])
        .arg(file)
        .arg(reference)
        .arg("--auth")
        .arg(&registry.auth)
        .arg("--ca")
        .arg(&registry.ca)
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
