//! Structured logging through the host.
//!
//! The host adds the plugin name and the object being reconciled to every
//! record, so messages need not repeat them. Use the macros
//! ([`info!`](crate::info) and friends) for formatted messages with fields,
//! or the functions here.
//!
//! ```
//! use kubewasm_guest::log;
//!
//! log::info("propagated labels", &[("count", "2")]);
//! kubewasm_guest::info!("copied {} labels", 2; namespace = "team-a", changed = true);
//! kubewasm_guest::debug!("nothing to do");
//! ```

/// Severity of a log record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing.
    Trace,
    /// Routine detail, off by default in the host.
    Debug,
    /// Something worth knowing happened.
    Info,
    /// Something an operator may need to act on.
    Warn,
    /// Something failed.
    Error,
}

/// Emits a record at `level` with `fields` (key, value pairs).
///
/// ```
/// kubewasm_guest::log::log(kubewasm_guest::log::Level::Warn, "label value too long", &[("label", "team")]);
/// ```
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    crate::host::log(level, message, &fields);
}

/// Emits a record at trace level.
///
/// ```
/// kubewasm_guest::log::trace("entering", &[]);
/// ```
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    log(Level::Trace, message, fields)
}

/// Emits a record at debug level.
///
/// ```
/// kubewasm_guest::log::debug("up to date", &[("name", "web")]);
/// ```
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(Level::Debug, message, fields)
}

/// Emits a record at info level.
///
/// ```
/// kubewasm_guest::log::info("created child", &[("child", "web")]);
/// ```
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(Level::Info, message, fields)
}

/// Emits a record at warn level.
///
/// ```
/// kubewasm_guest::log::warn("spec.title is empty", &[]);
/// ```
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(Level::Warn, message, fields)
}

/// Emits a record at error level.
///
/// ```
/// kubewasm_guest::log::error("cannot render", &[("reason", "template")]);
/// ```
pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(Level::Error, message, fields)
}

/// Emits a log record: a level, a format string with its arguments, then
/// optionally `;` and `key = value` fields (values are `Display`).
///
/// ```
/// use kubewasm_guest::log::Level;
/// let name = "web";
/// kubewasm_guest::log!(Level::Info, "reconciled {name}"; generation = 3, ready = true);
/// ```
#[macro_export]
macro_rules! log {
    ($level:expr, $fmt:literal $(, $arg:expr)* $(,)? $(; $($key:ident = $value:expr),+ $(,)?)?) => {
        $crate::log::log(
            $level,
            &::std::format!($fmt $(, $arg)*),
            &[$($((::std::stringify!($key), ::std::string::ToString::to_string(&$value).as_str())),+)?],
        )
    };
}

/// Emits a trace record; see [`log!`](crate::log!).
///
/// ```
/// kubewasm_guest::trace!("step {}", 1);
/// ```
#[macro_export]
macro_rules! trace {
    ($($t:tt)+) => { $crate::log!($crate::log::Level::Trace, $($t)+) };
}

/// Emits a debug record; see [`log!`](crate::log!).
///
/// ```
/// kubewasm_guest::debug!("up to date"; name = "web");
/// ```
#[macro_export]
macro_rules! debug {
    ($($t:tt)+) => { $crate::log!($crate::log::Level::Debug, $($t)+) };
}

/// Emits an info record; see [`log!`](crate::log!).
///
/// ```
/// kubewasm_guest::info!("created ConfigMap {}", "web"; owner = "blog");
/// ```
#[macro_export]
macro_rules! info {
    ($($t:tt)+) => { $crate::log!($crate::log::Level::Info, $($t)+) };
}

/// Emits a warn record; see [`log!`](crate::log!).
///
/// ```
/// kubewasm_guest::warn!("label {} is not a valid value", "team");
/// ```
#[macro_export]
macro_rules! warn {
    ($($t:tt)+) => { $crate::log!($crate::log::Level::Warn, $($t)+) };
}

/// Emits an error record; see [`log!`](crate::log!).
///
/// ```
/// kubewasm_guest::error!("render failed"; reason = "template");
/// ```
#[macro_export]
macro_rules! error {
    ($($t:tt)+) => { $crate::log!($crate::log::Level::Error, $($t)+) };
}

#[cfg(test)]
mod tests {
    use crate::testing::{self, LogRecord, TestHost};

    use super::Level;

    #[test]
    fn macros_format_and_stringify_fields() {
        TestHost::new().install();
        let n = 2;
        crate::info!("copied {n} labels"; namespace = "a", changed = true);
        crate::debug!("plain");
        assert_eq!(
            testing::logs(),
            [
                LogRecord {
                    level: Level::Info,
                    message: "copied 2 labels".into(),
                    fields: vec![
                        ("namespace".into(), "a".into()),
                        ("changed".into(), "true".into())
                    ],
                },
                LogRecord {
                    level: Level::Debug,
                    message: "plain".into(),
                    fields: vec![],
                },
            ]
        );
    }
}
