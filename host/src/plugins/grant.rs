//! The operator's grant to a plugin: the namespaces it may act in and the
//! cluster-scoped kinds it may write, set outside the plugin (its settings
//! and its own `describe` cannot widen it).
//!
//! A plugin's declared write scope says *which kinds* it writes; a grant
//! says *where*. Two sources combine, and the narrower wins:
//!
//! - `NAME.scope.json` beside `NAME.wasm`:
//!
//!   ```json
//!   {"namespaces": ["team-a", "team-b"],
//!    "clusterScoped": [{"group": "", "kind": "Namespace"}]}
//!   ```
//!
//!   `namespaces` confines the plugin; `clusterScoped` lists the
//!   cluster-scoped kinds a confined plugin may still write and read. A
//!   file that does not parse, names an invalid namespace or has unknown
//!   fields stops that plugin from loading (the previous version keeps
//!   serving).
//! - `kubewasm run --namespace NS` confines every plugin to `NS`.
//!
//! A confined plugin
//!
//! - is called only for objects in its namespaces, for the Namespace
//!   objects of those namespaces, and for cluster-scoped kinds it was
//!   granted;
//! - reads from the host's cache only those objects;
//! - may write namespaced objects only in its namespaces, cluster-scoped
//!   objects only of granted kinds, and Events only into its namespaces
//!   (an Event about a cluster-scoped object is recorded in `default`).
//!
//! An unconfined plugin (no scope file, no `--namespace`) acts cluster-wide
//! within its declared write scope, as before.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cluster::cache::{ObjectReader, ReadError};
use crate::cluster::object::CachedObject;
use crate::contract::GroupKind;
use crate::contract::names;
use crate::contract::selector::LabelSelector;
use serde::Deserialize;

/// Longest scope file read; a grant is a few lines.
pub const MAX_GRANT_FILE_BYTES: u64 = 64 * 1024;

/// Where a plugin may act. Cheap to clone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// `None`: every namespace (unconfined).
    namespaces: Option<BTreeSet<String>>,
    /// Cluster-scoped kinds a confined plugin may write and read.
    cluster_scoped: Vec<GroupKind>,
}

/// A scope file that cannot be used (the loader reads it, under the same
/// rules as the other files of the plugin directory).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("scope file {path} is invalid: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GrantFile {
    namespaces: Option<Vec<String>>,
    #[serde(default)]
    cluster_scoped: Vec<KindGrant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindGrant {
    group: String,
    kind: String,
}

/// The scope file of a plugin file: `NAME.scope.json` beside `NAME.wasm`.
pub fn grant_path(wasm: &Path) -> PathBuf {
    wasm.with_extension("scope.json")
}

impl Grant {
    /// No confinement: every namespace, any kind the plugin declares.
    pub fn unconfined() -> Self {
        Self::default()
    }

    /// Confined to `namespaces`, with no cluster-scoped kinds granted.
    pub fn namespaces<I: IntoIterator<Item = S>, S: Into<String>>(namespaces: I) -> Self {
        Self {
            namespaces: Some(namespaces.into_iter().map(Into::into).collect()),
            cluster_scoped: Vec::new(),
        }
    }

    /// Also grants writes and reads of a cluster-scoped kind (`*` allowed).
    pub fn with_cluster_scoped(mut self, group: &str, kind: &str) -> Self {
        self.cluster_scoped.push(GroupKind {
            group: group.into(),
            kind: kind.into(),
        });
        self
    }

    /// Parses a scope document, naming the offending field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: GrantFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let namespaces = match file.namespaces {
            None => None,
            Some(list) => {
                for (i, ns) in list.iter().enumerate() {
                    names::validate_namespace(ns).map_err(|e| format!("namespaces[{i}] {e}"))?;
                }
                Some(list.into_iter().collect())
            }
        };
        for (i, k) in file.cluster_scoped.iter().enumerate() {
            if k.kind.is_empty() {
                return Err(format!(
                    "clusterScoped[{i}].kind is empty (use \"*\" for any)"
                ));
            }
        }
        Ok(Self {
            namespaces,
            cluster_scoped: file
                .cluster_scoped
                .into_iter()
                .map(|k| GroupKind {
                    group: k.group,
                    kind: k.kind,
                })
                .collect(),
        })
    }

    /// Narrows the grant to one namespace (`--namespace`): the plugin keeps
    /// only that namespace, and only if its own grant allowed it.
    pub fn within(mut self, namespace: Option<&str>) -> Self {
        let Some(ns) = namespace else {
            return self;
        };
        let allowed = self.allows_namespace(ns);
        let mut only = BTreeSet::new();
        if allowed {
            only.insert(ns.to_string());
        }
        self.namespaces = Some(only);
        self
    }

    /// Whether the plugin is confined to a set of namespaces.
    fn is_confined(&self) -> bool {
        self.namespaces.is_some()
    }

    /// The namespaces the plugin may act in (`None`: every namespace).
    pub fn namespace_list(&self) -> Option<Vec<&str>> {
        self.namespaces
            .as_ref()
            .map(|set| set.iter().map(String::as_str).collect())
    }

    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
    }

    fn grants_cluster_kind(&self, group: &str, kind: &str) -> bool {
        self.cluster_scoped.iter().any(|k| k.matches(group, kind))
    }

    /// Whether the plugin may see (be called for, or read) an object of
    /// `group`/`kind` in `namespace` (`None` for cluster-scoped) named `name`.
    pub fn may_see(&self, group: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        match (&self.namespaces, namespace) {
            (None, _) => true,
            (Some(set), Some(ns)) => set.contains(ns),
            (Some(set), None) => {
                (group.is_empty() && kind == "Namespace" && set.contains(name))
                    || self.grants_cluster_kind(group, kind)
            }
        }
    }

    /// Whether `object` of `kind` may be seen.
    fn may_see_object(&self, kind: &GroupKind, object: &CachedObject) -> bool {
        if !self.is_confined() {
            return true;
        }
        self.may_see(
            &kind.group,
            &kind.kind,
            object.namespace().filter(|ns| !ns.is_empty()),
            object.name(),
        )
    }

    /// Checks a write of `group`/`kind` to `namespace` (`None` for a
    /// cluster-scoped object). The error says what is missing.
    pub fn check_write(
        &self,
        group: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<(), String> {
        let Some(set) = &self.namespaces else {
            return Ok(());
        };
        match namespace {
            Some(ns) if set.contains(ns) => Ok(()),
            Some(ns) => Err(format!(
                "namespace {ns:?} is outside the plugin's grant (it may act in: {})",
                list(set)
            )),
            None if self.grants_cluster_kind(group, kind) => Ok(()),
            None => Err(format!(
                "{kind} in group {group:?} is cluster-scoped and the plugin is confined to namespaces ({}) without a grant for it (clusterScoped in its scope file)",
                list(set)
            )),
        }
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The host's cache as a confined plugin sees it: objects outside its grant
/// do not exist for it, and reading one by name is an error naming the grant.
pub struct GrantedReader {
    inner: Arc<dyn ObjectReader>,
    grant: Arc<Grant>,
    plugin: String,
}

impl GrantedReader {
    /// Wraps `inner`; an unconfined grant returns `inner` itself.
    pub fn wrap(
        inner: Arc<dyn ObjectReader>,
        grant: &Arc<Grant>,
        plugin: &str,
    ) -> Arc<dyn ObjectReader> {
        if !grant.is_confined() {
            return inner;
        }
        Arc::new(Self {
            inner,
            grant: Arc::clone(grant),
            plugin: plugin.to_string(),
        })
    }

    fn outside(&self, kind: &GroupKind, namespace: Option<&str>, name: &str) -> ReadError {
        ReadError::OutsideGrant {
            plugin: self.plugin.clone(),
            kind: kind.kind.clone(),
            object: match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.to_string(),
            },
        }
    }
}

impl ObjectReader for GrantedReader {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        if !self.grant.may_see(&kind.group, &kind.kind, namespace, name) {
            return Err(self.outside(kind, namespace, name));
        }
        self.inner.get(kind, namespace, name)
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        if let Some(ns) = namespace
            && !self.grant.allows_namespace(ns)
        {
            return Err(self.outside(kind, Some(ns), "*"));
        }
        let mut objects = self.inner.list(kind, namespace, selector)?;
        objects.retain(|o| self.grant.may_see_object(kind, o));
        Ok(objects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::cache::StaticObjects;
    use serde_json::json;

    #[test]
    fn scope_files_parse_and_name_bad_fields() {
        let grant = Grant::parse(
            r#"{"namespaces": ["team-a"], "clusterScoped": [{"group": "", "kind": "Namespace"}]}"#,
        )
        .unwrap();
        assert!(grant.is_confined());
        assert_eq!(grant.namespace_list(), Some(vec!["team-a"]));
        assert_eq!(
            Grant::parse(r#"{"namespaces": ["ok", "a/b"]}"#).unwrap_err(),
            "namespaces[1] \"a/b\" contains '/', which would change the request URL"
        );
        assert!(
            Grant::parse(r#"{"namespace": ["a"]}"#)
                .unwrap_err()
                .contains("unknown field `namespace`")
        );
        assert!(!Grant::parse("{}").unwrap().is_confined());
    }

    #[test]
    fn the_namespace_flag_narrows_a_grant() {
        let flag = Some("team-a");
        assert_eq!(
            Grant::unconfined().within(flag),
            Grant::namespaces(["team-a"])
        );
        assert_eq!(
            Grant::namespaces(["team-a", "team-b"]).within(flag),
            Grant::namespaces(["team-a"])
        );
        // A plugin granted other namespaces only gets none.
        let none = Grant::namespaces(["team-b"]).within(flag);
        assert!(!none.allows_namespace("team-a") && !none.allows_namespace("team-b"));
        assert_eq!(Grant::unconfined().within(None), Grant::unconfined());
    }

    #[test]
    fn writes_are_checked_against_namespaces_and_cluster_grants() {
        let grant = Grant::namespaces(["team-a"]).with_cluster_scoped("", "Namespace");
        assert!(grant.check_write("", "ConfigMap", Some("team-a")).is_ok());
        assert_eq!(
            grant
                .check_write("", "ConfigMap", Some("kube-system"))
                .unwrap_err(),
            "namespace \"kube-system\" is outside the plugin's grant (it may act in: team-a)"
        );
        assert!(grant.check_write("", "Namespace", None).is_ok());
        assert!(
            grant
                .check_write("rbac.authorization.k8s.io", "ClusterRole", None)
                .unwrap_err()
                .contains("ClusterRole in group \"rbac.authorization.k8s.io\" is cluster-scoped")
        );
        assert!(
            Grant::unconfined()
                .check_write("", "Secret", Some("any"))
                .is_ok()
        );
    }

    #[test]
    fn a_confined_reader_hides_other_namespaces() {
        let object = |kind: &str, ns: Option<&str>, name: &str| {
            let mut o = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        };
        let cache: Arc<dyn ObjectReader> = Arc::new(StaticObjects::new(vec![
            object("ConfigMap", Some("team-a"), "mine"),
            object("ConfigMap", Some("team-b"), "theirs"),
            object("Namespace", None, "team-a"),
            object("Namespace", None, "team-b"),
        ]));
        let reader = GrantedReader::wrap(cache, &Arc::new(Grant::namespaces(["team-a"])), "p");
        let cm = GroupKind::from_api_version("v1", "ConfigMap");
        let ns = GroupKind::from_api_version("v1", "Namespace");
        let names = |objects: Vec<Arc<CachedObject>>| -> Vec<String> {
            objects.iter().map(|o| o.name().to_string()).collect()
        };
        let all = LabelSelector::parse("").unwrap();
        assert_eq!(names(reader.list(&cm, None, &all).unwrap()), ["mine"]);
        assert_eq!(names(reader.list(&ns, None, &all).unwrap()), ["team-a"]);
        assert!(reader.get(&cm, Some("team-a"), "mine").unwrap().is_some());
        assert_eq!(
            reader
                .get(&cm, Some("team-b"), "theirs")
                .unwrap_err()
                .to_string(),
            "plugin p may not read ConfigMap team-b/theirs: it is outside the namespaces the operator granted it"
        );
        assert!(reader.list(&cm, Some("team-b"), &all).is_err());
    }
}
