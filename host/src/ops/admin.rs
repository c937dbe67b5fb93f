//! The admin HTTP server (`--admin-addr`): Prometheus metrics and the
//! probes Kubernetes asks.
//!
//! - `GET /metrics`: every series of [`crate::ops::metrics`] in the text format.
//!   Gauges that describe current state (queue depth per plugin, objects
//!   cached per kind) are refreshed on each scrape.
//! - `GET /livez`: 200 while the process serves requests.
//! - `GET /shadow`: what the plugins' shadows did, as JSON
//!   ([`crate::shadow::Report`]); `kubewasm shadow` prints it. Read only.
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

use crate::ops::metrics::Metrics;

/// A part of the running host the admin server asks: whether it is ready,
/// and the gauges that mirror its current state. The API server's health
/// and the controller implement it; the admin server knows neither.
pub trait HostStatus: Send + Sync + 'static {
    /// Why this part is not ready, if it is not.
    fn not_ready(&self) -> Option<String>;

    /// Sets the gauges that describe current state, just before a scrape.
    fn refresh_gauges(&self, _metrics: &Metrics) {}

    /// What the plugins' shadows did ([`crate::shadow::Report`]), as JSON.
    fn shadow_report(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// What the handlers look at.
#[derive(Clone)]
pub struct Admin {
    /// The API server's health, asked first.
    health: Option<Arc<dyn HostStatus>>,
    /// The engine, set once the host has reached the API server and built it.
    engine: Arc<OnceLock<Arc<dyn HostStatus>>>,
    plugins_loaded: Arc<AtomicBool>,
    /// The host's metrics, served at `/metrics`.
    metrics: Arc<Metrics>,
}

impl Admin {
    /// An admin server for a host still starting: not ready until
    /// [`Admin::set_engine`], and while `health` says the API server
    /// does not answer. It serves `metrics`.
    pub fn starting(health: Option<Arc<dyn HostStatus>>, metrics: Arc<Metrics>) -> Self {
        Self {
            health,
            engine: Arc::default(),
            plugins_loaded: Arc::default(),
            metrics,
        }
    }

    /// The engine (the controller), once built.
    pub fn set_engine(&self, engine: Arc<dyn HostStatus>) {
        let _ = self.engine.set(engine);
    }

    /// Marks the first read of the plugin directory as done.
    pub fn set_plugins_loaded(&self) {
        self.plugins_loaded.store(true, Ordering::Release);
    }

    /// Why the host is not ready, if it is not.
    pub fn not_ready(&self) -> Option<String> {
        if let Some(reason) = self.health.as_ref().and_then(|h| h.not_ready()) {
            return Some(reason);
        }
        let Some(engine) = self.engine.get() else {
            return Some("starting: discovering the API server's kinds".into());
        };
        if !self.plugins_loaded.load(Ordering::Acquire) {
            return Some("plugins not loaded yet".into());
        }
        engine.not_ready()
    }

    fn refresh_gauges(&self) {
        if let Some(engine) = self.engine.get() {
            engine.refresh_gauges(&self.metrics);
        }
    }

    fn router(self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .route("/livez", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/shadow", get(shadow))
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
        admin.metrics.encode(),
    )
}

/// Read only: promotion is done on the plugin directory's files, by whoever
/// may write them, never through this unauthenticated port.
async fn shadow(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.engine.get() {
        Some(engine) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{}\n", engine.shadow_report()),
        ),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "starting: no plugins loaded yet\n".to_string(),
        ),
    }
}

async fn readyz(State(admin): State<Admin>) -> impl IntoResponse {
    match admin.not_ready() {
        None => (StatusCode::OK, "ok\n".to_string()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}
