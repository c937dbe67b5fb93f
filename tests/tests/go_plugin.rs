//! The Go example plugin (`plugins/go/namespace-quota-labeller`, built with
//! Go's wasip1 port and `kubewasm componentize` by `plugins/build.sh`) in
//! `kubewasm run` against the real control plane: what its user sees is the
//! quota tier label on the Namespaces its settings name, written by the
//! plugin's field manager, put back when someone changes it, and no label
//! on a Namespace no rule names.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams};
use kubewasm_e2e::host::Host;
use kubewasm_e2e::{TestNamespace, field_managers};
use serde_json::json;

/// Generous: the first load compiles a 4 MB component on a busy machine.
const WAIT: Duration = Duration::from_secs(120);
const TIER: &str = "kubewasm.dev/quota-tier";

fn tier(ns: &Namespace) -> Option<String> {
    ns.metadata.labels.as_ref()?.get(TIER).cloned()
}

#[tokio::test]
async fn go_labeller_assigns_and_restores_quota_tiers() {
    let gold = TestNamespace::create("quota-gold").await.unwrap();
    let silver = TestNamespace::create("quota-silver").await.unwrap();
    let untiered = TestNamespace::create("quota-none").await.unwrap();
    let namespaces: Api<Namespace> = Api::all(gold.client().clone());
    // Only this test's Namespaces get a tier: other tests share the cluster.
    let settings = json!({
        "rules": [
            {"tier": "gold", "namespaces": [gold.name()]},
            {"tier": "silver", "namespaces": [silver.name()]},
        ],
        "defaultTier": "",
    });
    let host = Host::start(&gold, &[("namespace-quota-labeller", Some(settings))], &[]);

    for (ns, want) in [(&gold, "gold"), (&silver, "silver")] {
        let labelled = host
            .eventually(WAIT, || async {
                let found = namespaces.get(ns.name()).await?;
                tier(&found).ok_or_else(|| anyhow::anyhow!("no tier on {} yet", ns.name()))
            })
            .await;
        assert_eq!(labelled, want, "{}", ns.name());
    }
    let found = namespaces.get(gold.name()).await.unwrap();
    let managers = field_managers(&found.metadata);
    assert!(
        managers.contains(&"kubewasm/namespace-quota-labeller".to_string()),
        "{managers:?}"
    );

    // Someone downgrades the gold Namespace by hand: the next reconcile of
    // that change puts the tier from the settings back (the apply is forced).
    namespaces
        .patch(
            gold.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {TIER: "bronze"}}})),
        )
        .await
        .unwrap();
    host.eventually(WAIT, || async {
        let found = namespaces.get(gold.name()).await?;
        anyhow::ensure!(
            tier(&found).as_deref() == Some("gold"),
            "tier is {:?}",
            tier(&found)
        );
        Ok(())
    })
    .await;

    // No rule names the third Namespace and there is no default tier: the
    // host reconciled it at start like the others, and left it unlabelled.
    let found = namespaces.get(untiered.name()).await.unwrap();
    assert_eq!(tier(&found), None);
}
