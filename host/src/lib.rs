//! kubewasm: a Kubernetes controller host whose reconcile logic runs as
//! WebAssembly components.
//!
//! The data path (see `DESIGN.md`): discovery and informers feed events
//! through a work queue into the [`runtime`], which runs plugins in a
//! sandbox and returns [`intent`]s for the applier.

pub mod applier;
pub mod cache;
pub mod cli;
pub mod controller;
pub mod discovery;
pub mod informer;
pub mod intent;
pub mod loader;
pub mod offline;
pub mod plugin;
pub mod queue;
pub mod run;
pub mod runtime;
pub mod selector;
