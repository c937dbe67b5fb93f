//! Dotted paths into JSON objects: `spec.replicas`,
//! `spec.template.spec.containers[0].image`,
//! `metadata.labels["app.kubernetes.io/name"]`.
//!
//! A path is a list of segments separated by `.`. A segment is a key, or an
//! index in brackets (`[0]`), or a quoted key in brackets (`["a.b"]`) for keys
//! that contain dots. A bare segment made of digits also indexes an array.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Follows `path` from `value`; none if a step is missing, has the wrong
/// type, or the path does not parse.
///
/// ```
/// use serde_json::json;
///
/// let deployment = json!({"spec": {"replicas": 3, "template": {"spec": {
///     "containers": [{"name": "web", "image": "nginx:1.27"}]}}}});
/// let image = kubewasm_guest::get_path(&deployment, "spec.template.spec.containers[0].image");
/// assert_eq!(image, Some(&json!("nginx:1.27")));
/// assert_eq!(kubewasm_guest::get_path(&deployment, "spec.paused"), None);
/// ```
pub fn get_path<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    parse(path)?
        .iter()
        .try_fold(value, |current, segment| match (segment, current) {
            (Segment::Key(key), Value::Object(map)) => map.get(key),
            (Segment::Key(key), Value::Array(items)) => items.get(key.parse::<usize>().ok()?),
            (Segment::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        })
}

/// Parses a path; none if it is malformed (empty segment, unclosed bracket,
/// bad index).
fn parse(path: &str) -> Option<Vec<Segment>> {
    let mut segments = Vec::new();
    let mut rest = path;
    // Whether the next segment must be introduced by `.` or `[`.
    let mut after_segment = false;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let (segment, tail) = parse_bracket(inner)?;
            segments.push(segment);
            rest = tail;
        } else {
            if after_segment {
                rest = rest.strip_prefix('.')?;
                if rest.starts_with('[') {
                    continue;
                }
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            segments.push(Segment::Key(rest[..end].to_string()));
            rest = &rest[end..];
        }
        after_segment = true;
    }
    (!segments.is_empty()).then_some(segments)
}

/// Parses the inside of `[...]`: an index or a quoted key.
fn parse_bracket(inner: &str) -> Option<(Segment, &str)> {
    if let Some(quote) = inner.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &inner[1..];
        let end = body.find(quote)?;
        let tail = body[end + 1..].strip_prefix(']')?;
        Some((Segment::Key(body[..end].to_string()), tail))
    } else {
        let end = inner.find(']')?;
        let index = inner[..end].parse().ok()?;
        Some((Segment::Index(index), &inner[end + 1..]))
    }
}

/// Escapes one key for use in a JSON pointer (RFC 6901), as JSON patches
/// need: `~` becomes `~0` and `/` becomes `~1`.
///
/// ```
/// let path = format!("/metadata/labels/{}", kubewasm_guest::escape_pointer("app.kubernetes.io/name"));
/// assert_eq!(path, "/metadata/labels/app.kubernetes.io~1name");
/// ```
pub fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(s: &str) -> Segment {
        Segment::Key(s.to_string())
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(
            parse("spec.replicas"),
            Some(vec![key("spec"), key("replicas")])
        );
        assert_eq!(
            parse("a[2].b"),
            Some(vec![key("a"), Segment::Index(2), key("b")])
        );
        assert_eq!(
            parse(r#"metadata.labels["app.kubernetes.io/name"]"#),
            Some(vec![
                key("metadata"),
                key("labels"),
                key("app.kubernetes.io/name")
            ])
        );
        assert_eq!(parse("a.['b.c']"), Some(vec![key("a"), key("b.c")]));
        assert_eq!(
            parse("[0][1]"),
            Some(vec![Segment::Index(0), Segment::Index(1)])
        );
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "", ".a", "a.", "a..b", "a[", "a[x]", "a[\"b]", "a[0]b", "a[-1]",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn follows_objects_and_arrays() {
        let v = json!({"a": {"b": [10, {"c": "x"}], "1": "one"}, "d.e": true});
        assert_eq!(get_path(&v, "a.b[0]"), Some(&json!(10)));
        assert_eq!(get_path(&v, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(get_path(&v, "a.1"), Some(&json!("one")));
        assert_eq!(get_path(&v, r#"["d.e"]"#), Some(&json!(true)));
        assert_eq!(get_path(&v, "a.b[5]"), None);
        assert_eq!(get_path(&v, "a.b.c"), None);
        assert_eq!(get_path(&v, "a.b[0].c"), None);
        assert_eq!(get_path(&v, "a..b"), None);
    }

    #[test]
    fn escapes_pointer_keys() {
        assert_eq!(escape_pointer("a~b/c"), "a~0b~1c");
        assert_eq!(escape_pointer("plain"), "plain");
    }
}
