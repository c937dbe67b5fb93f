//! Recognising writes that would change nothing, so they are not sent.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use super::plan::describe;
use crate::contract::intent::ObjectRef;

/// Whether every field of `want` holds in `have`: objects recursively (a
/// `null` in `want` matches a missing field), lists element by element with
/// equal lengths, everything else by equality.
pub(super) fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want.iter().all(|(k, w)| match have.get(k) {
            Some(h) => contains(h, w),
            None => w.is_null(),
        }),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| contains(h, w))
        }
        (have, want) => have == want,
    }
}

/// A hash of the apply configuration, to recognise it when it comes again.
pub(super) fn fingerprint(value: &Value) -> u64 {
    hash(&value.to_string())
}

fn hash(value: &impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

pub(super) fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

/// The apply configurations sent, by field manager, object and subresource.
/// Keys and values are hashes (24 bytes an entry): a collision would need
/// key, uid and configuration hashes to collide at once.
#[derive(Default)]
pub(super) struct SentApplies {
    /// Hash of the object's uid and fingerprint of the configuration.
    entries: HashMap<SentKey, (u64, u64)>,
}

#[derive(Clone, Copy, Hash, PartialEq, Eq)]
pub(super) struct SentKey(u64);

impl SentKey {
    pub(super) fn new(manager: &str, target: &ObjectRef, status: bool) -> Self {
        Self(hash(&(manager, describe(target), status)))
    }
}

/// Bounds the memory of [`SentApplies`]; when full it starts over, which
/// costs one extra (no-op) apply per object.
pub(super) const MAX_SENT_APPLIES: usize = 1 << 17;

impl SentApplies {
    pub(super) fn contains(&self, key: SentKey, uid: &str, fingerprint: u64) -> bool {
        self.entries.get(&key) == Some(&(hash(&uid), fingerprint))
    }

    pub(super) fn insert(&mut self, key: SentKey, uid: &str, fingerprint: u64) {
        if self.entries.len() >= MAX_SENT_APPLIES && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        self.entries.insert(key, (hash(&uid), fingerprint));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn contains_checks_every_wanted_field() {
        let have = json!({
            "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}]}
        });
        assert!(contains(
            &have,
            &json!({"metadata": {"labels": {"a": "1"}}})
        ));
        assert!(contains(
            &have,
            &json!({"spec": {"containers": [{"name": "c", "image": "i"}]}})
        ));
        assert!(contains(&have, &json!({"metadata": {"annotations": null}})));
        assert!(!contains(
            &have,
            &json!({"metadata": {"labels": {"a": "2"}}})
        ));
        assert!(!contains(
            &have,
            &json!({"metadata": {"labels": {"c": "3"}}})
        ));
        assert!(!contains(&have, &json!({"spec": {"containers": []}})));
        assert!(!contains(&have, &json!({"metadata": {"labels": null}})));
    }

    #[test]
    fn sent_applies_match_uid_and_configuration() {
        let target = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        };
        let mut sent = SentApplies::default();
        let config = fingerprint(&json!({"metadata": {"labels": {"a": "1"}}}));
        sent.insert(SentKey::new("kubewasm/a", &target, false), "u1", config);
        assert!(sent.contains(SentKey::new("kubewasm/a", &target, false), "u1", config));
        assert!(!sent.contains(SentKey::new("kubewasm/a", &target, true), "u1", config));
        assert!(!sent.contains(SentKey::new("kubewasm/b", &target, false), "u1", config));
        assert!(!sent.contains(SentKey::new("kubewasm/a", &target, false), "u2", config));
        let other = fingerprint(&json!({"metadata": {"labels": {"a": "2"}}}));
        assert!(!sent.contains(SentKey::new("kubewasm/a", &target, false), "u1", other));
    }
}
