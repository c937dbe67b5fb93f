//! The loops of a running host (plugin directory watch, dispatch, workers,
//! and with sharding the resync of gained keys) and their drain on shutdown.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::cluster::client::ApiHealth;
use crate::cluster::informer::KindEvent;
use crate::cluster::shard::Grown;
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
