//! Command-line interface: the `kubewasm` binary's flags and sub-commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::runtime::RuntimeConfig;

mod author;
mod leader;
mod oci;
mod shadow;
mod traffic;
pub use author::{ComponentizeArgs, ContractArg, Lang, NewArgs, WitArgs};
pub use leader::LeaderArgs;
pub use oci::{PullArgs, PushArgs, RegistryArgs, ResourceArgs};
pub use shadow::{ShadowAction, ShadowArgs, ShadowFormat, ShadowRunArgs};
pub use traffic::{RecordArgs, ReplayArgs, ReplayFormat};

/// Kubernetes controllers whose reconcile logic runs as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "kubewasm", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log output format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "KUBEWASM_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Log filter in `tracing` syntax, e.g. `info` or `kubewasm=debug`.
    /// Wasmtime and Cranelift are kept at `warn` unless named here.
    #[arg(long, global = true, default_value = "info", env = "KUBEWASM_LOG")]
    pub log: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a plugin component and print its description.
    Check(CheckArgs),
    /// Run one reconcile offline and print the intents.
    Eval(EvalArgs),
    /// Run the controller host against the cluster.
    Run(Box<RunArgs>),
    /// List the kinds the cluster serves (list and watch), one version each.
    Discover(KubeArgs),
    /// Print the ClusterRole and binding the plugins in a directory need.
    Rbac(RbacArgs),
    /// Run a plugin's fixture cases against its component and report each.
    Test(TestArgs),
    /// Remove a plugin's finalizer from every object that carries it, for a
    /// plugin that was removed or is broken (its objects stay terminating).
    ReleaseFinalizers(ReleaseArgs),
    /// Scaffold a plugin project in Rust, Go, Python, TypeScript, JavaScript
    /// or C that builds, tests and checks out of the box.
    New(NewArgs),
    /// Print (or write) the plugin contract's WIT, for bindings generators.
    Wit(WitArgs),
    /// Turn a core WebAssembly module into a plugin component (embeds the
    /// contract's world, links the WASI preview1 adapter): no wasm-tools needed.
    Componentize(ComponentizeArgs),
    /// Print the CRDs of the plugin resources (ClusterPlugin, Plugin) as YAML,
    /// as `deploy/crds/` ships them.
    Crds,
    /// Push a plugin component to an OCI registry as a Wasm artifact.
    Push(PushArgs),
    /// Pull a plugin component from an OCI registry, verifying its digests.
    Pull(PullArgs),
    /// Print what plugins' shadows (`NAME.next.wasm`) did, from a running
    /// host's admin server; `shadow promote NAME` makes one serve.
    Shadow(ShadowArgs),
    /// Record a slice of the cluster's traffic (objects, then their changes)
    /// into a file, for `kubewasm replay`.
    Record(Box<RecordArgs>),
    /// Run a plugin offline over a recording and print the intents it would
    /// make, or where it differs from another version (`--against`).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The plugin project (its cases in `DIR/fixtures/`) or a fixtures
    /// directory itself.
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// The plugin component [default: the one `.wasm` file in DIR, else in
    /// DIR/dist].
    #[arg(long)]
    pub plugin: Option<PathBuf>,

    /// Also write a JUnit XML report to this file, for CI systems.
    #[arg(long)]
    pub junit: Option<PathBuf>,

    /// Write each reconcile case's actual outcome to its `expected.json`
    /// instead of comparing (review the change before committing it).
    #[arg(long)]
    pub bless: bool,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["finalizer", "plugin"])))]
pub struct ReleaseArgs {
    /// The finalizer to remove, e.g. `kubewasm.dev/website`.
    #[arg(long)]
    pub finalizer: Option<String>,

    /// The plugin whose default finalizer, `kubewasm.dev/PLUGIN`, to remove.
    #[arg(long)]
    pub plugin: Option<String>,

    /// A kind as `Kind.group` (`Website.demo.kubewasm.dev`; `ConfigMap` for
    /// the core group; the plural works too). Repeatable. Without it, every
    /// kind the cluster serves that can be listed and patched.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,

    /// Only objects in this namespace (cluster-scoped kinds are skipped).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,

    /// Print what would be released; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub kube: KubeArgs,
}

impl ReleaseArgs {
    /// Checks what clap cannot, and builds the options.
    pub fn options(&self) -> Result<crate::cmd::release::ReleaseOptions, String> {
        self.kube.client_options().validate()?;
        let finalizer = match (&self.finalizer, &self.plugin) {
            (Some(finalizer), _) => finalizer.clone(),
            (None, Some(plugin)) => {
                if crate::contract::names::validate_namespace(plugin).is_err() {
                    return Err(format!(
                        "--plugin {plugin:?}: not a plugin name (a DNS label)"
                    ));
                }
                crate::cmd::release::plugin_finalizer(plugin)
            }
            (None, None) => return Err("--finalizer or --plugin is required".into()),
        };
        crate::contract::names::check_finalizer_name(&finalizer)
            .map_err(|e| format!("--finalizer {finalizer:?}: {e}"))?;
        if let Some(ns) = &self.namespace
            && crate::contract::names::validate_namespace(ns).is_err()
        {
            return Err(format!("--namespace {ns:?}: not a valid namespace name"));
        }
        Ok(crate::cmd::release::ReleaseOptions {
            finalizer,
            kinds: self.kinds.clone(),
            namespace: self.namespace.clone(),
            dry_run: self.dry_run,
            client: self.kube.client_options(),
        })
    }
}

#[derive(Debug, Args)]
pub struct RbacArgs {
    /// Directory of plugin components (`NAME.wasm`).
    #[arg(long)]
    pub plugins: PathBuf,

    /// Name of the ClusterRole and ClusterRoleBinding.
    #[arg(long, default_value = "kubewasm")]
    pub name: String,

    /// The host's ServiceAccount.
    #[arg(long, default_value = "kubewasm")]
    pub service_account: String,

    /// The ServiceAccount's namespace.
    #[arg(long, default_value = "kubewasm-system")]
    pub namespace: String,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Directory of plugin components (`NAME.wasm`, settings in `NAME.settings.json`).
    #[arg(long, env = "KUBEWASM_PLUGINS")]
    pub plugins: PathBuf,

    /// Watch only this namespace (cluster-scoped kinds are still watched).
    #[arg(long, env = "KUBEWASM_NAMESPACE")]
    pub namespace: Option<String>,

    /// Reconciles that may run at once (workers). A reconcile mostly waits
    /// on the API server, so the default, 8, overlaps those waits on a small
    /// host; plugin calls are bounded separately by
    /// `--plugin-memory-budget-mib`.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,

    /// Send every write with server-side `dryRun=All` and log it; nothing changes.
    #[arg(long)]
    pub dry_run: bool,

    /// Refuse to start (exit 2) if any plugin's settings are invalid or
    /// rejected at startup, e.g. in CI. Without it such a plugin is not
    /// loaded, is reported, and every other plugin runs.
    #[arg(long)]
    pub strict_settings: bool,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub leader: LeaderArgs,

    #[command(flatten)]
    pub resources: ResourceArgs,

    #[command(flatten)]
    pub shadow: ShadowRunArgs,

    /// Address of the admin server: /metrics, /livez, /readyz.
    #[arg(long, default_value = "0.0.0.0:9090", env = "KUBEWASM_ADMIN_ADDR")]
    pub admin_addr: std::net::SocketAddr,

    /// Seconds in-flight reconciles get to finish on SIGTERM.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_seconds: u64,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl RunArgs {
    /// Checks what clap cannot: the plugin directory exists and the
    /// namespace is a DNS label.
    pub fn validate(&self) -> Result<(), String> {
        self.kube.client_options().validate()?;
        self.leader.validate()?;
        if !self.plugins.is_dir() {
            return Err(format!(
                "--plugins {}: not a directory",
                self.plugins.display()
            ));
        }
        if let Some(ns) = &self.namespace
            && crate::contract::names::validate_namespace(ns).is_err()
        {
            return Err(format!("--namespace {ns:?}: not a valid namespace name"));
        }
        Ok(())
    }

    pub fn run_options(&self) -> crate::cmd::run::RunOptions {
        crate::cmd::run::RunOptions {
            plugins: self.plugins.clone(),
            namespace: self.namespace.clone(),
            concurrency: self.concurrency as usize,
            dry_run: self.dry_run,
            strict_settings: self.strict_settings,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_seconds),
            client: self.kube.client_options(),
            admin_addr: self.admin_addr,
            shadow_promote_after: self.shadow.shadow_promote_after,
            election: self.leader.options(),
            shard: self.leader.shard_options(
                self.kube.kube_request_timeout * 2
                    + Duration::from_millis(self.runtime.call_timeout_ms),
            ),
            resources: self.resources.options(),
        }
    }
}

/// How the host talks to the API server.
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// A client-side limit of requests per second to the API server, like
    /// client-go's QPS [default: none; the API server's priority and
    /// fairness protects it, and `--concurrency` bounds the host's writes].
    #[arg(long, env = "KUBEWASM_KUBE_QPS")]
    pub kube_qps: Option<f64>,

    /// Requests allowed at once above `--kube-qps` (the token bucket size)
    /// [default: 1.5 × `--kube-qps`].
    #[arg(long, env = "KUBEWASM_KUBE_BURST", requires = "kube_qps")]
    pub kube_burst: Option<u32>,

    /// The longest a new connection to the API server may take (TCP and
    /// TLS), e.g. `5s` or `500ms`.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "KUBEWASM_KUBE_CONNECT_TIMEOUT")]
    pub kube_connect_timeout: Duration,

    /// The longest one request to the API server may take before it fails
    /// (and may be retried); a watch, until it starts streaming.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "KUBEWASM_KUBE_REQUEST_TIMEOUT")]
    pub kube_request_timeout: Duration,
}

/// A duration such as `30s`, `500ms` or `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (ms, s or m)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (ms, s or m)")),
    }
}

impl KubeArgs {
    pub fn client_options(&self) -> crate::cluster::client::ClientOptions {
        crate::cluster::client::ClientOptions {
            rate_limit: self.rate_limit(),
            connect_timeout: self.kube_connect_timeout,
            request_timeout: self.kube_request_timeout,
        }
    }

    /// The client-side limit, if `--kube-qps` is set.
    pub fn rate_limit(&self) -> Option<crate::cluster::client::RateLimit> {
        self.kube_qps
            .map(|qps| crate::cluster::client::RateLimit::new(qps, self.kube_burst))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}

/// An RFC 3339 instant, as milliseconds since the Unix epoch.
fn parse_instant(text: &str) -> Result<i64, String> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{text:?} is not an RFC 3339 instant: {e}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventArg {
    Applied,
    Deleted,
    Resync,
    Finalizing,
}

/// Limits every plugin call runs under.
#[derive(Clone, Debug, Args)]
pub struct RuntimeArgs {
    /// Linear memory one plugin call may use, in MiB.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_memory_mib: u32,

    /// Wall time one plugin call may take, in milliseconds.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub call_timeout_ms: u64,

    /// Bytes of intents one reconcile may return, in KiB.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub max_result_kib: u32,

    /// Intents one reconcile may return.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_intents: u32,

    /// Bytes the host's reads (`get-object`, `list-objects`, `settings`) may
    /// hand one plugin call, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_host_read_mib: u32,

    /// Linear memory all plugin calls in flight may use together, in MiB;
    /// at most budget / --max-memory-mib calls run at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub plugin_memory_budget_mib: u32,

    /// Largest plugin file (`NAME.wasm`) read, in MiB; larger files, FIFOs,
    /// devices and symlinks out of the plugin directory are refused.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_plugin_file_mib: u32,

    /// Directory for compiled plugins, keyed by content hash and engine
    /// configuration, each entry authenticated by an HMAC keyed from
    /// `DIR.key` beside it [default: $XDG_CACHE_HOME/kubewasm/compiled].
    #[arg(long, env = "KUBEWASM_COMPILE_CACHE")]
    pub compile_cache: Option<PathBuf>,

    /// Compile every plugin from scratch instead of using the cache.
    #[arg(long)]
    pub no_compile_cache: bool,

    /// How the host (`kubewasm run`) compiles a large plugin (2 MiB or more,
    /// as JavaScript and Python plugins are) that is not in the compile
    /// cache: `auto` compiles it with wasmtime's baseline compiler (Winch)
    /// first, so it serves within seconds, and swaps in the optimizing
    /// compiler's faster code when that is ready (x86_64 only; elsewhere
    /// as `never`); `never` serves only optimized code. Offline commands
    /// always compile optimized.
    #[arg(long, value_enum, default_value_t = BaselineCompile::Auto, env = "KUBEWASM_BASELINE_COMPILE")]
    pub baseline_compile: BaselineCompile,
}

/// `--baseline-compile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BaselineCompile {
    Auto,
    Never,
}

/// Components at least this large are compiled by the baseline compiler
/// first under `--baseline-compile auto`: the Go, JavaScript and Python
/// toolchains' (4-19 MB) are, Rust and C plugins (0.1-0.5 MB, under 0.4 s
/// to compile) are not.
pub const BASELINE_MIN_BYTES: usize = 2 << 20;

impl RuntimeArgs {
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            max_memory_bytes: (self.max_memory_mib as usize) << 20,
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            max_result_bytes: (self.max_result_kib as usize) << 10,
            max_intents: self.max_intents as usize,
            max_host_read_bytes: (self.max_host_read_mib as usize) << 20,
            memory_budget_bytes: (self.plugin_memory_budget_mib as usize) << 20,
            max_plugin_file_bytes: u64::from(self.max_plugin_file_mib) << 20,
            cache_dir: if self.no_compile_cache {
                None
            } else {
                self.compile_cache.clone().or_else(default_compile_cache)
            },
            baseline_min_bytes: match self.baseline_compile {
                BaselineCompile::Auto if cfg!(target_arch = "x86_64") => Some(BASELINE_MIN_BYTES),
                _ => None,
            },
            ..RuntimeConfig::default()
        }
    }
}

/// `$XDG_CACHE_HOME/kubewasm/compiled`, else `$HOME/.cache/kubewasm/compiled`.
pub(crate) fn default_compile_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("kubewasm").join("compiled"))
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,

    /// Settings (JSON) to validate with the plugin's `validate-settings`.
    #[arg(long)]
    pub settings: Option<PathBuf>,

    #[arg(long, short, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The plugin component (`.wasm`).
    pub plugin: PathBuf,

    /// The object to reconcile (YAML or JSON, one document).
    #[arg(long)]
    pub object: PathBuf,

    /// The event type delivered with the object.
    #[arg(long, value_enum, default_value_t = EventArg::Applied)]
    pub event: EventArg,

    /// The instant the plugin's `now` returns (RFC 3339, e.g.
    /// `2026-12-04T10:00:00Z`); the wall clock if not given.
    #[arg(long, value_parser = parse_instant)]
    pub now: Option<i64>,

    /// Settings (JSON) handed to the plugin.
    #[arg(long)]
    pub settings: Option<PathBuf>,

    /// Directory of YAML/JSON objects the plugin may read through the host cache.
    #[arg(long)]
    pub cache: Option<PathBuf>,

    #[arg(long, short, value_enum, default_value_t = OutputFormat::Yaml)]
    pub output: OutputFormat,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[cfg(test)]
mod tests;
