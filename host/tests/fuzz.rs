//! Fuzz targets for the boundary where untrusted bytes enter the host:
//! names, intents, label selectors, plugin descriptions, scope files,
//! settings and the component loader.
//!
//! Each target asserts a property, not only the absence of panics: what a
//! check accepts is safe where the host uses it (a request URL, a
//! selector's meaning, a grant's namespaces), and what it refuses is
//! refused with an error that names the input. A short run sits in the
//! normal test command; `tests/FUZZING.md` has the long campaign's command
//! and results, and how to replay a failing case from its seed.
//!
//! The runtime's WIT-to-host conversion (`outcome_from_wit`) is private to
//! the runtime module; the intent target mirrors it step for step with the
//! public pieces it is made of (`intent::parse_json`, `intent::validate`).
mod fuzzing;
mod support;

use fuzzing::Verdict;
use kubewasm::contract::names;

/// Short-run cases of the fast targets: a few seconds each in a debug build.
const SHORT: u64 = 10_000;

// ---------------------------------------------------------------------------
// Reference checks, written independently of the code under test.

/// What may sit in one segment of a request path without changing the
/// request: not empty or a dot segment, no `/ % ? # \`, whitespace or
/// control characters, at most 253 bytes.
pub fn url_segment_safe(s: &str) -> Result<(), String> {
    if s.is_empty() || s == "." || s == ".." || s.len() > names::MAX_NAME_BYTES {
        return Err(format!("{s:?} is empty, a dot segment or too long"));
    }
    match s
        .chars()
        .find(|&c| "/%?#\\".contains(c) || c.is_whitespace() || c.is_control())
    {
        Some(c) => Err(format!("{s:?} contains {c:?}")),
        None => Ok(()),
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, any length.
fn reference_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 label: at most 63 characters.
pub fn reference_label(s: &str) -> bool {
    s.len() <= 63 && reference_label_chars(s)
}

/// A DNS-1123 subdomain: dot-separated label characters, at most 253
/// characters in all (apimachinery does not limit each part).
pub fn reference_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(reference_label_chars)
}

/// Whether the API server accepts `name` for `group`/`kind` (the families
/// `names` documents), and the URL-safety every name needs anyway.
pub fn reference_name(group: &str, kind: &str, name: &str) -> bool {
    if url_segment_safe(name).is_err() {
        return false;
    }
    if group == "rbac.authorization.k8s.io" {
        return true;
    }
    if group.is_empty() && (kind == "Namespace" || kind == "Service") {
        return reference_label(name);
    }
    reference_subdomain(name)
}
// ---------------------------------------------------------------------------
// 1. names

const GROUP_KINDS: [(&str, &str); 6] = [
    ("", "ConfigMap"),
    ("", "Namespace"),
    ("", "Service"),
    ("apps", "Deployment"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("example.com", "Gadget"),
];

#[test]
fn fuzz_names() {
    fuzzing::run(
        "names",
        fuzzing::cases(SHORT * 5),
        |g| {
            let (group, kind) = GROUP_KINDS[g.below(GROUP_KINDS.len())];
            (group, kind, g.name())
        },
        |(group, kind, value)| {
            let mut accepted = false;
            let namespace = names::validate_namespace(value);
            if namespace.is_ok() {
                url_segment_safe(value).map_err(|e| format!("namespace accepted: {e}"))?;
                accepted = true;
            }
            if namespace.is_ok() != reference_label(value) {
                return Err(format!(
                    "namespace verdict {namespace:?} differs from DNS-1123 label rules"
                ));
            }
            let name = names::validate_name(group, kind, value);
            if name.is_ok() {
                url_segment_safe(value).map_err(|e| format!("{kind} name accepted: {e}"))?;
                accepted = true;
            }
            if name.is_ok() != reference_name(group, kind, value) {
                return Err(format!(
                    "{kind} name verdict {name:?} differs from the reference"
                ));
            }
            let completed = format!("{value}abcde");
            let prefix = names::validate_generate_name(group, kind, value);
            if prefix.is_ok() != reference_name(group, kind, &completed) {
                return Err(format!(
                    "generateName verdict {prefix:?} differs from the completed name's"
                ));
            }
            for err in [namespace.err(), name.err(), prefix.err()]
                .into_iter()
                .flatten()
            {
                if let names::NameError::UnsafeCharacter { found, .. } = err
                    && !value.contains(found)
                {
                    return Err(format!("error names {found:?}, which is not in the value"));
                }
            }
            Ok(if accepted {
                Verdict::Accepted
            } else {
                Verdict::Refused
            })
        },
    );
}
