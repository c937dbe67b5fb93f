use std::sync::Arc;

use serde_json::{Value, json};

use super::{Lookup, Router, Via, field_names};
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
    objects: Vec<(ResourceKind, Arc<Value>)>,
}

impl Cache {
    fn with(mut self, kind: &ResourceKind, object: Value) -> Self {
        self.objects.push((kind.clone(), Arc::new(object)));
        self
    }

    fn of<'a>(
        &'a self,
        kind: &'a ResourceKind,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = &'a Arc<Value>> {
        self.objects
            .iter()
            .filter(move |(k, o)| {
                k == kind
                    && namespace.is_none_or(|n| o["metadata"]["namespace"].as_str() == Some(n))
            })
            .map(|(_, o)| o)
    }
}

impl Lookup for Cache {
    fn get(&self, kind: &ResourceKind, namespace: Option<&str>, name: &str) -> Option<Arc<Value>> {
        self.of(kind, None)
            .find(|o| {
                o["metadata"]["namespace"].as_str() == namespace
                    && o["metadata"]["name"].as_str() == Some(name)
            })
            .cloned()
    }

    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<Value>),
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
            .targets(cache, kind, object)
            .iter()
            .map(|t| {
                let metadata = &t.object["metadata"];
                format!(
                    "{:?} {} {}/{}",
                    t.via,
                    t.kind.kind,
                    metadata["namespace"].as_str().unwrap_or_default(),
                    metadata["name"].as_str().unwrap_or_default()
                )
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

#[test]
fn a_child_reconciles_its_controller_owner() {
    let plugin = owner_plugin();
    let child = config_map(
        "web",
        "blog",
        vec![
            owner_ref("v1", "ConfigMap", "unrelated", None),
            owner_ref("demo.kubewasm.dev/v1alpha1", "Website", "blog", Some(true)),
        ],
    );
    assert_eq!(
        plugin.targets(&websites(), &config_map_kind(), &child),
        ["Owner Website web/blog"]
    );
    // The owner's newest cached state is what is queued, whatever the
    // child says about it.
    let router = Router {
        info: &plugin.info,
        parsed: &plugin.parsed,
        grant: &plugin.grant,
        kinds: &plugin.kinds,
    };
    let cache = websites();
    let targets = router.targets(&cache, &config_map_kind(), &child);
    assert_eq!(targets[0].via, Via::Owner);
    assert_eq!(targets[0].kind, website_kind());
    assert!(Arc::ptr_eq(
        &targets[0].object,
        &cache.get(&website_kind(), Some("web"), "blog").unwrap()
    ));
}

#[test]
fn an_owner_at_another_version_is_reconciled_at_the_subscribed_one() {
    let plugin = owner_plugin();
    let child = config_map(
        "web",
        "blog",
        vec![owner_ref(
            "demo.kubewasm.dev/v1",
            "Website",
            "blog",
            Some(true),
        )],
    );
    assert_eq!(
        plugin.targets(&websites(), &config_map_kind(), &child),
        ["Owner Website web/blog"]
    );
}

#[test]
fn an_owner_not_cached_is_left_to_its_own_event() {
    let plugin = owner_plugin();
    let child = config_map(
        "web",
        "gone",
        vec![owner_ref(
            "demo.kubewasm.dev/v1alpha1",
            "Website",
            "gone",
            Some(true),
        )],
    );
    assert!(
        plugin
            .targets(&websites(), &config_map_kind(), &child)
            .is_empty()
    );
}

#[test]
fn only_the_controller_reference_counts() {
    let plugin = owner_plugin();
    for controller in [None, Some(false)] {
        let child = config_map(
            "web",
            "blog",
            vec![owner_ref(
                "demo.kubewasm.dev/v1alpha1",
                "Website",
                "blog",
                controller,
            )],
        );
        assert!(
            plugin
                .targets(&websites(), &config_map_kind(), &child)
                .is_empty(),
            "controller: {controller:?}"
        );
    }
}

#[test]
fn an_owner_of_a_kind_the_plugin_does_not_reconcile_is_ignored() {
    let plugin = owner_plugin();
    let cache = websites().with(
        &kind("apps", "v1", "Deployment", true),
        json!({"metadata": {"namespace": "web", "name": "blog"}}),
    );
    for (api_version, kind) in [
        ("apps/v1", "Deployment"),
        ("other.dev/v1alpha1", "Website"),
        ("v1alpha1", "Website"),
    ] {
        let child = config_map(
            "web",
            "blog",
            vec![owner_ref(api_version, kind, "blog", Some(true))],
        );
        assert!(
            plugin
                .targets(&cache, &config_map_kind(), &child)
                .is_empty(),
            "{api_version} {kind}"
        );
    }
}

#[test]
fn only_owned_kinds_at_the_owned_version_route() {
    let plugin = owner_plugin();
    let reference = owner_ref("demo.kubewasm.dev/v1alpha1", "Website", "blog", Some(true));
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
                        "metadata": {"namespace": "web", "name": "blog", "ownerReferences": [reference.clone()]}});
    let secret_kind = kind("", "v1", "Secret", true);
    assert!(
        plugin
            .targets(&websites(), &secret_kind, &secret)
            .is_empty()
    );
    // ConfigMap at a version the plugin does not own it at.
    let child = config_map("web", "blog", vec![reference]);
    let v2 = kind("", "v2", "ConfigMap", true);
    assert!(plugin.targets(&websites(), &v2, &child).is_empty());
}

#[test]
fn the_grant_and_the_subscription_decide_which_owners_are_reconciled() {
    let child = |ns: &str| {
        config_map(
            ns,
            "blog",
            vec![owner_ref(
                "demo.kubewasm.dev/v1alpha1",
                "Website",
                "blog",
                Some(true),
            )],
        )
    };
    let confined = owner_plugin().confined(Grant::namespaces(["other"]));
    assert!(
        confined
            .targets(&websites(), &config_map_kind(), &child("web"))
            .is_empty()
    );
    assert_eq!(
        confined.targets(&websites(), &config_map_kind(), &child("other")),
        ["Owner Website other/blog"]
    );
    // A subscription confined to a namespace, or to a label, covers only
    // those owners.
    let mut info = owner_plugin().info;
    info.subscriptions[0].namespaces = vec!["other".into()];
    let plugin = Plugin::new(info.clone());
    assert!(
        plugin
            .targets(&websites(), &config_map_kind(), &child("web"))
            .is_empty()
    );
    info.subscriptions[0].namespaces.clear();
    info.subscriptions[0].label_selector = Some("tier=web".into());
    let plugin = Plugin::new(info);
    assert!(
        plugin
            .targets(&websites(), &config_map_kind(), &child("web"))
            .is_empty()
    );
}

#[test]
fn a_cluster_scoped_owner_is_found_without_a_namespace() {
    let plugin = owner_plugin();
    let cache = Cache::default().with(
        &tenant_kind(),
        json!({"apiVersion": "demo.kubewasm.dev/v1", "kind": "Tenant", "metadata": {"name": "acme"}}),
    );
    let child = config_map(
        "web",
        "quota",
        vec![owner_ref(
            "demo.kubewasm.dev/v1",
            "Tenant",
            "acme",
            Some(true),
        )],
    );
    assert_eq!(
        plugin.targets(&cache, &config_map_kind(), &child),
        ["Owner Tenant /acme"]
    );
}

fn field_ref(path: &str) -> MapRule {
    MapRule::FieldRef(path.into())
}

fn text(namespace: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"namespace": namespace, "name": name, "labels": labels}})
}

#[test]
fn a_field_ref_reconciles_every_target_naming_the_source_in_its_namespace() {
    let plugin = mapping_plugin(
        &config_map_kind(),
        &website_kind(),
        field_ref("spec.configMapRef.name"),
    );
    let cache = Cache::default()
        .with(
            &website_kind(),
            website("web", "guide", json!({"configMapRef": {"name": "text"}})),
        )
        .with(
            &website_kind(),
            website("web", "manual", json!({"configMapRef": {"name": "text"}})),
        )
        .with(
            &website_kind(),
            website("web", "blog", json!({"configMapRef": {"name": "other"}})),
        )
        .with(
            &website_kind(),
            website("web", "plain", json!({"configMapRef": "text"})),
        )
        .with(
            &website_kind(),
            website("web", "number", json!({"configMapRef": {"name": 7}})),
        )
        .with(
            &website_kind(),
            website("else", "guide", json!({"configMapRef": {"name": "text"}})),
        );
    assert_eq!(
        plugin.targets(&cache, &config_map_kind(), &text("web", "text", json!({}))),
        ["Watch Website web/guide", "Watch Website web/manual"]
    );
    assert!(
        plugin
            .targets(
                &cache,
                &config_map_kind(),
                &text("web", "nobody", json!({}))
            )
            .is_empty()
    );
}

#[test]
fn a_field_ref_matches_a_list_of_names() {
    let plugin = mapping_plugin(
        &config_map_kind(),
        &website_kind(),
        field_ref("spec.sources"),
    );
    let cache = Cache::default()
        .with(
            &website_kind(),
            website("web", "both", json!({"sources": ["a", "text"]})),
        )
        .with(
            &website_kind(),
            website("web", "one", json!({"sources": ["a"]})),
        )
        .with(
            &website_kind(),
            website("web", "objects", json!({"sources": [{"name": "text"}]})),
        );
    assert_eq!(
        plugin.targets(&cache, &config_map_kind(), &text("web", "text", json!({}))),
        ["Watch Website web/both"]
    );
}

#[test]
fn a_cluster_scoped_source_maps_into_every_namespace() {
    let plugin = mapping_plugin(&namespace_kind(), &website_kind(), field_ref("spec.home"));
    let cache = Cache::default()
        .with(
            &website_kind(),
            website("a", "x", json!({"home": "shared"})),
        )
        .with(
            &website_kind(),
            website("b", "y", json!({"home": "shared"})),
        )
        .with(&website_kind(), website("c", "z", json!({"home": "c"})));
    let namespace =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shared"}});
    assert_eq!(
        plugin.targets(&cache, &namespace_kind(), &namespace),
        ["Watch Website a/x", "Watch Website b/y"]
    );
    // A confined plugin reconciles only what it may see, and is not woken
    // by a cluster-scoped object it may not see.
    let confined = mapping_plugin(&namespace_kind(), &website_kind(), field_ref("spec.home"))
        .confined(Grant::namespaces(["a", "shared"]));
    assert_eq!(
        confined.targets(&cache, &namespace_kind(), &namespace),
        ["Watch Website a/x"]
    );
    let hidden = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "hidden"}});
    let cache = cache.with(
        &website_kind(),
        website("a", "w", json!({"home": "hidden"})),
    );
    assert!(
        confined
            .targets(&cache, &namespace_kind(), &hidden)
            .is_empty()
    );
}

#[test]
fn a_namespaced_source_maps_to_cluster_scoped_targets() {
    let plugin = mapping_plugin(&config_map_kind(), &tenant_kind(), field_ref("spec.quota"));
    let tenant = |name: &str, quota: &str| {
        json!({"apiVersion": "demo.kubewasm.dev/v1", "kind": "Tenant",
               "metadata": {"name": name}, "spec": {"quota": quota}})
    };
    let cache = Cache::default()
        .with(&tenant_kind(), tenant("acme", "limits"))
        .with(&tenant_kind(), tenant("initech", "other"));
    assert_eq!(
        plugin.targets(
            &cache,
            &config_map_kind(),
            &text("web", "limits", json!({}))
        ),
        ["Watch Tenant /acme"]
    );
}

#[test]
fn a_label_names_the_target_in_the_sources_namespace() {
    let key = "app.kubernetes.io/instance";
    let plugin = mapping_plugin(
        &config_map_kind(),
        &website_kind(),
        MapRule::Label(key.into()),
    );
    let cache = websites();
    assert_eq!(
        plugin.targets(
            &cache,
            &config_map_kind(),
            &text("web", "x", json!({key: "blog"}))
        ),
        ["Watch Website web/blog"]
    );
    assert!(
        plugin
            .targets(
                &cache,
                &config_map_kind(),
                &text("web", "x", json!({key: "none"}))
            )
            .is_empty()
    );
    assert!(
        plugin
            .targets(
                &cache,
                &config_map_kind(),
                &text("web", "x", json!({"app": "blog"}))
            )
            .is_empty()
    );
    // From a cluster-scoped source: the target of that name in every
    // namespace.
    let plugin = mapping_plugin(
        &namespace_kind(),
        &website_kind(),
        MapRule::Label(key.into()),
    );
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "ns", "labels": {key: "blog"}}});
    assert_eq!(
        plugin.targets(&cache, &namespace_kind(), &namespace),
        ["Watch Website other/blog", "Watch Website web/blog"]
    );
}

#[test]
fn a_selector_reconciles_every_matching_target_in_the_namespace() {
    let plugin = mapping_plugin(
        &config_map_kind(),
        &website_kind(),
        MapRule::Selector("tier=web,env!=test".into()),
    );
    let labelled = |ns: &str, name: &str, labels: Value| {
        let mut site = website(ns, name, json!({}));
        site["metadata"]["labels"] = labels;
        site
    };
    let cache = Cache::default()
        .with(
            &website_kind(),
            labelled("web", "a", json!({"tier": "web"})),
        )
        .with(
            &website_kind(),
            labelled("web", "b", json!({"tier": "web", "env": "test"})),
        )
        .with(&website_kind(), labelled("web", "c", json!({"tier": "db"})))
        .with(
            &website_kind(),
            labelled("else", "d", json!({"tier": "web"})),
        );
    assert_eq!(
        plugin.targets(
            &cache,
            &config_map_kind(),
            &text("web", "anything", json!({}))
        ),
        ["Watch Website web/a"]
    );
}

#[test]
fn a_watch_follows_its_source_version_and_kind() {
    let mut info = mapping_plugin(&config_map_kind(), &website_kind(), field_ref("spec.ref")).info;
    info.watches[0].source.version = Some("v1".into());
    let plugin = Plugin::new(info);
    let cache = Cache::default().with(&website_kind(), website("web", "a", json!({"ref": "text"})));
    let source = text("web", "text", json!({}));
    assert_eq!(
        plugin.targets(&cache, &config_map_kind(), &source),
        ["Watch Website web/a"]
    );
    assert!(
        plugin
            .targets(&cache, &kind("", "v2", "ConfigMap", true), &source)
            .is_empty()
    );
    assert!(
        plugin
            .targets(&cache, &kind("", "v1", "Secret", true), &source)
            .is_empty()
    );
}

#[test]
fn field_paths_walk_objects_only() {
    let object = json!({"spec": {"ref": {"name": "a"}, "names": ["a", 1, "b"], "n": 1}});
    let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
    assert!(field_names(&object, &path("spec.ref.name"), "a"));
    assert!(field_names(&object, &path("spec.names"), "b"));
    assert!(!field_names(&object, &path("spec.names"), "1"));
    assert!(!field_names(&object, &path("spec.n"), "1"));
    assert!(!field_names(&object, &path("spec.ref"), "a"));
    assert!(!field_names(&object, &path("spec.missing.name"), "a"));
    assert!(!field_names(&object, &path("spec.names.0"), "a"));
}
