//! Why the runtime could not be set up, a component could not become a
//! plugin, or one call failed: the runtime's errors, each with a bounded
//! `metric_label()`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::compile_cache::CacheError;
use super::sandbox::{RECONCILER_EXPORT, RECONCILER_EXPORT_V0_1};
use crate::contract::intent::IntentError;

/// The runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to configure the Wasm engine")]
    Engine(#[source] WasmtimeError),
    #[error("failed to open the compiled-artefact cache at {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: CacheError,
    },
    #[error(
        "the plugin memory budget of {budget} bytes does not fit one call of {per_call} bytes (raise the budget or lower the per-call memory limit)"
    )]
    MemoryBudget { budget: usize, per_call: usize },
}

/// A wasmtime error kept as a cause. `wasmtime::Error` is anyhow-like and
/// not a `std::error::Error`; boxed, its chain of causes stays walkable, so
/// [`crate::ops::error_chain`] prints what `{e:#}` would.
#[derive(Debug)]
pub struct WasmtimeError(Box<dyn std::error::Error + Send + Sync>);

impl From<wasmtime::Error> for WasmtimeError {
    fn from(error: wasmtime::Error) -> Self {
        Self(error.into_boxed_dyn_error())
    }
}

impl fmt::Display for WasmtimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WasmtimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A component that cannot become a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}: not a WebAssembly file (it does not start with the \\0asm magic bytes)")]
    NotWasm { origin: String },
    #[error(
        "{origin}: a core WebAssembly module, not a component (build for wasm32-wasip2 or wrap it with `wasm-tools component new`)"
    )]
    NotComponent { origin: String },
    #[error("{origin}: failed to compile")]
    Compile {
        origin: String,
        #[source]
        source: WasmtimeError,
    },
    #[error("{origin}: {reason}")]
    NotGranted { origin: String, reason: String },
    #[error(
        "{origin}: does not export `{RECONCILER_EXPORT}` or `{RECONCILER_EXPORT_V0_1}`, so it targets another world (it exports: {exports})"
    )]
    WrongWorld { origin: String, exports: String },
    #[error("{origin}: does not match the kubewasm world")]
    Link {
        origin: String,
        #[source]
        source: WasmtimeError,
    },
    #[error("{origin}: describe failed")]
    Describe {
        origin: String,
        #[source]
        source: CallError,
    },
    #[error("{origin}: invalid description: {reason}")]
    InvalidDescription { origin: String, reason: String },
}

impl LoadError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            LoadError::NotWasm { .. } => "not_wasm",
            LoadError::NotComponent { .. } => "not_component",
            LoadError::Compile { .. } => "compile",
            LoadError::NotGranted { .. } => "not_granted",
            LoadError::WrongWorld { .. } | LoadError::Link { .. } => "wrong_world",
            LoadError::Describe { .. } => "describe",
            LoadError::InvalidDescription { .. } => "invalid_description",
        }
    }
}

/// One call that failed. The host and other calls are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("plugin {plugin} trapped: {message}{}", stderr_suffix(.stderr))]
    Trap {
        plugin: String,
        message: String,
        stderr: String,
    },
    #[error("plugin {plugin} exceeded its time limit of {limit:?}")]
    Timeout { plugin: String, limit: Duration },
    #[error(
        "plugin {plugin} exceeded its memory limit of {limit} bytes (it asked for {requested})"
    )]
    MemoryLimit {
        plugin: String,
        limit: usize,
        requested: usize,
    },
    #[error(
        "plugin {plugin} exceeded its host read budget of {limit} bytes (reading objects would have handed it {requested} bytes in this call)"
    )]
    HostReadBudget {
        plugin: String,
        limit: usize,
        requested: usize,
    },
    #[error("plugin {plugin} returned {count} intents, over the limit of {limit}")]
    TooManyIntents {
        plugin: String,
        count: usize,
        limit: usize,
    },
    #[error("plugin {plugin} returned {size} bytes of intents, over the limit of {limit}")]
    ResultTooLarge {
        plugin: String,
        size: usize,
        limit: usize,
    },
    #[error("plugin {plugin} returned a malformed intent")]
    MalformedIntent {
        plugin: String,
        #[source]
        source: IntentError,
    },
    #[error("plugin {plugin} reported an error: {message}")]
    Failed { plugin: String, message: String },
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {stderr})")
    }
}

impl CallError {
    /// What the plugin said, for a message that already names the plugin:
    /// a failed call's own message, otherwise the whole error.
    pub fn plugin_message(&self) -> String {
        match self {
            CallError::Failed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CallError::Trap { .. } => "trap",
            CallError::Timeout { .. } => "timeout",
            CallError::MemoryLimit { .. } => "memory_limit",
            CallError::HostReadBudget { .. } => "host_read_budget",
            CallError::TooManyIntents { .. } => "too_many_intents",
            CallError::ResultTooLarge { .. } => "result_too_large",
            CallError::MalformedIntent { .. } => "malformed_intent",
            CallError::Failed { .. } => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::error_chain;

    #[test]
    fn a_wasmtime_error_keeps_its_causes() {
        let io = std::io::Error::other("disk on fire");
        let error = wasmtime::Error::new(io)
            .context("reading the module")
            .context("compiling");
        let alternate = format!("{error:#}");
        let kept = LoadError::Compile {
            origin: "a.wasm".into(),
            source: error.into(),
        };
        assert_eq!(
            error_chain(&kept),
            format!("a.wasm: failed to compile: {alternate}")
        );
        assert_eq!(
            error_chain(&kept),
            "a.wasm: failed to compile: compiling: reading the module: disk on fire"
        );
    }
}
