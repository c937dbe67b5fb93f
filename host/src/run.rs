//! `kubewasm run`: connect, discover, load plugins, and run the cluster loop
//! until SIGTERM or SIGINT, then drain in-flight reconciles.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::admin::Admin;
use crate::applier::{Applier, ApplierOptions};
use crate::controller::Controller;
use crate::discovery::{self, KindRegistry, SharedRegistry};
use crate::informer::InformerRegistry;
use crate::leader::{Election, LeaderGate};
use crate::reload::PluginDir;
use crate::runtime::Runtime;

/// Settings of the cluster loop.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub plugins: PathBuf,
    pub namespace: Option<String>,
    pub concurrency: usize,
    pub dry_run: bool,
    /// Refuse to start when a plugin's settings are invalid or rejected;
    /// otherwise that plugin is skipped and reported.
    pub strict_settings: bool,
    pub shutdown_grace: Duration,
    pub rate_limit: crate::client::RateLimit,
    /// Where the admin server (metrics, probes) listens.
    pub admin_addr: std::net::SocketAddr,
    /// Leader election, if enabled.
    pub election: Option<crate::leader::ElectionOptions>,
}

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("failed to configure the Kubernetes client (kubeconfig or in-cluster)")]
    Client(#[source] kube::Error),
    #[error("failed to discover the API server's kinds")]
    Discovery(#[source] discovery::DiscoveryError),
    #[error("failed to read the plugin directory {path}")]
    PluginDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid plugin settings: {message}")]
    Settings { message: String },
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    #[error("failed to start leader election on Lease {namespace}/{lease}")]
    Election {
        namespace: String,
        lease: String,
        #[source]
        source: kube_lease_manager::LeaseManagerError,
    },
    #[error("failed to listen on --admin-addr {addr}")]
    Admin {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl RunError {
    /// Whether the operator's input is at fault (bad settings), rather than
    /// the cluster or the machine: the binary then exits 2, like a bad flag.
    pub fn is_usage(&self) -> bool {
        matches!(self, RunError::Settings { .. })
    }
}

/// Waits for SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs the host until a shutdown signal.
pub async fn run(options: RunOptions, runtime: Runtime) -> Result<(), RunError> {
    let client = crate::client::connect(options.rate_limit)
        .await
        .map_err(RunError::Client)?;
    let discovered = discovery::discover(&client)
        .await
        .map_err(RunError::Discovery)?;
    let registry = SharedRegistry::new(KindRegistry::from(discovered));
    tracing::info!(
        kinds = registry.load().len(),
        "discovered the cluster's kinds"
    );

    let (informers, events) = InformerRegistry::new(client.clone(), options.namespace.clone());
    let applier = Applier::new(
        client.clone(),
        Arc::new(registry.clone()),
        Arc::new(informers.clone()),
        ApplierOptions {
            dry_run: options.dry_run,
            reporting_instance: std::env::var("POD_NAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| "kubewasm".into()),
            ..ApplierOptions::default()
        },
    );
    let election = match &options.election {
        Some(election) => Some(
            Election::start(client.clone(), election.clone())
                .await
                .map_err(|source| RunError::Election {
                    namespace: election.namespace.clone(),
                    lease: election.lease_name.clone(),
                    source,
                })?,
        ),
        None => None,
    };
    let gate = election
        .as_ref()
        .map_or_else(LeaderGate::always, Election::gate);
    let controller = Controller::new(informers, registry.clone(), Arc::new(applier))
        .with_leader_gate(gate)
        .with_namespace(options.namespace.clone());

    let admin = Admin::new(controller.clone());
    let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    let admin_addr = admin
        .clone()
        .serve(options.admin_addr, async move {
            let _ = admin_stopped.await;
        })
        .await
        .map_err(|source| RunError::Admin {
            addr: options.admin_addr,
            source,
        })?;
    tracing::info!(addr = %admin_addr, "admin server listening (/metrics, /livez, /readyz)");
    if election.is_none() {
        crate::metrics::get().leader.set(1);
    }

    let mut plugin_dir = PluginDir::new(options.plugins.clone(), runtime, controller.clone());
    plugin_dir
        .sync()
        .await
        .map_err(|source| RunError::PluginDir {
            path: options.plugins.clone(),
            source,
        })?;
    // One plugin's bad settings never stop the others: the loader has logged
    // the failure once and `kubewasm_plugin_load_failing` shows it. Only an
    // operator who asked for it (`--strict-settings`, e.g. in CI) gets a
    // refused start instead.
    if options.strict_settings {
        let bad_settings: Vec<String> = plugin_dir
            .failures()
            .filter(|(_, failure)| failure.kind == crate::loader::SETTINGS_FAILURE)
            .map(|(_, failure)| failure.message.clone())
            .collect();
        if !bad_settings.is_empty() {
            return Err(RunError::Settings {
                message: bad_settings.join("; "),
            });
        }
    }
    admin.set_plugins_loaded();
    let (stop_reload, reload_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(plugin_dir.watch(async move {
        let _ = reload_stopped.await;
    }));

    tokio::spawn(controller.clone().dispatch(events));
    let workers: Vec<_> = (0..options.concurrency.max(1))
        .map(|_| tokio::spawn(controller.clone().work()))
        .collect();
    let watcher_controller = controller.clone();
    tokio::spawn(async move {
        let changes = discovery::kind_changes(client.clone());
        let mut diffs = std::pin::pin!(discovery::run_rediscovery(
            client,
            registry,
            changes,
            discovery::RediscoveryOptions::default(),
        ));
        while let Some(diff) = diffs.next().await {
            // Removed first: a kind whose preferred version changed comes as
            // removed (old version) plus added (new version).
            for info in &diff.removed {
                tracing::info!(group = %info.resource.group, kind = %info.resource.kind, "kind disappeared");
                watcher_controller.kind_removed(&info.resource);
            }
            for info in &diff.added {
                tracing::info!(group = %info.resource.group, kind = %info.resource.kind, "kind appeared");
                watcher_controller.kind_added(&info.resource);
            }
        }
    });
    tracing::info!(
        plugins = controller.plugins.all().len(),
        concurrency = options.concurrency,
        dry_run = options.dry_run,
        "kubewasm running"
    );

    shutdown_signal().await;
    let _ = stop_reload.send(());
    tracing::info!(grace = ?options.shutdown_grace, "shutting down: draining in-flight reconciles");
    controller.queue.shutdown();
    let drained =
        tokio::time::timeout(options.shutdown_grace, futures::future::join_all(workers)).await;
    if drained.is_err() {
        tracing::warn!("in-flight reconciles did not finish within the grace period");
    }
    if let Some(election) = election {
        election.release(Duration::from_secs(5)).await;
    }
    let _ = stop_admin.send(());
    Ok(())
}

/// `kubewasm discover`: the kinds the cluster serves, as a table.
pub async fn discover_table(rate_limit: crate::client::RateLimit) -> Result<String, RunError> {
    let client = crate::client::connect(rate_limit)
        .await
        .map_err(RunError::Client)?;
    let discovered = discovery::discover(&client)
        .await
        .map_err(RunError::Discovery)?;
    let mut text = String::new();
    for failure in &discovered.failures {
        text.push_str(&format!(
            "# skipped {}/{}: {}\n",
            failure.group, failure.version, failure.reason
        ));
    }
    text.push_str(&discovery::render_table(&KindRegistry::from(discovered)));
    Ok(text)
}
