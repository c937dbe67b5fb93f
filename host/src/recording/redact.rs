//! Redaction paths (`kubewasm record --redact PATH`): which values of a
//! recorded object are replaced by [`MARKER`] before they reach the file.
//!
//! A path is a chain of segments from the object's root:
//!
//! | segment | selects |
//! |---|---|
//! | `name` (after a `.` or at the start) | the member `name` of an object |
//! | `*` | every member of an object |
//! | `["any.key/with dots"]` | the member with that exact key |
//! | `[3]` | the fourth element of a list |
//! | `[*]` | every element of a list |
//!
//! e.g. `data.password`, `data.*`, `spec.template.spec.containers[*].env`,
//! `metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]`.
//! The value a path selects is replaced whole, whatever its type; a path
//! that selects nothing in an object leaves it as it is.

use std::fmt;

use serde_json::Value;

/// What a redacted value becomes.
pub const MARKER: &str = "<redacted>";

/// The annotation `kubectl apply` keeps a whole copy of the object in; a
/// recording with any redaction redacts it too (it would hold the values).
pub const LAST_APPLIED: &str =
    "metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"]";

/// Longest path accepted, and most segments in one.
const MAX_PATH_BYTES: usize = 1024;
const MAX_SEGMENTS: usize = 64;

/// One step of a [`RedactPath`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Field(String),
    AnyField,
    Index(usize),
    AnyIndex,
}

/// A parsed redaction path; displays as it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactPath {
    text: String,
    segments: Vec<Segment>,
}

impl fmt::Display for RedactPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for RedactPath {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text)
    }
}

impl RedactPath {
    /// Parses a path, saying what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("an empty redaction path".into());
        }
        if text.len() > MAX_PATH_BYTES {
            return Err(format!(
                "a redaction path of {} bytes (at most {MAX_PATH_BYTES})",
                text.len()
            ));
        }
        let bytes = text.as_bytes();
        let mut segments = Vec::new();
        let mut at = 0;
        let mut expect_field = true;
        while at < bytes.len() {
            let segment = match bytes[at] {
                b'[' => {
                    let (segment, next) = bracket(text, at)?;
                    at = next;
                    segment
                }
                b'.' if !expect_field => {
                    at += 1;
                    let end = text[at..].find(['.', '[']).map_or(text.len(), |i| at + i);
                    let segment = field(&text[at..end], at)?;
                    at = end;
                    segment
                }
                _ if expect_field && segments.is_empty() => {
                    let end = text.find(['.', '[']).unwrap_or(text.len());
                    let segment = field(&text[..end], 0)?;
                    at = end;
                    segment
                }
                other => {
                    return Err(format!(
                        "unexpected {:?} at byte {at} (write `.field`, `[N]`, `[*]` or `[\"key\"]`)",
                        other as char
                    ));
                }
            };
            expect_field = false;
            segments.push(segment);
            if segments.len() > MAX_SEGMENTS {
                return Err(format!("more than {MAX_SEGMENTS} segments"));
            }
        }
        Ok(Self {
            text: text.to_string(),
            segments,
        })
    }

    /// Replaces every value the path selects in `value` by [`MARKER`];
    /// returns how many were replaced.
    pub fn apply(&self, value: &mut Value) -> usize {
        redact(value, &self.segments)
    }
}

fn field(name: &str, at: usize) -> Result<Segment, String> {
    match name {
        "" => Err(format!("an empty field name at byte {at}")),
        "*" => Ok(Segment::AnyField),
        _ => Ok(Segment::Field(name.to_string())),
    }
}

/// `[N]`, `[*]` or `["key"]` starting at `at`; the segment and where the
/// next one starts.
fn bracket(text: &str, at: usize) -> Result<(Segment, usize), String> {
    let rest = &text[at + 1..];
    if let Some(quoted) = rest.strip_prefix('"') {
        let close = quoted
            .find("\"]")
            .ok_or_else(|| format!("an unclosed [\" at byte {at}"))?;
        let key = &quoted[..close];
        if key.is_empty() {
            return Err(format!("an empty key at byte {at}"));
        }
        return Ok((Segment::Field(key.to_string()), at + 1 + 1 + close + 2));
    }
    let close = rest
        .find(']')
        .ok_or_else(|| format!("an unclosed [ at byte {at}"))?;
    let inside = &rest[..close];
    let segment = match inside {
        "*" => Segment::AnyIndex,
        _ => Segment::Index(inside.parse().map_err(|_| {
            format!("[{inside}] at byte {at} is not an index (write [N], [*] or [\"key\"])")
        })?),
    };
    Ok((segment, at + 1 + close + 1))
}

fn redact(value: &mut Value, segments: &[Segment]) -> usize {
    let Some((first, rest)) = segments.split_first() else {
        *value = Value::String(MARKER.to_string());
        return 1;
    };
    match (first, value) {
        (Segment::Field(name), Value::Object(map)) => {
            map.get_mut(name).map_or(0, |v| redact(v, rest))
        }
        (Segment::AnyField, Value::Object(map)) => map.values_mut().map(|v| redact(v, rest)).sum(),
        (Segment::Index(i), Value::Array(list)) => list.get_mut(*i).map_or(0, |v| redact(v, rest)),
        (Segment::AnyIndex, Value::Array(list)) => list.iter_mut().map(|v| redact(v, rest)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn redacted(path: &str, mut value: Value) -> (Value, usize) {
        let n = RedactPath::parse(path).unwrap().apply(&mut value);
        (value, n)
    }

    #[test]
    fn paths_select_fields_members_and_elements() {
        let secret =
            json!({"data": {"password": "aHVudGVyMg==", "user": "YWRtaW4="}, "type": "Opaque"});
        assert_eq!(
            redacted("data.password", secret.clone()),
            (
                json!({"data": {"password": MARKER, "user": "YWRtaW4="}, "type": "Opaque"}),
                1
            )
        );
        assert_eq!(
            redacted("data.*", secret.clone()).0["data"],
            json!({"password": MARKER, "user": MARKER})
        );
        let deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "K", "value": "v"}]},
            {"name": "b"},
            {"name": "c", "env": []}
        ]}}}});
        let (out, n) = redacted("spec.template.spec.containers[*].env", deploy.clone());
        assert_eq!(n, 2);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["env"],
            MARKER
        );
        assert!(out["spec"]["template"]["spec"]["containers"][1]["env"].is_null());
        let (out, n) = redacted("spec.template.spec.containers[1].name", deploy);
        assert_eq!(
            (
                out["spec"]["template"]["spec"]["containers"][1]["name"].clone(),
                n
            ),
            (json!(MARKER), 1)
        );
        let annotated = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}", "a": "b"}}});
        let (out, n) = redacted(LAST_APPLIED, annotated);
        assert_eq!(n, 1);
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"kubectl.kubernetes.io/last-applied-configuration": MARKER, "a": "b"})
        );
    }

    #[test]
    fn a_path_that_selects_nothing_changes_nothing() {
        let object = json!({"data": "not a map", "list": [1]});
        assert_eq!(
            redacted("data.password", object.clone()),
            (object.clone(), 0)
        );
        assert_eq!(redacted("list[5]", object.clone()), (object.clone(), 0));
        assert_eq!(redacted("list.x", object.clone()), (object, 0));
    }

    #[test]
    fn bad_paths_are_refused_naming_the_problem() {
        for (path, error) in [
            ("", "an empty redaction path"),
            ("data..x", "an empty field name at byte 5"),
            ("data.", "an empty field name at byte 5"),
            ("a[x]", "[x] at byte 1 is not an index"),
            ("a[1", "an unclosed [ at byte 1"),
            ("a[\"k", "an unclosed [\" at byte 1"),
            ("a[\"\"]", "an empty key at byte 1"),
            ("a[1]b", "unexpected 'b' at byte 4"),
        ] {
            let got = RedactPath::parse(path).unwrap_err();
            assert!(got.starts_with(error), "{path:?}: {got}");
        }
        assert!(
            RedactPath::parse(&"a.".repeat(600))
                .unwrap_err()
                .contains("bytes")
        );
        assert!(
            RedactPath::parse("a.".repeat(100).trim_end_matches('.'))
                .unwrap_err()
                .contains("segments")
        );
        assert_eq!(RedactPath::parse("a[*].b").unwrap().to_string(), "a[*].b");
    }
}
