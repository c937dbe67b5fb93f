//! A child's change reconciles its controller owner.

use super::*;
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
    let child = crate::cluster::object::CachedObject::from_value(&child);
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
