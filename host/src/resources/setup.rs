//! How `kubewasm run` sets up the resource source: the options its flags
//! give ([`ResourceOptions`]) and the source built from them.

use std::path::PathBuf;

use crate::cluster::client::Impersonation;
use crate::cluster::discovery::SharedRegistry;
use crate::controller::Tallies;
use crate::plugins::set::SharedSet;
use crate::resources::fetch::{Fetcher, Place};
use crate::resources::report::Reporting;
use crate::resources::source::ResourceSource;
use crate::runtime::Runtime;

/// Where plugin resources find what they name.
#[derive(Clone, Debug)]
pub struct ResourceOptions {
    /// Namespace of the ConfigMaps, Secrets and pull secrets ClusterPlugins name.
    pub namespace: String,
    /// Only ClusterPlugins matching this label selector.
    pub selector: Option<String>,
    pub registry: crate::oci::RegistryOptions,
    /// The OCI blob cache; without one, OCI modules fail to load (named).
    pub oci_cache: Option<PathBuf>,
    /// How often counts are written to the status at most.
    pub status_interval: std::time::Duration,
}

/// The source of plugins from `ClusterPlugin` and `Plugin` resources: reads
/// through the host's client (a Plugin's sources as its ServiceAccount);
/// its status writes and Events pass the leader fence.
pub fn source(
    options: &ResourceOptions,
    (client, impersonation): (&kube::Client, &Impersonation),
    registry: &SharedRegistry,
    tallies: Tallies,
    runtime: Runtime,
    (set, shadows): (SharedSet, crate::shadow::Shadows),
) -> ResourceSource {
    let store = options.oci_cache.as_deref().and_then(|dir| {
        crate::oci::BlobStore::open(dir)
            .inspect_err(|error| {
                tracing::error!(dir = %dir.display(), error = %crate::ops::error_chain(error), "cannot open the OCI cache; ClusterPlugins with OCI modules will not load")
            })
            .ok()
    });
    let fetcher = Fetcher {
        host: Place {
            client: client.clone(),
            namespace: options.namespace.clone(),
        },
        registry: options.registry.clone(),
        store,
        max_component_bytes: runtime.config().max_plugin_file_bytes,
    };
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "kubewasm".into());
    let reporting = Reporting::new(client.clone(), instance);
    ResourceSource::new(client.clone(), runtime, set, fetcher, reporting)
        .with_selector(options.selector.clone())
        .with_accounts(impersonation.clone(), registry.clone())
        .with_tallies(tallies, options.status_interval)
        .with_shadows(shadows)
}
