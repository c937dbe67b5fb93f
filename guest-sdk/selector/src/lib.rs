//! Kubernetes label selectors in their string form
//! (`app=web,tier!=cache,env in (prod,staging),!legacy`), parsed once and
//! matched against an object's labels.
//!
//! One implementation for kubewasm's host (subscriptions and the cache's
//! `list`) and for the guest SDK's offline test host, so a plugin's tests
//! refuse exactly the selectors the host refuses. The semantics are the API
//! server's: every comma-separated requirement must hold, an empty
//! requirement (`a=1,,b=2`) is an error, and `!=` and `notin` also match
//! objects without the label.
//!
//! ```
//! use kubewasm_selector::LabelSelector;
//!
//! let web = LabelSelector::parse("app=web, tier notin (cache)")?;
//! let object = serde_json::json!({"metadata": {"labels": {"app": "web"}}});
//! assert!(web.matches_object(&object));
//! assert_eq!(
//!     LabelSelector::parse("a=1,,b=2").unwrap_err().to_string(),
//!     "invalid label selector \"a=1,,b=2\": empty requirement"
//! );
//! # Ok::<(), kubewasm_selector::SelectorError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// A parsed label selector: all requirements must hold. The default (and
/// the empty string) selects everything.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A selector that could not be parsed; the message names the selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectorError {
    selector: String,
    reason: String,
}

impl fmt::Display for SelectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid label selector {:?}: {}",
            self.selector, self.reason
        )
    }
}

impl std::error::Error for SelectorError {}

impl LabelSelector {
    /// Parses the string form. The empty string selects everything.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let fail = |reason: String| SelectorError {
            selector: selector.to_string(),
            reason,
        };
        let mut requirements = Vec::new();
        for term in split_terms(selector).map_err(&fail)? {
            let term = term.trim();
            if term.is_empty() {
                return Err(fail("empty requirement".into()));
            }
            requirements.push(parse_term(term).map_err(&fail)?);
        }
        Ok(Self { requirements })
    }

    /// Whether this selector has no requirement, so it selects everything.
    pub fn selects_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|key| labels.get(key).map(String::as_str))
    }

    /// Whether the labels of a JSON object (`metadata.labels`) match; a label
    /// whose value is not a string counts as absent. Reads the labels in
    /// place, without copying them.
    pub fn matches_object(&self, object: &serde_json::Value) -> bool {
        let labels = object["metadata"]["labels"].as_object();
        self.matches_with(|key| labels?.get(key)?.as_str())
    }

    /// Whether the labels `label` looks up match (`None`: not set).
    pub fn matches_labels<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matches_with(label)
    }

    /// Whether every requirement holds for the labels `label` looks up.
    fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_terms(selector: &str) -> Result<Vec<&str>, String> {
    if selector.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced parentheses".into());
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".into());
    }
    terms.push(&selector[start..]);
    Ok(terms)
}

fn parse_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key_of(key)?));
    }
    for (op, make) in [
        (
            "!=",
            Requirement::NotEquals as fn(String, String) -> Requirement,
        ),
        ("==", Requirement::Equals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = term.split_once(op) {
            return Ok(make(key_of(key)?, value_of(value)?));
        }
    }
    let words: Vec<&str> = term.splitn(2, char::is_whitespace).collect();
    if let [key, rest] = words[..] {
        let rest = rest.trim_start();
        for (op, set_op) in [("notin", false), ("in", true)] {
            if let Some(values) = rest.strip_prefix(op) {
                let values = values.trim();
                let inner = values
                    .strip_prefix('(')
                    .and_then(|v| v.strip_suffix(')'))
                    .ok_or_else(|| format!("{op} needs a parenthesized list in {term:?}"))?;
                let values = inner
                    .split(',')
                    .map(value_of)
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if set_op {
                    Requirement::In(key_of(key)?, values)
                } else {
                    Requirement::NotIn(key_of(key)?, values)
                });
            }
        }
        return Err(format!("unknown operator in {term:?}"));
    }
    Ok(Requirement::Exists(key_of(term)?))
}

fn key_of(key: &str) -> Result<String, String> {
    let key = key.trim();
    let valid = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if valid {
        Ok(key.to_string())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn value_of(value: &str) -> Result<String, String> {
    let value = value.trim();
    let valid = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_existence() {
        let s = LabelSelector::parse("app=web, tier!=cache,team,!legacy").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("team", "a")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("team", "a"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("team", "a"), ("tier", "cache")])));
    }

    #[test]
    fn set_based() {
        let s = LabelSelector::parse("env in (prod, staging),zone notin (x)").unwrap();
        assert!(s.matches(&labels(&[("env", "prod")])));
        assert!(!s.matches(&labels(&[("env", "dev")])));
        assert!(!s.matches(&labels(&[("env", "prod"), ("zone", "x")])));
    }

    #[test]
    fn every_operator() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (selector, expected) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("missing notin (a)", true),
            ("app=web,tier in (back)", false),
            ("app=web, tier", true),
        ] {
            let parsed = LabelSelector::parse(selector).unwrap();
            assert_eq!(parsed.matches(&l), expected, "{selector}");
        }
    }

    #[test]
    fn empty_selects_everything() {
        let all = LabelSelector::parse("").unwrap();
        assert!(all.selects_everything() && all == LabelSelector::default());
        assert!(all.matches(&BTreeMap::new()));
        assert!(!LabelSelector::parse("a").unwrap().selects_everything());
    }

    #[test]
    fn errors_name_the_selector() {
        let err = LabelSelector::parse("env in (prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid label selector \"env in (prod\": unbalanced parentheses"
        );
        for bad in [
            "a=b,,c", "a=1,", ",a", "a=b c", "a in b", "=x", "a b", "a in (x",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_json_objects() {
        let s = LabelSelector::parse("app=web").unwrap();
        let object = serde_json::json!({"metadata": {"labels": {"app": "web", "n": 1}}});
        assert!(s.matches_object(&object));
        assert!(!s.matches_object(&serde_json::json!({})));
        // A label that is not a string is no label.
        let n = LabelSelector::parse("n").unwrap();
        assert!(!n.matches_object(&object));
        assert!(LabelSelector::parse("!n").unwrap().matches_object(&object));
    }
}
