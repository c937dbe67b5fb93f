//! A control plane of a test's own, and the faults `cluster.sh` can inflict
//! on it: kill and restart kube-apiserver or etcd, freeze and resume them,
//! compact etcd's history.
//!
//! ```no_run
//! use kubewasm_e2e::faults::Component;
//! use kubewasm_e2e::{ControlPlane, TestNamespace};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let cp = ControlPlane::private("restart", &[]).await?;
//! let ns = TestNamespace::create_in(cp, "restart").await?;
//! cp.restart(Component::ApiServer, std::time::Duration::from_secs(15)).await?;
//! cp.down().await;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::{ControlPlane, run_id, unique_name};

/// A process of the control plane a fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    ApiServer,
    Etcd,
}

impl Component {
    fn arg(self) -> &'static str {
        match self {
            Self::ApiServer => "apiserver",
            Self::Etcd => "etcd",
        }
    }
}

impl ControlPlane {
    /// Starts a control plane for one test only (`cluster.sh up` with
    /// `options`, e.g. `--no-watch-cache`), so its faults hit nobody else.
    /// It lives until [`down`](Self::down) or the end of the test process.
    pub async fn private(name: &str, options: &[&str]) -> anyhow::Result<&'static ControlPlane> {
        let data_dir = std::env::temp_dir().join(format!(
            "kubewasm-e2e-{}-{}-{}",
            std::process::id(),
            run_id(),
            unique_name(name)
        ));
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        let started = tokio::task::spawn_blocking(move || {
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            Self::up(data_dir, &options)
        })
        .await
        .context("the control plane start-up task failed")??;
        // Tests hold `&'static ControlPlane`s; a private one is small and
        // lives as long as its test.
        Ok(Box::leak(Box::new(started)))
    }

    /// Kills `component` (SIGKILL), leaves it down for `down_for`, starts it
    /// again with the same flags, ports and data, and returns once
    /// kube-apiserver's `/readyz` is ok.
    pub async fn restart(&self, component: Component, down_for: Duration) -> anyhow::Result<()> {
        let down_for = format!("{:.1}", down_for.as_secs_f64());
        self.fault(&["restart", component.arg(), "--down-for", &down_for])
            .await
            .map(drop)
    }

    /// Freezes `component` (SIGSTOP): it keeps its ports and answers nothing.
    pub async fn freeze(&self, component: Component) -> anyhow::Result<()> {
        self.fault(&["stop", component.arg()]).await.map(drop)
    }

    /// Resumes a component [`freeze`](Self::freeze) stopped (SIGCONT).
    pub async fn resume(&self, component: Component) -> anyhow::Result<()> {
        self.fault(&["cont", component.arg()]).await.map(drop)
    }

    /// Compacts etcd's history up to its current revision; returns it.
    pub async fn compact(&self) -> anyhow::Result<u64> {
        let out = self.fault(&["compact"]).await?;
        out.trim()
            .parse()
            .with_context(|| format!("cluster.sh compact printed {out:?}, not a revision"))
    }

    /// Stops a control plane this process started and removes its data.
    pub async fn down(&self) {
        let _ = self.fault(&["down"]).await;
    }

    /// Runs `cluster.sh ARGS --dir DATA_DIR`; its stdout.
    async fn fault(&self, args: &[&str]) -> anyhow::Result<String> {
        let Some(dir) = self.data_dir.clone() else {
            bail!("faults need a control plane started by the tests, not KUBEWASM_TEST_KUBECONFIG");
        };
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || run_script(&args, dir))
            .await
            .context("the cluster.sh task failed")?
    }
}

fn run_script(args: &[String], dir: PathBuf) -> anyhow::Result<String> {
    let script = ControlPlane::cluster_script();
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("failed to run {} {}", script.display(), args.join(" ")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    if !output.status.success() {
        bail!(
            "`cluster.sh {}` failed ({}): {stderr}",
            args.join(" "),
            output.status
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
