//! The test OCI registry (`tests/registry/registry.sh`): the CNCF
//! distribution registry on loopback, with TLS from a throwaway CA and basic
//! auth.
//!
//! [`TestRegistry::shared`] uses the registry the environment names
//! (`KUBEWASM_TEST_REGISTRY`, `_USER`, `_PASSWORD`, `_CA`, `_AUTH`, as
//! `eval "$(registry.sh up)"` exports them); otherwise the first caller
//! starts one in a private directory, guarded, like the control plane, by a
//! `registry.sh watchdog` that stops it when the test process exits.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, anyhow, bail};

/// A running registry and how to reach it.
#[derive(Debug)]
pub struct TestRegistry {
    /// `127.0.0.1:PORT`, the registry part of references.
    pub host: String,
    pub user: String,
    pub password: String,
    /// The CA certificate (PEM) that signed the registry's certificate.
    pub ca: PathBuf,
    /// A dockerconfigjson with the credentials.
    pub auth: PathBuf,
    /// Held, never dropped: the pipe closes when the process exits and the
    /// watchdog then runs `registry.sh down`.
    _watchdog: Option<Mutex<Child>>,
}

static SHARED: OnceLock<Result<TestRegistry, String>> = OnceLock::new();

impl TestRegistry {
    /// The registry of this test process, started on first use.
    pub fn shared() -> anyhow::Result<&'static TestRegistry> {
        SHARED
            .get_or_init(|| Self::start().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("no test registry: {e}"))
    }

    /// `tests/registry/registry.sh`.
    pub fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("registry/registry.sh")
    }

    /// A reference in this registry: `HOST/REPOSITORY:TAG`.
    pub fn reference(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host)
    }

    /// Where the registry stores blob `sha256:<hex>` (distribution's
    /// filesystem driver under `DIR/data`, `DIR` being the one `registry.sh
    /// up` made, the CA's grandparent): for tests that corrupt what it serves.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        let dir = self
            .ca
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"));
        dir.join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    fn start() -> anyhow::Result<Self> {
        if let Some(host) = std::env::var("KUBEWASM_TEST_REGISTRY")
            .ok()
            .filter(|h| !h.is_empty())
        {
            let var = |name: &str| {
                std::env::var(name)
                    .with_context(|| format!("KUBEWASM_TEST_REGISTRY is set but {name} is not"))
            };
            return Ok(TestRegistry {
                host,
                user: var("KUBEWASM_TEST_REGISTRY_USER")?,
                password: var("KUBEWASM_TEST_REGISTRY_PASSWORD")?,
                ca: var("KUBEWASM_TEST_REGISTRY_CA")?.into(),
                auth: var("KUBEWASM_TEST_REGISTRY_AUTH")?.into(),
                _watchdog: None,
            });
        }
        let dir = std::env::temp_dir().join(format!(
            "kubewasm-e2e-registry-{}-{}",
            std::process::id(),
            crate::unique_name("r")
        ));
        let script = Self::script();
        let watchdog = Command::new("bash")
            .arg(&script)
            .args(["watchdog", "--dir"])
            .arg(&dir)
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
            .args(["up", "--dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("failed to run {} up", script.display()))?;
        if !output.status.success() {
            bail!(
                "`{} up --dir {}` failed ({}); its output is above",
                script.display(),
                dir.display(),
                output.status
            );
        }
        let exports = String::from_utf8_lossy(&output.stdout);
        let value = |name: &str| {
            exports
                .lines()
                .filter_map(|line| line.strip_prefix("export "))
                .filter_map(|line| line.split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.trim_matches('\'').to_string())
                .with_context(|| format!("`registry.sh up` printed no {name}: {exports}"))
        };
        Ok(TestRegistry {
            host: value("KUBEWASM_TEST_REGISTRY")?,
            user: value("KUBEWASM_TEST_REGISTRY_USER")?,
            password: value("KUBEWASM_TEST_REGISTRY_PASSWORD")?,
            ca: value("KUBEWASM_TEST_REGISTRY_CA")?.into(),
            auth: value("KUBEWASM_TEST_REGISTRY_AUTH")?.into(),
            _watchdog: Some(Mutex::new(watchdog)),
        })
    }
}
