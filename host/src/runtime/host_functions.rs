//! The functions a plugin imports from the host (`kubewasm:plugin/host`), and
//! the per-call state they work on.
//!
//! Work done on the host's side counts against the calling plugin:
//!
//! - **time**: every host function checks the call's deadline before and
//!   after its work (and between objects while serializing a list). Epoch
//!   interruption only stops Wasm code, so without this a plugin could spend
//!   its time in host calls. A call past its deadline is stopped with the same
//!   `Timeout` error as a loop, and makes no further host calls;
//! - **copies**: `get-object` and `list-objects` serialize cached objects
//!   into fresh strings for each call. The bytes handed to the guest are
//!   summed per call, and a call that passes its host read budget is stopped
//!   with `HostReadBudget` before the copy that would pass it is made;
//! - **logs**: at most [`MAX_LOG_RECORDS`] records per call, each message cut
//!   at [`MAX_LOG_BYTES`], at most [`MAX_LOG_FIELDS`] fields, each key and
//!   value cut at [`MAX_LOG_FIELD_BYTES`], all fields together cut at
//!   [`MAX_LOG_BYTES`], and nothing beyond those limits is copied.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::v0_1;
use super::bindings::v0_2::{host, wit};
use super::budget::Permit;
use super::sandbox::{self, Limiter, STDERR_TAIL, TailPipe};
use crate::cluster::cache::ObjectReader;
use crate::contract::GroupKind;
use crate::contract::PluginInfo;
use crate::contract::selector::LabelSelector;

/// Log records one call may emit; later ones are dropped and counted.
pub const MAX_LOG_RECORDS: usize = 256;
/// Longest log message kept, and longest text of all fields of one record.
pub const MAX_LOG_BYTES: usize = 8 * 1024;
/// Fields of one log record kept; later ones are dropped.
pub const MAX_LOG_FIELDS: usize = 32;
/// Longest field key or value kept; longer ones are truncated.
pub const MAX_LOG_FIELD_BYTES: usize = 1024;

/// What a call may read, shared by every call of one plugin.
#[derive(Clone)]
pub struct ReadAccess {
    pub reader: Arc<dyn ObjectReader>,
    pub settings: Arc<str>,
    /// Where `now` reads the time.
    pub clock: Clock,
}

/// The time source of the `now` import.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The host's wall clock, read once per call.
    #[default]
    System,
    /// A fixed instant, in milliseconds since the Unix epoch: offline runs
    /// take it from their fixture, so they are reproducible.
    Fixed(i64),
}

impl Clock {
    /// The instant, in milliseconds since the Unix epoch.
    pub fn read(self) -> i64 {
        match self {
            Clock::System => jiff::Timestamp::now().as_millisecond(),
            Clock::Fixed(ms) => ms,
        }
    }
}

/// `epoch_ms` as the contract's timestamp: RFC 3339 in UTC, whole seconds.
fn timestamp(epoch_ms: i64) -> wit::Timestamp {
    let rfc3339 = jiff::Timestamp::from_millisecond(epoch_ms)
        .map(|t| format!("{:.0}", t))
        .unwrap_or_default();
    wit::Timestamp { epoch_ms, rfc3339 }
}

/// The `Store` data of one call: sandbox state plus what host functions need.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: TailPipe,
    pub limiter: Limiter,
    plugin: Arc<PluginInfo>,
    access: ReadAccess,
    logs_emitted: usize,
    pub logs_dropped: usize,
    /// When the call must be over; host functions refuse to work past it.
    pub deadline: Option<Instant>,
    /// Set when a host function found the deadline passed.
    pub deadline_exceeded: bool,
    /// Bytes of objects host reads may hand to the guest in this call.
    max_read_bytes: usize,
    /// Bytes of objects handed to the guest so far.
    pub read_bytes: usize,
    /// The total a read would have reached when it was refused.
    pub read_budget_exceeded: Option<usize>,
    /// The instant `now` returned in this call, once it was asked for.
    pub now: Option<i64>,
    /// The call's share of the host memory budget, held until the store drops.
    _permit: Permit,
}

/// The per-call limits a [`CallState`] enforces.
pub struct CallLimits {
    pub limiter: Limiter,
    pub max_read_bytes: usize,
    pub permit: Permit,
}

impl CallState {
    pub fn new(plugin: Arc<PluginInfo>, access: ReadAccess, limits: CallLimits) -> Self {
        let stderr = TailPipe::new(STDERR_TAIL);
        Self {
            wasi: sandbox::inert_wasi(stderr.clone()),
            table: ResourceTable::new(),
            stderr,
            limiter: limits.limiter,
            plugin,
            access,
            logs_emitted: 0,
            logs_dropped: 0,
            deadline: None,
            deadline_exceeded: false,
            max_read_bytes: limits.max_read_bytes,
            read_bytes: 0,
            read_budget_exceeded: None,
            now: None,
            _permit: limits.permit,
        }
    }

    /// What the plugin wrote to stderr (e.g. a Rust panic message), trimmed.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Fails (trapping the guest) once the call's deadline has passed.
    fn check_deadline(&mut self) -> wasmtime::Result<()> {
        if self.deadline_exceeded || self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.deadline_exceeded = true;
            return Err(wasmtime::format_err!(
                "plugin {} is past its deadline; host call refused",
                self.plugin_name()
            ));
        }
        Ok(())
    }

    /// Counts `len` more bytes handed to the guest, failing (trapping) when
    /// that passes the call's read budget.
    fn charge_read(&mut self, len: usize) -> wasmtime::Result<()> {
        let total = self.read_bytes.saturating_add(len);
        if total > self.max_read_bytes {
            self.read_budget_exceeded = Some(total);
            return Err(wasmtime::format_err!(
                "plugin {} exceeded its host read budget of {} bytes",
                self.plugin_name(),
                self.max_read_bytes
            ));
        }
        self.read_bytes = total;
        Ok(())
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
                "plugin {} may not read {kind} ({api_version}): it does not subscribe to, own or watch that kind",
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
impl v0_1::wit::Host for CallState {}

/// Cuts `s` to at most `max` bytes (on a char boundary), marking the cut.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

fn truncated(s: &str, max: usize) -> String {
    let kept = truncate(s, max);
    if kept.len() < s.len() {
        format!("{kept}…")
    } else {
        kept.to_string()
    }
}

/// `k=v k=v …` of at most [`MAX_LOG_FIELDS`] fields, each key and value cut
/// at [`MAX_LOG_FIELD_BYTES`], the whole cut at [`MAX_LOG_BYTES`]; nothing
/// past those limits is copied.
fn render_fields(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in fields.iter().enumerate() {
        if i == MAX_LOG_FIELDS {
            out.push_str(&format!(" …({} more fields)", fields.len() - i));
            break;
        }
        let room = MAX_LOG_BYTES.saturating_sub(out.len());
        if room == 0 {
            out.push('…');
            break;
        }
        let field = format!(
            "{}{}={}",
            if i == 0 { "" } else { " " },
            truncated(key, MAX_LOG_FIELD_BYTES),
            truncated(value, MAX_LOG_FIELD_BYTES)
        );
        out.push_str(&truncated(&field, room));
    }
    out
}

impl host::Host for CallState {
    fn log(
        &mut self,
        level: wit::LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        self.check_deadline()?;
        if self.logs_emitted >= MAX_LOG_RECORDS {
            self.logs_dropped += 1;
            return Ok(());
        }
        self.logs_emitted += 1;
        let message = truncated(&message, MAX_LOG_BYTES);
        let fields = render_fields(&fields);
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
        Ok(())
    }

    fn settings(&mut self) -> wasmtime::Result<String> {
        self.check_deadline()?;
        let settings = self.access.settings.to_string();
        self.charge_read(settings.len())?;
        Ok(settings)
    }

    fn get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        self.check_deadline()?;
        let gk = match self.readable(&api_version, &kind) {
            Ok(gk) => gk,
            Err(e) => return Ok(Err(e)),
        };
        let found = match self.access.reader.get(&gk, namespace.as_deref(), &name) {
            Ok(found) => found,
            Err(e) => return Ok(Err(e.to_string())),
        };
        self.check_deadline()?;
        let Some(object) = found else {
            return Ok(Ok(None));
        };
        // Charged before the cached text is copied.
        self.charge_read(object.json().len())?;
        Ok(Ok(Some(object.json().to_owned())))
    }

    fn list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> wasmtime::Result<Result<Vec<String>, String>> {
        self.check_deadline()?;
        let gk = match self.readable(&api_version, &kind) {
            Ok(gk) => gk,
            Err(e) => return Ok(Err(e)),
        };
        let selector = match LabelSelector::parse(label_selector.as_deref().unwrap_or("")) {
            Ok(selector) => selector,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let objects = match self
            .access
            .reader
            .list(&gk, namespace.as_deref(), &selector)
        {
            Ok(objects) => objects,
            Err(e) => return Ok(Err(e.to_string())),
        };
        // One object at a time, so a refused list never holds more than the
        // budget in host memory.
        let mut texts = Vec::with_capacity(objects.len().min(4096));
        for object in objects {
            self.check_deadline()?;
            self.charge_read(object.json().len())?;
            texts.push(object.json().to_owned());
        }
        self.check_deadline()?;
        Ok(Ok(texts))
    }

    fn now(&mut self) -> wasmtime::Result<wit::Timestamp> {
        self.check_deadline()?;
        let clock = self.access.clock;
        Ok(timestamp(*self.now.get_or_insert_with(|| clock.read())))
    }
}

/// The 0.1.0 host interface: the same functions, without `now`.
impl v0_1::host::Host for CallState {
    fn log(
        &mut self,
        level: v0_1::wit::LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let level = match level {
            v0_1::wit::LogLevel::Trace => wit::LogLevel::Trace,
            v0_1::wit::LogLevel::Debug => wit::LogLevel::Debug,
            v0_1::wit::LogLevel::Info => wit::LogLevel::Info,
            v0_1::wit::LogLevel::Warn => wit::LogLevel::Warn,
            v0_1::wit::LogLevel::Error => wit::LogLevel::Error,
        };
        host::Host::log(self, level, message, fields)
    }

    fn settings(&mut self) -> wasmtime::Result<String> {
        host::Host::settings(self)
    }

    fn get_object(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<Option<String>, String>> {
        host::Host::get_object(self, api_version, kind, namespace, name)
    }

    fn list_objects(
        &mut self,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        label_selector: Option<String>,
    ) -> wasmtime::Result<Result<Vec<String>, String>> {
        host::Host::list_objects(self, api_version, kind, namespace, label_selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_rfc3339_in_whole_seconds() {
        let t = timestamp(1_764_817_200_123);
        assert_eq!(t.rfc3339, "2025-12-04T03:00:00Z");
        assert_eq!(t.epoch_ms, 1_764_817_200_123);
        assert_eq!(timestamp(0).rfc3339, "1970-01-01T00:00:00Z");
    }

    #[test]
    fn log_fields_are_bounded_before_they_are_joined() {
        let long = "v".repeat(10 * MAX_LOG_FIELD_BYTES);
        let fields: Vec<(String, String)> = (0..10_000)
            .map(|i| (format!("k{i}"), long.clone()))
            .collect();
        let rendered = render_fields(&fields);
        assert!(rendered.len() <= MAX_LOG_BYTES + 64, "{}", rendered.len());
        assert!(rendered.starts_with(&format!("k0={}…", "v".repeat(MAX_LOG_FIELD_BYTES))));
        assert!(rendered.ends_with('…'));

        let few = [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ];
        assert_eq!(render_fields(&few), "a=1 b=2");
        let many: Vec<(String, String)> = (0..40).map(|i| (format!("k{i}"), "x".into())).collect();
        assert!(render_fields(&many).ends_with(" k31=x …(8 more fields)"));
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncated("héllo", 2), "h…");
        assert_eq!(truncated("hi", 2), "hi");
    }
}
