use super::*;

/// The CRDs `deploy/` ships are what the types generate.
#[test]
fn crds_in_deploy_are_generated() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/crds/kubewasm.dev.yaml"
    );
    let shipped = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        shipped == crds_yaml(),
        "deploy/crds/kubewasm.dev.yaml is not what the types generate; regenerate it with\n  \
         cargo run -q -p kubewasm -- crds > deploy/crds/kubewasm.dev.yaml"
    );
}

#[test]
fn the_crds_carry_the_columns_and_rules_users_see() {
    let crd = serde_json::to_value(ClusterPlugin::crd()).unwrap();
    let version = &crd["spec"]["versions"][0];
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Ready", "Version", "Digest", "Age", "Reason"]);
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(
        serde_json::to_value(Plugin::crd()).unwrap()["spec"]["scope"],
        "Namespaced"
    );
    let text = crd.to_string();
    for message in [
        "set exactly one of module.oci, module.configMap, module.secret",
        "reference must be registry/repository with an explicit :tag or @sha256:digest",
        "pollInterval must be at least 10s",
    ] {
        assert!(text.contains(message), "{message}");
    }
    let settings =
        &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["settings"];
    assert_eq!(
        settings["x-kubernetes-preserve-unknown-fields"], true,
        "{settings}"
    );
    assert!(version["subresources"]["status"].is_object());
}

#[test]
fn a_cluster_plugin_reads_as_operators_write_it() {
    let yaml = r#"
apiVersion: kubewasm.dev/v1alpha1
kind: ClusterPlugin
metadata: {name: labeller}
spec:
  module:
    oci: {reference: "registry.example.com/plugins/labeller:1.2.0", pollInterval: 5m}
  settings: {labels: [team], nested: {deep: 1}}
  grants:
    write: [{kind: ConfigMap}]
    read: [{group: "", kind: Namespace}]
"#;
    let plugin: ClusterPlugin = serde_saphyr::from_str(yaml).unwrap();
    let oci = plugin.spec.module.oci.as_ref().unwrap();
    assert_eq!(oci.reference, "registry.example.com/plugins/labeller:1.2.0");
    assert_eq!(oci.poll_interval.as_deref(), Some("5m"));
    assert_eq!(
        plugin.spec.settings,
        Some(serde_json::json!({"labels": ["team"], "nested": {"deep": 1}}))
    );
    assert_eq!(plugin.spec.grants.write[0].group, "");
    assert!(!plugin.spec.dry_run && !plugin.spec.suspend);
    assert!(plugin.spec.namespaces.is_empty());
}

#[test]
fn a_shadow_reads_as_operators_write_it_and_defaults_to_the_serving_settings() {
    let yaml = r#"
apiVersion: kubewasm.dev/v1alpha1
kind: ClusterPlugin
metadata: {name: labeller}
spec:
  module: {configMap: {name: labeller, key: v1.wasm}}
  settings: {mark: v1}
  grants: {write: [{kind: ConfigMap}], read: [{kind: ConfigMap}]}
  shadow:
    module: {oci: {reference: "registry.example.com/plugins/labeller:2.0.0"}}
    promoteAfter: 100
"#;
    let plugin: ClusterPlugin = serde_saphyr::from_str(yaml).unwrap();
    let shadow = plugin.spec.shadow.as_ref().unwrap();
    assert_eq!(
        shadow.module.oci.as_ref().unwrap().reference,
        "registry.example.com/plugins/labeller:2.0.0"
    );
    assert_eq!(shadow.settings, None, "absent: the serving settings");
    assert_eq!(shadow.promote_after, Some(100));
    let without: ClusterPluginSpec = serde_json::from_value(serde_json::json!({
        "module": {"configMap": {"name": "m", "key": "k"}},
        "grants": {"write": [], "read": []},
    }))
    .unwrap();
    assert_eq!(without.shadow, None);
    assert!(
        !serde_json::to_string(&without).unwrap().contains("shadow"),
        "no shadow is written back as none"
    );
}

#[test]
fn the_shadow_schema_checks_its_module_and_threshold() {
    for crd in [ClusterPlugin::crd(), Plugin::crd()] {
        let crd = serde_json::to_value(crd).unwrap();
        let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let shadow = &spec["properties"]["shadow"];
        assert_eq!(
            shadow["required"],
            serde_json::json!(["module"]),
            "{shadow}"
        );
        assert_eq!(
            shadow["properties"]["module"], spec["properties"]["module"],
            "the same source, with the same rules, as spec.module"
        );
        assert_eq!(shadow["properties"]["promoteAfter"]["minimum"], 1.0);
        assert_eq!(
            shadow["properties"]["settings"]["x-kubernetes-preserve-unknown-fields"],
            true
        );
        let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
            ["properties"]["shadow"];
        assert_eq!(status["properties"]["recentDifferences"]["maxItems"], 5);
    }
}
