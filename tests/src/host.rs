//! A `kubewasm run` process for end-to-end tests: the binary under test, a
//! private plugin directory holding the example components from
//! `plugins/build.sh`, and a log file printed when the test fails.

use std::future::Future;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::{ControlPlane, TestNamespace, eventually};

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
        .unwrap_or_else(|| release_build("kubewasm", "kubewasm"));
    use_binary(binary);
}

/// Builds binary `bin` of workspace package `package` in release mode with
/// cargo (in `$CARGO_TARGET_DIR`, else the repository's `target/`) and
/// returns its path.
pub fn release_build(package: &str, bin: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--locked", "-p", package])
        .args(["--bin", bin])
        .current_dir(repo())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the release binary {bin} failed");
    target.join("release").join(bin)
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

/// Replaces `path` the way careful tools do: a temporary file beside it,
/// then rename, so a watcher never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().expect("a file path").to_string_lossy()
    ));
    std::fs::write(&tmp, bytes).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename the temporary file");
}

/// `component` with a custom section `section` holding `payload` appended:
/// the same logic, a different content hash (so a different build as far as
/// the host knows).
pub fn variant(component: &[u8], section: &str, payload: &[u8]) -> Vec<u8> {
    let payload_len = 1 + section.len() + payload.len();
    assert!(
        payload_len < 128 && section.len() < 128,
        "a one-byte LEB128"
    );
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section id
    bytes.push(payload_len as u8);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(section.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
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

/// A plugin directory holding the named example plugins' components and,
/// where given, their settings (`NAME.settings.json`).
pub fn example_plugins(plugins: &[(&str, Option<serde_json::Value>)]) -> tempfile::TempDir {
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
    dir
}

/// The `kubewasm` binary under test with `KUBECONFIG` naming `cluster`'s
/// admin kubeconfig, for [`Host::spawn_command`] (add environment first).
pub fn command(cluster: &ControlPlane) -> Command {
    let mut command = Command::new(kubewasm_binary());
    command.env("KUBECONFIG", cluster.kubeconfig_path());
    command
}

/// `--namespace NS` and a short leader election on Lease `lease` in `ns`,
/// as the election tests run it: renewed every 2 s, taken over 6 s after
/// the last change a standby saw; the leader stops applying 4 s after it
/// sent its last confirmed renewal. Requests give up after 3 s, so a write
/// sent just before the API server hangs fails instead of landing later.
pub fn short_lease_args<'a>(ns: &'a str, lease: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "--namespace",
        ns,
        "--leader-elect",
        "--leader-elect-lease",
        lease,
        "--leader-elect-namespace",
        ns,
    ];
    args.extend(SHORT_LEASE_TIMINGS);
    args
}

/// The short lease timings of [`short_lease_args`] (lease 6 s, renewed
/// every 2 s, applying stops 4 s after the last confirmed renewal,
/// requests give up after 3 s), for the shard ring's member Leases too.
pub const SHORT_LEASE_TIMINGS: [&str; 8] = [
    "--leader-elect-lease-seconds",
    "6",
    "--leader-elect-renew-grace-seconds",
    "4",
    "--leader-elect-renew-deadline-seconds",
    "4",
    "--kube-request-timeout",
    "3s",
];

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
        Self::start_on(ns.control_plane(), plugins, extra)
    }

    /// [`start`](Self::start) against `cluster` (e.g. a private control
    /// plane a test freezes, where it keeps no [`TestNamespace`]).
    pub fn start_on(
        cluster: &ControlPlane,
        plugins: &[(&str, Option<serde_json::Value>)],
        extra: &[&str],
    ) -> Host {
        Self::spawn_command(command(cluster), example_plugins(plugins), extra)
    }

    /// Starts `kubewasm run` on a plugin directory the test prepared (e.g.
    /// laid out like a ConfigMap volume).
    pub fn spawn(ns: &TestNamespace, dir: tempfile::TempDir, extra: &[&str]) -> Host {
        Self::spawn_command(command(ns.control_plane()), dir, extra)
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

    /// The value of one series of `/metrics` (as [`sample`] spells it), 0
    /// while the host or the series is not there yet.
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .ok()
            .and_then(|m| sample(&m, series))
            .unwrap_or(0.0)
    }

    /// The value of the series of metric `name` that has every one of
    /// `labels`, whatever the order the exposition writes them in.
    pub fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.metrics().ok()?;
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}{{")))
            .find(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// [`eventually`] for a check about this host: retries `check` until it
    /// succeeds or `timeout` passes, then panics with the last error and the
    /// host's log.
    pub async fn eventually<T, F, Fut>(&self, timeout: Duration, check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        eventually(timeout, check)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", self.log()))
    }

    /// Waits (at most `timeout`) until some log line contains `needle`.
    pub async fn logged(&self, timeout: Duration, needle: &str) {
        self.eventually(timeout, || async {
            anyhow::ensure!(self.log().contains(needle), "not logged yet: {needle}");
            Ok(())
        })
        .await
    }

    /// Waits (at most `timeout`) for the admin server's address.
    pub async fn wait_admin_addr(&self, timeout: Duration) -> SocketAddr {
        self.eventually(timeout, || async {
            self.admin_addr()
                .ok_or_else(|| anyhow::anyhow!("admin address not logged yet"))
        })
        .await
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

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
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
