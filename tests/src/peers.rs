//! The side-by-side benchmark's peers (`tests/peers/`, docs/design/
//! performance.md §1) as processes: a kube-rs `Controller` and a client-go
//! dynamic informer labelling ConfigMaps, each logging once a second how
//! many it reconciled and labelled.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::ControlPlane;
use crate::host::{release_build, repo};

/// The label every controller of the benchmark sets, and its value.
pub const LABEL: &str = "bench.kubewasm.dev/seen";
pub const VALUE: &str = "true";

static KUBE_RS: OnceLock<PathBuf> = OnceLock::new();
static GO: OnceLock<PathBuf> = OnceLock::new();

/// The kube-rs peer's binary: `$KUBEWASM_PEER_KUBE_RS` (tests/run.sh builds
/// it up front), else built here with cargo into this test's target
/// directory (it is another package, so cargo does not build it for us).
pub fn kube_rs_binary() -> PathBuf {
    KUBE_RS
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("KUBEWASM_PEER_KUBE_RS") {
                return PathBuf::from(bin);
            }
            let exe = std::env::current_exe().expect("test executable path");
            let target_profile = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "kubewasm-peer-kube-rs"])
                .args(["--bin", "kube-rs-labeller"])
                .current_dir(repo())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the kube-rs peer failed");
            target_profile.join("kube-rs-labeller")
        })
        .clone()
}

/// Runs every later kube-rs peer with `$KUBEWASM_PEER_KUBE_RS`, else a
/// release build made here with cargo: what a benchmark measures.
pub fn use_release_kube_rs() {
    KUBE_RS.get_or_init(|| {
        std::env::var_os("KUBEWASM_PEER_KUBE_RS")
            .map(PathBuf::from)
            .unwrap_or_else(|| release_build("kubewasm-peer-kube-rs", "kube-rs-labeller"))
    });
}

/// The Go peer's binary: `$KUBEWASM_PEER_GO`, else what
/// `tests/peers/build.sh` prints (it builds once per source hash).
pub fn go_binary() -> PathBuf {
    GO.get_or_init(|| {
        if let Some(bin) = std::env::var_os("KUBEWASM_PEER_GO") {
            return PathBuf::from(bin);
        }
        let out = Command::new(repo().join("tests/peers/build.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("tests/peers/build.sh runs");
        assert!(out.status.success(), "tests/peers/build.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("a path").trim())
    })
    .clone()
}

/// A running peer, killed when dropped; its log is kept in a file and
/// printed if the test fails.
pub struct Peer {
    name: &'static str,
    child: Child,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `binary ARGS` against `cluster` (`KUBECONFIG` names its admin
    /// kubeconfig); `name` labels its log.
    pub fn spawn(
        name: &'static str,
        binary: PathBuf,
        cluster: &ControlPlane,
        args: &[&str],
    ) -> Peer {
        let log_dir = tempfile::tempdir().expect("log directory");
        let log = log_dir.path().join("peer.log");
        let child = Command::new(&binary)
            .args(args)
            .env("KUBECONFIG", cluster.kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
        Peer {
            name,
            child,
            log,
            _log_dir: log_dir,
        }
    }

    /// The peer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The counts of the peer's last progress line, `reconciled R (+r),
    /// labelled L (+l)`: (R, L), or (0, 0) before the first.
    pub fn counts(&self) -> (u64, u64) {
        let log = self.log();
        let Some(line) = log.lines().rev().find(|l| l.contains(": reconciled ")) else {
            return (0, 0);
        };
        let number = |word: &str| -> u64 {
            line.split_once(word)
                .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        (number(": reconciled "), number(", labelled "))
    }

    /// The process id (e.g. to read its CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} log ----\n{}", self.name, self.log());
        }
    }
}
