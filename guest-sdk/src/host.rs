//! The raw host imports of the `kubewasm:plugin/host` interface.
//!
//! Inside a component these are the WIT imports. On native targets, where
//! there is no host, they are answered by the per-thread
//! [`TestHost`](crate::testing::TestHost), so plugins and their helpers can be
//! unit-tested with plain `cargo test`.

use crate::Timestamp;
use crate::log::Level;

/// Emits one log record.
pub(crate) fn log(level: Level, message: &str, fields: &[(String, String)]) {
    imp::log(level, message, fields)
}

/// The settings document (JSON text, `{}` if none).
pub(crate) fn settings() -> String {
    imp::settings()
}

/// One object from the cache as JSON text.
pub(crate) fn get(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<String>, String> {
    imp::get(api_version, kind, namespace, name)
}

/// Objects of one kind from the cache as JSON text.
pub(crate) fn list(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<String>, String> {
    imp::list(api_version, kind, namespace, label_selector)
}

/// The host's wall clock (one instant per reconcile).
pub(crate) fn now() -> Timestamp {
    imp::now()
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::Timestamp;
    use crate::bindings::kubewasm::plugin::host;
    use crate::bindings::kubewasm::plugin::types::LogLevel;
    use crate::log::Level;

    pub fn log(level: Level, message: &str, fields: &[(String, String)]) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        host::log(level, message, fields);
    }

    pub fn settings() -> String {
        host::settings()
    }

    pub fn get(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, String> {
        host::get_object(api_version, kind, namespace, name)
    }

    pub fn list(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        host::list_objects(api_version, kind, namespace, label_selector)
    }

    pub fn now() -> Timestamp {
        let now = host::now();
        Timestamp::from_parts(now.epoch_ms, now.rfc3339)
    }
}

#[cfg(not(target_arch = "wasm32"))]
use crate::testing::host as imp;
