//! The operator's settings: which labels to copy, onto which kinds.
//!
//! ```json
//! {"labels": ["team", "cost-center"], "kinds": ["Deployment", "Service"]}
//! ```

use std::collections::BTreeSet;

use kubewasm_guest::{Error, parse_settings};
use serde::Deserialize;

use crate::TARGETS;

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Label keys to copy from the Namespace; at least one.
    pub labels: BTreeSet<String>,
    /// Kinds to label; every kind the plugin handles if omitted.
    pub kinds: BTreeSet<String>,
}

fn all_kinds() -> BTreeSet<String> {
    TARGETS.iter().map(|t| t.kind.to_string()).collect()
}

impl Settings {
    /// Parses and checks a settings document; the error names the field.
    pub fn parse(json: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            labels: Vec<String>,
            kinds: Option<Vec<String>>,
        }
        let raw: Raw = parse_settings(json)?;
        if raw.labels.is_empty() {
            return Err(Error::msg("labels: name at least one label to copy"));
        }
        for (i, key) in raw.labels.iter().enumerate() {
            check_label_key(key).map_err(|e| e.context(format!("labels[{i}]")))?;
        }
        if let Some(i) = first_duplicate(&raw.labels) {
            return Err(Error::msg(format!(
                "labels[{i}]: {:?} is listed twice",
                raw.labels[i]
            )));
        }
        let kinds = match raw.kinds {
            None => all_kinds(),
            Some(kinds) if kinds.is_empty() => {
                return Err(Error::msg(
                    "kinds: name at least one kind, or leave kinds out for all",
                ));
            }
            Some(kinds) => {
                let supported = all_kinds();
                for (i, kind) in kinds.iter().enumerate() {
                    if !supported.contains(kind) {
                        let names: Vec<_> = supported.iter().map(String::as_str).collect();
                        return Err(Error::msg(format!(
                            "kinds[{i}]: {kind:?} is not a kind label-propagator handles ({})",
                            names.join(", ")
                        )));
                    }
                }
                if let Some(i) = first_duplicate(&kinds) {
                    return Err(Error::msg(format!(
                        "kinds[{i}]: {:?} is listed twice",
                        kinds[i]
                    )));
                }
                kinds.into_iter().collect()
            }
        };
        Ok(Settings {
            labels: raw.labels.into_iter().collect(),
            kinds,
        })
    }
}

fn first_duplicate(items: &[String]) -> Option<usize> {
    let mut seen = BTreeSet::new();
    items.iter().position(|item| !seen.insert(item))
}

/// Checks a Kubernetes label key: an optional DNS-subdomain prefix and `/`,
/// then a name of at most 63 alphanumerics, `-`, `_` or `.`, starting and
/// ending alphanumeric.
fn check_label_key(key: &str) -> Result<(), Error> {
    let invalid = |why: &str| {
        Err(Error::msg(format!(
            "{key:?} is not a valid label key: {why}"
        )))
    };
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.len() > 253 || !prefix.split('.').all(label_ok) {
            return invalid("the prefix must be a lower-case DNS subdomain");
        }
    }
    if name.is_empty() || name.len() > 63 {
        return invalid("the name must be 1 to 63 characters");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let inner_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !inner_ok || !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return invalid(
            "the name must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Settings::parse(json).unwrap_err().to_string()
    }

    #[test]
    fn kinds_default_to_all_targets() {
        let s = Settings::parse(r#"{"labels": ["team", "example.com/cost-center"]}"#).unwrap();
        assert_eq!(s.kinds, all_kinds());
        assert_eq!(s.labels.len(), 2);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(r#"{"labels": []}"#),
            "labels: name at least one label to copy"
        );
        assert_eq!(
            err(r#"{"labels": ["team", "Team Name"]}"#),
            "labels[1]: \"Team Name\" is not a valid label key: the name must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric"
        );
        assert_eq!(
            err(r#"{"labels": ["Example.com/x"]}"#),
            "labels[0]: \"Example.com/x\" is not a valid label key: the prefix must be a lower-case DNS subdomain"
        );
        assert_eq!(
            err(r#"{"labels": ["a", "a"]}"#),
            "labels[1]: \"a\" is listed twice"
        );
        assert_eq!(
            err(r#"{"labels": ["a"], "kinds": ["Secret"]}"#),
            "kinds[0]: \"Secret\" is not a kind label-propagator handles (ConfigMap, Deployment, Service)"
        );
        assert_eq!(
            err(r#"{"labels": ["a"], "kinds": []}"#),
            "kinds: name at least one kind, or leave kinds out for all"
        );
        assert!(err(r#"{"labels": ["a"], "kind": ["Service"]}"#).contains("unknown field `kind`"));
        assert!(err("{}").contains("missing field `labels`"));
        assert!(err(r#"{"labels": [1]}"#).starts_with("labels[0]: invalid type: integer `1`"));
    }
}
