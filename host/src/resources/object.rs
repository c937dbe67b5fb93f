//! A `ClusterPlugin` or a namespaced `Plugin` as the resource source
//! follows it: one shape for both, with what differs between the kinds
//! made explicit (where the module is read, whom writes are sent as, where
//! the plugin may act, where its status goes).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Resource, ResourceExt};

use crate::cluster::client::ServiceAccount;
use crate::plugins::grant::Grant;
use crate::plugins::set::Origin;
use crate::resources::source::REQUESTED_AT;
use crate::resources::{ClusterPlugin, Grants, ModuleSource, Plugin, PluginStatus, ShadowSpec};

/// What the operator asked for, whichever kind asked.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub module: ModuleSource,
    pub settings: Option<serde_json::Value>,
    /// Empty: every namespace (a ClusterPlugin without `namespaces`).
    pub namespaces: Vec<String>,
    pub grants: Grants,
    /// Whom writes (and module reads) are made as; `None`: the host.
    pub account: Option<ServiceAccount>,
    pub dry_run: bool,
    pub suspend: bool,
    pub shadow: Option<ShadowSpec>,
}

impl Spec {
    /// Where the plugin may act.
    pub fn grant(&self) -> Grant {
        if self.namespaces.is_empty() {
            Grant::unconfined()
        } else {
            Grant::namespaces(self.namespaces.iter().cloned())
        }
    }
}

/// One plugin resource.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginObject {
    pub origin: Origin,
    pub spec: Spec,
    pub generation: Option<i64>,
    /// The [`REQUESTED_AT`] annotation.
    pub requested_at: Option<String>,
    pub status: Option<PluginStatus>,
    /// What Events about it refer to.
    pub reference: ObjectReference,
}

impl PluginObject {
    /// The namespace of a `Plugin`; `None` for a `ClusterPlugin`.
    pub fn namespace(&self) -> Option<&str> {
        match &self.origin {
            Origin::Plugin { namespace, .. } => Some(namespace),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match &self.origin {
            Origin::Plugin { name, .. } | Origin::ClusterPlugin(name) => name,
            Origin::File(_) => "",
        }
    }
}

impl From<ClusterPlugin> for PluginObject {
    fn from(object: ClusterPlugin) -> Self {
        let reference = object.object_ref(&());
        Self {
            origin: Origin::ClusterPlugin(object.name_any()),
            generation: object.metadata.generation,
            requested_at: object.annotations().get(REQUESTED_AT).cloned(),
            status: object.status,
            reference,
            spec: Spec {
                module: object.spec.module,
                settings: object.spec.settings,
                namespaces: object.spec.namespaces,
                grants: object.spec.grants,
                account: None,
                dry_run: object.spec.dry_run,
                suspend: object.spec.suspend,
                shadow: object.spec.shadow,
            },
        }
    }
}

impl From<Plugin> for PluginObject {
    /// A Plugin acts only in its own namespace, as its ServiceAccount.
    fn from(object: Plugin) -> Self {
        let reference = object.object_ref(&());
        let namespace = object.namespace().unwrap_or_default();
        Self {
            origin: Origin::Plugin {
                namespace: namespace.clone(),
                name: object.name_any(),
            },
            generation: object.metadata.generation,
            requested_at: object.annotations().get(REQUESTED_AT).cloned(),
            status: object.status,
            reference,
            spec: Spec {
                module: object.spec.module,
                settings: object.spec.settings,
                namespaces: vec![namespace.clone()],
                grants: object.spec.grants,
                account: Some(ServiceAccount::new(
                    namespace,
                    object.spec.service_account_name,
                )),
                dry_run: object.spec.dry_run,
                suspend: object.spec.suspend,
                shadow: object.spec.shadow,
            },
        }
    }
}
