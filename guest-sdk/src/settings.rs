//! The operator-supplied settings document, parsed into the plugin's own type.
//!
//! Errors name the offending field (`labels[1]: invalid type: integer `3`,
//! expected a string`), which is what `validate_settings` should return.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// The plugin's settings from the host (`{}` if the operator supplied none),
/// deserialized into `T`.
///
/// Derive `Deserialize` with `#[serde(default)]` for optional fields and
/// `#[serde(deny_unknown_fields)]` to catch typos.
///
/// ```
/// #[derive(serde::Deserialize, Default)]
/// #[serde(default, deny_unknown_fields)]
/// struct Settings { labels: Vec<String> }
///
/// # kubewasm_guest::testing::TestHost::new().settings(r#"{"labels": ["team"]}"#).install();
/// let settings: Settings = kubewasm_guest::settings()?;
/// assert_eq!(settings.labels, ["team"]);
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
pub fn settings<T: DeserializeOwned>() -> Result<T, Error> {
    parse_settings(&crate::host::settings()).map_err(|e| e.context("invalid settings"))
}

/// The plugin's settings from the host as JSON text (`{}` if none), for
/// plugins that parse and check settings themselves.
///
/// ```
/// # kubewasm_guest::testing::TestHost::new().install();
/// assert_eq!(kubewasm_guest::raw_settings(), "{}");
/// ```
pub fn raw_settings() -> String {
    crate::host::settings()
}

/// Parses a settings document (JSON text) into `T`; the error names the
/// offending field. Use it in [`Plugin::validate_settings`](crate::Plugin::validate_settings).
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Settings { labels: Vec<String> }
///
/// let err = kubewasm_guest::parse_settings::<Settings>(r#"{"labels": ["a", 3]}"#).unwrap_err();
/// assert_eq!(err.to_string(), "labels[1]: invalid type: integer `3`, expected a string at line 1 column 18");
/// ```
pub fn parse_settings<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    let de = &mut serde_json::Deserializer::from_str(json);
    let parsed: T = serde_path_to_error::deserialize(de).map_err(path_error)?;
    Ok(parsed)
}

/// Deserializes a JSON value into `T`, naming the failing field.
pub(crate) fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> Error {
    let path = err.path().to_string();
    if path == "." {
        Error::msg(err.into_inner())
    } else {
        Error::msg(err.into_inner()).context(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Settings {
        labels: Vec<String>,
        #[serde(default)]
        dry_run: bool,
    }

    #[test]
    fn parses_valid_settings() {
        let s: Settings = parse_settings(r#"{"labels": ["a"], "dryRun": true}"#).unwrap();
        assert_eq!(
            s,
            Settings {
                labels: vec!["a".into()],
                dry_run: true
            }
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = parse_settings::<Settings>(r#"{"lables": []}"#).unwrap_err();
        assert!(
            err.message().starts_with("lables: unknown field `lables`"),
            "{err}"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let err = parse_settings::<Settings>("{}").unwrap_err();
        assert!(err.message().starts_with("missing field `labels`"), "{err}");
    }

    #[test]
    fn value_errors_name_the_field() {
        let err = from_value::<Settings>(serde_json::json!({"labels": "a"})).unwrap_err();
        assert_eq!(
            err.message(),
            "labels: invalid type: string \"a\", expected a sequence"
        );
    }
}
