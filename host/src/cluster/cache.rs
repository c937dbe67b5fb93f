//! The read side plugins see through the `get` and `list` host functions.
//!
//! In a cluster the informer caches answer; offline (`kubewasm eval`) a
//! [`StaticObjects`] loaded from YAML files does. Either way a plugin may only
//! read kinds it subscribes to; the runtime checks that before asking.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::object::CachedObject;
use crate::contract::GroupKind;
use crate::contract::selector::LabelSelector;

/// Why a read failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    #[error("kind {kind} in group {group:?} is not watched by the host")]
    NotWatched { group: String, kind: String },
    #[error("kind {kind} in group {group:?} is not synced yet")]
    NotSynced { group: String, kind: String },
    #[error(
        "plugin {plugin} may not read {kind} {object}: it is outside the namespaces the operator granted it"
    )]
    OutsideGrant {
        plugin: String,
        kind: String,
        object: String,
    },
    #[error(
        "{kind} in {namespace} is not cached by this replica: the host runs sharded (--shard-ring) and caches only the namespaces it reconciles"
    )]
    OutsideShard { kind: String, namespace: String },
}

/// Answers a plugin's reads. Implementations must be cheap and never block
/// on the network: they are called from inside a Wasm call.
pub trait ObjectReader: Send + Sync {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError>;

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError>;
}

/// A fixed set of objects, for offline runs and tests. Every kind counts as
/// watched: a kind with no objects lists as empty.
#[derive(Clone, Debug, Default)]
pub struct StaticObjects {
    objects: Vec<(GroupKind, Arc<CachedObject>)>,
}

/// A cache directory that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadObjectsError {
    #[error("failed to read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {path} as YAML")]
    Parse {
        path: PathBuf,
        #[source]
        // Boxed: the parser's error is large, and this is a rare path.
        source: Box<serde_saphyr::Error>,
    },
    #[error(
        "{path}: document {index} is not a Kubernetes object (needs apiVersion, kind and metadata.name)"
    )]
    NotAnObject { path: PathBuf, index: usize },
}

impl StaticObjects {
    pub fn new(objects: impl IntoIterator<Item = Value>) -> Self {
        Self {
            objects: objects
                .into_iter()
                .map(|o| {
                    (
                        GroupKind::of_object(&o),
                        Arc::new(CachedObject::from_value(&o)),
                    )
                })
                .collect(),
        }
    }

    /// Loads every `.yaml`, `.yml` and `.json` file in `dir` (not recursive);
    /// a file may hold several YAML documents.
    pub fn from_dir(dir: &Path) -> Result<Self, LoadObjectsError> {
        let read_err = |source| LoadObjectsError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            })
            .collect();
        paths.sort();
        let mut objects = Vec::new();
        for path in paths {
            objects.extend(load_objects(&path)?);
        }
        Ok(Self::new(objects))
    }
}

/// Loads the Kubernetes objects in one YAML or JSON file (several YAML
/// documents allowed; a `List` kind is flattened into its items).
pub fn load_objects(path: &Path) -> Result<Vec<Value>, LoadObjectsError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadObjectsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, yaml_options())
        .map_err(|source| LoadObjectsError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
    let mut objects = Vec::new();
    // Empty documents are skipped and not counted.
    for (index, value) in documents.into_iter().enumerate() {
        if value["kind"].as_str().is_some_and(|k| k.ends_with("List")) && value["items"].is_array()
        {
            objects.extend(value["items"].as_array().into_iter().flatten().cloned());
            continue;
        }
        let is_object = value["apiVersion"].is_string()
            && value["kind"].is_string()
            && value["metadata"]["name"].is_string();
        if !is_object {
            return Err(LoadObjectsError::NotAnObject {
                path: path.to_path_buf(),
                index,
            });
        }
        objects.push(value);
    }
    Ok(objects)
}

/// YAML 1.2 scalars, as the API server's JSON would have them: `yes`, `on`,
/// `0755` and `1_000` stay strings; a repeated key keeps its last value.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        // One-line messages: they end up in log lines and error chains.
        with_snippet: false,
    }
}

fn in_namespace(object: &CachedObject, namespace: Option<&str>) -> bool {
    match namespace {
        None => true,
        Some(ns) => object.namespace() == Some(ns),
    }
}

impl ObjectReader for StaticObjects {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        Ok(self
            .objects
            .iter()
            .find(|(k, o)| k == kind && o.name() == name && o.namespace() == namespace)
            .map(|(_, o)| o.clone()))
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        Ok(self
            .objects
            .iter()
            .filter(|(k, o)| {
                k == kind
                    && in_namespace(o, namespace)
                    && selector.matches_labels(|key| o.label(key))
            })
            .map(|(_, o)| o.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objects() -> StaticObjects {
        StaticObjects::new([
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a", "labels": {"team": "a"}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team-a", "labels": {"app": "web"}}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db", "namespace": "team-b"}}),
        ])
    }

    #[test]
    fn get_matches_kind_namespace_and_name() {
        let ns = GroupKind::from_api_version("v1", "Namespace");
        let found = objects().get(&ns, None, "team-a").unwrap().unwrap();
        assert_eq!(found.label("team"), Some("a"));
        let deploy = GroupKind::from_api_version("apps/v1beta1", "Deployment");
        assert!(
            objects()
                .get(&deploy, Some("team-b"), "web")
                .unwrap()
                .is_none()
        );
        assert!(
            objects()
                .get(&deploy, Some("team-a"), "web")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn list_filters_by_namespace_and_selector() {
        let deploy = GroupKind::from_api_version("apps/v1", "Deployment");
        let all = LabelSelector::default();
        assert_eq!(objects().list(&deploy, None, &all).unwrap().len(), 2);
        let web = LabelSelector::parse("app=web").unwrap();
        let listed = objects().list(&deploy, None, &web).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name(), "web");
        assert!(
            objects()
                .list(&deploy, Some("nope"), &all)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn loads_multi_document_yaml_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c, namespace: a}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let loaded = StaticObjects::from_dir(dir.path()).unwrap();
        assert_eq!(loaded.objects.len(), 2);
    }

    #[test]
    fn yaml_scalars_keep_their_yaml_1_2_types() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n\
             data: {a: yes, b: on, c: 0755, d: 1_000, e: 12, f: true, g: '7'}\n---\n",
        )
        .unwrap();
        let loaded = load_objects(&path).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0]["data"],
            json!({"a": "yes", "b": "on", "c": "0755", "d": "1_000", "e": 12, "f": true, "g": "7"})
        );
    }

    #[test]
    fn rejects_documents_that_are_not_objects() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "apiVersion: v1\nkind: ConfigMap\n").unwrap();
        let err = load_objects(&path).unwrap_err();
        assert!(err.to_string().ends_with(
            "bad.yaml: document 0 is not a Kubernetes object (needs apiVersion, kind and metadata.name)"
        ));
    }
}
