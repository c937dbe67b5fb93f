//! Recognising writes that would change nothing, so they are not sent.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;

use crate::contract::intent::ObjectRef;

/// Whether every field of `want` holds in `have`: objects recursively (a
/// `null` in `want` matches a missing field), lists element by element with
/// equal lengths, everything else by equality. The host checks the cached
/// text with [`contains_json`](crate::cluster::object::read::contains_json);
/// this is its definition on trees, which the tests compare it with.
#[cfg(test)]
fn contains(have: &Value, want: &Value) -> bool {
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
        Self(hash(&(manager, target.describe(), status)))
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

    /// The host checks the cached text; it must answer as the tree did.
    #[test]
    fn contains_json_answers_as_contains_on_the_tree() {
        use crate::cluster::object::read::contains_json;
        let have = json!({
            "metadata": {"name": "x", "labels": {"a": "1", "b": "2", "e\"q": "é"}, "n": null},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}],
                     "replicas": 3, "ratio": 0.5, "neg": -2, "on": true, "esc": "a\"b\\n",
                     "deep": {"a": {"b": {"c": [1, [2, {"d": null}]]}}}}
        });
        let wants = [
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"e\"q": "é"}}}),
            json!({"metadata": {"labels": {"e\"q": "e"}}}),
            json!({"spec": {"containers": [{"name": "c", "image": "i"}]}}),
            json!({"metadata": {"annotations": null}}),
            json!({"metadata": {"annotations": null, "labels": {"b": "2"}, "n": null}}),
            json!({"metadata": {"labels": {"a": "2"}}}),
            json!({"metadata": {"labels": {"c": "3"}}}),
            json!({"metadata": {"labels": {"c": null, "d": "4"}}}),
            json!({"spec": {"containers": []}}),
            json!({"spec": {"containers": [{"name": "c"}, {"name": "d"}]}}),
            json!({"metadata": {"labels": null}}),
            json!({"metadata": {"name": {"x": 1}}}),
            json!({"metadata": {"name": ["x"]}}),
            json!({"spec": {"replicas": 3, "ratio": 0.5, "neg": -2, "on": true}}),
            json!({"spec": {"replicas": 3.0}}),
            json!({"spec": {"replicas": "3"}}),
            json!({"spec": {"ratio": 0.25}}),
            json!({"spec": {"neg": 2}}),
            json!({"spec": {"on": false}}),
            json!({"spec": {"esc": "a\"b\\n"}}),
            json!({"spec": {"esc": "a\"b"}}),
            json!({"spec": {"deep": {"a": {"b": {"c": [1, [2, {}]]}}}}}),
            json!({"spec": {"deep": {"a": {"b": {"c": [1, [2, {"d": 0}]]}}}}}),
            json!({"spec": {"deep": {"a": {"b": {"c": [1, [2]]}}}}}),
            json!({"spec": "x"}),
            json!({"status": {"x": 1}}),
            json!({"status": null}),
            json!({}),
            json!(null),
            json!([]),
        ];
        let text = have.to_string();
        for want in wants {
            assert_eq!(
                contains_json(&text, &want),
                contains(&have, &want),
                "{want}"
            );
        }
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
