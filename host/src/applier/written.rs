//! The API server's answer to a patch, as the applier reads it: the written
//! object's `uid` and `resourceVersion`, and nothing else.
//!
//! The answer is the whole object, `managedFields` included (often larger
//! than the rest of it); decoding it as a [`kube::api::DynamicObject`]
//! builds a `serde_json::Value` tree of all of it for every write, only for
//! these two fields to be read. [`WrittenObject`] skims the rest.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A written object: its metadata's `uid` and `resourceVersion` only.
#[derive(Clone, Debug, Deserialize)]
#[serde(from = "Wire")]
pub(super) struct WrittenObject {
    pub(super) metadata: ObjectMeta,
}

/// The answer as decoded: fields other than these are skipped unparsed
/// into values (serde ignores unknown fields).
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    metadata: WireMeta,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    uid: Option<String>,
    resource_version: Option<String>,
}

impl From<Wire> for WrittenObject {
    fn from(wire: Wire) -> Self {
        Self {
            metadata: ObjectMeta {
                uid: wire.metadata.uid,
                resource_version: wire.metadata.resource_version,
                ..ObjectMeta::default()
            },
        }
    }
}

// Addressed like a `DynamicObject`: by the `ApiResource` of its kind.
crate::cluster::dynamic_resource!(WrittenObject);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_uid_and_resource_version_and_skips_the_rest() {
        let answer = r#"{"apiVersion":"v1","kind":"ConfigMap",
            "metadata":{"name":"a","namespace":"b","uid":"u-1","resourceVersion":"42",
              "labels":{"x":"y"},
              "managedFields":[{"manager":"m","operation":"Apply","fieldsType":"FieldsV1",
                "fieldsV1":{"f:metadata":{"f:labels":{"f:x":{}}}}}]},
            "data":{"k":"v"}}"#;
        let written: WrittenObject = serde_json::from_str(answer).unwrap();
        assert_eq!(written.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(written.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(written.metadata.name, None);
        assert_eq!(written.metadata.managed_fields, None);
    }

    #[test]
    fn an_answer_without_metadata_has_neither() {
        let written: WrittenObject = serde_json::from_str(r#"{"kind":"Status"}"#).unwrap();
        assert_eq!(written.metadata, ObjectMeta::default());
        assert!(serde_json::from_str::<WrittenObject>(r#"{"metadata":{"uid":7}}"#).is_err());
    }
}
