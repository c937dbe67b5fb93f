//! Helpers for kubewasm's end-to-end tests against a real Kubernetes control
//! plane.
//!
//! Every test that talks to Kubernetes gets its cluster from here:
//!
//! - [`ControlPlane::shared`] returns the control plane of this test process.
//!   If `KUBEWASM_TEST_KUBECONFIG` names a kubeconfig, that cluster is used
//!   as is. Otherwise the first caller starts etcd and kube-apiserver with
//!   `tests/control-plane/cluster.sh up` in a private data directory (building
//!   them first if the cache is empty), and a watchdog process stops it with
//!   `cluster.sh down` as soon as the test process exits, however it exits:
//!   passing, failing, panicking or killed.
//! - [`TestNamespace::create`] gives a test its own fresh namespace and an
//!   admin [`kube::Client`].
//! - [`unique_name`] and [`unique_api_group`] name cluster-scoped objects
//!   (CRDs, ClusterRoles) so tests never collide, even on a shared cluster.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::api::{Api, PostParams};
//! use kubewasm_e2e::TestNamespace;
//!
//! async fn creates_a_configmap() -> anyhow::Result<()> {
//!     let ns = TestNamespace::create("configmap").await?;
//!     let configmaps: Api<ConfigMap> = ns.api();
//!     let mut cm = ConfigMap::default();
//!     cm.metadata.name = Some("settings".into());
//!     configmaps.create(&PostParams::default(), &cm).await?;
//!     assert!(configmaps.get_opt("settings").await?.is_some());
//!     Ok(())
//! }
//! ```
//!
//! Environment:
//!
//! | Variable | Effect |
//! |---|---|
//! | `KUBEWASM_TEST_KUBECONFIG` | Use this cluster instead of starting one. |
//! | `KUBEWASM_CP_CONTROLLER_MANAGER=1` | Also start kube-controller-manager (garbage collection, namespace deletion). |
//! | `KUBEWASM_CACHE_DIR` | Where the control plane binaries are cached (default `~/.cache/kubewasm`). |
//!
//! The control plane is per test *process*: `cargo test` runs all tests of
//! one test binary in one process and so starts one control plane per test
//! binary. A runner that gives each test its own process (cargo-nextest)
//! would start one per test; point it at a running cluster instead
//! (`eval "$(tests/control-plane/cluster.sh env)"`).

pub mod cluster_plugins;
pub mod crd;
pub mod deploy;
pub mod faults;
pub mod host;
pub mod peers;
pub mod probe;
pub mod process;
pub mod registry;
pub mod service_account;
pub mod sidebyside;
pub mod teams;
pub mod writes;

use std::collections::BTreeMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};

/// Environment variable naming the kubeconfig of an existing cluster to test
/// against; when unset the tests start their own control plane.
pub const KUBECONFIG_ENV: &str = "KUBEWASM_TEST_KUBECONFIG";

/// Label put on every namespace a test creates; its value is [`run_id`].
pub const RUN_LABEL: &str = "e2e.kubewasm.dev/run";

/// The control plane the tests of this process run against.
///
/// Obtain it with [`ControlPlane::shared`]. It lives until the test process
/// exits; a control plane this process started is then stopped and its data
/// directory removed by the watchdog.
#[derive(Debug)]
pub struct ControlPlane {
    kubeconfig_path: PathBuf,
    kubeconfig: Kubeconfig,
    server: String,
    admin_token: Option<String>,
    data_dir: Option<PathBuf>,
    /// `cluster.sh watchdog`, holding the read end of a pipe whose write end
    /// is this field's stdin. Never dropped (it lives in a static), so the
    /// pipe closes exactly when the process exits, and the watchdog then runs
    /// `cluster.sh down`. A pipe, unlike polling a pid, cannot be fooled by
    /// pid reuse and also fires when the process is killed with SIGKILL.
    _watchdog: Option<Mutex<Child>>,
}

static SHARED: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

impl ControlPlane {
    /// The control plane of this test process, started on first use.
    ///
    /// Uses the cluster of `KUBEWASM_TEST_KUBECONFIG` if set; otherwise runs
    /// `cluster.sh up` once (the first run on a machine also builds the
    /// binaries, which takes a long time; its progress goes to stderr). If
    /// starting fails, every caller gets the same error and no test retries.
    pub async fn shared() -> anyhow::Result<&'static ControlPlane> {
        let shared = tokio::task::spawn_blocking(|| {
            SHARED.get_or_init(|| Self::start().map_err(|e| format!("{e:#}")))
        })
        .await
        .context("the control plane start-up task failed")?;
        shared
            .as_ref()
            .map_err(|e| anyhow!("no control plane for the tests: {e}"))
    }

    fn start() -> anyhow::Result<Self> {
        if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
            return Self::from_kubeconfig(PathBuf::from(path), None, None);
        }
        let data_dir =
            std::env::temp_dir().join(format!("kubewasm-e2e-{}-{}", std::process::id(), run_id()));
        Self::up(data_dir, &[])
    }

    /// Starts a control plane with `cluster.sh up --dir DATA_DIR OPTIONS`,
    /// guarded by a watchdog that stops it when this process exits.
    fn up(data_dir: PathBuf, options: &[&str]) -> anyhow::Result<Self> {
        let script = Self::cluster_script();

        // Start the watchdog before `up`: if this process dies during a long
        // first build, the watchdog's `down` waits for `up` to finish (they
        // share a lock) and then stops what it started.
        let watchdog = Command::new("bash")
            .arg(&script)
            .arg("watchdog")
            .arg("--dir")
            .arg(&data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test's process group, so Ctrl-C reaches the tests
            // but not the watchdog that must clean up after them.
            .process_group(0)
            .spawn()
            .with_context(|| format!("failed to start {} watchdog", script.display()))?;

        let output = Command::new("bash")
            .arg(&script)
            .arg("up")
            .arg("--dir")
            .arg(&data_dir)
            .args(options)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("failed to run {} up", script.display()))?;
        if !output.status.success() {
            bail!(
                "`{} up --dir {}` failed ({}); its output is above",
                script.display(),
                data_dir.display(),
                output.status
            );
        }
        let kubeconfig = data_dir.join("kubeconfig");
        Self::from_kubeconfig(kubeconfig, Some(data_dir), Some(Mutex::new(watchdog)))
    }

    fn from_kubeconfig(
        kubeconfig_path: PathBuf,
        data_dir: Option<PathBuf>,
        watchdog: Option<Mutex<Child>>,
    ) -> anyhow::Result<Self> {
        let kubeconfig = Kubeconfig::read_from(&kubeconfig_path)
            .with_context(|| format!("failed to read kubeconfig {}", kubeconfig_path.display()))?;
        let context_name = kubeconfig
            .current_context
            .clone()
            .with_context(|| format!("{} has no current-context", kubeconfig_path.display()))?;
        let context = kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context_name)
            .and_then(|c| c.context.as_ref())
            .with_context(|| {
                format!(
                    "{}: context {context_name} not found",
                    kubeconfig_path.display()
                )
            })?;
        let server = kubeconfig
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .with_context(|| {
                format!(
                    "{}: cluster {} has no server",
                    kubeconfig_path.display(),
                    context.cluster
                )
            })?;
        let admin_token = context.user.as_ref().and_then(|user| {
            use secrecy::ExposeSecret;
            let auth = kubeconfig
                .auth_infos
                .iter()
                .find(|a| &a.name == user)?
                .auth_info
                .as_ref()?;
            Some(auth.token.as_ref()?.expose_secret().to_owned())
        });
        Ok(Self {
            kubeconfig_path,
            kubeconfig,
            server,
            admin_token,
            data_dir,
            _watchdog: watchdog,
        })
    }

    /// Path of `tests/control-plane/cluster.sh`, e.g. to run `kubectl`
    /// through it or to start a second, private control plane.
    pub fn cluster_script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("control-plane/cluster.sh")
    }

    /// The admin kubeconfig, to hand to the `kubewasm` binary or `kubectl`
    /// (`KUBECONFIG=<path>`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kube-apiserver URL, e.g. `https://127.0.0.1:24817`.
    pub fn server_url(&self) -> &str {
        &self.server
    }

    /// The admin bearer token (a member of `system:masters`), if the
    /// kubeconfig authenticates with one. Always set for a control plane
    /// started by this crate.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The data directory of a control plane this process started (logs are
    /// in its `logs/`), or `None` for a cluster from `KUBEWASM_TEST_KUBECONFIG`.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// A client authenticated as the cluster admin.
    ///
    /// Make one per test: a client belongs to the Tokio runtime it was made
    /// on, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::try_from(self.config().await?).context("failed to build the admin client")
    }

    /// A client for the same cluster that authenticates with `token` only,
    /// e.g. a ServiceAccount token from the TokenRequest API.
    pub async fn client_with_token(&self, token: &str) -> anyhow::Result<Client> {
        let mut config = self.config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        };
        Client::try_from(config).context("failed to build a client for a bearer token")
    }

    /// The admin client acting as `user` (the `Impersonate-User` header),
    /// e.g. `system:serviceaccount:NS:NAME`: what the API server lets that
    /// user do, without a token of its own.
    pub async fn client_as(&self, user: &str) -> anyhow::Result<Client> {
        let mut config = self.config().await?;
        config.auth_info.impersonate = Some(user.to_owned());
        Client::try_from(config).context("failed to build an impersonating client")
    }

    async fn config(&self) -> anyhow::Result<Config> {
        Config::from_custom_kubeconfig(self.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .with_context(|| {
                format!(
                    "failed to load kubeconfig {}",
                    self.kubeconfig_path.display()
                )
            })
    }
}

/// A namespace of its own for one test, with an admin client.
///
/// Its name is unique (see [`unique_name`]) and it carries the label
/// [`RUN_LABEL`]`=`[`run_id`]. A control plane started by this crate is
/// discarded whole after the run, so tests need not clean up; on a shared
/// cluster, call [`TestNamespace::delete`] at the end of a passing test, or
/// remove a run's namespaces with `kubectl delete ns -l e2e.kubewasm.dev/run`.
/// Without kube-controller-manager a deleted namespace stays `Terminating`.
#[derive(Clone)]
pub struct TestNamespace {
    name: String,
    client: Client,
    control_plane: &'static ControlPlane,
}

impl TestNamespace {
    /// Creates a fresh namespace named after `prefix` (e.g. the test name).
    pub async fn create(prefix: &str) -> anyhow::Result<Self> {
        Self::create_in(ControlPlane::shared().await?, prefix).await
    }

    /// Creates a fresh namespace in `control_plane` (e.g. a private one from
    /// [`ControlPlane::private`]).
    pub async fn create_in(
        control_plane: &'static ControlPlane,
        prefix: &str,
    ) -> anyhow::Result<Self> {
        let client = control_plane.client().await?;
        let name = unique_name(prefix);
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    RUN_LABEL.to_owned(),
                    run_id().to_owned(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("failed to create test namespace {name}"))?;
        Ok(Self {
            name,
            client,
            control_plane,
        })
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An admin client (see [`ControlPlane::client`]).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// An admin [`Api`] for namespaced resources of kind `K` in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// The `events.k8s.io/v1` Events in this namespace regarding object
    /// `name` with `reason`, as `kubectl events --for` shows them.
    pub async fn events(
        &self,
        name: &str,
        reason: &str,
    ) -> anyhow::Result<Vec<k8s_openapi::api::events::v1::Event>> {
        let events: Api<k8s_openapi::api::events::v1::Event> = self.api();
        let listed = events
            .list(&kube::api::ListParams::default().fields(&format!("regarding.name={name}")))
            .await?;
        Ok(listed
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect())
    }

    /// The control plane the namespace lives on.
    pub fn control_plane(&self) -> &'static ControlPlane {
        self.control_plane
    }

    /// Merges `labels` (a JSON object) into the namespace's labels.
    pub async fn label(&self, labels: serde_json::Value) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client.clone())
            .patch(
                &self.name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"metadata": {"labels": labels}})),
            )
            .await
            .with_context(|| format!("failed to label namespace {}", self.name))?;
        Ok(())
    }

    /// The example `website` plugin's Website CRD, applied (it is
    /// cluster-scoped and shared by every test that needs it) and served:
    /// an admin [`Api`] for Websites in this namespace.
    pub async fn websites(&self) -> anyhow::Result<Api<kube::api::DynamicObject>> {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::core::{ApiResource, GroupVersionKind};
        let path = crate::host::repo().join("plugins/website/deploy/crd.yaml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        let crd: serde_json::Value = serde_saphyr::from_str(&text)?;
        Api::<CustomResourceDefinition>::all(self.client.clone())
            .patch(
                "websites.demo.kubewasm.dev",
                &PatchParams::apply("kubewasm-e2e").force(),
                &Patch::Apply(crd),
            )
            .await
            .context("failed to apply the Website CRD")?;
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("demo.kubewasm.dev", "v1alpha1", "Website"),
            "websites",
        );
        let websites = Api::namespaced_with(self.client.clone(), &self.name, &resource);
        eventually(Duration::from_secs(60), || async {
            websites.list(&Default::default()).await?;
            Ok(())
        })
        .await?;
        Ok(websites)
    }

    /// Deletes the namespace (and, once kube-controller-manager or the
    /// cluster's own controllers finalize it, everything in it).
    pub async fn delete(self) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::default())
            .await
            .with_context(|| format!("failed to delete test namespace {}", self.name))?;
        Ok(())
    }
}

/// A random id for this test process, in every [`unique_name`] and as the
/// value of [`RUN_LABEL`]. Eight lowercase hex digits.
pub fn run_id() -> &'static str {
    static RUN_ID: LazyLock<String> = LazyLock::new(|| {
        // RandomState is seeded from the OS's randomness; mixing in the pid
        // and clock only guards against a platform that seeds it weakly.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let hash = RandomState::new().hash_one((std::process::id(), nanos));
        format!("{:08x}", hash as u32)
    });
    &RUN_ID
}

/// A name no other test (in this or any other run) uses: `prefix`, then
/// [`run_id`], then a counter, e.g. `widgets-3f09a1c2-7`.
///
/// `prefix` is lowercased and anything other than `a-z`, `0-9` and `-`
/// becomes `-`, so the result is a valid DNS-1123 label (at most 63
/// characters) for namespaces and most object names.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("{}-{n}", run_id());
    let cleaned: String = prefix
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(63 - suffix.len() - 1)
        .collect();
    let prefix = match cleaned.trim_matches('-') {
        "" => "t",
        trimmed => trimmed,
    };
    format!("{prefix}-{suffix}")
}

/// A unique API group for a test's CustomResourceDefinitions, e.g.
/// `g-3f09a1c2-8.e2e.kubewasm.dev`: CRD names are `<plural>.<group>` and
/// cluster-scoped, so a unique group lets every test use plain kind names.
pub fn unique_api_group() -> String {
    format!("{}.e2e.kubewasm.dev", unique_name("g"))
}

/// Retries `attempt` until it succeeds or `timeout` passes, then returns the
/// last error. For effects the API server applies asynchronously (a CRD
/// being established, an RBAC binding reaching the authorizer's cache).
pub async fn eventually<T, F, Fut>(timeout: Duration, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("still failing after {timeout:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The font the benches draw their plots with (DejaVu Sans, Debian's
/// `fonts-dejavu-core`), loaded once for the rest of the process: plotters
/// keeps the bytes of a registered font for good.
pub fn plot_font() -> anyhow::Result<&'static [u8]> {
    static FONT: OnceLock<Vec<u8>> = OnceLock::new();
    if let Some(font) = FONT.get() {
        return Ok(font);
    }
    let path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(path).with_context(|| format!("failed to read {path}"))?;
    Ok(FONT.get_or_init(|| font))
}

/// The field managers recorded in an object's `managedFields`.
pub fn field_managers(metadata: &ObjectMeta) -> Vec<String> {
    metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn unique_names_are_distinct_dns_labels() {
        let a = unique_name("Reconcile_Status");
        let b = unique_name("Reconcile_Status");
        assert_ne!(a, b);
        assert!(a.starts_with("reconcile-status-"), "{a}");
        for name in [
            a,
            b,
            unique_name(""),
            unique_name("--"),
            unique_name(&"x".repeat(100)),
        ] {
            assert!(is_dns_label(&name), "{name:?} is not a DNS-1123 label");
        }
    }

    #[test]
    fn unique_api_groups_are_dns_subdomains() {
        let group = unique_api_group();
        assert!(group.ends_with(".e2e.kubewasm.dev"));
        assert!(group.split('.').all(is_dns_label), "{group}");
    }

    #[tokio::test]
    async fn eventually_returns_the_last_error_after_the_timeout() {
        let mut calls = 0;
        let result: anyhow::Result<()> = eventually(Duration::from_millis(250), || {
            calls += 1;
            let n = calls;
            async move { Err(anyhow!("attempt {n} failed")) }
        })
        .await;
        let message = format!("{:#}", result.unwrap_err());
        assert!(calls > 1, "retried only {calls} times");
        assert!(
            message.contains(&format!("attempt {calls} failed")),
            "{message}"
        );
    }
}
