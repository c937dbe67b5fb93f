use std::sync::Arc;

use serde_json::{Value, json};

use super::{Lookup, Router, Via, field_names};
use crate::cluster::object::CachedObject;
use crate::contract::{
    KindRef, MapRule, MappedWatch, ParsedSubscriptions, PluginInfo, ResourceKind, Subscription,
};
use crate::plugins::grant::Grant;

const GROUP: &str = "demo.kubewasm.dev";

fn kind(group: &str, version: &str, kind: &str, namespaced: bool) -> ResourceKind {
    ResourceKind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
        namespaced,
    }
}

fn website_kind() -> ResourceKind {
    kind(GROUP, "v1alpha1", "Website", true)
}

fn tenant_kind() -> ResourceKind {
    kind(GROUP, "v1", "Tenant", false)
}

fn config_map_kind() -> ResourceKind {
    kind("", "v1", "ConfigMap", true)
}

fn namespace_kind() -> ResourceKind {
    kind("", "v1", "Namespace", false)
}

fn subscription(kind: &ResourceKind) -> Subscription {
    Subscription {
        group: kind.group.clone(),
        version: kind.version.clone(),
        kind: kind.kind.clone(),
        namespaces: vec![],
        label_selector: None,
    }
}

fn kind_ref(kind: &ResourceKind, version: Option<&str>) -> KindRef {
    KindRef {
        group: kind.group.clone(),
        kind: kind.kind.clone(),
        version: version.map(str::to_string),
    }
}

fn watch(source: &ResourceKind, target: &ResourceKind, rule: MapRule) -> MappedWatch {
    MappedWatch {
        source: kind_ref(source, None),
        target: target.group_kind(),
        rule,
    }
}

/// A cache of objects of kinds at versions.
#[derive(Default)]
struct Cache {
    objects: Vec<(ResourceKind, Arc<CachedObject>)>,
}

impl Cache {
    fn with(mut self, kind: &ResourceKind, object: Value) -> Self {
        self.objects
            .push((kind.clone(), Arc::new(CachedObject::from_value(&object))));
        self
    }

    fn of<'a>(
        &'a self,
        kind: &'a ResourceKind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<CachedObject>> {
        self.objects
            .iter()
            .filter(move |(k, o)| k == kind && namespace.is_none_or(|n| o.namespace() == Some(n)))
            .map(|(_, o)| o)
    }
}

impl Lookup for Cache {
    fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        self.of(kind, None)
            .find(|o| o.namespace() == namespace && o.name() == name)
            .cloned()
    }

    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    ) {
        self.of(kind, namespace).for_each(visit);
    }
}

/// A plugin: what it declares, its parsed subscriptions, its grant and the
/// kinds its informers watch.
struct Plugin {
    info: PluginInfo,
    parsed: ParsedSubscriptions,
    grant: Grant,
    kinds: Vec<ResourceKind>,
}

impl Plugin {
    fn new(info: PluginInfo) -> Self {
        let parsed = info.validated().expect("a valid description");
        Self {
            info,
            parsed,
            grant: Grant::unconfined(),
            kinds: vec![
                website_kind(),
                tenant_kind(),
                config_map_kind(),
                namespace_kind(),
            ],
        }
    }

    fn confined(mut self, grant: Grant) -> Self {
        self.grant = grant;
        self
    }

    /// `namespace/name` of each target `object` of `kind` reconciles, and
    /// the kind and route of the first.
    fn targets(&self, cache: &Cache, kind: &ResourceKind, object: &Value) -> Vec<String> {
        let router = Router {
            info: &self.info,
            parsed: &self.parsed,
            grant: &self.grant,
            kinds: &self.kinds,
        };
        let mut found: Vec<String> = router
            .targets(cache, kind, &CachedObject::from_value(object))
            .iter()
            .map(|t| {
                let o = &t.object;
                let ns = o.namespace().unwrap_or_default();
                format!("{:?} {} {ns}/{}", t.via, t.kind.kind, o.name())
            })
            .collect();
        found.sort();
        found
    }
}

/// A plugin reconciling Websites and Tenants, owning ConfigMaps (v1).
fn owner_plugin() -> Plugin {
    Plugin::new(PluginInfo {
        name: "website".into(),
        version: "1".into(),
        subscriptions: vec![subscription(&website_kind()), subscription(&tenant_kind())],
        owns: vec![kind_ref(&config_map_kind(), Some("v1"))],
        ..PluginInfo::default()
    })
}

/// A plugin reconciling Websites and Tenants through one mapped watch.
fn mapping_plugin(source: &ResourceKind, target: &ResourceKind, rule: MapRule) -> Plugin {
    Plugin::new(PluginInfo {
        name: "website".into(),
        version: "1".into(),
        subscriptions: vec![subscription(&website_kind()), subscription(&tenant_kind())],
        watches: vec![watch(source, target, rule)],
        ..PluginInfo::default()
    })
}

fn website(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
           "metadata": {"namespace": namespace, "name": name, "uid": format!("uid-{name}")},
           "spec": spec})
}

fn owner_ref(api_version: &str, kind: &str, name: &str, controller: Option<bool>) -> Value {
    let mut reference = json!({"apiVersion": api_version, "kind": kind, "name": name, "uid": format!("uid-{name}")});
    if let Some(controller) = controller {
        reference["controller"] = json!(controller);
    }
    reference
}

fn config_map(namespace: &str, name: &str, owners: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"namespace": namespace, "name": name, "ownerReferences": owners},
           "data": {"content": "text"}})
}

fn websites() -> Cache {
    Cache::default()
        .with(&website_kind(), website("web", "blog", json!({})))
        .with(&website_kind(), website("other", "blog", json!({})))
}

mod owners;
mod rules;
