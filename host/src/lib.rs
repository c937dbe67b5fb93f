//! kubewasm: a Kubernetes controller host whose reconcile logic runs as
//! WebAssembly components.
//!
//! One event's path through the host (see `docs/architecture.md` for a
//! walk through the files):
//!
//! ```text
//!  cluster ──events──▶ queue ──work──▶ runtime ──intents──▶ applier ──writes──▶ cluster
//!  (informers)          (per plugin)    (the plugin's call)    (checked, retried)
//!                 ╰──────────── controller ties them together ───────────╯
//! ```
//!
//! - [`contract`]: what plugins declare, receive and return;
//! - [`cluster`]: client, discovery, informers, the read cache, leader election;
//! - [`queue`]: the per-plugin work queue;
//! - [`runtime`]: the wasmtime sandbox that calls plugins;
//! - [`plugins`]: the loaded set, its loader and hot reload;
//! - [`applier`]: turns intents into API requests;
//! - [`controller`]: dispatch and workers;
//! - [`ops`]: metrics and the admin server;
//! - [`resources`]: the plugin resources (ClusterPlugin, Plugin) and their CRDs;
//! - [`recording`]: the recording file of `kubewasm record` and `replay`;
//! - [`cmd`]: the command-line front ends.

pub mod applier;
pub mod cluster;
pub mod cmd;
pub mod contract;
pub mod controller;
pub mod oci;
pub mod ops;
pub mod plugins;
pub mod queue;
pub mod recording;
pub mod resources;
pub mod runtime;
pub mod shadow;

pub use controller::Controller;
pub use ops::error_chain;
pub use runtime::{Plugin, Runtime, RuntimeConfig};
