//! What an operator sees of a running host: the Prometheus [`metrics`], the
//! [`admin`] server with the probes, and [`error_chain`] for log lines.
//!
//! Nothing here knows the engine: the admin server asks the host through
//! [`admin::HostStatus`], implemented by the controller.

pub mod admin;
pub mod metrics;

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
