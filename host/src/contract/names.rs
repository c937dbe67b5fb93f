//! Kubernetes object names and namespaces, checked the way the API server
//! checks them, before a plugin's value reaches a request URL.
//!
//! A plugin's intents name their targets, and the applier puts those names
//! into request paths (`/api/v1/namespaces/{namespace}/configmaps/{name}`).
//! A `/`, `?`, `#` or `%` in either would move the request onto another
//! resource or change its query (the field manager, `dryRun`), so every
//! name is checked here and an outcome with one bad name is refused whole.
//!
//! The rules follow apimachinery's validation:
//!
//! - a namespace is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at
//!   most 63 characters);
//! - every name is a safe path segment: not `.` or `..`, no `/` or `%`
//!   (`path.IsValidPathSegmentName`), and, stricter than the API server
//!   because it matters for a URL, no `?`, `#`, whitespace or control
//!   characters, at most 253 bytes;
//! - names of most kinds are DNS-1123 subdomains (lower-case alphanumerics,
//!   `-` and `.`, at most 253 characters); Namespaces and Services are
//!   DNS-1123 labels; RBAC kinds accept any safe path segment (`system:*`
//!   role names contain colons).

/// Longest name the API server accepts for any kind (a DNS-1123 subdomain).
pub const MAX_NAME_BYTES: usize = 253;
/// Longest DNS-1123 label (namespaces, Namespace and Service names).
pub const MAX_LABEL_BYTES: usize = 63;

/// Groups whose kinds take any safe path segment as a name.
const PATH_SEGMENT_NAME_GROUPS: [&str; 1] = ["rbac.authorization.k8s.io"];

/// Core kinds whose names are DNS-1123 labels.
const LABEL_NAMED_CORE_KINDS: [&str; 2] = ["Namespace", "Service"];

/// Why a name or namespace is refused.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is {len} bytes long, over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("{value:?} may not be used as a name in a request path")]
    DotSegment { value: String },
    #[error("{value:?} contains {found:?}, which would change the request URL")]
    UnsafeCharacter { value: String, found: char },
    #[error("{value:?} is not a DNS-1123 {rule} ({hint})")]
    NotDns1123 {
        value: String,
        rule: &'static str,
        hint: &'static str,
    },
}

const LABEL_HINT: &str = "lower-case alphanumerics and '-', starting and ending alphanumeric";
const SUBDOMAIN_HINT: &str =
    "lower-case alphanumerics, '-' and '.', each part starting and ending alphanumeric";

/// Checks a namespace: a DNS-1123 label.
pub fn validate_namespace(namespace: &str) -> Result<(), NameError> {
    path_segment(namespace)?;
    dns1123_label(namespace)
}

/// Checks the name of an object of `group`/`kind`.
pub fn validate_name(group: &str, kind: &str, name: &str) -> Result<(), NameError> {
    path_segment(name)?;
    if PATH_SEGMENT_NAME_GROUPS.contains(&group) {
        return Ok(());
    }
    if group.is_empty() && LABEL_NAMED_CORE_KINDS.contains(&kind) {
        return dns1123_label(name);
    }
    dns1123_subdomain(name)
}

/// Checks a `metadata.generateName` prefix: the server appends five
/// characters, so the prefix must leave room for them and be a valid name
/// prefix (a trailing `-` or `.` is allowed).
pub fn validate_generate_name(group: &str, kind: &str, prefix: &str) -> Result<(), NameError> {
    let completed = format!("{prefix}abcde");
    validate_name(group, kind, &completed).map_err(|e| match e {
        NameError::TooLong { len, max } => NameError::TooLong { len: len - 5, max },
        NameError::NotDns1123 { rule, hint, .. } => NameError::NotDns1123 {
            value: prefix.to_string(),
            rule,
            hint,
        },
        other => other,
    })
}

/// A name that can sit in one path segment of a request URL unchanged.
fn path_segment(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty);
    }
    if value.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong {
            len: value.len(),
            max: MAX_NAME_BYTES,
        });
    }
    if value == "." || value == ".." {
        return Err(NameError::DotSegment {
            value: value.to_string(),
        });
    }
    if let Some(found) = value
        .chars()
        .find(|c| matches!(c, '/' | '%' | '?' | '#' | '\\') || c.is_whitespace() || c.is_control())
    {
        return Err(NameError::UnsafeCharacter {
            value: value.to_string(),
            found,
        });
    }
    Ok(())
}

fn is_label_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
}

fn label_ok(part: &str) -> bool {
    !part.is_empty()
        && part.bytes().all(is_label_byte)
        && !part.starts_with('-')
        && !part.ends_with('-')
}

fn dns1123_label(value: &str) -> Result<(), NameError> {
    if value.len() > MAX_LABEL_BYTES {
        return Err(NameError::TooLong {
            len: value.len(),
            max: MAX_LABEL_BYTES,
        });
    }
    if !label_ok(value) {
        return Err(NameError::NotDns1123 {
            value: value.to_string(),
            rule: "label",
            hint: LABEL_HINT,
        });
    }
    Ok(())
}

fn dns1123_subdomain(value: &str) -> Result<(), NameError> {
    if !value.split('.').all(label_ok) {
        return Err(NameError::NotDns1123 {
            value: value.to_string(),
            rule: "subdomain",
            hint: SUBDOMAIN_HINT,
        });
    }
    Ok(())
}

/// At most this many bytes of a plugin-supplied value are quoted in an error.
const QUOTED_BYTES: usize = 64;

/// `value`, cut to a length fit for an error message.
pub fn truncated(value: &str) -> String {
    match value.char_indices().nth(QUOTED_BYTES) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// The name part of a qualified name (label key, finalizer): at most 63
/// characters, alphanumerics, `-`, `_` and `.`, starting and ending
/// alphanumeric.
fn qualified_name_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= MAX_LABEL_BYTES
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        && part.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a qualified name, `[prefix/]name`: the prefix a DNS-1123
/// subdomain, the name as [`qualified_name_part`]. `prefix_required` for
/// finalizers, which the API server wants domain-qualified.
fn qualified_name(value: &str, what: &str, prefix_required: bool) -> Result<(), String> {
    let bad = || {
        format!(
            "{what} {:?} is not a qualified name (`prefix/name`: a DNS subdomain, then at most 63 alphanumerics, '-', '_' or '.')",
            truncated(value)
        )
    };
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if prefix_required && prefix.is_none() {
        return Err(format!(
            "{what} {:?} has no domain prefix (e.g. `kubewasm.dev/{}`)",
            truncated(value),
            truncated(value)
        ));
    }
    let prefix_ok =
        prefix.is_none_or(|p| p.len() <= MAX_NAME_BYTES && dns1123_subdomain(p).is_ok());
    if !prefix_ok || !qualified_name_part(name) {
        return Err(bad());
    }
    Ok(())
}

/// Checks a label key (`app.kubernetes.io/instance`, `tier`).
pub fn check_label_key(key: &str) -> Result<(), String> {
    qualified_name(key, "label key", false)
}

/// Checks a finalizer name: a qualified name with a domain prefix.
pub fn check_finalizer_name(name: &str) -> Result<(), String> {
    qualified_name(name, "finalizer", true)
}

/// Checks a kind name: 1 to 63 ASCII alphanumerics (`ConfigMap`).
pub fn check_kind_name(kind: &str) -> Result<(), String> {
    if kind.is_empty()
        || kind.len() > MAX_LABEL_BYTES
        || !kind.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(format!(
            "kind {:?} is not a kind name (1 to 63 ASCII letters and digits)",
            truncated(kind)
        ));
    }
    Ok(())
}

/// Checks an API group: empty (the core group) or a DNS-1123 subdomain.
pub fn check_group_name(group: &str) -> Result<(), String> {
    if group.is_empty() || (group.len() <= MAX_NAME_BYTES && dns1123_subdomain(group).is_ok()) {
        return Ok(());
    }
    Err(format!(
        "group {:?} is not an API group (empty for the core group, or a DNS subdomain)",
        truncated(group)
    ))
}

/// Checks an API version name: a DNS-1123 label (`v1`, `v1beta2`).
pub fn check_version_name(version: &str) -> Result<(), String> {
    dns1123_label(version).map_err(|_| {
        format!(
            "version {:?} is not an API version (e.g. `v1`)",
            truncated(version)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names_for_finalizers_and_label_keys() {
        assert!(check_finalizer_name("kubewasm.dev/website").is_ok());
        assert!(check_finalizer_name("example.com/clean-up_v2").is_ok());
        assert!(
            check_finalizer_name("website")
                .unwrap_err()
                .contains("no domain prefix")
        );
        for bad in [
            "Kubewasm.dev/x",
            "kubewasm.dev/",
            "/x",
            "a/b/c",
            "kubewasm.dev/-x",
            "kubewasm.dev/x y",
        ] {
            assert!(check_finalizer_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_label_key("tier").is_ok());
        assert!(check_label_key("app.kubernetes.io/instance").is_ok());
        assert!(check_label_key("a=b").is_err());
        assert!(check_label_key(&"x".repeat(64)).is_err());
    }

    #[test]
    fn kind_group_and_version_names() {
        assert!(check_kind_name("ConfigMap").is_ok());
        assert!(check_kind_name("Config/Map").is_err());
        assert!(check_group_name("").is_ok());
        assert!(check_group_name("example.com").is_ok());
        assert!(check_group_name("Example.com").is_err());
        assert!(check_version_name("v1beta1").is_ok());
        assert!(check_version_name("v1/../x").is_err());
        let long = "é".repeat(100);
        assert!(check_kind_name(&long).unwrap_err().contains('…'));
    }

    /// Every shape a plugin could use to move a request elsewhere.
    const SMUGGLED: [&str; 9] = [
        "ns/secrets/victim",
        "victim?x=",
        "ns%2Fsecrets%2Fvictim",
        "..",
        ".",
        "a//b",
        "victim#frag",
        "vic tim",
        "victim\n",
    ];

    #[test]
    fn smuggling_shapes_are_refused_as_names_and_namespaces() {
        for value in SMUGGLED {
            assert!(validate_namespace(value).is_err(), "namespace {value:?}");
            for (group, kind) in [
                ("", "ConfigMap"),
                ("", "Namespace"),
                ("rbac.authorization.k8s.io", "ClusterRole"),
                ("example.com", "Gadget"),
            ] {
                assert!(
                    validate_name(group, kind, value).is_err(),
                    "{kind} name {value:?}"
                );
            }
        }
    }

    #[test]
    fn errors_name_the_offending_value() {
        assert_eq!(
            validate_namespace("ns/secrets/victim?x=")
                .unwrap_err()
                .to_string(),
            "\"ns/secrets/victim?x=\" contains '/', which would change the request URL"
        );
        assert_eq!(
            validate_name("", "ConfigMap", "..")
                .unwrap_err()
                .to_string(),
            "\"..\" may not be used as a name in a request path"
        );
        assert_eq!(validate_namespace("").unwrap_err(), NameError::Empty);
    }

    #[test]
    fn ordinary_names_pass() {
        validate_namespace("team-a").unwrap();
        validate_name("", "ConfigMap", "app.config-1").unwrap();
        validate_name("apps", "Deployment", "web").unwrap();
        validate_name("", "Namespace", "team-a").unwrap();
        validate_name(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "system:aggregate-to-view",
        )
        .unwrap();
    }

    #[test]
    fn kind_families_follow_the_api_server() {
        // Dots are fine in a subdomain, not in a label.
        assert!(validate_name("", "ConfigMap", "a.b").is_ok());
        assert!(validate_name("", "Service", "a.b").is_err());
        assert!(validate_name("", "Namespace", "a.b").is_err());
        assert!(validate_namespace("a.b").is_err());
        // Upper case and colons only where the API server allows them.
        assert!(validate_name("", "ConfigMap", "Web").is_err());
        assert!(validate_name("", "ConfigMap", "a:b").is_err());
        assert!(validate_name("rbac.authorization.k8s.io", "Role", "a:b").is_ok());
        assert!(validate_namespace(&"a".repeat(64)).is_err());
        assert!(validate_name("", "ConfigMap", &"a".repeat(253)).is_ok());
        assert!(validate_name("", "ConfigMap", &"a".repeat(254)).is_err());
    }

    #[test]
    fn generate_name_prefixes() {
        validate_generate_name("", "ConfigMap", "child-").unwrap();
        assert!(validate_generate_name("", "ConfigMap", "x/").is_err());
        assert!(validate_generate_name("", "ConfigMap", "Bad-").is_err());
    }
}
