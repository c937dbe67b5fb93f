//! What a recording holds: the kinds chosen, and the objects of them in
//! the slice asked for (namespaces, selector), redacted.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::{RecordError, RecordOptions};
use crate::cluster::discovery::{KindRegistry, SharedRegistry};
use crate::cluster::informer::KindEvent;
use crate::cluster::object::CachedObject;
use crate::contract::selector::LabelSelector;
use crate::contract::{EventType, ResourceKind};
use crate::recording::{Change, RedactPath};

/// The kinds to record: the plugin's and those named, one version each,
/// Secrets only if asked for. Notes for the operator go to `notes`.
pub fn select_kinds(
    registry: &KindRegistry,
    options: &RecordOptions,
    notes: &mut Vec<String>,
) -> Result<Vec<ResourceKind>, RecordError> {
    let mut kinds: Vec<ResourceKind> = Vec::new();
    let mut add = |kind: ResourceKind, notes: &mut Vec<String>| match kinds
        .iter()
        .find(|k| k.group_kind() == kind.group_kind())
    {
        Some(k) if k.version != kind.version => notes.push(format!(
            "{} is recorded at {} only (the plugin also names {})",
            kind.kind, k.version, kind.version
        )),
        Some(_) => {}
        None => kinds.push(kind),
    };
    if let Some(info) = &options.plugin {
        let shared = SharedRegistry::new(registry.clone());
        for kind in crate::controller::kinds_read(&shared, info) {
            add(kind, notes);
        }
        for owned in info.watched() {
            if registry.resolve(owned).is_none() {
                notes.push(format!(
                    "plugin {} names {} in group {:?}, which the cluster does not serve",
                    info.name, owned.kind, owned.group
                ));
            }
        }
    }
    for name in &options.kinds {
        let info = crate::cmd::release::named_kind(registry, name).ok_or_else(|| {
            RecordError::Usage(format!(
                "--kind {name}: the cluster serves no such kind (write Kind.group, e.g. Deployment.apps, or Kind for the core group)"
            ))
        })?;
        if is_secret(&info.resource) && !options.include_secrets {
            return Err(RecordError::Usage(format!(
                "--kind {name}: Secrets are recorded only with --include-secrets"
            )));
        }
        add(info.resource.clone(), notes);
    }
    if !options.include_secrets && kinds.iter().any(is_secret) {
        notes.push(format!(
            "plugin {} reads Secrets; they are not recorded (--include-secrets records them)",
            options.plugin.as_ref().map_or("", |p| p.name.as_str())
        ));
        kinds.retain(|k| !is_secret(k));
    }
    if kinds.is_empty() {
        return Err(RecordError::Usage(
            "nothing to record: name kinds with --kind or a plugin with --plugin".into(),
        ));
    }
    Ok(kinds)
}

fn is_secret(kind: &ResourceKind) -> bool {
    kind.group.is_empty() && kind.kind == "Secret"
}

/// What the recorder keeps of the objects it recorded.
pub(super) struct Slice {
    pub(super) kinds: Vec<ResourceKind>,
    pub(super) index: HashMap<(String, String, String), usize>,
    pub(super) namespaces: BTreeSet<String>,
    pub(super) selector: LabelSelector,
    pub(super) redactions: Vec<RedactPath>,
    /// The objects recorded and not deleted, by (kind, namespace, name).
    pub(super) held: BTreeSet<(usize, Option<String>, String)>,
}

impl Slice {
    pub(super) fn kind_index(&self, kind: &ResourceKind) -> Option<usize> {
        let key = (kind.group.clone(), kind.kind.clone(), kind.version.clone());
        self.index.get(&key).copied()
    }

    /// Whether `object` is in the slice: its namespace (a Namespace object:
    /// its name) is one asked for, and it matches the selector.
    pub(super) fn wants(&self, kind: &ResourceKind, object: &CachedObject) -> bool {
        let namespace = match object.namespace() {
            Some(ns) => Some(ns),
            None if kind.group.is_empty() && kind.kind == "Namespace" => Some(object.name()),
            None => None,
        };
        let in_namespaces =
            self.namespaces.is_empty() || namespace.is_none_or(|ns| self.namespaces.contains(ns));
        in_namespaces && self.selector.matches_labels(|k| object.label(k))
    }

    /// The change to record for an informer event, if any, updating what
    /// the slice holds.
    pub(super) fn change(&mut self, event: &KindEvent) -> Option<(usize, Change)> {
        let kind = self.kind_index(&event.kind)?;
        let object = &event.object;
        let key = (
            kind,
            object.namespace().map(str::to_string),
            object.name().to_string(),
        );
        let wanted = event.event_type != EventType::Deleted && self.wants(&event.kind, object);
        match (wanted, self.held.contains(&key)) {
            (true, true) => Some((kind, Change::Modified)),
            (true, false) => {
                self.held.insert(key);
                Some((kind, Change::Added))
            }
            (false, true) => {
                self.held.remove(&key);
                Some((kind, Change::Deleted))
            }
            (false, false) => None,
        }
    }

    /// The object as written: redacted.
    pub(super) fn written(&self, object: &CachedObject) -> Value {
        let mut value = object.parse();
        for path in &self.redactions {
            path.apply(&mut value);
        }
        value
    }
}

#[cfg(test)]
mod tests;
