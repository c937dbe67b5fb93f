//! Owned children and mapped watches: which of a plugin's objects an event
//! of another kind reconciles.
//!
//! An event of a kind the plugin owns (`PluginInfo::owns`) reconciles the
//! child's controller owner: the owner reference with `controller: true`,
//! if it names a kind the plugin subscribes to. An event of a mapped
//! watch's source kind reconciles the targets its rule picks from the
//! target kind's cache. Either way each target is queued as a `resync` of
//! its newest cached state, under the target's own key, so it coalesces
//! with the target's own events and a burst of child changes makes one
//! reconcile. Applied and deleted sources map alike: a deleted child
//! reconciles its owner, which recreates it.
//!
//! Only objects the plugin would be called for are queued: a subscription
//! covers the target (kind, namespaces, label selector) and the operator's
//! grant lets the plugin see both the target and the changed object. A
//! target that is not cached is skipped: its own event reconciles it when
//! it arrives.
//!
//! Where a rule looks for targets: in the changed object's namespace; in
//! every namespace if the changed object is cluster-scoped; among all
//! objects of a cluster-scoped target kind, whatever the source.
//!
//! # Cost
//!
//! An owner costs one cache lookup. A `label` rule costs one lookup (a scan
//! of the target kind's cache when the source is cluster-scoped and the
//! target namespaced). `field-ref` and `selector` rules scan the target
//! kind's objects in the source's namespace (a `selector` reads each
//! object's cached labels, a `field-ref` reads its text up to the field,
//! without building a tree): the informer cache is ordered
//! by namespace, so that is a range of the cache, and objects in other
//! namespaces cost nothing. The scan runs on the dispatch task, once per
//! event of the source kind, holding the target cache's read lock; its
//! numbers are in `host/benches/README.md` (`cargo bench -p kubewasm
//! --bench mapping`).

use std::sync::Arc;

use super::Controller;
use crate::cluster::informer::InformerRegistry;
use crate::cluster::object::{CachedObject, read};
use crate::contract::{
    GroupKind, KindRef, ParsedRule, ParsedSubscriptions, PluginInfo, ResourceKind,
    split_api_version,
};
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::Grant;

/// The host's cache as the router reads it: objects of a kind at exactly
/// its version.
pub trait Lookup {
    /// The cached object named `name` in `namespace` (`None` for
    /// cluster-scoped).
    fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>>;

    /// Calls `visit` with each cached object in `namespace`, or in every
    /// namespace with `None`.
    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    );
}

impl Lookup for InformerRegistry {
    fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        self.get_at(kind, namespace, name)
    }

    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    ) {
        self.visit_at(kind, namespace, visit);
    }
}

/// Why a target is reconciled, for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The changed object is its owned child.
    Owner,
    /// A mapped watch's rule picked it.
    Watch,
}

/// One object to reconcile because another changed.
#[derive(Clone, Debug)]
pub struct Target {
    pub kind: ResourceKind,
    pub object: Arc<CachedObject>,
    pub via: Via,
}

/// What routing needs to know of one plugin.
pub struct Router<'a> {
    pub info: &'a PluginInfo,
    pub parsed: &'a ParsedSubscriptions,
    pub grant: &'a Grant,
    /// The kinds (at versions) the plugin's informers watch for it: those
    /// its subscriptions cover, and its owned and watched kinds.
    pub kinds: &'a [ResourceKind],
}

impl Router<'_> {
    /// Whether events of `kind` may route anywhere for this plugin: it owns
    /// or watches the kind at this version. Cheap; checked before locking
    /// anything.
    pub fn routes(&self, kind: &ResourceKind) -> bool {
        let names = |r: &KindRef| {
            r.group == kind.group
                && r.kind == kind.kind
                && r.version.as_ref().is_none_or(|v| *v == kind.version)
        };
        self.info.watched().any(names) && self.kinds.contains(kind)
    }

    /// The plugin's objects that a change (or deletion) of `object` of
    /// `kind` reconciles: its controller owner if the plugin owns `kind`,
    /// and what its mapped watches from `kind` pick. Each at its newest
    /// cached state.
    pub fn targets(
        &self,
        cache: &dyn Lookup,
        kind: &ResourceKind,
        object: &CachedObject,
    ) -> Vec<Target> {
        let mut targets = Vec::new();
        if !self.routes(kind) {
            return targets;
        }
        let namespace = object.namespace().filter(|ns| !ns.is_empty());
        let name = object.name();
        if !self.grant.may_see(&kind.group, &kind.kind, namespace, name) {
            return targets;
        }
        if self.owns(kind) {
            targets.extend(self.owner(cache, object, namespace));
        }
        let group_kind = kind.group_kind();
        for watch in self.parsed.watches_of(&group_kind) {
            let source = &watch.watch.source;
            if source.version.as_ref().is_some_and(|v| *v != kind.version) {
                continue;
            }
            let Some(target_kind) = self.reconciled(&watch.watch.target, None) else {
                continue;
            };
            let mut add = |target: &Arc<CachedObject>| {
                if self.wanted(&target_kind, target) {
                    targets.push(Target {
                        kind: target_kind.clone(),
                        object: target.clone(),
                        via: Via::Watch,
                    });
                }
            };
            // Where to look: the source's namespace, every namespace for a
            // cluster-scoped source, all of a cluster-scoped target kind.
            let scope = namespace.filter(|_| target_kind.namespaced);
            match &watch.rule {
                ParsedRule::FieldRef(path) => cache.visit(&target_kind, scope, &mut |t| {
                    if field_names(t, path, name) {
                        add(t);
                    }
                }),
                ParsedRule::Label(key) => {
                    let Some(value) = object.label(key) else {
                        continue;
                    };
                    if scope.is_none() && target_kind.namespaced {
                        cache.visit(&target_kind, None, &mut |t| {
                            if t.name() == value {
                                add(t);
                            }
                        });
                    } else if let Some(target) = cache.get(&target_kind, scope, value) {
                        add(&target);
                    }
                }
                ParsedRule::Selector(selector) => cache.visit(&target_kind, scope, &mut |t| {
                    if selector.matches_labels(|k| t.label(k)) {
                        add(t);
                    }
                }),
            }
        }
        targets
    }

    /// Whether the plugin owns `kind` at this version.
    fn owns(&self, kind: &ResourceKind) -> bool {
        self.info.owns.iter().any(|r| {
            r.group == kind.group
                && r.kind == kind.kind
                && r.version.as_ref().is_none_or(|v| *v == kind.version)
        })
    }

    /// The cached controller owner of `child` (in `namespace`), if it is of
    /// a kind the plugin reconciles and the plugin wants it.
    fn owner(
        &self,
        cache: &dyn Lookup,
        child: &CachedObject,
        namespace: Option<&str>,
    ) -> Option<Target> {
        let reference = child.controller_owner()?;
        let api_version = reference.api_version;
        let kind = GroupKind::from_api_version(api_version, reference.kind);
        let name = reference.name;
        let owner_kind = self.reconciled(&kind, Some(split_api_version(api_version).1))?;
        // An owner is in its child's namespace, or cluster-scoped.
        let owner_namespace = namespace.filter(|_| owner_kind.namespaced);
        let owner = cache.get(&owner_kind, owner_namespace, name)?;
        self.wanted(&owner_kind, &owner).then_some(Target {
            kind: owner_kind,
            object: owner,
            via: Via::Owner,
        })
    }

    /// The kind (at a version the plugin watches, `version` if it can)
    /// through which the plugin reconciles objects of `kind`.
    fn reconciled(&self, kind: &GroupKind, version: Option<&str>) -> Option<ResourceKind> {
        let mut candidates = self.kinds.iter().filter(|k| {
            k.group == kind.group
                && k.kind == kind.kind
                && self.info.subscriptions.iter().any(|s| s.matches_kind(k))
        });
        let first = candidates.next()?;
        let preferred = std::iter::once(first)
            .chain(candidates)
            .find(|k| Some(k.version.as_str()) == version);
        Some(preferred.unwrap_or(first).clone())
    }

    /// Whether the plugin is called for `object` of `kind` (see
    /// [`super::dispatch::wanted`]).
    fn wanted(&self, kind: &ResourceKind, object: &CachedObject) -> bool {
        super::dispatch::wanted(self.parsed, self.grant, kind, object)
    }
}

/// Whether `object`'s field at `path` is `name`, or a list of strings that
/// contains it. Read from the object's text; only the members on the way
/// are looked at.
pub fn field_names(object: &CachedObject, path: &[String], name: &str) -> bool {
    read::field_names(object.json(), path, name)
}

impl Controller {
    /// The objects of `loaded` that a change of `object` of `kind`
    /// reconciles through its owned kinds and mapped watches.
    pub(super) fn mapped(
        &self,
        loaded: &LoadedPlugin,
        kind: &ResourceKind,
        object: &CachedObject,
    ) -> Vec<Target> {
        let info = loaded.plugin.info();
        if !info
            .watched()
            .any(|r| r.group == kind.group && r.kind == kind.kind)
        {
            return Vec::new();
        }
        // Copied out, so no lock of the controller's is held while the
        // informers' caches are read.
        let kinds = self
            .subscribed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&loaded.id)
            .cloned()
            .unwrap_or_default();
        let router = Router {
            info,
            parsed: loaded.plugin.subscriptions(),
            grant: &loaded.grant,
            kinds: &kinds,
        };
        router.targets(&self.informers, kind, object)
    }
}

#[cfg(test)]
mod tests;
