//! A control plane of one test's own, for faults that would disturb every
//! other test on the shared one: pausing the API server (SIGSTOP, as a hung
//! process or a stalled node looks to its clients) and resuming it.
//!
//! ```no_run
//! use kubewasm_e2e::private_cluster::PrivateCluster;
//!
//! async fn pauses() -> anyhow::Result<()> {
//!     let cluster = PrivateCluster::start().await?;
//!     cluster.pause_apiserver()?;
//!     cluster.resume_apiserver()?;
//!     Ok(())
//! }
//! ```

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, bail};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::ControlPlane;

/// A control plane started for one test with `cluster.sh up` in a data
/// directory of its own; stopped (and resumed first, if paused) when
/// dropped, or by its watchdog if the test process dies.
pub struct PrivateCluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    /// `cluster.sh watchdog`, which runs `down` when this pipe closes.
    _watchdog: Mutex<Child>,
}

impl PrivateCluster {
    /// Starts etcd and kube-apiserver (built once, cached) on free ports.
    pub async fn start() -> anyhow::Result<Self> {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .context("the start-up task failed")?
    }

    fn start_blocking() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(crate::unique_name("kubewasm-private-cp"));
        let script = ControlPlane::cluster_script();
        let watchdog = Command::new("bash")
            .arg(&script)
            .args(["watchdog", "--dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test's process group: Ctrl-C must not stop the
            // watchdog that cleans up after the test.
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
                "`cluster.sh up --dir {}` failed ({})",
                dir.display(),
                output.status
            );
        }
        Ok(Self {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            _watchdog: Mutex::new(watchdog),
        })
    }

    /// The admin kubeconfig (`KUBECONFIG=<path>` for the host).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The data directory (logs in `logs/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An admin client. Its requests to a paused API server wait until it
    /// resumes.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Client::try_from(config).context("failed to build the admin client")
    }

    /// The kube-apiserver's pid, from the `name pid exe` lines of the data
    /// directory's `pids`, checked against `/proc` so a recycled pid is
    /// never signalled.
    pub fn apiserver_pid(&self) -> anyhow::Result<u32> {
        let pids = std::fs::read_to_string(self.dir.join("pids"))
            .with_context(|| format!("failed to read {}/pids", self.dir.display()))?;
        for line in pids.lines() {
            let mut fields = line.split_whitespace();
            let (Some("kube-apiserver"), Some(pid), Some(exe)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let running = std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|path| path.to_string_lossy().trim_end_matches(" (deleted)") == exe)
                .unwrap_or(false);
            if running {
                return Ok(pid.parse()?);
            }
        }
        bail!("no running kube-apiserver in {}/pids", self.dir.display())
    }

    /// Stops the API server's process (SIGSTOP): connections stay open, the
    /// kernel still accepts them and buffers requests, nothing answers.
    pub fn pause_apiserver(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Lets a paused API server run again (SIGCONT).
    pub fn resume_apiserver(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.apiserver_pid()?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
        Ok(())
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self.resume_apiserver();
        let _ = Command::new("bash")
            .arg(ControlPlane::cluster_script())
            .args(["down", "--dir"])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
