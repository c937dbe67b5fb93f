//! A `kubewasm run` process for end-to-end tests: the binary under test, a
//! private plugin directory holding the example components from
//! `plugins/build.sh`, and a log file printed when the test fails.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::TestNamespace;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

static BINARY: OnceLock<PathBuf> = OnceLock::new();

/// The `kubewasm` binary under test: the one given to [`use_binary`], else
/// `$KUBEWASM_BIN` (the test command builds it once up front), else built
/// here with cargo (depending on the library does not make cargo build the
/// binary).
pub fn kubewasm_binary() -> PathBuf {
    BINARY
        .get_or_init(|| {
            if let Some(bin) = std::env::var_os("KUBEWASM_BIN") {
                return PathBuf::from(bin);
            }
            let exe = std::env::current_exe().expect("test executable path");
            let target_profile = exe.parent().and_then(Path::parent).expect("target dir");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "kubewasm", "--bin", "kubewasm"])
                .current_dir(repo())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building the kubewasm binary failed");
            target_profile.join("kubewasm")
        })
        .clone()
}

/// Runs every later [`Host`] with this binary (e.g. a release build for a
/// benchmark). Returns false if a binary was already chosen.
pub fn use_binary(path: PathBuf) -> bool {
    BINARY.set(path).is_ok()
}

/// Runs every later [`Host`] with `$KUBEWASM_BIN`, else a release build of
/// the host made here with cargo: what a benchmark measures.
pub fn use_release_binary() {
    let binary = std::env::var_os("KUBEWASM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(release_binary);
    use_binary(binary);
}

fn release_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "-p", "kubewasm"])
        .args(["--bin", "kubewasm"])
        .current_dir(repo())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the release binary failed");
    target.join("release/kubewasm")
}

/// An example plugin's component, from `$KUBEWASM_PLUGIN_DIR` or
/// `plugins/dist`. Panics, saying how to build it, when it is missing.
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("KUBEWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("plugins/dist"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run plugins/build.sh first",
        path.display()
    );
    path
}

/// A plain HTTP/1.0 GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response: {response}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The value of one series in a Prometheus text exposition.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// A running `kubewasm run`, killed when dropped; its log is kept in a file
/// and printed if the test fails.
pub struct Host {
    child: Child,
    log: PathBuf,
    plugins: tempfile::TempDir,
    _log_dir: tempfile::TempDir,
}

impl Host {
    /// Starts `kubewasm run` against the test cluster with the named example
    /// plugins (and their settings) and `extra` arguments. Debug logs of
    /// kubewasm go to the log file.
    pub fn start(
        ns: &TestNamespace,
        plugins: &[(&str, Option<serde_json::Value>)],
        extra: &[&str],
    ) -> Host {
        let dir = tempfile::tempdir().expect("plugin directory");
        for (name, settings) in plugins {
            std::fs::copy(component(name), dir.path().join(format!("{name}.wasm")))
                .expect("copy component");
            if let Some(settings) = settings {
                std::fs::write(
                    dir.path().join(format!("{name}.settings.json")),
                    settings.to_string(),
                )
                .expect("write settings");
            }
        }
        Self::spawn(ns, dir, extra)
    }

    /// Starts `kubewasm run` on a plugin directory the test prepared (e.g.
    /// laid out like a ConfigMap volume).
    pub fn spawn(ns: &TestNamespace, dir: tempfile::TempDir, extra: &[&str]) -> Host {
        let mut command = Command::new(kubewasm_binary());
        command.env("KUBECONFIG", ns.control_plane().kubeconfig_path());
        Self::spawn_command(command, dir, extra)
    }

    /// Starts `kubewasm run --plugins DIR EXTRA` as `command` (the binary,
    /// or a wrapper that ends by running it, with the environment the test
    /// wants), logging to a file.
    pub fn spawn_command(mut command: Command, dir: tempfile::TempDir, extra: &[&str]) -> Host {
        command
            .args(["run", "--plugins"])
            .arg(dir.path())
            .args(extra);
        if !extra.contains(&"--admin-addr") {
            // Any free port: tests run several hosts at once.
            command.args(["--admin-addr", "127.0.0.1:0"]);
        }
        let log_dir = tempfile::tempdir().expect("log directory");
        let log = log_dir.path().join("host.log");
        let child = command
            .env("KUBEWASM_LOG", "info,kubewasm=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("kubewasm run starts");
        Host {
            child,
            log,
            plugins: dir,
            _log_dir: log_dir,
        }
    }

    /// The host's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The directory the host loads plugins from.
    pub fn plugin_dir(&self) -> &Path {
        self.plugins.path()
    }

    /// The admin server's address, once the host has logged it.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.log()
            .lines()
            .find(|l| l.contains("admin server listening"))?
            .split_whitespace()
            .find_map(|w| w.strip_prefix("addr="))?
            .parse()
            .ok()
    }

    /// The host's `/metrics` text, once its admin server is up.
    pub fn metrics(&self) -> anyhow::Result<String> {
        let addr = self
            .admin_addr()
            .ok_or_else(|| anyhow::anyhow!("admin address not logged yet"))?;
        let (status, body) = http_get(addr, "/metrics")?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        Ok(body)
    }

    /// How many log lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the process to exit.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.wait(timeout)
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    pub fn wait(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (e.g. to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- kubewasm log ----\n{}", self.log());
        }
    }
}
