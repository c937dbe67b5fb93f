//! Discovery against the real API server: built-in kinds with their scope
//! and preferred version, CRDs appearing and disappearing while the host
//! runs, an aggregated API whose Service is missing, and a host that may not
//! watch CRDs or APIServices.
//!
//! Every test of this binary shares one control plane, and the other tests
//! create CRDs and APIServices concurrently, so assertions about "everything
//! else" only look at built-in groups (those outside `e2e.kubewasm.dev`).

use std::collections::BTreeSet;
use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kubewasm::cluster::discovery::{
    DiscoveryMethod, KindChange, KindRegistry, RediscoveryOptions, RegistryDiff, SharedRegistry,
    discover, discover_aggregated, discover_per_group, kind_changes, render_table, run_rediscovery,
};
use kubewasm::contract::{ResourceKind, Subscription};
use kubewasm_e2e::service_account::account_client;
use kubewasm_e2e::{ControlPlane, TestNamespace, eventually, unique_api_group};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Generous: a loaded 2-core CI machine (one CI run saw a deleted CRD still
/// discovered after 30 s).
const TIMEOUT: Duration = Duration::from_secs(120);

fn is_built_in(group: &str) -> bool {
    !group.ends_with("e2e.kubewasm.dev")
}

fn subscription(group: &str, version: &str, kind: &str) -> Subscription {
    Subscription {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        namespaces: vec![],
        label_selector: None,
    }
}

/// A CRD `<plural>.<group>` serving `v1`, with a status subresource if asked.
fn crd(
    group: &str,
    kind: &str,
    namespaced: bool,
    status: bool,
) -> anyhow::Result<CustomResourceDefinition> {
    let mut crd = kubewasm_e2e::crd::schemaless(group, kind, namespaced);
    if status {
        crd.spec.versions[0].subresources = Some(serde_json::from_value(json!({"status": {}}))?);
    }
    Ok(crd)
}

/// Sends the host's log records to the test's captured output, shown when a
/// test fails (`RUST_LOG` overrides the default `kubewasm=debug`).
fn capture_host_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kubewasm=debug"));
    // Only the first test of the binary installs it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Re-discovery running in the background, its diffs forwarded to a channel.
struct Rediscovery {
    client: kube::Client,
    registry: SharedRegistry,
    diffs: mpsc::UnboundedReceiver<RegistryDiff>,
    task: JoinHandle<()>,
}

impl Drop for Rediscovery {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Rediscovery {
    async fn start(client: kube::Client, options: RediscoveryOptions) -> anyhow::Result<Self> {
        capture_host_logs();
        let registry = SharedRegistry::new(KindRegistry::from(discover(&client).await?));
        let (tx, diffs) = mpsc::unbounded_channel();
        let changes = kind_changes(client.clone());
        let stream = run_rediscovery(client.clone(), registry.clone(), changes, options);
        let task = tokio::spawn(async move {
            let mut stream = pin!(stream);
            while let Some(diff) = stream.next().await {
                if tx.send(diff).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            client,
            registry,
            diffs,
            task,
        })
    }

    /// Waits until `group` has none of `kinds`; returns every kind removed
    /// meanwhile.
    async fn removals_until_gone(
        &mut self,
        group: &str,
        kinds: &[&str],
    ) -> anyhow::Result<Vec<ResourceKind>> {
        let mut removed = Vec::new();
        let gone = |registry: &KindRegistry| kinds.iter().all(|k| registry.get(group, k).is_none());
        let outcome = tokio::time::timeout(TIMEOUT, async {
            while !gone(&self.registry.load()) {
                let diff = self.diffs.recv().await.context("re-discovery ended")?;
                removed.extend(diff.removed.into_iter().map(|k| k.resource));
            }
            anyhow::Ok(())
        })
        .await;
        match outcome {
            Ok(result) => result.map(|()| removed),
            Err(_) => {
                let state = self.state_of(group, kinds).await;
                bail!("kinds {kinds:?} of {group} still discovered after {TIMEOUT:?}; {state}")
            }
        }
    }

    /// What the API server and the registry say about `kinds` of `group`,
    /// for a failure message: whether the CRDs still exist (and why), what
    /// aggregated discovery serves for the group, and the registry's failures.
    async fn state_of(&self, group: &str, kinds: &[&str]) -> String {
        let crds: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let mut state = Vec::new();
        for kind in kinds {
            let name = format!("{}s.{group}", kind.to_lowercase());
            state.push(match crds.get_opt(&name).await {
                Ok(None) => format!("CRD {name} is gone"),
                Ok(Some(crd)) => format!(
                    "CRD {name} still exists (deletionTimestamp {:?}, finalizers {:?}, conditions {:?})",
                    crd.metadata.deletion_timestamp,
                    crd.metadata.finalizers,
                    crd.status.and_then(|s| s.conditions).unwrap_or_default()
                        .iter()
                        .map(|c| format!("{}={} {}", c.type_, c.status, c.reason.as_deref().unwrap_or("")))
                        .collect::<Vec<_>>()
                ),
                Err(error) => format!("CRD {name}: {error}"),
            });
        }
        state.push(match discover(&self.client).await {
            Ok(discovered) => format!(
                "a fresh discovery ({:?}) finds {:?}, failures {:?}",
                discovered.method,
                discovered
                    .kinds
                    .iter()
                    .filter(|k| k.resource.group == group)
                    .map(|k| &k.resource.kind)
                    .collect::<Vec<_>>(),
                discovered
                    .failures
                    .iter()
                    .filter(|f| f.group == group)
                    .collect::<Vec<_>>()
            ),
            Err(error) => format!("a fresh discovery failed: {error}"),
        });
        state.push(format!(
            "the registry's failures: {:?}",
            self.registry.load().failures()
        ));
        state.join("; ")
    }
}

#[tokio::test]
async fn built_in_kinds_have_their_scope_and_preferred_version() -> anyhow::Result<()> {
    let client = ControlPlane::shared().await?.client().await?;
    let discovered = discover(&client).await?;
    assert_eq!(discovered.method, DiscoveryMethod::Aggregated);
    let registry = KindRegistry::from(discovered);

    let deployment = registry
        .get("apps", "Deployment")
        .context("apps Deployment")?;
    assert_eq!(deployment.resource.version, "v1");
    assert_eq!(deployment.resource.plural, "deployments");
    assert!(deployment.resource.namespaced);
    assert!(deployment.has_status);
    assert!(deployment.supports("patch") && deployment.supports("watch"));

    let namespace = registry.get("", "Namespace").context("core Namespace")?;
    assert_eq!(namespace.resource.api_version(), "v1");
    assert!(!namespace.resource.namespaced);

    let event = registry
        .get_api_version("events.k8s.io/v1", "Event")
        .context("events.k8s.io Event")?;
    assert!(event.resource.namespaced);
    assert!(!event.has_status);
    assert!(
        registry.get("", "Event").is_some(),
        "the core Event is a kind of its own"
    );

    // autoscaling serves v2 (preferred) and v1.
    let hpa = registry
        .get("autoscaling", "HorizontalPodAutoscaler")
        .context("HPA")?;
    assert_eq!(hpa.resource.version, "v2");
    assert!(hpa.serves("v1"));
    assert_eq!(
        registry.matching(&subscription("autoscaling", "v1", "*"))[0]
            .resource
            .api_version(),
        "autoscaling/v1"
    );

    // Neither create-only kinds nor subresources.
    for (group, kind) in [
        ("", "Binding"),
        ("authentication.k8s.io", "TokenReview"),
        ("authorization.k8s.io", "SubjectAccessReview"),
    ] {
        assert!(
            registry.get(group, kind).is_none(),
            "{group}/{kind} cannot be listed and watched"
        );
    }
    assert!(registry.iter().all(|k| !k.resource.plural.contains('/')));
    assert!(
        registry
            .iter()
            .all(|k| k.supports("list") && k.supports("watch"))
    );

    // Per-group discovery (for servers without aggregated discovery) agrees.
    let per_group = discover_per_group(&client).await?;
    assert_eq!(per_group.method, DiscoveryMethod::PerGroup);
    let built_in = |kinds: &mut dyn Iterator<Item = &kubewasm::cluster::discovery::KindInfo>| {
        kinds
            .filter(|k| is_built_in(&k.resource.group))
            .map(|k| {
                (
                    k.resource.clone(),
                    k.verbs.clone(),
                    k.has_status,
                    k.versions.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        built_in(&mut per_group.kinds.iter()),
        built_in(&mut registry.iter())
    );

    let table = render_table(&registry);
    let row = table
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(2) == Some(&"Deployment"))
        .context("Deployment row")?;
    assert_eq!(
        row[..5],
        ["apps", "v1", "Deployment", "deployments", "true"]
    );
    assert!(row[5].split(',').any(|verb| verb == "watch"));
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("core ") && l.contains(" Namespace ") && l.contains(" false "))
    );
    println!("{} kinds discovered", registry.len());
    Ok(())
}

#[tokio::test]
async fn crds_appear_when_established_and_disappear_when_deleted() -> anyhow::Result<()> {
    let client = ControlPlane::shared().await?.client().await?;
    let mut rediscovery = Rediscovery::start(client.clone(), RediscoveryOptions::default()).await?;
    let mut updates = rediscovery.registry.subscribe();
    let group = unique_api_group();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());

    // Three CRDs at once: a burst.
    let kinds = [
        ("Widget", true, true),
        ("Gadget", true, false),
        ("Gizmo", false, false),
    ];
    for (kind, namespaced, status) in kinds {
        crds.create(
            &PostParams::default(),
            &crd(&group, kind, namespaced, status)?,
        )
        .await?;
    }
    let established = async {
        for (kind, ..) in kinds {
            let name = format!("{}s.{group}", kind.to_lowercase());
            await_condition(crds.clone(), &name, conditions::is_crd_established()).await?;
        }
        anyhow::Ok(Instant::now())
    };
    let appeared = async {
        updates
            .wait_for(|r| kinds.iter().all(|(kind, ..)| r.get(&group, kind).is_some()))
            .await
            .context("the shared registry was dropped")?;
        anyhow::Ok(Instant::now())
    };
    let (established, appeared) =
        tokio::time::timeout(TIMEOUT, async { tokio::try_join!(established, appeared) })
            .await
            .with_context(|| {
                format!("CRDs of {group} not established and discovered within {TIMEOUT:?}")
            })??;
    let latency = appeared.saturating_duration_since(established);
    println!(
        "CRD established -> kind in the shared registry: {latency:?} \
         (registry {} the Established condition as seen by this test)",
        if appeared < established {
            "before"
        } else {
            "after"
        }
    );

    let registry = rediscovery.registry.load();
    let widget = registry.get(&group, "Widget").context("Widget")?;
    assert_eq!(widget.resource.version, "v1");
    assert!(widget.resource.namespaced && widget.has_status);
    let gadget = registry.get(&group, "Gadget").context("Gadget")?;
    assert!(gadget.resource.namespaced && !gadget.has_status);
    assert!(
        !registry
            .get(&group, "Gizmo")
            .context("Gizmo")?
            .resource
            .namespaced
    );
    // A wildcard subscription covers the new kinds.
    let everything = registry.matching(&subscription("*", "*", "*"));
    assert!(everything.iter().any(|k| k.resource == widget.resource));
    assert_eq!(registry.matching(&subscription(&group, "*", "*")).len(), 3);

    // Deleting one CRD removes exactly its kind and nothing built in.
    let deleted = Instant::now();
    crds.delete(&format!("widgets.{group}"), &DeleteParams::default())
        .await?;
    let removed = rediscovery.removals_until_gone(&group, &["Widget"]).await?;
    println!(
        "CRD deleted -> kind removed from the shared registry: {:?}",
        deleted.elapsed()
    );
    assert!(
        removed
            .iter()
            .any(|k| k.group == group && k.kind == "Widget"),
        "{removed:?}"
    );
    assert!(
        !removed.iter().any(|k| is_built_in(&k.group)),
        "built-in kinds removed: {removed:?}"
    );
    let registry = rediscovery.registry.load();
    assert!(registry.get(&group, "Gadget").is_some() && registry.get(&group, "Gizmo").is_some());
    assert!(
        registry
            .matching(&subscription("*", "*", "Widget"))
            .iter()
            .all(|k| k.resource.group != group)
    );

    for kind in ["gadgets", "gizmos"] {
        crds.delete(&format!("{kind}.{group}"), &DeleteParams::default())
            .await?;
    }
    rediscovery
        .removals_until_gone(&group, &["Gadget", "Gizmo"])
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_api_service_without_its_service_does_not_hide_the_other_groups() -> anyhow::Result<()> {
    let ns = TestNamespace::create("broken-apiservice").await?;
    let client = ns.client().clone();
    let rediscovery = Rediscovery::start(client.clone(), RediscoveryOptions::default()).await?;
    let group = unique_api_group();
    let name = format!("v1alpha1.{group}");
    let api_service: APIService = serde_json::from_value(json!({
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": { "name": name },
        "spec": {
            "group": group,
            "version": "v1alpha1",
            "groupPriorityMinimum": 1000,
            "versionPriority": 15,
            "insecureSkipTLSVerify": true,
            "service": { "namespace": ns.name(), "name": "missing" }
        }
    }))?;
    let api_services: Api<APIService> = Api::all(client.clone());
    api_services
        .create(&PostParams::default(), &api_service)
        .await?;

    // The aggregator marks it unavailable...
    let condition = eventually(TIMEOUT, || async {
        let status = api_services.get(&name).await?.status.unwrap_or_default();
        let available = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Available")
            .context("no Available condition yet")?;
        ensure!(
            available.status == "False",
            "Available is {}",
            available.status
        );
        Ok(available)
    })
    .await?;
    println!(
        "APIService {name}: Available=False, reason {:?}: {:?}",
        condition.reason, condition.message
    );

    // ...yet still lists the group under /apis. Aggregated discovery marks its
    // version stale; per-group discovery gets 503 from /apis/G/v1alpha1.
    // Either way it is a failure and every other group is discovered.
    let aggregated = eventually(TIMEOUT, || async {
        let discovered = discover_aggregated(&client)
            .await?
            .context("no aggregated discovery")?;
        ensure!(
            discovered.failures.iter().any(|f| f.group == group),
            "{group} not (yet) reported as failing"
        );
        Ok(discovered)
    })
    .await?;
    let failure = aggregated
        .failures
        .iter()
        .find(|f| f.group == group)
        .context("failure")?;
    assert_eq!(failure.version, "v1alpha1");
    println!("aggregated discovery: {failure:?}");

    let control_plane = ns.control_plane();
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(control_plane.kubeconfig_path())?,
        &Default::default(),
    )
    .await?;
    config.default_retry = false;
    let no_retry = kube::Client::try_from(config)?;
    let per_group = discover_per_group(&no_retry).await?;
    let failure = per_group
        .failures
        .iter()
        .find(|f| f.group == group)
        .context("per-group failure")?;
    assert!(failure.reason.starts_with("503"), "{failure:?}");
    println!("per-group discovery: {failure:?}");

    // kube's default client retries 503s for minutes; per-group discovery
    // gives up on the group after its own timeout instead.
    let started = Instant::now();
    let retrying = discover_per_group(&client).await?;
    assert!(retrying.failures.iter().any(|f| f.group == group));
    assert!(started.elapsed() < TIMEOUT, "took {:?}", started.elapsed());
    println!(
        "per-group discovery with a retrying client: {:?} after {:?}",
        retrying.failures.iter().find(|f| f.group == group),
        started.elapsed()
    );

    for discovered in [&aggregated, &per_group] {
        let registry = KindRegistry::from(discovered.clone());
        assert!(registry.get("apps", "Deployment").is_some());
        assert!(
            registry
                .get("apiregistration.k8s.io", "APIService")
                .is_some()
        );
        assert!(registry.iter().all(|k| k.resource.group != group));
    }

    // The running host learns of it through the APIService watch.
    let mut updates = rediscovery.registry.subscribe();
    tokio::time::timeout(
        TIMEOUT,
        updates.wait_for(|r| r.failures().iter().any(|f| f.group == group)),
    )
    .await
    .context("the shared registry never reported the broken APIService")??;

    api_services.delete(&name, &DeleteParams::default()).await?;
    tokio::time::timeout(
        TIMEOUT,
        updates.wait_for(|r| r.failures().iter().all(|f| f.group != group)),
    )
    .await
    .context("the deleted APIService is still reported")??;
    Ok(())
}

#[tokio::test]
async fn without_rbac_to_watch_crds_discovery_falls_back_to_polling() -> anyhow::Result<()> {
    let ns = TestNamespace::create("discovery-rbac").await?;
    let pp = PostParams::default();
    let limited = account_client(&ns, "no-watch").await?;

    // Discovery itself is open to every authenticated user.
    assert!(
        KindRegistry::from(discover(&limited).await?)
            .get("apps", "Deployment")
            .is_some()
    );

    // Both watches report that they are forbidden.
    let mut changes = pin!(kind_changes(limited.clone()));
    let mut forbidden = BTreeSet::new();
    tokio::time::timeout(TIMEOUT, async {
        while forbidden.len() < 2 {
            match changes.next().await {
                Some(KindChange::WatchForbidden { resource }) => {
                    forbidden.insert(resource);
                }
                Some(other) => bail!("expected only forbidden watches, got {other:?}"),
                None => bail!("kind_changes ended"),
            }
        }
        Ok(())
    })
    .await
    .context("no WatchForbidden")??;
    assert_eq!(
        forbidden,
        BTreeSet::from(["apiservices", "customresourcedefinitions"])
    );

    // A new CRD is still found, by periodic re-discovery.
    let options = RediscoveryOptions {
        fallback_period: Duration::from_secs(1),
        ..Default::default()
    };
    let rediscovery = Rediscovery::start(limited, options).await?;
    let group = unique_api_group();
    let admin = ns.client().clone();
    let crds: Api<CustomResourceDefinition> = Api::all(admin);
    crds.create(&pp, &crd(&group, "Sprocket", true, false)?)
        .await?;
    let started = Instant::now();
    let mut updates = rediscovery.registry.subscribe();
    tokio::time::timeout(
        TIMEOUT,
        updates.wait_for(|r| r.get(&group, "Sprocket").is_some()),
    )
    .await
    .context("polling never found the new CRD")??;
    println!(
        "CRD created -> discovered by polling every 1 s: {:?}",
        started.elapsed()
    );
    crds.delete(&format!("sprockets.{group}"), &DeleteParams::default())
        .await?;
    Ok(())
}
