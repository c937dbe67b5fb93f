//! Mapped watches: field references, labels and selectors.

use super::*;
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
    let object = crate::cluster::object::CachedObject::from_value(&object);
    let path = |p: &str| p.split('.').map(str::to_string).collect::<Vec<_>>();
    assert!(field_names(&object, &path("spec.ref.name"), "a"));
    assert!(field_names(&object, &path("spec.names"), "b"));
    assert!(!field_names(&object, &path("spec.names"), "1"));
    assert!(!field_names(&object, &path("spec.n"), "1"));
    assert!(!field_names(&object, &path("spec.ref"), "a"));
    assert!(!field_names(&object, &path("spec.missing.name"), "a"));
    assert!(!field_names(&object, &path("spec.names.0"), "a"));
}
