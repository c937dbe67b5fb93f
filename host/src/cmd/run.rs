//! `kubewasm run`: connect, discover, load plugins, and run the cluster loop
//! until SIGTERM or SIGINT, then drain in-flight reconciles within the
//! grace period.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::applier::{Applier, ApplierOptions};
use crate::cluster::client::{ApiHealth, ClientOptions, Connection, FenceLayer};
use crate::cluster::discovery::{self, KindRegistry, SharedRegistry};
use crate::cluster::informer::InformerRegistry;
use crate::cluster::leader::{Election, LeaderGate};
use crate::controller::Controller;
use crate::ops::admin::Admin;
use crate::plugins::reload::PluginDir;
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
    /// Timeouts and rate limit of the Kubernetes client.
    pub client: ClientOptions,
    /// Where the admin server (metrics, probes) listens.
    pub admin_addr: std::net::SocketAddr,
    /// Leader election, if enabled.
    pub election: Option<crate::cluster::leader::ElectionOptions>,
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
        source: crate::cluster::leader::LeaderError,
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

/// SIGTERM or SIGINT, registered at once and observable many times.
#[derive(Clone)]
struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    fn listen() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tx.send_replace(true);
            // Keep the sender: a dropped one would also end the waits.
            std::future::pending::<()>().await;
        });
        Self(rx)
    }

    async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
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

/// Backoff of start-up steps that need the API server: 500 ms doubling to 30 s.
const START_RETRY_MIN: Duration = Duration::from_millis(500);
const START_RETRY_MAX: Duration = Duration::from_secs(30);

/// Runs `step` until it succeeds, backing off while the API server is not
/// reachable; `None` if a shutdown signal came first. The first failure is
/// logged at WARN, later ones at DEBUG, the success after failures at INFO.
async fn until_reachable<T, E, F, Fut>(
    what: &str,
    shutdown: &mut Shutdown,
    mut step: F,
) -> Option<T>
where
    E: std::error::Error,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut delay = START_RETRY_MIN;
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            result = step() => result,
            () = shutdown.wait() => return None,
        };
        match result {
            Ok(value) => {
                if failures > 0 {
                    tracing::info!(
                        failures,
                        "{what}: done after the API server became reachable"
                    );
                }
                return Some(value);
            }
            Err(error) if failures == 0 => tracing::warn!(
                error = %crate::ops::error_chain(&error),
                retry_in = ?delay,
                "{what} failed: not ready, retrying with backoff until the API server answers"
            ),
            Err(error) => {
                tracing::debug!(error = %crate::ops::error_chain(&error), failures, retry_in = ?delay, "{what} failed again")
            }
        }
        failures += 1;
        tokio::select! {
            () = tokio::time::sleep(delay) => {},
            () = shutdown.wait() => return None,
        }
        delay = (delay * 2).min(START_RETRY_MAX);
    }
}

/// Runs the host until a shutdown signal.
///
/// The admin server starts first, so probes answer while the host waits for
/// an API server that is not reachable yet (`/readyz` says why); discovery
/// and the election retry with backoff until it answers. On SIGTERM the
/// host drains in-flight reconciles for at most the grace period, then
/// abandons (and counts) the rest: their requests are dropped, not left in
/// flight, and the process exits within the grace.
pub async fn run(options: RunOptions, runtime: Runtime) -> Result<(), RunError> {
    let mut shutdown = Shutdown::listen();
    let connection = Connection::infer(options.client)
        .await
        .map_err(RunError::Client)?;
    let health = ApiHealth::new(connection.server());
    let probe_client = connection
        .builder(crate::cluster::client::health::PROBE_TIMEOUT)
        .map_err(RunError::Client)?
        .build();
    let probe = tokio::spawn(health.clone().probe(probe_client));
    let _stop_probe = AbortOnDrop(probe);

    let admin = Admin::starting(Some(Arc::new(health.clone())));
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

    let (leading, gate) = match options.election {
        Some(_) => {
            let (tx, gate) = LeaderGate::pending();
            (Some(tx), gate)
        }
        None => (None, LeaderGate::always()),
    };
    let client = connection
        .client(FenceLayer::new(gate.clone(), health.clone()))
        .map_err(RunError::Client)?;
    let Some(discovered) =
        until_reachable("discovering the API server's kinds", &mut shutdown, || {
            discovery::discover(&client)
        })
        .await
    else {
        tracing::info!("shut down before the API server was reachable");
        let _ = stop_admin.send(());
        return Ok(());
    };
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
    let election = match (&options.election, leading) {
        (Some(election), Some(leading)) => {
            let started = until_reachable("starting leader election", &mut shutdown, || {
                Election::start(&connection, election.clone(), leading.clone())
            })
            .await;
            match started {
                Some(started) => Some(started),
                None => {
                    let _ = stop_admin.send(());
                    return Ok(());
                }
            }
        }
        _ => None,
    };
    let controller = Controller::new(informers, registry.clone(), Arc::new(applier))
        .with_leader_gate(gate)
        .with_namespace(options.namespace.clone());
    admin.set_engine(Arc::new(controller.clone()));
    if election.is_none() {
        crate::ops::metrics::get().leader.set(1);
    }

    let mut plugin_dir = PluginDir::new(
        options.plugins.clone(),
        runtime,
        Arc::new(controller.clone()),
    );
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
            .filter(|(_, failure)| failure.kind == crate::plugins::loader::SETTINGS_FAILURE)
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
    let mut workers: Vec<_> = (0..options.concurrency.max(1))
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

    shutdown.wait().await;
    let deadline = tokio::time::Instant::now() + options.shutdown_grace;
    let _ = stop_reload.send(());
    tracing::info!(grace = ?options.shutdown_grace, "shutting down: draining in-flight reconciles");
    controller.queue.shutdown();
    let drained =
        tokio::time::timeout_at(deadline, futures::future::join_all(workers.iter_mut())).await;
    if drained.is_err() {
        // Dropping a reconcile drops its requests (and their connections):
        // nothing is left in flight. Its key is reconciled again by whoever
        // runs next (the level-triggered queue starts from a full list).
        let abandoned: Vec<_> = workers.iter().filter(|w| !w.is_finished()).collect();
        for worker in &abandoned {
            worker.abort();
        }
        crate::ops::metrics::get()
            .reconciles_abandoned
            .inc_by(abandoned.len() as u64);
        tracing::warn!(
            abandoned = abandoned.len(),
            api_server_answering = health.answering(),
            "in-flight reconciles did not finish within the grace period: abandoned, their requests cancelled"
        );
    }
    if let Some(election) = election {
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .min(Duration::from_secs(5));
        if health.answering() && !left.is_zero() {
            election.release(left).await;
        } else {
            election.abandon();
        }
    }
    let _ = stop_admin.send(());
    tracing::info!("shut down");
    Ok(())
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `kubewasm discover`: the kinds the cluster serves, as a table.
pub async fn discover_table(
    rate_limit: crate::cluster::client::RateLimit,
) -> Result<String, RunError> {
    let client = crate::cluster::client::connect(rate_limit)
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
