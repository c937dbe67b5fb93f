//! What an operator sees of a running host: the Prometheus [`metrics`], the
//! [`admin`] server with the probes, and [`error_chain`] for log lines.
//!
//! Nothing here knows the engine: the admin server asks the host through
//! [`admin::HostStatus`], implemented by the controller.

pub mod admin;
pub mod metrics;

/// `text` safe to print on one line: control characters (newlines,
/// terminal escapes) escaped, cut at `max_chars` characters. For text a
/// plugin or an input file controls.
pub fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

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

/// The message a panic carried (its `&str` or `String` payload), else a
/// placeholder.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_text_has_no_control_characters_and_a_bound() {
        let text = super::printable("a\nb\u{1b}[2Jc\td", 100);
        assert_eq!(text, "a\\nb\\u{1b}[2Jc\\td");
        assert_eq!(super::printable("héllo wörld", 5), "héllo…");
    }
}
