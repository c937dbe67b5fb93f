//! The `probe` plugin's vocabulary (`plugins/probe`): the label that
//! chooses what it does with an object, the annotations it writes, and
//! ConfigMaps for it to reconcile.
//!
//! ```no_run
//! use kubewasm_e2e::{TestNamespace, probe};
//!
//! # async fn run() -> anyhow::Result<()> {
//! let ns = TestNamespace::create("probe").await?;
//! probe::create_configmap(&ns.api(), "watched", "mark", &[("n", "0")]).await;
//! # Ok(())
//! # }
//! ```

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;

/// The label that chooses the probe's behaviour with an object: `mark`,
/// `trap`, `spin`, `slow`, `tombstone`, ….
pub const BEHAVE: &str = "probe.kubewasm.dev/behave";
/// The annotation the probe marks an object with (its settings' `mark`,
/// `seen` by default).
pub const MARK: &str = "probe.kubewasm.dev/mark";
/// The annotation the probe copies the object's `data.n` into.
pub const ECHO: &str = "probe.kubewasm.dev/echo";

/// A ConfigMap `name` the probe treats as `behave`, holding `data`.
pub fn configmap(name: &str, behave: &str, data: &[(&str, &str)]) -> ConfigMap {
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {BEHAVE: behave}},
    }))
    .expect("a ConfigMap");
    if !data.is_empty() {
        cm.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    cm
}

/// Creates [`configmap`] with `configmaps`; panics naming it if the API
/// server refuses.
pub async fn create_configmap(
    configmaps: &Api<ConfigMap>,
    name: &str,
    behave: &str,
    data: &[(&str, &str)],
) {
    configmaps
        .create(&PostParams::default(), &configmap(name, behave, data))
        .await
        .unwrap_or_else(|e| panic!("failed to create ConfigMap {name}: {e}"));
}

/// The annotation naming the object (`namespace/name`) a `read` ConfigMap
/// has the probe read from the cache.
pub const READ: &str = "probe.kubewasm.dev/read";
/// What the probe found: `found` or `missing`.
pub const READ_RESULT: &str = "probe.kubewasm.dev/read-result";

/// Creates a `read` ConfigMap `name`: the probe reads `namespace/target`
/// from the cache and records what it found, whatever its settings.
pub async fn create_reader(configmaps: &Api<ConfigMap>, namespace: &str, name: &str, target: &str) {
    let mut cm = configmap(name, "read", &[]);
    cm.metadata.annotations = Some([(READ.to_string(), format!("{namespace}/{target}"))].into());
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap_or_else(|e| panic!("failed to create ConfigMap {name}: {e}"));
}

/// The annotation `key` of `cm`.
pub fn annotation(cm: &ConfigMap, key: &str) -> Option<String> {
    cm.metadata.annotations.as_ref()?.get(key).cloned()
}
