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
