//! Owned children and mapped watches end to end: the `website` plugin owns
//! its child ConfigMaps and maps changes of the ConfigMap a Website names
//! in `spec.configMapRef` to that Website, without subscribing to
//! ConfigMaps. The host wakes the owner (or the mapped Website), whose
//! reconcile repairs the child or rewrites the page.
//!
//! The latencies printed (`--nocapture`) are what `tests/README.md`
//! reports; nothing here asserts on time beyond a generous deadline.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{Host, component, example_plugins, kubewasm_binary};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// How often the tests look, when they time what they wait for.
const POLL: Duration = Duration::from_millis(10);

/// The website plugin's description, as `kubewasm check` prints it.
fn website_description() -> Value {
    let output = std::process::Command::new(kubewasm_binary())
        .args(["check", "-o", "json"])
        .arg(component("website"))
        .output()
        .expect("kubewasm check runs");
    assert!(
        output.status.success(),
        "kubewasm check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("kubewasm check -o json prints JSON")
}

fn website(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// The page the plugin wrote into a Website's child ConfigMap, if any.
fn page(child: &ConfigMap) -> Option<&str> {
    child.data.as_ref()?.get("index.html").map(String::as_str)
}

/// Polls every [`POLL`] until `check` returns `Some`, at most [`WAIT`];
/// returns its value and how long it took. Panics with the host's log.
async fn timed<T, F, Fut>(host: &Host, what: &str, mut check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return (value, start.elapsed());
        }
        if start.elapsed() > WAIT {
            panic!("{what}: not within {WAIT:?}\n{}", host.log());
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_deleted_or_edited_child_is_restored_by_its_owner() {
    // The plugin owns ConfigMaps and subscribes to none: the child's own
    // events never call it.
    let description = website_description();
    let subscribes_to_config_maps =
        description["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| {
                (s["group"] == "" || s["group"] == "*")
                    && (s["kind"] == "ConfigMap" || s["kind"] == "*")
            });
    assert!(!subscribes_to_config_maps, "{description:#}");
    assert_eq!(
        description["owns"],
        json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
    );

    let ns = TestNamespace::create("owns-child").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let host = Host::start(&ns, &[("website", None)], &["--namespace", ns.name()]);
    websites
        .create(
            &PostParams::default(),
            &website(
                "blog",
                json!({"title": "Owned", "content": "Kept by its owner."}),
            ),
        )
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let (first, _) = timed(&host, "child created", || async {
        let child = configmaps.get_opt("blog").await.ok()??;
        page(&child)?
            .contains("Kept by its owner.")
            .then_some(child)
    })
    .await;

    // Deleted: the owner is reconciled and recreates it. A few times, to
    // see the spread.
    let mut uid = first.metadata.uid.clone();
    for run in 1..=3 {
        configmaps
            .delete("blog", &Default::default())
            .await
            .unwrap();
        let (child, took) = timed(&host, "child recreated", || async {
            let child = configmaps.get_opt("blog").await.ok()??;
            (child.metadata.uid != uid).then_some(child)
        })
        .await;
        println!(
            "run {run}: child deleted -> recreated in {} ms",
            took.as_millis()
        );
        assert!(page(&child).unwrap().contains("Kept by its owner."));
        let owner = &child.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Website", Some(true))
        );
        uid = child.metadata.uid.clone();
    }

    // Edited: the owner's reconcile puts its page back.
    configmaps
        .patch(
            "blog",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"index.html": "defaced"}})),
        )
        .await
        .unwrap();
    let (_, took) = timed(&host, "edited child restored", || async {
        let child = configmaps.get("blog").await.ok()?;
        page(&child)?.contains("Kept by its owner.").then_some(())
    })
    .await;
    println!("child edited -> restored in {} ms", took.as_millis());

    // The plugin was never called for a ConfigMap, only for its Website.
    let log = host.log();
    assert!(
        log.contains("reconcile{plugin=website kind=Website"),
        "no reconcile of the Website logged:\n{log}"
    );
    assert!(
        !log.contains("reconcile{plugin=website kind=ConfigMap"),
        "a ConfigMap event reached the plugin:\n{log}"
    );
    assert!(
        log.contains("via=Owner"),
        "no child change was routed to its owner:\n{log}"
    );
}

#[tokio::test]
async fn a_changed_config_map_reconciles_the_websites_naming_it() {
    let ns = TestNamespace::create("owns-map").await.unwrap();
    let other_ns = TestNamespace::create("owns-map-other").await.unwrap();
    let websites = ns.websites().await.unwrap();
    let other_websites = other_ns.websites().await.unwrap();
    // One host for both namespaces: the plugin's grant confines it to them.
    let dir = example_plugins(&[("website", None)]);
    std::fs::write(
        dir.path().join("website.scope.json"),
        json!({"namespaces": [ns.name(), other_ns.name()]}).to_string(),
    )
    .unwrap();
    let host = Host::spawn(&ns, dir, &[]);

    let text = |name: &str, content: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"content": content}}))
            .unwrap()
    };
    let configmaps: Api<ConfigMap> = ns.api();
    let other_configmaps: Api<ConfigMap> = other_ns.api();
    for (api, name, content) in [
        (&configmaps, "guide-text", "First text."),
        (&configmaps, "notes-text", "Notes text."),
        (&other_configmaps, "guide-text", "Text elsewhere."),
    ] {
        api.create(&PostParams::default(), &text(name, content))
            .await
            .unwrap();
    }
    // guide names the ConfigMap that changes; notes names another; blog
    // names none; the guide in the other namespace names one of the same
    // name there.
    let referencing = |name: &str| json!({"title": "T", "configMapRef": {"name": name}});
    for (api, name, spec) in [
        (&websites, "guide", referencing("guide-text")),
        (&websites, "notes", referencing("notes-text")),
        (
            &websites,
            "blog",
            json!({"title": "T", "content": "Own text."}),
        ),
        (&other_websites, "guide", referencing("guide-text")),
    ] {
        api.create(&PostParams::default(), &website(name, spec))
            .await
            .unwrap();
    }
    let pages = [
        (&configmaps, "guide", "First text."),
        (&configmaps, "notes", "Notes text."),
        (&configmaps, "blog", "Own text."),
        (&other_configmaps, "guide", "Text elsewhere."),
    ];
    let mut versions = Vec::new();
    for (api, name, expected) in pages {
        let (child, _) = timed(&host, "page written", || async {
            let child = api.get_opt(name).await.ok()??;
            page(&child)?.contains(expected).then_some(child)
        })
        .await;
        versions.push(child.metadata.resource_version);
    }

    // The referenced ConfigMap changes: guide's page follows.
    configmaps
        .patch(
            "guide-text",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"content": "Second text."}})),
        )
        .await
        .unwrap();
    let (_, took) = timed(&host, "guide's page follows its ConfigMap", || async {
        let child = configmaps.get("guide").await.ok()?;
        page(&child)?.contains("Second text.").then_some(())
    })
    .await;
    println!(
        "referenced ConfigMap edited -> page rewritten in {} ms",
        took.as_millis()
    );

    // Only guide was mapped from it: the host logged the mapping to guide
    // and to nothing else, and the other pages were not rewritten.
    let source = format!("object={}/guide-text", ns.name());
    let mapped: Vec<String> = host
        .log()
        .lines()
        .filter(|l| l.contains("via=Watch") && l.contains(&source))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("target=")))
        .map(str::to_string)
        .collect();
    assert!(
        !mapped.is_empty()
            && mapped
                .iter()
                .all(|t| *t == format!("target={}/guide", ns.name())),
        "{mapped:?}\n{}",
        host.log()
    );
    // Give a stray reconcile time to write before looking.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for ((api, name, expected), version) in pages.iter().zip(&versions).skip(1) {
        let child = api.get(name).await.unwrap();
        assert_eq!(
            &child.metadata.resource_version, version,
            "{name}'s page was rewritten"
        );
        assert!(page(&child).unwrap().contains(expected));
    }

    // Deleting the referenced ConfigMap is a change too: guide reports
    // the missing content.
    configmaps
        .delete("guide-text", &Default::default())
        .await
        .unwrap();
    timed(&host, "guide reports its missing ConfigMap", || async {
        let site = websites.get("guide").await.ok()?;
        let conditions = site.data["status"]["conditions"].as_array()?.clone();
        conditions
            .iter()
            .any(|c| c["type"] == "Ready" && c["reason"] == "ContentMissing")
            .then_some(())
    })
    .await;
}
