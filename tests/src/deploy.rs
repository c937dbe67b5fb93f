//! `deploy/` as an operator uses it: its files, and `kubectl` and `helm`
//! against the test cluster or offline (`kubectl kustomize`, `helm
//! template`), run from the repository root as `deploy/README.md` shows.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

use crate::ControlPlane;
use crate::host::repo;

/// The namespace the base installs into.
pub const NAMESPACE: &str = "kubewasm-system";

/// `deploy/` in the repository.
pub fn deploy_dir() -> PathBuf {
    repo().join("deploy")
}

/// The text of `path`, or an error naming it.
pub fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))
}

/// Every document of a (multi-document) YAML text, as JSON values.
pub fn yaml_documents(text: &str, origin: &str) -> anyhow::Result<Vec<Value>> {
    // Empty documents are skipped.
    serde_saphyr::from_multiple(text).with_context(|| format!("{origin}: invalid YAML"))
}

/// A YAML file as JSON.
pub fn yaml_file(path: &Path) -> anyhow::Result<Value> {
    serde_saphyr::from_str(&read(path)?)
        .with_context(|| format!("{}: invalid YAML", path.display()))
}

// ---------------------------------------------------------------------------
// Comparing renderings
// ---------------------------------------------------------------------------

/// (apiVersion, kind, namespace, name): what makes two objects the same one.
pub type Key = (String, String, String, String);

/// Cluster-scoped kinds kustomize 5.8's built-in schema does not know:
/// its namespace transformer sets `metadata.namespace` on them, which the
/// API server ignores (`kubectl apply` creates them cluster-wide).
const CLUSTER_SCOPED_UNKNOWN_TO_KUSTOMIZE: [&str; 2] = [
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
];

fn key_of(object: &Value) -> anyhow::Result<Key> {
    let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let kind = field(&object["kind"]);
    let namespace = if CLUSTER_SCOPED_UNKNOWN_TO_KUSTOMIZE.contains(&kind.as_str()) {
        String::new()
    } else {
        field(&object["metadata"]["namespace"])
    };
    let key = (
        field(&object["apiVersion"]),
        kind,
        namespace,
        field(&object["metadata"]["name"]),
    );
    anyhow::ensure!(
        !key.0.is_empty() && !key.1.is_empty() && !key.3.is_empty(),
        "an object without apiVersion, kind or name: {object}"
    );
    Ok(key)
}

/// Rendered objects by [`Key`]; `origin` names them in errors (an object
/// without a key, or two with the same).
pub fn by_key(objects: Vec<Value>, origin: &str) -> anyhow::Result<BTreeMap<Key, Value>> {
    let mut map = BTreeMap::new();
    for mut object in objects {
        let key = key_of(&object)?;
        if key.2.is_empty()
            && let Some(meta) = object["metadata"].as_object_mut()
        {
            meta.remove("namespace");
        }
        if map.insert(key.clone(), object).is_some() {
            bail!("{origin} renders {key:?} twice");
        }
    }
    Ok(map)
}

/// Where `a` and `b` (named by `names`) differ below `path`, one line per
/// JSON path into `out`. Numbers compare by value (kustomize writes `0.0`
/// as `0`).
pub fn differences(names: (&str, &str), path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let here = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(names, &here, v, w, out),
                    (Some(v), None) => out.push(format!("{here}: only in {}: {v}", names.0)),
                    (None, Some(w)) => out.push(format!("{here}: only in {}: {w}", names.1)),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(names, &format!("{path}[{i}]"), v, w, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a != b => out.push(format!("{path}: {} {a}, {} {b}", names.0, names.1)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// kubectl
// ---------------------------------------------------------------------------

/// The `kubectl` the tests run: `$KUBECTL` if set; else the one
/// `tests/control-plane/cluster.sh build` built next to the control plane
/// (the same Kubernetes version as the API server, and kustomize with it);
/// else `kubectl` from `PATH`.
fn kubectl_path() -> anyhow::Result<PathBuf> {
    static KUBECTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    KUBECTL
        .get_or_init(|| find_kubectl().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_kubectl() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECTL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let script = ControlPlane::cluster_script();
    let bin_dir = Command::new("bash")
        .arg(&script)
        .arg("bin-dir")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {} bin-dir", script.display()))?;
    if bin_dir.status.success() {
        let built = PathBuf::from(String::from_utf8_lossy(&bin_dir.stdout).trim()).join("kubectl");
        if built.is_file() {
            return Ok(built);
        }
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("kubectl"))
        .find(|candidate| candidate.is_file());
    on_path.with_context(|| {
        format!(
            "no kubectl: set KUBECTL, run `{} build` (it builds one next to the control \
             plane), or put kubectl on PATH",
            script.display()
        )
    })
}

/// Runs kubectl against the test cluster (`KUBECONFIG` set to the control
/// plane's) with `stdin` as its input, in the repository root; returns its
/// standard output, or an error naming the command and quoting its output.
pub async fn kubectl<I, S>(args: I, stdin: Option<Vec<u8>>) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    on_cluster(kubectl_path, args, stdin).await
}

/// Runs the tool `find` names against the test cluster, off the async
/// threads (finding it may build it).
async fn on_cluster<I, S>(
    find: fn() -> anyhow::Result<PathBuf>,
    args: I,
    stdin: Option<Vec<u8>>,
) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let kubeconfig = ControlPlane::shared()
        .await?
        .kubeconfig_path()
        .to_path_buf();
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    tokio::task::spawn_blocking(move || run_tool(&find()?, &args, Some(&kubeconfig), stdin))
        .await
        .context("the task running the command failed")?
}

/// Runs kubectl without a cluster (e.g. `kubectl kustomize`).
pub fn kubectl_offline(args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<_> = args.iter().map(Into::into).collect();
    run_tool(&kubectl_path()?, &args, None, None)
}

/// Runs the program at `path` in the repository root, with `KUBECONFIG`
/// set to `kubeconfig` (or unset) and `stdin` as its input; returns its
/// standard output, or an error naming the command and quoting its output.
fn run_tool(
    path: &Path,
    args: &[std::ffi::OsString],
    kubeconfig: Option<&Path>,
    stdin: Option<Vec<u8>>,
) -> anyhow::Result<String> {
    use std::io::Write;

    let shown = format!(
        "{} {}",
        path.display(),
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut command = Command::new(path);
    command
        .args(args)
        .current_dir(repo())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match kubeconfig {
        Some(kubeconfig) => command.env("KUBECONFIG", kubeconfig),
        None => command.env_remove("KUBECONFIG"),
    };
    let mut child = command
        .spawn()
        .with_context(|| format!("failed to start `{shown}`"))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(&input)
            .with_context(|| format!("failed to write the input of `{shown}`"))?;
    }
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to run `{shown}`"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}):\n{}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// `kubectl apply --server-side -k deploy/`, exactly as README.md says.
pub async fn apply_base() -> anyhow::Result<String> {
    kubectl(["apply", "--server-side", "-k", "deploy/"], None).await
}

// ---------------------------------------------------------------------------
// helm
// ---------------------------------------------------------------------------

/// The chart, `deploy/helm/kubewasm`, as the commands below name it (they
/// run in the repository root).
pub const CHART: &str = "deploy/helm/kubewasm";

/// The `helm` the tests run: `$KUBEWASM_HELM` if set (`tests/run.sh` sets
/// it), else the one `tests/tools/helm.sh` builds (once, cached) and names.
fn helm_path() -> anyhow::Result<PathBuf> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    HELM.get_or_init(|| find_helm().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_helm() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBEWASM_HELM").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/helm.sh");
    let built = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("failed to run {}", script.display()))?;
    if !built.status.success() {
        bail!(
            "{} failed ({}); set KUBEWASM_HELM to a helm binary instead",
            script.display(),
            built.status
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&built.stdout).trim()))
}

/// Runs helm without a cluster (`helm template`, `helm lint`).
pub fn helm_offline(args: &[&str]) -> anyhow::Result<String> {
    let args: Vec<_> = args.iter().map(Into::into).collect();
    run_tool(&helm_path()?, &args, None, None)
}

/// Runs helm against the test cluster (`helm install`, `upgrade`,
/// `uninstall`).
pub async fn helm<I, S>(args: I) -> anyhow::Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    on_cluster(helm_path, args, None).await
}
