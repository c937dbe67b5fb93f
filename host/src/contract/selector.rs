//! Kubernetes label selectors in their string form
//! (`app=web,tier!=cache,env in (prod,staging),!legacy`), parsed once and
//! matched against an object's labels.

use std::collections::BTreeMap;

/// A parsed label selector: all requirements must hold.
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

/// A selector that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    selector: String,
    reason: String,
}

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

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// Whether the labels of a JSON object (`metadata.labels`) match.
    pub fn matches_object(&self, object: &serde_json::Value) -> bool {
        self.matches(&labels_of(object))
    }
}

/// The `metadata.labels` of a JSON object.
fn labels_of(object: &serde_json::Value) -> BTreeMap<String, String> {
    object["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
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
    fn empty_selects_everything() {
        assert!(LabelSelector::parse("").unwrap().matches(&BTreeMap::new()));
    }

    #[test]
    fn errors_name_the_selector() {
        let err = LabelSelector::parse("env in (prod").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid label selector \"env in (prod\": unbalanced parentheses"
        );
        assert!(LabelSelector::parse("a=b,,c").is_err());
        assert!(LabelSelector::parse("a=b c").is_err());
    }

    #[test]
    fn matches_json_objects() {
        let s = LabelSelector::parse("app=web").unwrap();
        let object = serde_json::json!({"metadata": {"labels": {"app": "web"}}});
        assert!(s.matches_object(&object));
        assert!(!s.matches_object(&serde_json::json!({})));
    }
}
