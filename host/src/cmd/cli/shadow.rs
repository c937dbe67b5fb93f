//! `kubewasm shadow` and `kubewasm run --shadow-promote-after`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Print what the plugins' shadows did, or promote one.
#[derive(Debug, Args)]
pub struct ShadowArgs {
    #[command(subcommand)]
    pub action: Option<ShadowAction>,

    /// The running host's admin server (`--admin-addr` of `kubewasm run`),
    /// as HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:9090", env = "KUBEWASM_SHADOW_ADMIN")]
    pub admin: String,

    #[arg(long, short, value_enum, default_value_t = ShadowFormat::Text)]
    pub output: ShadowFormat,
}

#[derive(Debug, Subcommand)]
pub enum ShadowAction {
    /// Make NAME's shadow serve: rename `NAME.next.wasm` over `NAME.wasm`
    /// (and `NAME.next.settings.json`, if there is one, over
    /// `NAME.settings.json`) in the plugin directory; a running host
    /// reloads it. Needs write access to the directory, nothing else.
    Promote {
        /// The plugin file's name, without `.wasm`.
        name: String,

        /// The plugin directory (`--plugins` of `kubewasm run`).
        #[arg(long, env = "KUBEWASM_PLUGINS")]
        plugins: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShadowFormat {
    Text,
    Json,
}

/// `kubewasm run`'s shadow flags.
#[derive(Debug, Args)]
pub struct ShadowRunArgs {
    /// Promote a plugin's shadow (`NAME.next.wasm`) by itself once this many
    /// of its reconciles in a row compared equal to the serving version's
    /// (a shadow that fails is aborted instead). Without it, only
    /// `kubewasm shadow promote NAME` promotes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), env = "KUBEWASM_SHADOW_PROMOTE_AFTER")]
    pub shadow_promote_after: Option<u64>,
}
