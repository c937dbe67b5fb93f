//! Kubernetes label selectors for the test host's `list`:
//! `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`, joined
//! by commas. Like the API server, `!=` and `notin` also match objects
//! without the label.

use std::collections::BTreeMap;

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed selector: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses a selector; the empty selector matches everything.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        split_top_level(text)
            .into_iter()
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                parse_requirement(part).ok_or_else(|| {
                    format!("invalid label selector {text:?}: cannot parse {part:?}")
                })
            })
            .collect::<Result<_, _>>()
            .map(Selector)
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Exists(key) => labels.contains_key(key),
            Requirement::NotExists(key) => !labels.contains_key(key),
            Requirement::In(key, values) => labels.get(key).is_some_and(|v| values.contains(v)),
            Requirement::NotIn(key, values) => labels.get(key).is_none_or(|v| !values.contains(v)),
        })
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_requirement(part: &str) -> Option<Requirement> {
    if let Some(key) = part.strip_prefix('!') {
        return valid(key.trim()).map(|k| Requirement::NotExists(k.to_string()));
    }
    if let Some((key, value)) = part.split_once("!=") {
        return Some(Requirement::NotIn(
            valid(key.trim())?.to_string(),
            vec![value.trim().to_string()],
        ));
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Some(Requirement::In(
            valid(key.trim())?.to_string(),
            vec![value.trim().to_string()],
        ));
    }
    let mut words = part.splitn(2, char::is_whitespace);
    let key = valid(words.next()?.trim())?.to_string();
    let Some(rest) = words.next().map(str::trim) else {
        return Some(Requirement::Exists(key));
    };
    let (negated, set) = if let Some(set) = rest.strip_prefix("notin") {
        (true, set)
    } else {
        (false, rest.strip_prefix("in")?)
    };
    let values: Vec<String> = set
        .trim()
        .strip_prefix('(')?
        .strip_suffix(')')?
        .split(',')
        .map(|v| v.trim().to_string())
        .collect();
    Some(if negated {
        Requirement::NotIn(key, values)
    } else {
        Requirement::In(key, values)
    })
}

fn valid(key: &str) -> Option<&str> {
    let ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then_some(key)
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
            assert_eq!(
                Selector::parse(selector).unwrap().matches(&l),
                expected,
                "{selector}"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for bad in ["a in b", "=x", "a b", "a in (x"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
