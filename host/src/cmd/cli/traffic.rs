//! Flags of `kubewasm record` and `kubewasm replay`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{KubeArgs, RuntimeArgs, parse_duration};
use crate::recording::RedactPath;

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The recording to write (JSON Lines; replaced if it exists).
    #[arg(long, short)]
    pub output: PathBuf,

    /// Record the kinds this plugin subscribes to, owns and watches.
    #[arg(long)]
    pub plugin: Option<PathBuf>,

    /// Also record this kind, as `Kind.group` (`Deployment.apps`; `ConfigMap`
    /// for the core group; the plural works too). Repeatable.
    #[arg(long = "kind", value_name = "KIND")]
    pub kinds: Vec<String>,

    /// Record only this namespace (repeatable); cluster-scoped kinds are
    /// recorded whole, Namespace objects only for these namespaces.
    #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,

    /// Record only objects matching this label selector (`app=web,tier!=db`);
    /// one that stops matching is recorded as deleted.
    #[arg(long)]
    pub selector: Option<String>,

    /// Replace the value at this path by `<redacted>` in every recorded
    /// object, e.g. `data.password`, `data.*`,
    /// `spec.template.spec.containers[*].env`. Repeatable. With any, the
    /// `kubectl.kubernetes.io/last-applied-configuration` annotation (a
    /// copy of the object) is redacted too.
    #[arg(long = "redact", value_name = "PATH")]
    pub redactions: Vec<RedactPath>,

    /// Record Secrets too (left out by default, even if the plugin reads them).
    #[arg(long)]
    pub include_secrets: bool,

    /// Stop after this long (`90s`, `30m`, `1440m`) [default: until SIGTERM
    /// or Ctrl-C].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    #[command(flatten)]
    pub kube: KubeArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl RecordArgs {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.kube.client_options().validate()?;
        if self.plugin.is_none() && self.kinds.is_empty() {
            return Err("name what to record: --plugin, --kind, or both".into());
        }
        for ns in &self.namespaces {
            crate::contract::names::validate_namespace(ns)
                .map_err(|e| format!("--namespace {e}"))?;
        }
        if let Some(selector) = &self.selector {
            crate::contract::selector::LabelSelector::parse(selector)
                .map_err(|e| format!("--selector {selector:?}: {e}"))?;
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err("--duration must be more than 0".into());
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The recording (`kubewasm record --output`).
    pub recording: PathBuf,

    /// The plugin to replay (with `--against`: the new version).
    pub plugin: PathBuf,

    /// The plugin's settings [default: `NAME.settings.json` beside it, if
    /// there is one, else `{}`]. The scope file `NAME.scope.json` beside it
    /// confines it as in `kubewasm run`.
    #[arg(long)]
    pub settings: Option<PathBuf>,

    /// Also replay this version (the one serving) and report where the two
    /// differ; exit 1 if they do.
    #[arg(long, value_name = "OLD.wasm")]
    pub against: Option<PathBuf>,

    /// Settings of the `--against` version [default: beside it, else `{}`].
    #[arg(long, requires = "against")]
    pub against_settings: Option<PathBuf>,

    /// Differences listed per reconcile (field differences of one intent
    /// count one each); the summary counts all.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_differences: u32,

    /// `text`: each reconcile (with `--against`, each that differs or
    /// fails) and a summary; `json`: the same as one document.
    #[arg(long, short, value_enum, default_value_t = ReplayFormat::Text)]
    pub output: ReplayFormat,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}
