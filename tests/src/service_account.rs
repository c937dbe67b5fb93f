//! The host as a non-admin user: a ServiceAccount with only the RBAC
//! `kubewasm rbac` generates for a plugin directory, and a kubeconfig that
//! authenticates as it with a TokenRequest token. Its requests are not
//! exempt from the API server's priority and fairness, as the admin's
//! (`system:masters`) are.
//!
//! ```no_run
//! use kubewasm_e2e::TestNamespace;
//! use kubewasm_e2e::service_account::HostAccount;
//!
//! # async fn run(plugins: tempfile::TempDir) -> anyhow::Result<()> {
//! let ns = TestNamespace::create("as-account").await?;
//! let account = HostAccount::create(&ns, plugins.path()).await?;
//! let host = kubewasm_e2e::host::Host::spawn_command(account.command(), plugins, &[]);
//! account.delete_rbac().await?;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};
use base64::Engine;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

use crate::host::kubewasm_binary;
use crate::{TestNamespace, unique_name};

/// The ServiceAccount's name in the test's namespace.
pub const ACCOUNT: &str = "kubewasm";

/// A ServiceAccount `kubewasm` in a test namespace, bound to the
/// ClusterRole `kubewasm rbac` prints for a plugin directory, and a
/// kubeconfig for it.
pub struct HostAccount {
    ns: TestNamespace,
    role: ClusterRole,
    role_name: String,
    token: String,
    kubeconfig: tempfile::TempDir,
}

impl HostAccount {
    /// Creates the account, applies the generated ClusterRole and binding
    /// (named uniquely) and writes a kubeconfig with a fresh token.
    pub async fn create(ns: &TestNamespace, plugins: &Path) -> anyhow::Result<Self> {
        Self::create_with(ns, plugins, |_| {}).await
    }

    /// [`create`](Self::create), with the generated ClusterRole changed by
    /// `edit` before it is applied (e.g. a verb taken away).
    pub async fn create_with(
        ns: &TestNamespace,
        plugins: &Path,
        edit: impl FnOnce(&mut ClusterRole),
    ) -> anyhow::Result<Self> {
        create_account(ns, ACCOUNT).await?;

        let role_name = unique_name("kubewasm-e2e");
        let output = Command::new(kubewasm_binary())
            .args(["rbac", "--plugins"])
            .arg(plugins)
            .args(["--name", &role_name, "--service-account", ACCOUNT])
            .args(["--namespace", ns.name()])
            .output()
            .context("failed to run kubewasm rbac")?;
        ensure!(
            output.status.success(),
            "kubewasm rbac failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout)?;
        let mut docs = text.split("\n---\n");
        let mut role: ClusterRole = serde_yaml::from_str(docs.next().context("no ClusterRole")?)?;
        let binding: ClusterRoleBinding =
            serde_yaml::from_str(docs.next().context("no ClusterRoleBinding")?)?;
        edit(&mut role);
        apply_role(ns, &role_name, &role).await?;
        let apply = PatchParams::apply("kubewasm-e2e").force();
        Api::<ClusterRoleBinding>::all(ns.client().clone())
            .patch(&role_name, &apply, &Patch::Apply(&binding))
            .await
            .context("failed to apply the generated ClusterRoleBinding")?;

        let token = token(ns, ACCOUNT).await?;
        let kubeconfig = tempfile::tempdir()?;
        std::fs::write(
            kubeconfig.path().join("kubeconfig"),
            token_kubeconfig(ns.control_plane().kubeconfig_path(), &token)?,
        )?;
        Ok(Self {
            ns: ns.clone(),
            role,
            role_name,
            token,
            kubeconfig,
        })
    }

    /// The user the API server sees: `system:serviceaccount:NS:kubewasm`.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{ACCOUNT}", self.ns.name())
    }

    /// A client authenticating as the account.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        self.ns.control_plane().client_with_token(&self.token).await
    }

    /// The account's kubeconfig.
    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.kubeconfig.path().join("kubeconfig")
    }

    /// The `kubewasm` binary authenticating as the account, for
    /// [`Host::spawn_command`](crate::host::Host::spawn_command).
    pub fn command(&self) -> Command {
        let mut command = Command::new(kubewasm_binary());
        command.env("KUBECONFIG", self.kubeconfig());
        command
    }

    /// The ClusterRole as applied.
    pub fn role(&self) -> &ClusterRole {
        &self.role
    }

    /// Applies `role` in place of the account's ClusterRole (e.g. with a
    /// verb taken away while the host runs).
    pub async fn apply_role(&self, role: &ClusterRole) -> anyhow::Result<()> {
        apply_role(&self.ns, &self.role_name, role).await
    }

    /// The `kubewasm` binary as in a pod of the account: the ServiceAccount
    /// token, CA and namespace at the standard path, bind-mounted in a
    /// private mount namespace (`unshare`, so nothing on the machine
    /// changes), the API server in `KUBERNETES_SERVICE_HOST`/`PORT`, no
    /// kubeconfig and a private home. Keep the returned files while the
    /// process runs.
    pub fn in_pod(&self) -> anyhow::Result<(Command, PodFiles)> {
        let kubeconfig = Kubeconfig::read_from(self.ns.control_plane().kubeconfig_path())?;
        let cluster = kubeconfig
            .clusters
            .first()
            .and_then(|c| c.cluster.clone())
            .context("the admin kubeconfig names no cluster")?;
        let ca = base64::engine::general_purpose::STANDARD.decode(
            cluster
                .certificate_authority_data
                .context("the admin kubeconfig has no CA data")?,
        )?;
        // What kubelet mounts into a pod: token, CA and namespace.
        let secrets = tempfile::tempdir()?;
        std::fs::write(secrets.path().join("token"), &self.token)?;
        std::fs::write(secrets.path().join("ca.crt"), ca)?;
        std::fs::write(secrets.path().join("namespace"), self.ns.name())?;
        let server: http::Uri = cluster
            .server
            .context("the cluster has no server")?
            .parse()?;
        let home = tempfile::tempdir()?;

        let mut command = Command::new("unshare");
        command.args(["--mount", "--propagation", "private"]);
        // Without root, a user namespace grants the mounts.
        let uid = Command::new("id").arg("-u").output()?.stdout;
        if String::from_utf8_lossy(&uid).trim() != "0" {
            command.arg("--map-root-user");
        }
        command
            .args(["sh", "-c", IN_POD, "in-pod"])
            .arg(secrets.path())
            .arg(kubewasm_binary())
            .env_remove("KUBECONFIG")
            .env("HOME", home.path())
            // The compiled-plugin cache of the machine, not of the private
            // home: the JavaScript plugin takes half a minute to compile.
            .env("KUBEWASM_COMPILE_CACHE", machine_compile_cache()?)
            .env(
                "KUBERNETES_SERVICE_HOST",
                server.host().context("no host in the server URL")?,
            )
            .env(
                "KUBERNETES_SERVICE_PORT",
                server
                    .port_u16()
                    .context("no port in the server URL")?
                    .to_string(),
            );
        Ok((
            command,
            PodFiles {
                _secrets: secrets,
                _home: home,
            },
        ))
    }

    /// Removes the cluster-scoped ClusterRole and binding (the namespaced
    /// account goes with the namespace).
    pub async fn delete_rbac(&self) -> anyhow::Result<()> {
        let dp = DeleteParams::default();
        let client = self.ns.client().clone();
        Api::<ClusterRoleBinding>::all(client.clone())
            .delete(&self.role_name, &dp)
            .await?;
        Api::<ClusterRole>::all(client)
            .delete(&self.role_name, &dp)
            .await?;
        Ok(())
    }
}

/// The mounted ServiceAccount files and the home of a
/// [`HostAccount::in_pod`] process, removed when dropped.
pub struct PodFiles {
    _secrets: tempfile::TempDir,
    _home: tempfile::TempDir,
}

/// Mounts `$1` at the ServiceAccount path in a private mount namespace,
/// then runs the rest of the arguments.
const IN_POD: &str = "set -e
mount -t tmpfs kubewasm-e2e /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind \"$1\" /run/secrets/kubernetes.io/serviceaccount
shift
exec \"$@\"";

/// The compile cache `kubewasm` uses by default for this user.
fn machine_compile_cache() -> anyhow::Result<PathBuf> {
    Ok(std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .context("HOME or XDG_CACHE_HOME is set")?
        .join("kubewasm/compiled"))
}

/// Applies `role` as ClusterRole `name`.
async fn apply_role(ns: &TestNamespace, name: &str, role: &ClusterRole) -> anyhow::Result<()> {
    Api::<ClusterRole>::all(ns.client().clone())
        .patch(
            name,
            &PatchParams::apply("kubewasm-e2e").force(),
            &Patch::Apply(role),
        )
        .await
        .context("failed to apply the generated ClusterRole")?;
    Ok(())
}

/// Creates ServiceAccount `name` in `ns`, with no RBAC of its own.
pub async fn create_account(ns: &TestNamespace, name: &str) -> anyhow::Result<()> {
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    ns.api::<ServiceAccount>()
        .create(&PostParams::default(), &account)
        .await
        .with_context(|| format!("failed to create the ServiceAccount {name}"))?;
    Ok(())
}

/// A fresh token of ServiceAccount `name` in `ns` (TokenRequest, the API
/// server's default lifetime), as kubelet mounts into a pod.
pub async fn token(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}}))?;
    ns.api::<ServiceAccount>()
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for {name} failed"))?
        .status
        .and_then(|s| s.token)
        .context("TokenRequest returned no token")
}

/// Creates ServiceAccount `name` in `ns` (with no RBAC of its own) and
/// returns a client that authenticates as it with a fresh token.
pub async fn account_client(ns: &TestNamespace, name: &str) -> anyhow::Result<kube::Client> {
    create_account(ns, name).await?;
    let token = token(ns, name).await?;
    ns.control_plane().client_with_token(&token).await
}

/// A kubeconfig for the cluster of `admin` (its server and CA) that
/// authenticates with `token` only.
fn token_kubeconfig(admin: &Path, token: &str) -> anyhow::Result<String> {
    let kubeconfig = Kubeconfig::read_from(admin)?;
    let cluster = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.clone())
        .context("the admin kubeconfig names no cluster")?;
    let server = cluster.server.context("the cluster has no server")?;
    // Whichever way the admin kubeconfig names the CA, passed on as is.
    let ca = match (
        cluster.certificate_authority_data,
        cluster.certificate_authority,
    ) {
        (Some(data), _) => ("certificate-authority-data", data),
        (None, Some(file)) => ("certificate-authority", file),
        (None, None) => anyhow::bail!("the admin kubeconfig has no CA"),
    };
    let mut cluster = json!({"server": server});
    cluster[ca.0] = json!(ca.1);
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": ACCOUNT}}],
        "current-context": "e2e",
    });
    Ok(serde_yaml::to_string(&config)?)
}
