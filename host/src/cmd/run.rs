//! `kubewasm run`: connect, discover, load plugins, and run the cluster loop
//! until SIGTERM or SIGINT, then drain in-flight reconciles within the
//! grace period.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::running::{Running, leave_election, leave_ring};
use crate::applier::{Applier, ApplierOptions};
use crate::cluster::client::{
    ApiHealth, ClientOptions, Connection, FenceLayer, Impersonation, ServiceAccount, ThrottleLayer,
};
use crate::cluster::discovery::{self, KindRegistry, SharedRegistry};
use crate::cluster::informer::{InformerRegistry, KindEvent};
use crate::cluster::leader::{Election, ElectionOptions, LeaderGate, Leadership};
use crate::cluster::shard::{Grown, ShardGate, ShardOptions, Sharding};
use crate::controller::Controller;
use crate::ops::admin::Admin;
use crate::ops::metrics::Metrics;
use crate::plugins::reload::PluginDir;
use crate::plugins::set::SharedSet;
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
    pub admin_addr: SocketAddr,
    /// Promote a shadow after this many equal reconciles in a row.
    pub shadow_promote_after: Option<u64>,
    /// Leader election, if enabled.
    pub election: Option<ElectionOptions>,
    /// Membership of a shard ring, if enabled (election is then on too).
    pub shard: Option<ShardOptions>,
    /// Plugins from `ClusterPlugin` resources, if enabled.
    pub resources: Option<crate::resources::setup::ResourceOptions>,
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
        addr: SocketAddr,
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
pub(crate) async fn shutdown_signal() {
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

/// Runs the host until a shutdown signal, recording into `metrics` (which
/// the admin server serves).
///
/// The admin server starts first, so probes answer while the host waits for
/// an API server that is not reachable yet (`/readyz` says why); discovery
/// and the election retry with backoff until it answers. On SIGTERM the
/// host drains in-flight reconciles for at most the grace period, then
/// abandons (and counts) the rest: their requests are dropped, not left in
/// flight, and the process exits within the grace.
pub async fn run(
    options: RunOptions,
    runtime: Runtime,
    metrics: Arc<Metrics>,
) -> Result<(), RunError> {
    let mut shutdown = Shutdown::listen();
    let api = ApiServer::connect(options.client, &metrics).await?;
    let (admin, stop_admin) = start_admin(options.admin_addr, &api.health, &metrics).await?;
    let (candidate, leader) = leader_gate(options.election.as_ref());
    // With sharding, the member's own Lease gates reconciles and their
    // writes; the leader Lease only the plugin resources' status.
    let (member, shards, grown) = member_gate(options.shard.as_ref());
    let gate = member.as_ref().map_or(leader.clone(), |m| m.gate.clone());
    let client = api.client(gate.clone()).map_err(RunError::Client)?;
    let Some((registry, election, sharding)) =
        reach_api_server(&api, &client, (candidate, member), &metrics, &mut shutdown).await
    else {
        let _ = stop_admin.send(());
        return Ok(());
    };
    let impersonation = api.impersonation(gate.clone());
    let (controller, events) = build_controller(
        &options,
        (&client, &impersonation),
        &registry,
        (gate, shards),
        &metrics,
    );
    let status_client = match &sharding {
        Some(_) => api.client(leader).map_err(RunError::Client)?,
        None => client.clone(),
    };
    admin.set_engine(Arc::new(controller.clone()));
    if election.is_none() {
        metrics.leader.set(1);
    }
    let set = SharedSet::new(Arc::new(controller.clone()), metrics.clone());
    let shadows = controller.shadows();
    shadows.promote_after(options.shadow_promote_after);
    let plugin_dir = load_plugins(&options, runtime.clone(), set.clone(), shadows.clone()).await?;
    match &options.resources {
        Some(resources) => {
            // Ready once the directory is read and every ClusterPlugin
            // listed at startup serves or has failed with a reason.
            let source = crate::resources::setup::source(
                resources,
                (&status_client, &impersonation),
                &registry,
                controller.tallies(),
                runtime,
                (set, shadows),
            );
            let mut stop = shutdown.clone();
            let (settled_tx, settled) = oneshot::channel();
            tokio::spawn(source.run(async move { stop.wait().await }, settled_tx));
            let admin = admin.clone();
            tokio::spawn(async move {
                if settled.await.is_ok() {
                    admin.set_plugins_loaded();
                }
            });
        }
        None => admin.set_plugins_loaded(),
    }
    let running = Running::start(&controller, plugin_dir, events, grown, options.concurrency);
    tokio::spawn(follow_kind_changes(client, registry, controller.clone()));
    tracing::info!(
        plugins = controller.plugins.all().len(),
        concurrency = options.concurrency,
        dry_run = options.dry_run,
        "kubewasm running"
    );

    shutdown.wait().await;
    let deadline = running
        .drain(options.shutdown_grace, &api.health, &metrics)
        .await;
    if let Some(sharding) = sharding {
        leave_ring(sharding, deadline, &api.health).await;
    }
    if let Some(election) = election {
        leave_election(election, deadline, &api.health).await;
    }
    let _ = stop_admin.send(());
    tracing::info!("shut down");
    Ok(())
}

/// The API server as the host reaches it: the connection, and its health
/// as a probe on a client of its own sees it, for as long as this lives.
struct ApiServer {
    connection: Connection,
    health: ApiHealth,
    /// The rate limit every client of the host shares.
    throttle: ThrottleLayer,
    _probe: AbortOnDrop,
}

impl ApiServer {
    /// Configures the connection (kubeconfig or in-cluster) and starts
    /// probing the API server.
    async fn connect(options: ClientOptions, metrics: &Arc<Metrics>) -> Result<Self, RunError> {
        let connection = Connection::infer(options).await.map_err(RunError::Client)?;
        let health = ApiHealth::new(connection.server(), metrics.clone());
        let probe_client = connection
            .builder(crate::cluster::client::health::PROBE_TIMEOUT)
            .map_err(RunError::Client)?
            .build();
        let probe = tokio::spawn(health.clone().probe(probe_client));
        Ok(Self {
            throttle: connection.throttle(),
            connection,
            health,
            _probe: AbortOnDrop(probe),
        })
    }

    /// The client of discovery, the informers and the applier: its writes
    /// pass only while `gate` is open and the API server answers.
    fn client(&self, gate: LeaderGate) -> kube::Result<kube::Client> {
        let fence = FenceLayer::new(gate, self.health.clone());
        self.connection.client_as(fence, &self.throttle, None)
    }

    /// Clients acting as plugins' ServiceAccounts, behind the same fence
    /// and rate limit as [`ApiServer::client`].
    fn impersonation(&self, gate: LeaderGate) -> Impersonation {
        let fence = FenceLayer::new(gate, self.health.clone());
        Impersonation::new(self.connection.clone(), fence, self.throttle.clone())
    }
}

/// Starts the admin server (metrics and probes), serving until the returned
/// sender fires or is dropped.
async fn start_admin(
    addr: SocketAddr,
    health: &ApiHealth,
    metrics: &Arc<Metrics>,
) -> Result<(Admin, oneshot::Sender<()>), RunError> {
    let admin = Admin::starting(Some(Arc::new(health.clone())), metrics.clone());
    let (stop_admin, admin_stopped) = oneshot::channel::<()>();
    let bound = admin
        .clone()
        .serve(addr, async move {
            let _ = admin_stopped.await;
        })
        .await
        .map_err(|source| RunError::Admin { addr, source })?;
    tracing::info!(addr = %bound, "admin server listening (/metrics, /livez, /readyz)");
    Ok((admin, stop_admin))
}

/// Leader election not started yet: its settings, and the handle that
/// opens the gate while this host leads.
struct Candidate {
    options: ElectionOptions,
    leadership: Leadership,
}

/// The gate workers and the write fence ask before they apply: always open
/// without leader election; with it, open while this host holds the lease.
fn leader_gate(election: Option<&ElectionOptions>) -> (Option<Candidate>, LeaderGate) {
    match election {
        Some(options) => {
            let (leadership, gate) = LeaderGate::pending();
            let candidate = Candidate {
                options: options.clone(),
                leadership,
            };
            (Some(candidate), gate)
        }
        None => (None, LeaderGate::always()),
    }
}

/// A shard ring member not started yet: its settings, and the handle that
/// opens its gate while its Lease is fresh.
struct PendingMember {
    options: ShardOptions,
    leadership: Leadership,
    gate: LeaderGate,
    shards: ShardGate,
}

/// The member gate and shard gate of `--shard-ring` (unsharded without it),
/// and the receiver of the shard's growths.
fn member_gate(
    shard: Option<&ShardOptions>,
) -> (
    Option<PendingMember>,
    ShardGate,
    Option<mpsc::UnboundedReceiver<Grown>>,
) {
    let Some(options) = shard else {
        return (None, ShardGate::unsharded(), None);
    };
    let (leadership, gate) = LeaderGate::pending();
    let (shards, grown) = ShardGate::member(options.identity.as_str().into());
    let member = PendingMember {
        options: options.clone(),
        leadership,
        gate,
        shards: shards.clone(),
    };
    (Some(member), shards, Some(grown))
}

/// What the host needs of the API server before it can start: the kinds it
/// serves and, with leader election and sharding, a running election and
/// ring membership. Each retries with backoff until it answers; `None` if
/// a shutdown signal came first.
async fn reach_api_server(
    api: &ApiServer,
    client: &kube::Client,
    (candidate, member): (Option<Candidate>, Option<PendingMember>),
    metrics: &Arc<Metrics>,
    shutdown: &mut Shutdown,
) -> Option<(SharedRegistry, Option<Election>, Option<Sharding>)> {
    let Some(discovered) = until_reachable("discovering the API server's kinds", shutdown, || {
        discovery::discover(client)
    })
    .await
    else {
        tracing::info!("shut down before the API server was reachable");
        return None;
    };
    let registry = SharedRegistry::new(KindRegistry::from(discovered));
    tracing::info!(
        kinds = registry.load().len(),
        "discovered the cluster's kinds"
    );
    let Some(candidate) = candidate else {
        return Some((registry, None, None));
    };
    let election = until_reachable("starting leader election", shutdown, || {
        let (options, leadership) = (candidate.options.clone(), candidate.leadership.clone());
        Election::start(&api.connection, options, leadership, metrics.clone())
    })
    .await?;
    let Some(member) = member else {
        return Some((registry, Some(election), None));
    };
    let sharding = until_reachable("joining the shard ring", shutdown, || {
        let (options, leadership) = (member.options.clone(), member.leadership.clone());
        Sharding::start(
            &api.connection,
            options,
            leadership,
            member.shards.clone(),
            metrics.clone(),
        )
    })
    .await?;
    Some((registry, Some(election), Some(sharding)))
}

/// The informers, the applier and the controller that ties them to the
/// queue; informer events arrive on the returned receiver.
fn build_controller(
    options: &RunOptions,
    (client, impersonation): (&kube::Client, &Impersonation),
    registry: &SharedRegistry,
    (gate, shards): (LeaderGate, ShardGate),
    metrics: &Arc<Metrics>,
) -> (Controller, mpsc::UnboundedReceiver<KindEvent>) {
    let (informers, events) =
        InformerRegistry::new(client.clone(), options.namespace.clone(), metrics.clone());
    let informers = informers.with_shard_gate(shards.clone());
    let applier_options = ApplierOptions {
        dry_run: options.dry_run,
        reporting_instance: std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "kubewasm".into()),
        metrics: metrics.clone(),
        ..ApplierOptions::default()
    };
    let applier = |dry_run: bool| {
        Arc::new(Applier::new(
            client.clone(),
            Arc::new(registry.clone()),
            Arc::new(informers.clone()),
            ApplierOptions {
                dry_run,
                ..applier_options.clone()
            },
        ))
    };
    let (normal, dry) = (applier(options.dry_run), applier(true));
    let acting_as = {
        let (impersonation, registry, informers) =
            (impersonation.clone(), registry.clone(), informers.clone());
        let options = applier_options.clone();
        Arc::new(move |account: &ServiceAccount, dry_run: bool| {
            Ok(Applier::new(
                impersonation.client(account)?,
                Arc::new(registry.clone()),
                Arc::new(informers.clone()),
                ApplierOptions {
                    dry_run,
                    ..options.clone()
                },
            ))
        })
    };
    let controller = Controller::new(informers, registry.clone(), normal, metrics.clone())
        .with_dry_run_applier(dry)
        .with_impersonation(acting_as)
        .with_leader_gate(gate)
        .with_shard_gate(shards)
        .with_namespace(options.namespace.clone());
    (controller, events)
}

/// Reads the plugin directory once, installing what loads into
/// `controller`.
async fn load_plugins(
    options: &RunOptions,
    runtime: Runtime,
    set: SharedSet,
    shadows: crate::shadow::Shadows,
) -> Result<PluginDir, RunError> {
    let mut plugin_dir =
        PluginDir::with_set(options.plugins.clone(), runtime, set).with_shadows(shadows);
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
            .into_iter()
            .filter(|(_, failure)| failure.kind == crate::plugins::loader::SETTINGS_FAILURE)
            .map(|(_, failure)| failure.message)
            .collect();
        if !bad_settings.is_empty() {
            return Err(RunError::Settings {
                message: bad_settings.join("; "),
            });
        }
    }
    Ok(plugin_dir)
}

/// Follows the kinds the cluster serves (CRDs created and deleted, API
/// services coming and going) and tells `controller`.
async fn follow_kind_changes(
    client: kube::Client,
    registry: SharedRegistry,
    controller: Controller,
) {
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
            controller.kind_removed(&info.resource);
        }
        for info in &diff.added {
            tracing::info!(group = %info.resource.group, kind = %info.resource.kind, "kind appeared");
            controller.kind_added(&info.resource);
        }
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
