//! The functions a plugin imports from the host (`kubewasm:plugin/host`), and
//! the per-call state they work on.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{host, wit};
use super::sandbox::{self, Limiter};
use crate::cache::{GroupKind, ObjectReader};
use crate::plugin::PluginInfo;
use crate::selector::LabelSelector;

/// Log records one call may emit; later ones are dropped and counted.
pub const MAX_LOG_RECORDS: usize = 256;
/// Longest log message kept; longer ones are truncated.
pub const MAX_LOG_BYTES: usize = 8 * 1024;
/// Stderr bytes kept for error reports.
const STDERR_CAPACITY: usize = 4 * 1024;

/// What a call may read, shared by every call of one plugin.
#[derive(Clone)]
pub struct ReadAccess {
    pub reader: Arc<dyn ObjectReader>,
    pub settings: Arc<str>,
}

/// The `Store` data of one call: sandbox state plus what host functions need.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub limiter: Limiter,
    plugin: Arc<PluginInfo>,
    access: ReadAccess,
    logs_emitted: usize,
    pub logs_dropped: usize,
}

impl CallState {
    pub fn new(
        plugin: Arc<PluginInfo>,
        access: ReadAccess,
        max_memory: usize,
        max_table_elements: usize,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        Self {
            wasi: sandbox::inert_wasi(stderr.clone()),
            table: ResourceTable::new(),
            stderr,
            limiter: Limiter::new(max_memory, max_table_elements),
            plugin,
            access,
            logs_emitted: 0,
            logs_dropped: 0,
        }
    }

    /// What the plugin wrote to stderr (e.g. a Rust panic message), trimmed.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    fn plugin_name(&self) -> &str {
        &self.plugin.name
    }

    fn readable(&self, api_version: &str, kind: &str) -> Result<GroupKind, String> {
        let gk = GroupKind::from_api_version(api_version, kind);
        // Before `describe` has run the plugin's scope is unknown: nothing is readable.
        if self.plugin.may_read(&gk.group, &gk.kind) {
            Ok(gk)
        } else {
            Err(format!(
                "plugin {} may not read {kind} ({api_version}): it does not subscribe to that kind",
                self.plugin_name()
            ))
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for CallState {}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

impl host::Host for CallState {
    fn log(&mut self, level: wit::LogLevel, message: String, fields: Vec<(String, String)>) {
        if self.logs_emitted >= MAX_LOG_RECORDS {
            self.logs_dropped += 1;
            return;
        }
        self.logs_emitted += 1;
        let message = truncate(message, MAX_LOG_BYTES);
        let fields = truncate(
            fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            MAX_LOG_BYTES,
        );
        let plugin = self.plugin_name();
        match level {
            wit::LogLevel::Trace => {
                tracing::trace!(target: "kubewasm::plugin", plugin, fields, "{message}")
            }
            wit::LogLevel::Debug => {
                tracing::debug!(target: "kubewasm::plugin", plugin, fields, "{message}")
            }
            wit::LogLevel::Info => {
                tracing::info!(target: "kubewasm::plugin", plugin, fields, "{message}")
            }
            wit::LogLevel::Warn => {
                tracing::warn!(target: "kubewasm::plugin", plugin, fields, "{message}")
            }
            wit::LogLevel::Error => {
                tracing::error!(target: "kubewasm::plugin", plugin, fields, "{message}")
            }
        }
    }

    fn settings(&mut self) -> String {
        self.access.settings.to_string()
    }

    fn get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> Result<Option<String>, String> {
        let gk = self.readable(&api_version, &kind)?;
        self.access
            .reader
            .get(&gk, namespace.as_deref(), &name)
            .map(|found| found.map(|o| o.to_string()))
            .map_err(|e| e.to_string())
    }

    fn list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> Result<Vec<String>, String> {
        let gk = self.readable(&api_version, &kind)?;
        let selector = LabelSelector::parse(label_selector.as_deref().unwrap_or(""))
            .map_err(|e| e.to_string())?;
        self.access
            .reader
            .list(&gk, namespace.as_deref(), &selector)
            .map(|objects| objects.iter().map(|o| o.to_string()).collect())
            .map_err(|e| e.to_string())
    }
}
