//! A control plane of a test's own, and the faults `cluster.sh` can inflict
//! on it: kill and restart kube-apiserver or etcd, freeze and resume them,
//! compact etcd's history. And [`Expected`], how the fault tests tell that
//! no reconcile was lost: every ConfigMap created or changed around a fault
//! carries the probe's mark for its newest `data.n`, and every one deleted
//! has a `<name>-gone` record of its last state.
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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use crate::host::Host;
use crate::{ControlPlane, TestNamespace, eventually, probe, run_id, unique_name};

/// Generous: a loaded 2-core CI machine.
const WAIT: Duration = Duration::from_secs(120);

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

    /// Its name in `cluster.sh`'s `pids` file.
    fn process(self) -> &'static str {
        match self {
            Self::ApiServer => "kube-apiserver",
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
        let started = Self::start_at(data_dir, options).await?;
        // Tests hold `&'static ControlPlane`s; a private one is small and
        // lives as long as its test.
        Ok(Box::leak(Box::new(started)))
    }

    /// Starts a control plane in `data_dir` (`cluster.sh up --dir DATA_DIR
    /// OPTIONS`). Its watchdog stops it once the value is dropped (or this
    /// process exits), without waiting; [`down_blocking`](Self::down_blocking)
    /// stops it at once.
    pub async fn start_at(data_dir: PathBuf, options: &[&str]) -> anyhow::Result<ControlPlane> {
        let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let options: Vec<&str> = options.iter().map(String::as_str).collect();
            Self::up(data_dir, &options)
        })
        .await
        .context("the control plane start-up task failed")?
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

    /// The process id of `component` of a control plane this process
    /// started (e.g. to read its CPU time from `/proc`), from the `pids`
    /// file `cluster.sh up` writes into the data directory.
    pub fn pid(&self, component: Component) -> Option<u32> {
        let pids = std::fs::read_to_string(self.data_dir.as_ref()?.join("pids")).ok()?;
        pids.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == component.process()).then_some(())?;
            words.next()?.parse().ok()
        })
    }

    /// Stops a control plane this process started and removes its data.
    pub async fn down(&self) {
        let _ = self.fault(&["down"]).await;
    }

    /// [`down`](Self::down) on the calling thread (e.g. in a `Drop`): when
    /// it returns, the processes have exited and the data is gone.
    pub fn down_blocking(&self) {
        if let Some(dir) = self.data_dir.clone() {
            let _ = run_script(&["down".to_owned()], dir);
        }
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

/// What the cluster should show once everything is reconciled: ConfigMaps
/// by name with their newest `data.n`, and deleted ones with their last.
#[derive(Default)]
pub struct Expected {
    live: BTreeMap<String, u32>,
    deleted: BTreeMap<String, u32>,
}

impl Expected {
    pub async fn create(&mut self, cms: &Api<ConfigMap>, name: &str, n: u32) {
        probe::create_configmap(cms, name, "tombstone", &[("n", &n.to_string())]).await;
        self.live.insert(name.to_string(), n);
    }

    pub async fn change(&mut self, cms: &Api<ConfigMap>, name: &str, n: u32) {
        let patch = json!({"data": {"n": n.to_string()}});
        cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        self.live.insert(name.to_string(), n);
    }

    pub async fn delete(&mut self, cms: &Api<ConfigMap>, name: &str) {
        cms.delete(name, &DeleteParams::default()).await.unwrap();
        let last = self.live.remove(name).expect("deleting a live object");
        self.deleted.insert(name.to_string(), last);
    }

    /// Ok once every live ConfigMap is marked for its newest `data.n` and
    /// every deleted one has its `-gone` record with its last `data.n`.
    pub async fn check(&self, cms: &Api<ConfigMap>) -> anyhow::Result<()> {
        for (name, n) in &self.live {
            let cm = cms.get(name).await?;
            let annotations = cm.metadata.annotations.unwrap_or_default();
            anyhow::ensure!(
                annotations.get(probe::MARK).map(String::as_str) == Some("seen")
                    && annotations.get(probe::ECHO) == Some(&n.to_string()),
                "{name} (n={n}) not reconciled at its newest state: {annotations:?}"
            );
        }
        for (name, n) in &self.deleted {
            let gone = cms.get_opt(&format!("{name}-gone")).await?;
            let last = gone.and_then(|cm| cm.data?.get("n").cloned());
            anyhow::ensure!(
                last == Some(n.to_string()),
                "the delete of {name} (last n={n}) was not reconciled: {last:?}"
            );
        }
        Ok(())
    }

    /// Waits for [`check`](Self::check); how long that took.
    pub async fn converge(&self, cms: &Api<ConfigMap>, host: &Host) -> Duration {
        let start = Instant::now();
        eventually(WAIT, || self.check(cms))
            .await
            .unwrap_or_else(|e| panic!("lost reconciles: {e:#}\n{}", host.log()));
        start.elapsed()
    }
}

/// A probe host on a namespace with six reconciled ConfigMaps `a0`..`a5`.
pub async fn probe_with_objects(ns: &TestNamespace) -> (Host, Api<ConfigMap>, Expected) {
    let host = Host::start(ns, &[("probe", None)], &[]);
    let cms: Api<ConfigMap> = ns.api();
    let mut expected = Expected::default();
    for i in 0..6 {
        expected.create(&cms, &format!("a{i}"), 0).await;
    }
    expected.converge(&cms, &host).await;
    (host, cms, expected)
}

/// Changes made while the host may still be disconnected: three new
/// objects, two changed, two deleted (with their last state `n=0`).
pub async fn churn(expected: &mut Expected, cms: &Api<ConfigMap>) {
    for i in 0..3 {
        expected.create(cms, &format!("b{i}"), 1).await;
    }
    expected.change(cms, "a0", 1).await;
    expected.change(cms, "a1", 1).await;
    expected.delete(cms, "a2").await;
    expected.delete(cms, "a3").await;
}
