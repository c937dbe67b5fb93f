//! Where two JSON documents differ, by JSON path.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// One place where two JSON documents differ. `None` means the value is
/// absent on that side (a missing key or array element).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Difference {
    /// JSONPath of the value, e.g. `$.intents[0].object.metadata.labels["team"]`.
    pub path: String,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, actual {}",
            self.path,
            brief(self.expected.as_ref()),
            brief(self.actual.as_ref())
        )
    }
}

/// A value in at most [`BRIEF`] characters, or `(absent)`.
fn brief(value: Option<&Value>) -> String {
    let Some(value) = value else {
        return "(absent)".to_string();
    };
    let text = value.to_string();
    if text.chars().count() <= BRIEF {
        return text;
    }
    let cut: String = text.chars().take(BRIEF - 1).collect();
    format!("{cut}…")
}

const BRIEF: usize = 80;

/// The first `limit` differences between `expected` and `actual`, in
/// document order (object keys sorted, array elements by index).
pub fn differences(expected: &Value, actual: &Value, limit: usize) -> Vec<Difference> {
    let mut found = Vec::new();
    walk(expected, actual, &mut "$".to_string(), limit, &mut found);
    found
}

fn walk(
    expected: &Value,
    actual: &Value,
    path: &mut String,
    limit: usize,
    found: &mut Vec<Difference>,
) {
    if found.len() >= limit || expected == actual {
        return;
    }
    let len = path.len();
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e
                .keys()
                .chain(a.keys().filter(|k| !e.contains_key(*k)))
                .collect();
            keys.sort();
            for key in keys {
                push_key(path, key);
                match (e.get(key), a.get(key)) {
                    (Some(e), Some(a)) => walk(e, a, path, limit, found),
                    (e, a) => record(path, e, a, limit, found),
                }
                path.truncate(len);
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            for index in 0..e.len().max(a.len()) {
                let _ = write!(path, "[{index}]");
                match (e.get(index), a.get(index)) {
                    (Some(e), Some(a)) => walk(e, a, path, limit, found),
                    (e, a) => record(path, e, a, limit, found),
                }
                path.truncate(len);
            }
        }
        (e, a) => record(path, Some(e), Some(a), limit, found),
    }
}

fn record(
    path: &str,
    expected: Option<&Value>,
    actual: Option<&Value>,
    limit: usize,
    found: &mut Vec<Difference>,
) {
    if found.len() < limit {
        found.push(Difference {
            path: path.to_string(),
            expected: expected.cloned(),
            actual: actual.cloned(),
        });
    }
}

/// `.key` for identifier-like keys, `["key"]` (JSON-quoted) otherwise.
fn push_key(path: &mut String, key: &str) {
    let mut chars = key.chars();
    let identifier = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if identifier {
        path.push('.');
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::from(key).to_string());
        path.push(']');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_name_the_json_path_of_each_changed_field() {
        let expected = json!({
            "intents": [{"type": "apply", "object": {"metadata": {"labels": {"team": "a", "app.kubernetes.io/name": "x"}}}}],
            "requeueAfterMs": null
        });
        let actual = json!({
            "intents": [{"type": "apply", "object": {"metadata": {"labels": {"team": "b", "app.kubernetes.io/name": "x", "extra": "1"}}}}],
            "requeueAfterMs": 2000
        });
        let found: Vec<String> = differences(&expected, &actual, 10)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                r#"$.intents[0].object.metadata.labels.extra: expected (absent), actual "1""#,
                r#"$.intents[0].object.metadata.labels.team: expected "a", actual "b""#,
                "$.requeueAfterMs: expected null, actual 2000",
            ]
        );
    }

    #[test]
    fn differences_stop_at_the_limit_and_quote_odd_keys() {
        let expected = json!({"a/b": [1, 2, 3], "error": "x"});
        let actual = json!({"a/b": [1, 5], "intents": []});
        let found = differences(&expected, &actual, 2);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].to_string(), r#"$["a/b"][1]: expected 2, actual 5"#);
        assert_eq!(
            found[1].to_string(),
            r#"$["a/b"][2]: expected 3, actual (absent)"#
        );
        let whole = differences(&json!({"error": "boom"}), &json!([1]), 5);
        assert_eq!(whole[0].path, "$");
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(200);
        let found = differences(&json!(long), &json!(1), 1);
        let text = found[0].to_string();
        assert!(text.starts_with(r#"$: expected "xxx"#), "{text}");
        assert!(text.contains("…, actual 1"), "{text}");
    }
}
