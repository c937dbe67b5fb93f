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

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};
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
    role_name: String,
    token: String,
    kubeconfig: tempfile::TempDir,
}

impl HostAccount {
    /// Creates the account, applies the generated ClusterRole and binding
    /// (named uniquely) and writes a kubeconfig with a fresh token.
    pub async fn create(ns: &TestNamespace, plugins: &Path) -> anyhow::Result<Self> {
        let accounts: Api<ServiceAccount> = ns.api();
        let account: ServiceAccount =
            serde_json::from_value(json!({"metadata": {"name": ACCOUNT}}))?;
        accounts
            .create(&PostParams::default(), &account)
            .await
            .context("failed to create the ServiceAccount")?;

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
        let role: ClusterRole = serde_saphyr::from_str(docs.next().context("no ClusterRole")?)?;
        let binding: ClusterRoleBinding =
            serde_saphyr::from_str(docs.next().context("no ClusterRoleBinding")?)?;
        let apply = PatchParams::apply("kubewasm-e2e").force();
        Api::<ClusterRole>::all(ns.client().clone())
            .patch(&role_name, &apply, &Patch::Apply(&role))
            .await
            .context("failed to apply the generated ClusterRole")?;
        Api::<ClusterRoleBinding>::all(ns.client().clone())
            .patch(&role_name, &apply, &Patch::Apply(&binding))
            .await
            .context("failed to apply the generated ClusterRoleBinding")?;

        let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}}))?;
        let token = accounts
            .create_token_request(ACCOUNT, &PostParams::default(), &request)
            .await
            .context("TokenRequest failed")?
            .status
            .and_then(|s| s.token)
            .context("TokenRequest returned no token")?;
        let kubeconfig = tempfile::tempdir()?;
        std::fs::write(
            kubeconfig.path().join("kubeconfig"),
            token_kubeconfig(ns.control_plane().kubeconfig_path(), &token)?,
        )?;
        Ok(Self {
            ns: ns.clone(),
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
    Ok(serde_saphyr::to_string(&config)?)
}
