//! The cache's unit: one version of one object, as plugins receive it.
//!
//! A [`CachedObject`] is the compact JSON text a plugin gets as its event's
//! `object` (and from `get-object`/`list-objects`): `metadata.managedFields`
//! removed, `apiVersion` and `kind` set. It is built once per watch event or
//! list item, never changes, and is shared by the informer's cache, the work
//! queue and the calls in flight. Handing it to a plugin is a copy of the
//! text, not a serialization.
//!
//! What the host itself reads of an object (name, namespace, uid,
//! resourceVersion, labels, controller owner, deletion, finalizers) is kept
//! in a small header of spans into the text, read back once from the text
//! when the object is built; only a string whose JSON form has escapes is
//! copied. Anything else the host needs is read from the text without a
//! tree ([`read`]) or, on rare paths, by [`CachedObject::parse`].
//!
//! A `serde_json::Value` tree of a small ConfigMap is several times its
//! text (every JSON object a map with room for 11 entries, every string
//! its own allocation); see `docs/design/performance.md` §2.

pub mod read;

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::contract::ResourceKind;

/// One version of one object, as plugins receive it.
pub struct CachedObject {
    /// Compact JSON: `metadata.managedFields` removed, `apiVersion` and
    /// `kind` set (for objects from the informers).
    json: Box<str>,
    meta: Meta,
}

/// What the host reads of an object, as spans into its text.
#[derive(Default)]
struct Meta {
    namespace: Option<Str>,
    name: Option<Str>,
    uid: Option<Str>,
    resource_version: Option<Str>,
    /// Sorted by key; labels whose value is not a string are left out.
    labels: Box<[(Str, Str)]>,
    controller_owner: Option<Box<OwnerSpans>>,
    deleting: bool,
    finalizers: Box<[Str]>,
}

/// The owner reference with `controller: true`.
struct OwnerSpans {
    api_version: Str,
    kind: Str,
    name: Str,
}

/// A string of the text by offset and length, or an owned copy when its
/// JSON form has escapes (or the header was read from a tree).
enum Str {
    At { start: u32, len: u32 },
    Owned(Box<str>),
}

impl Str {
    fn get<'a>(&'a self, json: &'a str) -> &'a str {
        match self {
            Str::At { start, len } => {
                let start = *start as usize;
                json.get(start..start + *len as usize).unwrap_or_default()
            }
            Str::Owned(s) => s,
        }
    }

    /// `s` as a span of `json` if it borrows from it, else a copy.
    fn of(json: &str, s: Cow<'_, str>) -> Self {
        let base = json.as_ptr() as usize;
        if let Cow::Borrowed(b) = &s {
            let at = (b.as_ptr() as usize).wrapping_sub(base);
            if at <= json.len()
                && at + b.len() <= json.len()
                && let (Ok(start), Ok(len)) = (u32::try_from(at), u32::try_from(b.len()))
            {
                return Str::At { start, len };
            }
        }
        Str::Owned(s.into_owned().into_boxed_str())
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Str::At { .. } => 0,
            Str::Owned(s) => s.len(),
        }
    }
}

/// The controller owner of an object, as its owner reference names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnerRef<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
}

impl CachedObject {
    /// An object as the informers hand it to plugins: `managedFields`
    /// stripped, `apiVersion` and `kind` set to `kind`'s.
    pub fn from_wire(kind: &ResourceKind, mut value: Value) -> Self {
        if let Value::Object(fields) = &mut value {
            if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
                metadata.remove("managedFields");
            }
            fields.insert("apiVersion".into(), Value::String(kind.api_version()));
            fields.insert("kind".into(), Value::String(kind.kind.clone()));
        }
        Self::from_value(&value)
    }

    /// `value` as it is (offline objects, tests): its compact text and the
    /// header read back from it.
    pub fn from_value(value: &Value) -> Self {
        let json = value.to_string().into_boxed_str();
        let meta = match serde_json::from_str::<Head<'_>>(&json) {
            Ok(head) => head.metadata.into_meta(&json),
            // A field of an unexpected type (a number as a label value, in
            // a file of `kubewasm eval`): read the tree, as the host did.
            Err(_) => Meta::of_tree(value),
        };
        Self { json, meta }
    }

    /// The text plugins receive.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The object as a tree, for the rare paths that need one. The text
    /// was written from a tree whose depth the decoder bounded, so it
    /// parses; `null` if it somehow does not.
    pub fn parse(&self) -> Value {
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    fn str<'a>(&'a self, s: &'a Option<Str>) -> Option<&'a str> {
        s.as_ref().map(|s| s.get(&self.json))
    }

    /// `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.str(&self.meta.namespace)
    }

    /// `metadata.name` (empty if absent).
    pub fn name(&self) -> &str {
        self.str(&self.meta.name).unwrap_or_default()
    }

    /// `metadata.uid` (empty if absent).
    pub fn uid(&self) -> &str {
        self.str(&self.meta.uid).unwrap_or_default()
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<&str> {
        self.str(&self.meta.resource_version)
    }

    /// The value of label `key`, if it is set to a string.
    pub fn label(&self, key: &str) -> Option<&str> {
        let labels = &self.meta.labels;
        let i = labels
            .binary_search_by(|(k, _)| k.get(&self.json).cmp(key))
            .ok()?;
        Some(labels[i].1.get(&self.json))
    }

    /// The labels whose values are strings, sorted by key.
    pub fn labels(&self) -> impl Iterator<Item = (&str, &str)> {
        self.meta
            .labels
            .iter()
            .map(|(k, v)| (k.get(&self.json), v.get(&self.json)))
    }

    /// The owner reference with `controller: true`, if it names an
    /// `apiVersion`, `kind` and `name`.
    pub fn controller_owner(&self) -> Option<OwnerRef<'_>> {
        let o = self.meta.controller_owner.as_deref()?;
        Some(OwnerRef {
            api_version: o.api_version.get(&self.json),
            kind: o.kind.get(&self.json),
            name: o.name.get(&self.json),
        })
    }

    /// Whether the object's deletion has started (`metadata.deletionTimestamp`).
    pub fn is_being_deleted(&self) -> bool {
        self.meta.deleting
    }

    /// `metadata.finalizers` (the strings among them), in order.
    pub fn finalizers(&self) -> impl Iterator<Item = &str> {
        self.meta.finalizers.iter().map(|f| f.get(&self.json))
    }

    /// Whether the object carries the finalizer `name`.
    pub fn has_finalizer(&self, name: &str) -> bool {
        self.finalizers().any(|f| f == name)
    }

    /// Bytes this object holds on the heap: its text, its header and the
    /// strings the header copies (allocator overhead not counted).
    pub fn heap_bytes(&self) -> usize {
        let m = &self.meta;
        let strs = [&m.namespace, &m.name, &m.uid, &m.resource_version];
        let owned: usize = strs
            .iter()
            .flat_map(|s| s.as_ref())
            .map(Str::heap_bytes)
            .sum();
        let labels: usize = m
            .labels
            .iter()
            .map(|(k, v)| k.heap_bytes() + v.heap_bytes())
            .sum();
        let owner = m.controller_owner.as_deref().map_or(0, |o| {
            size_of::<OwnerSpans>()
                + o.api_version.heap_bytes()
                + o.kind.heap_bytes()
                + o.name.heap_bytes()
        });
        let finalizers: usize = m.finalizers.iter().map(Str::heap_bytes).sum();
        self.json.len()
            + size_of::<Self>()
            + size_of_val(&*m.labels)
            + size_of_val(&*m.finalizers)
            + owned
            + labels
            + owner
            + finalizers
    }
}

impl fmt::Debug for CachedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

impl PartialEq for CachedObject {
    fn eq(&self, other: &Self) -> bool {
        self.json == other.json
    }
}

impl From<Value> for CachedObject {
    fn from(value: Value) -> Self {
        Self::from_value(&value)
    }
}

/// The header as read back from the text: strings borrowed where they have
/// no escapes; every other field skipped without being decoded.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    metadata: HeadMeta<'a>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadMeta<'a> {
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    uid: Option<Text<'a>>,
    #[serde(borrow)]
    resource_version: Option<Text<'a>>,
    #[serde(borrow)]
    labels: Option<Pairs<'a>>,
    #[serde(borrow)]
    owner_references: Option<Vec<HeadOwner<'a>>>,
    deletion_timestamp: Option<IgnoredAny>,
    #[serde(borrow)]
    finalizers: Option<Vec<Text<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadOwner<'a> {
    #[serde(borrow)]
    api_version: Option<Text<'a>>,
    #[serde(borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    controller: Option<bool>,
}

/// A JSON string, borrowed from the text unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Strings;
        impl<'de> Visitor<'de> for Strings {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(Strings)
    }
}

/// A JSON object of strings, as its members in order.
struct Pairs<'a>(Vec<(Text<'a>, Text<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Pairs<'de>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl HeadMeta<'_> {
    fn into_meta(self, json: &str) -> Meta {
        let at = |s: Option<Text<'_>>| s.map(|s| Str::of(json, s.0));
        let mut labels: Vec<(Str, Str)> = self
            .labels
            .map(|p| p.0)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (Str::of(json, k.0), Str::of(json, v.0)))
            .collect();
        labels.sort_by(|a, b| a.0.get(json).cmp(b.0.get(json)));
        let controller_owner = self
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.controller == Some(true))
            .and_then(|o| {
                Some(Box::new(OwnerSpans {
                    api_version: Str::of(json, o.api_version?.0),
                    kind: Str::of(json, o.kind?.0),
                    name: Str::of(json, o.name?.0),
                }))
            });
        Meta {
            namespace: at(self.namespace),
            name: at(self.name),
            uid: at(self.uid),
            resource_version: at(self.resource_version),
            labels: labels.into_boxed_slice(),
            controller_owner,
            deleting: self.deletion_timestamp.is_some(),
            finalizers: self
                .finalizers
                .unwrap_or_default()
                .into_iter()
                .map(|f| Str::of(json, f.0))
                .collect(),
        }
    }
}

impl Meta {
    /// The header read from a tree, leniently: a field of another type than
    /// expected counts as absent, as the host's reads of trees did.
    fn of_tree(value: &Value) -> Self {
        let metadata = &value["metadata"];
        let owned = |v: &Value| v.as_str().map(|s| Str::Owned(s.into()));
        let mut labels: Vec<(&str, &str)> = metadata["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
            .collect();
        labels.sort_unstable();
        let labels = labels
            .into_iter()
            .map(|(k, v)| (Str::Owned(k.into()), Str::Owned(v.into())));
        let controller_owner = metadata["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["controller"].as_bool() == Some(true))
            .and_then(|r| {
                Some(Box::new(OwnerSpans {
                    api_version: owned(&r["apiVersion"])?,
                    kind: owned(&r["kind"])?,
                    name: owned(&r["name"])?,
                }))
            });
        Meta {
            namespace: owned(&metadata["namespace"]),
            name: owned(&metadata["name"]),
            uid: owned(&metadata["uid"]),
            resource_version: owned(&metadata["resourceVersion"]),
            labels: labels.collect(),
            controller_owner,
            deleting: !metadata["deletionTimestamp"].is_null(),
            finalizers: metadata["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(owned)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
