//! Flags of the registry commands: `push` and `pull`.

use std::path::PathBuf;

use clap::Args;

use super::RuntimeArgs;
use crate::oci::RegistryOptions;

/// How to reach the registry, shared by `push` and `pull`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry credentials: a dockerconfigjson file (`~/.docker/config.json`,
    /// or a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`).
    /// Entries with `auth` or `username`/`password` are used; credential
    /// helpers are not run. Without it, anonymous.
    #[arg(long, value_name = "CONFIG.json", env = "KUBEWASM_REGISTRY_AUTH")]
    pub auth: Option<PathBuf>,

    /// A PEM CA certificate to trust besides the system's, e.g. a private
    /// registry's. Repeatable.
    #[arg(long = "ca", value_name = "FILE")]
    pub ca_files: Vec<PathBuf>,
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            ca_files: self.ca_files.clone(),
            auth_file: self.auth.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The plugin component (`.wasm`); it is loaded and described first, and
    /// refused if it is not a kubewasm plugin.
    pub file: PathBuf,

    /// Where to push it, with a tag: `REGISTRY/REPOSITORY:TAG`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// An extra manifest annotation, `KEY=VALUE` (e.g.
    /// `org.opencontainers.image.source=https://…`). Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,

    #[command(flatten)]
    pub registry: RegistryArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// What to pull, by tag or digest: `REGISTRY/REPOSITORY:TAG` or
    /// `REGISTRY/REPOSITORY@sha256:…`.
    #[arg(value_name = "REF")]
    pub reference: String,

    /// Also write the component to this file (it is always kept in the
    /// blob cache, whose path is printed).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// The OCI blob cache [default: $XDG_CACHE_HOME/kubewasm/oci, beside the
    /// compile cache].
    #[arg(long, value_name = "DIR", env = "KUBEWASM_OCI_CACHE")]
    pub oci_cache: Option<PathBuf>,

    /// Largest component pulled, in MiB; a larger layer is refused before
    /// it is downloaded.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_plugin_file_mib: u32,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl PullArgs {
    /// The blob cache directory: `--oci-cache`, else `kubewasm/oci` in the
    /// user's cache directory.
    pub fn oci_cache(&self) -> Option<PathBuf> {
        self.oci_cache.clone().or_else(|| {
            super::default_compile_cache()
                .and_then(|compiled| compiled.parent().map(|root| root.join("oci")))
        })
    }
}

fn parse_annotation(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

/// Plugins from `ClusterPlugin` resources, beside the plugin directory.
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// Also serve plugins from `ClusterPlugin` resources (kubewasm.dev/v1alpha1,
    /// CRDs in deploy/crds): `kubectl apply` then loads and swaps them.
    #[arg(long, env = "KUBEWASM_PLUGIN_RESOURCES")]
    pub plugin_resources: bool,

    /// Namespace of the ConfigMaps, Secrets and pull secrets ClusterPlugins
    /// name [default: POD_NAMESPACE, the pod's service account namespace, or
    /// `default`].
    #[arg(long, env = "KUBEWASM_PLUGIN_NAMESPACE")]
    pub plugin_namespace: Option<String>,

    /// Serve only the ClusterPlugins matching this label selector (e.g.
    /// `kubewasm.dev/host=blue`), so several hosts can share a cluster.
    #[arg(long, value_name = "SELECTOR", env = "KUBEWASM_PLUGIN_SELECTOR")]
    pub plugin_selector: Option<String>,

    /// A PEM CA certificate to trust for plugin registries besides the
    /// system's. Repeatable.
    #[arg(long = "registry-ca", value_name = "FILE")]
    pub registry_ca_files: Vec<PathBuf>,

    /// The OCI blob cache [default: `oci` beside the compile cache].
    #[arg(long, value_name = "DIR")]
    pub oci_cache: Option<PathBuf>,

    /// How often a plugin resource's status is brought up to date with its
    /// `counts` and `lastReconcileTime`, at most (one write per resource
    /// whose counts changed), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub plugin_status_interval: u64,
}

impl ResourceArgs {
    pub fn options(&self) -> Option<crate::resources::setup::ResourceOptions> {
        self.plugin_resources
            .then(|| crate::resources::setup::ResourceOptions {
                namespace: self
                    .plugin_namespace
                    .clone()
                    .unwrap_or_else(crate::cluster::leader::default_namespace),
                selector: self.plugin_selector.clone(),
                registry: RegistryOptions {
                    ca_files: self.registry_ca_files.clone(),
                    auth_file: None,
                },
                status_interval: std::time::Duration::from_secs(self.plugin_status_interval),
                oci_cache: self.oci_cache.clone().or_else(|| {
                    super::default_compile_cache()
                        .and_then(|compiled| compiled.parent().map(|root| root.join("oci")))
                }),
            })
    }
}
