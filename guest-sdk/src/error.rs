//! The error a plugin returns from `reconcile` or a helper returns to it.

use std::fmt;

/// A failed reconcile or a failed helper call, carried as a message.
///
/// The host logs the message, makes none of the writes of that call, and
/// retries the object with exponential backoff. Any [`std::error::Error`]
/// converts into it, so `?` works on serde, parsing and host errors alike; the
/// message keeps the whole `source()` chain.
///
/// ```
/// use kubewasm_guest::Error;
///
/// fn replicas(text: &str) -> Result<u32, Error> {
///     let n: u32 = text.parse()?;
///     if n > 100 {
///         return Err(Error::msg(format!("spec.replicas: {n} is more than 100")));
///     }
///     Ok(n)
/// }
///
/// assert_eq!(replicas("3").unwrap(), 3);
/// assert_eq!(
///     replicas("x").unwrap_err().context("spec.replicas").to_string(),
///     "spec.replicas: invalid digit found in string"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// let err = kubewasm_guest::Error::msg("spec.title is empty");
    /// assert_eq!(err.message(), "spec.title is empty");
    /// ```
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            message: message.to_string(),
        }
    }

    /// Prefixes the message with what was being done: `"{context}: {message}"`.
    ///
    /// ```
    /// let err = kubewasm_guest::Error::msg("not found").context("reading Namespace team-a");
    /// assert_eq!(err.to_string(), "reading Namespace team-a: not found");
    /// ```
    pub fn context(self, context: impl fmt::Display) -> Self {
        Error {
            message: format!("{context}: {}", self.message),
        }
    }

    /// The message, as the host will log it.
    ///
    /// ```
    /// assert_eq!(kubewasm_guest::Error::msg("boom").message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Like `anyhow::Error`, [`Error`] does not implement [`std::error::Error`]
/// itself, so that every error type can convert into it.
impl<E: std::error::Error> From<E> for Error {
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error { message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::num::ParseIntError);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("bad replicas")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn conversion_keeps_the_source_chain() {
        let inner = "x".parse::<u8>().unwrap_err();
        let err = Error::from(Outer(inner));
        assert_eq!(err.message(), "bad replicas: invalid digit found in string");
    }

    #[test]
    fn context_prefixes() {
        let err = Error::msg("b").context("a");
        assert_eq!(err.to_string(), "a: b");
    }
}
