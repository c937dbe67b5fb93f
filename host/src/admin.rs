//! The admin HTTP server (`--admin-addr`): Prometheus metrics and the
//! probes Kubernetes asks.
//!
//! - `GET /metrics`: every series of [`crate::metrics`] in the text format.
//!   Gauges that describe current state (queue depth per plugin, objects
//!   cached per kind) are refreshed on each scrape.
//! - `GET /livez`: 200 while the process serves requests.
//! - `GET /readyz`: 200 once the plugin directory has been read and every
//!   informer of a subscribed kind has finished its first list (or been
//!   found forbidden), while the API server answers; 503 with the reason
//!   otherwise (the API server not reachable yet at startup, or not
//!   answering since). A standby that does not hold the leader lease is
//!   ready: its caches are warm and it can take over at once, and readiness
//!   only gates the metrics Service.
//!
//! The server starts before the host first reaches the API server, so the
//! probes answer (`/livez` 200, `/readyz` 503) while it waits for one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::client::ApiHealth;
use crate::controller::Controller;

/// What the handlers look at.
#[derive(Clone)]
pub struct Admin {
    /// Set once the host has reached the API server and built it.
    controller: Arc<OnceLock<Controller>>,
    health: Option<ApiHealth>,
    plugins_loaded: Arc<AtomicBool>,
}

impl Admin {
    pub fn new(controller: Controller) -> Self {
        let admin = Self::starting(None);
        admin.set_controller(controller);
        admin
    }

    /// An admin server for a host still starting: not ready until
    /// [`Admin::set_controller`], and while `health` says the API server
    /// does not answer.
    pub fn starting(health: Option<ApiHealth>) -> Self {
        Self {
            controller: Arc::default(),
            health,
            plugins_loaded: Arc::default(),
        }
    }

    /// The controller, once built.
    pub fn set_controller(&self, controller: Controller) {
        let _ = self.controller.set(controller);
    }

    /// Marks the first read of the plugin directory as done.
    pub fn set_plugins_loaded(&self) {
        self.plugins_loaded.store(true, Ordering::Release);
    }

    /// Why the host is not ready, if it is not.
    pub fn not_ready(&self) -> Option<String> {
        if let Some(reason) = self.health.as_ref().and_then(ApiHealth::not_ready) {
            return Some(reason);
        }
        let Some(controller) = self.controller.get() else {
            return Some("starting: discovering the API server's kinds".into());
        };
        if !self.plugins_loaded.load(Ordering::Acquire) {
            return Some("plugins not loaded yet".into());
        }
        if !controller.informers.all_synced() {
            return Some("informers not synced yet".into());
        }
        None
    }

    fn refresh_gauges(&self) {
        let Some(controller) = self.controller.get() else {
            return;
        };
        let metrics = crate::metrics::get();
        metrics.queue_depth.reset();
        for loaded in controller.plugins.all() {
            metrics
                .queue_depth
                .with_label_values(&[loaded.plugin.info().name.as_str()])
                .set(0);
        }
        for (plugin, depth) in controller.queue.len_by_group() {
            metrics
                .queue_depth
                .with_label_values(&[plugin.as_str()])
                .set(depth as i64);
        }
        metrics.cached_objects.reset();
        for (kind, count) in controller.informers.cached_counts() {
            metrics
                .cached_objects
                .with_label_values(&[kind.group.as_str(), kind.kind.as_str()])
                .set(count as i64);
        }
    }

    fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/livez", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(self)
    }

    /// Binds `addr` and serves until `shutdown` resolves. Returns the bound
    /// address (useful with port 0) once listening.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %error, "admin server failed");
            }
        });
        Ok(bound)
    }
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    admin.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::get().encode(),
    )
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.not_ready() {
        None => (StatusCode::OK, "ok\n".to_string()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}
