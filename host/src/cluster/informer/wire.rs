//! Objects as the informers receive them: decoded one by one, so that one
//! object the host cannot decode never fails the list or watch it came in.
//!
//! kube decodes a list response (or a watch event) as one JSON document. With
//! [`DynamicObject`](kube::api::DynamicObject) items, one object nested deeper
//! than serde_json's recursion limit (128) fails the whole list, so the kind
//! never syncs. A [`WireObject`] is first taken as raw JSON text, which
//! serde_json skims without a recursion limit, and then decoded on its own:
//! an object that cannot be decoded becomes [`WireObject::undecodable`] with
//! its identity (read without descending into its content) and the reason,
//! and the informer skips and reports it.

use std::sync::Arc;

use kube::api::ObjectMeta;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One object from a list or watch event.
#[derive(Clone, Debug)]
pub struct WireObject {
    /// Name, namespace, uid and resourceVersion; always present when the
    /// object's metadata could be read at all.
    metadata: ObjectMeta,
    content: Result<Value, Arc<str>>,
}

impl WireObject {
    /// Decodes one object's JSON text.
    pub fn decode(text: &str) -> Self {
        match serde_json::from_str::<Value>(text) {
            Ok(content) => Self {
                metadata: identity_of(&content),
                content: Ok(content),
            },
            Err(error) => {
                let metadata = serde_json::from_str::<Header>(text)
                    .map(|h| h.metadata.into())
                    .unwrap_or_default();
                Self {
                    metadata,
                    content: Err(error.to_string().into()),
                }
            }
        }
    }

    /// The decoded object, or why it could not be decoded.
    pub fn into_content(self) -> Result<Value, Arc<str>> {
        self.content
    }

    /// Why the object could not be decoded, if it could not.
    pub fn undecodable(&self) -> Option<&str> {
        self.content.as_ref().err().map(|e| &**e)
    }
}

fn identity_of(object: &Value) -> ObjectMeta {
    let metadata = &object["metadata"];
    let text = |field: &str| metadata[field].as_str().map(str::to_string);
    ObjectMeta {
        name: text("name"),
        namespace: text("namespace"),
        uid: text("uid"),
        resource_version: text("resourceVersion"),
        ..ObjectMeta::default()
    }
}

/// Only an object's identity; every other field is skipped without being
/// decoded (serde_json skips values without a recursion limit).
#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    metadata: HeaderMeta,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeaderMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
}

impl From<HeaderMeta> for ObjectMeta {
    fn from(h: HeaderMeta) -> Self {
        ObjectMeta {
            name: h.name,
            namespace: h.namespace,
            uid: h.uid,
            resource_version: h.resource_version,
            ..ObjectMeta::default()
        }
    }
}

impl<'de> Deserialize<'de> for WireObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // kube decodes lists and watch events from text, so the raw value
        // borrows from it without a copy.
        let raw = <&RawValue>::deserialize(deserializer)?;
        Ok(Self::decode(raw.get()))
    }
}

crate::cluster::dynamic_resource!(WireObject);

#[cfg(test)]
mod tests {
    use kube::Resource;
    use kube::core::{ObjectList, WatchEvent};

    use super::*;

    /// `{"a":{"a":...{"a":1}...}}`, `depth` objects deep.
    fn nested(depth: usize) -> String {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    }

    fn object(name: &str, spec: &str) -> String {
        format!(
            r#"{{"metadata":{{"name":"{name}","namespace":"ns","uid":"u-{name}","resourceVersion":"7","managedFields":[{{"fieldsV1":{spec}}}]}},"spec":{spec}}}"#
        )
    }

    #[test]
    fn one_object_too_deep_to_decode_leaves_the_rest_of_its_list_intact() {
        let list = format!(
            r#"{{"apiVersion":"v1","kind":"List","metadata":{{"resourceVersion":"9"}},"items":[{},{},{}]}}"#,
            object("before", "{}"),
            object("deep", &nested(200)),
            object("after", &nested(20)),
        );
        // What kube does with a list response: one document, one parse.
        assert!(
            serde_json::from_str::<ObjectList<kube::api::DynamicObject>>(&list).is_err(),
            "the premise: a DynamicObject list fails as a whole"
        );
        let list: ObjectList<WireObject> = serde_json::from_str(&list).unwrap();
        let names: Vec<_> = list
            .items
            .iter()
            .map(|o| o.meta().name.clone().unwrap())
            .collect();
        assert_eq!(names, ["before", "deep", "after"]);
        assert!(list.items[0].undecodable().is_none());
        assert!(list.items[2].undecodable().is_none());
        let deep = &list.items[1];
        assert!(
            deep.undecodable().unwrap().contains("recursion limit"),
            "{:?}",
            deep.undecodable()
        );
        assert_eq!(deep.meta().namespace.as_deref(), Some("ns"));
        assert_eq!(deep.meta().uid.as_deref(), Some("u-deep"));
        assert_eq!(deep.meta().resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn a_watch_event_with_an_object_too_deep_to_decode_is_still_an_event() {
        let line = format!(
            r#"{{"type":"MODIFIED","object":{}}}"#,
            object("deep", &nested(300))
        );
        match serde_json::from_str::<WatchEvent<WireObject>>(&line).unwrap() {
            WatchEvent::Modified(o) => {
                assert_eq!(o.meta().name.as_deref(), Some("deep"));
                assert!(o.undecodable().is_some());
            }
            other => panic!("{other:?}"),
        }
        let bookmark = r#"{"type":"BOOKMARK","object":{"kind":"X","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}"#;
        assert!(matches!(
            serde_json::from_str::<WatchEvent<WireObject>>(bookmark).unwrap(),
            WatchEvent::Bookmark(_)
        ));
    }

    #[test]
    fn a_decodable_object_keeps_every_field_and_its_identity() {
        let o = WireObject::decode(&object("x", r#"{"n":1.5,"s":"é"}"#));
        assert_eq!(o.meta().name.as_deref(), Some("x"));
        let content = o.into_content().unwrap();
        assert_eq!(content["spec"]["n"], 1.5);
        assert_eq!(content["spec"]["s"], "é");
    }

    #[test]
    fn text_that_is_not_an_object_is_undecodable_without_an_identity() {
        let o = WireObject::decode("[1,2");
        assert!(o.undecodable().is_some());
        assert_eq!(o.meta().name, None);
    }
}
