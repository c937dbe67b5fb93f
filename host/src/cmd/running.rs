//! The loops of a running host (plugin directory watch, dispatch, workers,
//! and with sharding the resync of gained keys), their drain on shutdown,
//! and leaving the shard ring and the leader election afterwards.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::client::ApiHealth;
use crate::cluster::informer::KindEvent;
use crate::cluster::leader::Election;
use crate::cluster::shard::Grown;
use crate::cluster::shard::Sharding;
use crate::controller::Controller;
use crate::ops::metrics::Metrics;
use crate::plugins::reload::PluginDir;

/// The loops of a running host that shutdown stops: the plugin directory's
/// watch, the controller's queue and its workers.
pub(super) struct Running {
    controller: Controller,
    workers: Vec<JoinHandle<()>>,
    stop_reload: oneshot::Sender<()>,
}

impl Running {
    /// Follows the plugin directory, routes informer events to the queue,
    /// resyncs the keys a growing shard gains (`grown`), and starts
    /// `concurrency` workers (at least one).
    pub(super) fn start(
        controller: &Controller,
        plugin_dir: PluginDir,
        events: mpsc::UnboundedReceiver<KindEvent>,
        grown: Option<mpsc::UnboundedReceiver<Grown>>,
        concurrency: usize,
    ) -> Self {
        let (stop_reload, reload_stopped) = oneshot::channel::<()>();
        tokio::spawn(plugin_dir.watch(async move {
            let _ = reload_stopped.await;
        }));
        tokio::spawn(controller.clone().dispatch(events));
        if let Some(grown) = grown {
            tokio::spawn(controller.clone().follow_shards(grown));
        }
        let workers = (0..concurrency.max(1))
            .map(|_| tokio::spawn(controller.clone().work()))
            .collect();
        Self {
            controller: controller.clone(),
            workers,
            stop_reload,
        }
    }

    /// Stops the reloads and the queue, and waits for in-flight reconciles
    /// for at most `grace`; the ones still running then are abandoned.
    /// Returns the end of the grace period.
    pub(super) async fn drain(
        mut self,
        grace: Duration,
        health: &ApiHealth,
        metrics: &Metrics,
    ) -> tokio::time::Instant {
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.stop_reload.send(());
        tracing::info!(grace = ?grace, "shutting down: draining in-flight reconciles");
        self.controller.queue.shutdown();
        let workers = futures::future::join_all(self.workers.iter_mut());
        if tokio::time::timeout_at(deadline, workers).await.is_ok() {
            return deadline;
        }
        // Dropping a reconcile drops its requests (and their connections):
        // nothing is left in flight. Its key is reconciled again by whoever
        // runs next (the level-triggered queue starts from a full list).
        let abandoned: Vec<_> = self.workers.iter().filter(|w| !w.is_finished()).collect();
        for worker in &abandoned {
            worker.abort();
        }
        metrics.reconciles_abandoned.inc_by(abandoned.len() as u64);
        tracing::warn!(
            abandoned = abandoned.len(),
            api_server_answering = health.answering(),
            "in-flight reconciles did not finish within the grace period: abandoned, their requests cancelled"
        );
        deadline
    }
}

/// Leaves the shard ring within what is left of the grace (at most 5 s)
/// while the API server answers; otherwise its Lease expires on its own.
pub(super) async fn leave_ring(
    sharding: Sharding,
    deadline: tokio::time::Instant,
    health: &ApiHealth,
) {
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .min(Duration::from_secs(5));
    let timeout = if health.answering() {
        left
    } else {
        Duration::ZERO
    };
    sharding.leave(timeout).await;
}

/// Gives the lease up within what is left of the grace (at most 5 s) while
/// the API server answers; otherwise leaves it to expire.
pub(super) async fn leave_election(
    election: Election,
    deadline: tokio::time::Instant,
    health: &ApiHealth,
) {
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .min(Duration::from_secs(5));
    if health.answering() && !left.is_zero() {
        election.release(left).await;
    } else {
        election.abandon();
    }
}
