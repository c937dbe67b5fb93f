//! Reload latency: from a plugin file written to the first object written
//! by the new version, through a real `kubewasm run` (release build) and the
//! real control plane.
//!
//!     cargo bench -p kubewasm-e2e --bench reload
//!
//! Uses the cluster in `KUBEWASM_TEST_KUBECONFIG`, or starts one. Each
//! iteration writes a new component and new settings into the plugin
//! directory and polls the API server (every 5 ms) until the object carries
//! the mark of the new settings. A *miss* writes a component the host has
//! never compiled (the example plugin with a fresh custom section appended);
//! a *hit* writes one compiled earlier, served from the host's compiled-
//! artefact cache (a private directory, empty at the start). The time
//! includes the host's 300 ms debounce, the resync and the apply.
//! Results are written down in `tests/README.md`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{self, Host, component, use_release_binary, write_atomically};
use serde_json::json;

/// A plugin under test: how to label the object for it and how to read
/// which settings reconciled it.
struct Subject {
    plugin: &'static str,
    labels: serde_json::Value,
    settings: fn(usize) -> serde_json::Value,
    reconciled_by: fn(&ConfigMap, usize) -> bool,
    misses: usize,
    hits: usize,
}

fn annotations(cm: &ConfigMap) -> std::collections::BTreeMap<String, String> {
    cm.metadata.annotations.clone().unwrap_or_default()
}

fn subjects() -> [Subject; 2] {
    [
        Subject {
            plugin: "probe",
            labels: json!({"probe.kubewasm.dev/behave": "mark"}),
            settings: |i| json!({"mark": format!("v{i}")}),
            reconciled_by: |cm, i| {
                annotations(cm).get("probe.kubewasm.dev/mark") == Some(&format!("v{i}"))
            },
            misses: 5,
            hits: 5,
        },
        Subject {
            plugin: "configmap-hasher",
            labels: json!({"kubewasm.dev/hash": "true"}),
            settings: |i| json!({"annotation": format!("bench.kubewasm.dev/hash-{i}")}),
            reconciled_by: |cm, i| {
                annotations(cm).contains_key(&format!("bench.kubewasm.dev/hash-{i}"))
            },
            misses: 3,
            hits: 5,
        },
    ]
}

/// The component with a custom section appended: same logic, new content.
fn variant(original: &[u8], tag: usize) -> Vec<u8> {
    host::variant(original, "kubewasm-bench", &tag.to_le_bytes())
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<36} n={:<2} min {:>8.1} ms  median {:>8.1} ms  max {:>8.1} ms",
        times.len(),
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
}

async fn measure(subject: &Subject) {
    let ns = TestNamespace::create("bench-reload").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "subject", "labels": subject.labels},
        "data": {"k": "v"}
    }))
    .unwrap();
    configmaps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    let original = std::fs::read(component(subject.plugin)).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join(format!("{}.wasm", subject.plugin));
    let settings = dir.path().join(format!("{}.settings.json", subject.plugin));
    std::fs::write(&wasm, variant(&original, 0)).unwrap();
    std::fs::write(&settings, (subject.settings)(0).to_string()).unwrap();
    let cache_arg = cache.path().to_str().unwrap().to_string();
    let host = Host::spawn(
        &ns,
        dir,
        &["--namespace", ns.name(), "--compile-cache", &cache_arg],
    );

    let wait_for = |i: usize| {
        let configmaps = configmaps.clone();
        let reconciled_by = subject.reconciled_by;
        async move {
            let deadline = Instant::now() + Duration::from_secs(600);
            loop {
                let cm = configmaps.get("subject").await.unwrap();
                if reconciled_by(&cm, i) {
                    return;
                }
                assert!(Instant::now() < deadline, "version {i} never reconciled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for(0).await;

    let mut iteration = 0;
    let mut misses = Vec::new();
    for _ in 0..subject.misses {
        iteration += 1;
        let start = Instant::now();
        write_atomically(&wasm, &variant(&original, iteration));
        write_atomically(
            &settings,
            (subject.settings)(iteration).to_string().as_bytes(),
        );
        wait_for(iteration).await;
        misses.push(start.elapsed());
    }
    let mut hits = Vec::new();
    for n in 0..subject.hits {
        iteration += 1;
        let start = Instant::now();
        // A component compiled earlier in this run (tags 1..=misses).
        write_atomically(&wasm, &variant(&original, 1 + n % subject.misses));
        write_atomically(
            &settings,
            (subject.settings)(iteration).to_string().as_bytes(),
        );
        wait_for(iteration).await;
        hits.push(start.elapsed());
    }
    summary(&format!("{} compile-cache miss", subject.plugin), misses);
    summary(&format!("{} compile-cache hit", subject.plugin), hits);
    drop(host);
}

fn main() {
    use_release_binary();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        for subject in subjects() {
            measure(&subject).await;
        }
    });
}
