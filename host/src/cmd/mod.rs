//! The `kubewasm` commands, apart from the engine they drive:
//!
//! - [`cli`]: flags and sub-commands (the only place clap types live);
//! - [`run`]: `kubewasm run` and `kubewasm discover`, against a cluster;
//! - [`check`]: `kubewasm check` and `kubewasm eval`, offline;
//! - [`rbac`]: `kubewasm rbac`, the RBAC a plugin directory needs;
//! - [`test`]: `kubewasm test`, a plugin's fixture cases against its component;
//! - [`new`], [`componentize`]: `kubewasm new`, `wit` and `componentize`,
//!   for plugin authors;
//! - [`release`]: `kubewasm release-finalizers`, for a plugin that is gone;
//! - [`oci`]: `kubewasm push` and `pull`, plugins through an OCI registry;
//! - [`record`], [`replay`]: `kubewasm record` captures a cluster's traffic,
//!   `kubewasm replay` runs a plugin (or two versions) over it offline;
//! - [`shadow`]: `kubewasm shadow`, the shadow rollout's report and promotion.

pub mod check;
pub mod cli;
pub mod componentize;
pub mod discover;
pub mod new;
pub mod oci;
pub mod rbac;
pub mod record;
pub mod release;
pub mod replay;
pub mod run;
mod running;
pub mod shadow;
pub mod test;
