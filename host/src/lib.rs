//! kubewasm: a Kubernetes controller host whose reconcile logic runs as
//! WebAssembly components.
//!
//! The data path (see `DESIGN.md`): discovery and informers feed events
//! through a work queue into the [`runtime`], which runs plugins in a
//! sandbox and returns [`intent`]s for the applier.

pub mod admin;
pub mod applier;
pub mod cache;
pub mod cli;
pub mod client;
pub mod controller;
pub mod discovery;
pub mod grant;
pub mod informer;
pub mod intent;
pub mod leader;
pub mod loader;
pub mod metrics;
pub mod names;
pub mod offline;
pub mod plugin;
pub mod queue;
pub mod rbac;
pub mod reload;
pub mod run;
pub mod runtime;
pub mod selector;

/// An error and its causes on one line, joined with `: ` (for logs and CLI
/// messages).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
