//! Cost of routing one event through owned kinds and mapped watches
//! (`controller::Router`) with 10,000 cached targets: what the dispatch
//! task spends per event of an owned or watched kind before any plugin
//! runs.
//!
//! ```text
//! cargo bench -p kubewasm --bench mapping [-- TARGETS]
//! ```
//!
//! The cache here is a `BTreeMap` keyed by (namespace, name), the layout of
//! the informers' caches, read the way the informer registry reads them (a
//! namespace is a range). Results are in `host/benches/README.md`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kubewasm::cluster::object::CachedObject;
use kubewasm::contract::{
    GroupKind, KindRef, MapRule, MappedWatch, PluginInfo, ResourceKind, Subscription,
};
use kubewasm::controller::{Lookup, Router};
use kubewasm::plugins::grant::Grant;
use serde_json::{Value, json};

/// One kind's objects by (namespace, name), as an informer caches them.
struct Cache {
    kind: ResourceKind,
    objects: BTreeMap<(Option<String>, String), Arc<CachedObject>>,
}

impl Lookup for Cache {
    fn get(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        if *kind != self.kind {
            return None;
        }
        let key = (namespace.map(str::to_string), name.to_string());
        self.objects.get(&key).cloned()
    }

    fn visit(
        &self,
        kind: &ResourceKind,
        namespace: Option<&str>,
        visit: &mut dyn FnMut(&Arc<CachedObject>),
    ) {
        if *kind != self.kind {
            return;
        }
        match namespace {
            None => self.objects.values().for_each(visit),
            Some(ns) => self
                .objects
                .range((Some(ns.to_string()), String::new())..)
                .take_while(|((object_ns, _), _)| object_ns.as_deref() == Some(ns))
                .for_each(|(_, object)| visit(object)),
        }
    }
}

fn resource(group: &str, version: &str, kind: &str, namespaced: bool) -> ResourceKind {
    ResourceKind {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: format!("{}s", kind.to_lowercase()),
        namespaced,
    }
}

fn website_kind() -> ResourceKind {
    resource("demo.kubewasm.dev", "v1alpha1", "Website", true)
}

fn config_map_kind() -> ResourceKind {
    resource("", "v1", "ConfigMap", true)
}

fn namespace_kind() -> ResourceKind {
    resource("", "v1", "Namespace", false)
}

/// A Website of about 600 bytes, as the API server serves it (without
/// managed fields), naming ConfigMap `text-{i % 50}`.
fn website(namespace: &str, i: usize) -> Value {
    json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {
            "name": format!("site-{i}"), "namespace": namespace,
            "uid": format!("6f0c2a8e-0000-4000-8000-{i:012}"),
            "resourceVersion": format!("{}", 100_000 + i), "generation": 1,
            "creationTimestamp": "2026-12-04T03:00:00Z",
            "labels": {"tier": if i.is_multiple_of(10) { "web" } else { "batch" }, "team": "docs"},
            "finalizers": ["kubewasm.dev/website"],
        },
        "spec": {
            "title": format!("Site {i}"),
            "content": "Reconciled by a WebAssembly plugin.",
            "configMapRef": {"name": format!("text-{}", i % 50), "key": "content"},
        },
        "status": {"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "True", "reason": "ChildReady",
            "message": "ConfigMap holds the page", "lastTransitionTime": "2026-12-04T03:00:01Z",
        }]},
    })
}

/// `targets` Websites spread over `namespaces` namespaces (`ns-0`, ...).
fn websites(targets: usize, namespaces: usize) -> Cache {
    let objects = (0..targets)
        .map(|i| {
            let ns = format!("ns-{}", i % namespaces);
            let object = website(&ns, i);
            let object = CachedObject::from_value(&object);
            ((Some(ns), format!("site-{i}")), Arc::new(object))
        })
        .collect();
    Cache {
        kind: website_kind(),
        objects,
    }
}

fn plugin(source: &ResourceKind, rule: Option<MapRule>) -> PluginInfo {
    let website = website_kind();
    PluginInfo {
        name: "website".into(),
        version: "1".into(),
        subscriptions: vec![Subscription {
            group: website.group.clone(),
            version: website.version.clone(),
            kind: website.kind.clone(),
            namespaces: vec![],
            label_selector: None,
        }],
        owns: match rule {
            None => vec![KindRef {
                group: source.group.clone(),
                kind: source.kind.clone(),
                version: None,
            }],
            Some(_) => vec![],
        },
        watches: rule
            .into_iter()
            .map(|rule| MappedWatch {
                source: KindRef {
                    group: source.group.clone(),
                    kind: source.kind.clone(),
                    version: None,
                },
                target: GroupKind::new(&website.group, &website.kind),
                rule,
            })
            .collect(),
        ..PluginInfo::default()
    }
}

/// Median and 90th percentile of `runs` runs of `f`, and what the last run
/// returned.
fn measure(runs: usize, mut f: impl FnMut() -> usize) -> (Duration, Duration, usize) {
    let mut found = 0;
    for _ in 0..runs / 10 {
        found = black_box(f());
    }
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            found = black_box(f());
            start.elapsed()
        })
        .collect();
    samples.sort();
    (samples[runs / 2], samples[runs * 9 / 10], found)
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let targets: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let kinds = [website_kind(), config_map_kind(), namespace_kind()];
    let grant = Grant::unconfined();
    let config_map = |namespace: &str, name: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"namespace": namespace, "name": name,
                            "labels": {"app.kubernetes.io/instance": "site-0"},
                            "ownerReferences": [{"apiVersion": "demo.kubewasm.dev/v1alpha1",
                                                 "kind": "Website", "name": "site-0",
                                                 "uid": "u", "controller": true}]}})
    };
    let field_ref = || Some(MapRule::FieldRef("spec.configMapRef.name".into()));
    let cases: Vec<(&str, usize, ResourceKind, Option<MapRule>, Value)> = vec![
        (
            "owner (one lookup)",
            1,
            config_map_kind(),
            None,
            config_map("ns-0", "site-0"),
        ),
        (
            "label (one lookup)",
            1,
            config_map_kind(),
            Some(MapRule::Label("app.kubernetes.io/instance".into())),
            config_map("ns-0", "text-0"),
        ),
        (
            "field-ref, all targets in the source's namespace",
            1,
            config_map_kind(),
            field_ref(),
            config_map("ns-0", "text-0"),
        ),
        (
            "field-ref, targets over 100 namespaces",
            100,
            config_map_kind(),
            field_ref(),
            config_map("ns-0", "text-0"),
        ),
        (
            "selector tier=web, all targets in the namespace",
            1,
            config_map_kind(),
            Some(MapRule::Selector("tier=web".into())),
            config_map("ns-0", "any"),
        ),
        (
            "field-ref from a cluster-scoped source (every namespace)",
            100,
            namespace_kind(),
            Some(MapRule::FieldRef("metadata.namespace".into())),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-0"}}),
        ),
    ];
    println!("{targets} cached Websites; median / p90 per event, 2000 events after 200 warm-up");
    // What the scans are made of: walking each object's field in one
    // namespace, without the router.
    let cache = websites(targets, 1);
    let path = ["spec", "configMapRef", "name"].map(String::from);
    let (p50, p90, found) = measure(2000, || {
        let mut found = 0;
        cache.visit(&website_kind(), Some("ns-0"), &mut |o| {
            found += usize::from(kubewasm::controller::field_names(o, &path, "text-0"));
        });
        found
    });
    println!(
        "baseline, the field walk alone over one namespace: {found} found, {} / {} µs",
        us(p50),
        us(p90)
    );
    println!("| case | targets picked | µs per event |");
    println!("|---|---|---|");
    for (name, namespaces, source, rule, object) in cases {
        let object = CachedObject::from_value(&object);
        let cache = websites(targets, namespaces);
        let info = plugin(&source, rule);
        let parsed = info.validated().expect("a valid description");
        let router = Router {
            info: &info,
            parsed: &parsed,
            grant: &grant,
            kinds: &kinds,
        };
        let (p50, p90, found) = measure(2000, || router.targets(&cache, &source, &object).len());
        println!("| {name} | {found} | {} / {} |", us(p50), us(p90));
    }
}
