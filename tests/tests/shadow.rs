//! Shadow rollout end to end, on the real control plane with the real
//! binary: `probe.next.wasm` beside `probe.wasm` runs on every reconcile of
//! the serving probe and is compared with it, but never writes.
//!
//! The shadow is the probe component run with other settings: the probe's
//! `mark` behaviour writes the mark its settings name, so a shadow with
//! `{"mark": "v2"}` beside a serving version with `{"mark": "v1"}` is new
//! logic that differs on every `mark` object and agrees on every `read`
//! object (whose outcome does not depend on the settings, and which reads
//! the cache: the shadow must get the serving call's answers).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{self, Host, component};
use kubewasm_e2e::probe::{self, MARK, READ_RESULT, create_reader};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);

/// A plugin directory: probe serving with `mark`, and its shadow with
/// `shadow_settings` (and `shadow` as its component).
fn directory(mark: &str, shadow: &[u8], shadow_settings: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(component("probe"), d.join("probe.wasm")).unwrap();
    std::fs::write(
        d.join("probe.settings.json"),
        json!({ "mark": mark }).to_string(),
    )
    .unwrap();
    std::fs::write(d.join("probe.next.wasm"), shadow).unwrap();
    std::fs::write(
        d.join("probe.next.settings.json"),
        shadow_settings.to_string(),
    )
    .unwrap();
    dir
}

fn probe_bytes() -> Vec<u8> {
    std::fs::read(component("probe")).unwrap()
}

/// The host's shadow report (`GET /shadow`).
fn report(host: &Host) -> anyhow::Result<Value> {
    let addr = host
        .admin_addr()
        .ok_or_else(|| anyhow::anyhow!("admin address not logged yet"))?;
    let (status, body) = host::http_get(addr, "/shadow")?;
    anyhow::ensure!(status == 200, "GET /shadow: {status} {body}");
    Ok(serde_json::from_str(&body)?)
}

/// The report of probe's shadow, once there is one.
fn probe_shadow(report: &Value) -> anyhow::Result<Value> {
    report["shadows"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["plugin"] == "probe"))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no shadow of probe in {report}"))
}

fn count(shadow: &Value, what: &str) -> u64 {
    shadow["counts"][what]
        .as_u64()
        .unwrap_or_else(|| panic!("no count {what} in {shadow}"))
}

/// `kubewasm shadow ARGS` against the host's admin server.
fn cli(host: &Host, args: &[&str]) -> (bool, String) {
    let addr = host.admin_addr().unwrap().to_string();
    let output = Command::new(host::kubewasm_binary())
        .arg("shadow")
        .args(["--admin", &addr])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

async fn marks(configmaps: &Api<ConfigMap>, names: &[&str]) -> anyhow::Result<Vec<Option<String>>> {
    let mut found = Vec::new();
    for name in names {
        found.push(probe::annotation(&configmaps.get(name).await?, MARK));
    }
    Ok(found)
}

async fn all_marked(host: &Host, configmaps: &Api<ConfigMap>, names: &[&str], mark: &str) {
    host.eventually(WAIT, || async {
        let found = marks(configmaps, names).await?;
        anyhow::ensure!(
            found.iter().all(|m| m.as_deref() == Some(mark)),
            "marks {found:?}, waiting for {mark}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_shadow_is_compared_writes_nothing_and_serves_once_promoted() {
    let ns = TestNamespace::create("shadow").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let differing = ["diff-a", "diff-b"];
    for name in differing {
        probe::create_configmap(&configmaps, name, "mark", &[("n", "1")]).await;
    }
    create_reader(&configmaps, ns.name(), "same", "diff-a").await;
    let dir = directory("v1", &probe_bytes(), &json!({"mark": "v2"}));
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);

    all_marked(&host, &configmaps, &differing, "v1").await;
    let found = host
        .eventually(WAIT, || async {
            let cm = configmaps.get("same").await?;
            probe::annotation(&cm, READ_RESULT).ok_or_else(|| anyhow::anyhow!("not read yet"))
        })
        .await;
    assert_eq!(found, "found");

    // Both differing objects are reported, with the field and both values;
    // the reading object compared equal, its read answered from the
    // serving call's capture.
    let shadow = host
        .eventually(WAIT, || async {
            let shadow = probe_shadow(&report(&host)?)?;
            let objects: Vec<&str> = shadow["recentDifferences"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|d| d["object"].as_str())
                .collect();
            for name in differing {
                let object = format!("ConfigMap {}/{name}", ns.name());
                anyhow::ensure!(
                    objects.contains(&object.as_str()),
                    "{object} not in {objects:?}"
                );
            }
            anyhow::ensure!(count(&shadow, "equal") >= 1, "nothing equal yet: {shadow}");
            let samples = shadow["recentDifferences"].as_array().unwrap();
            anyhow::ensure!(
                samples
                    .iter()
                    .any(|d| d["unmatched"].as_array().is_some_and(|u| !u.is_empty())),
                "no reconcile where only the shadow writes yet: {shadow}"
            );
            Ok(shadow)
        })
        .await;
    assert_eq!(shadow["state"], "running", "{shadow}");
    assert_eq!(count(&shadow, "failed"), 0, "{shadow}");
    assert_eq!(count(&shadow, "uncapturedReads"), 0, "{shadow}");
    let differences = shadow["recentDifferences"].as_array().unwrap();
    assert!(
        differences
            .iter()
            .all(|d| !d["object"].as_str().unwrap().ends_with("/same")),
        "the read object is equal: {shadow}"
    );
    // The first reconcile of each: both apply, the mark differs.
    let fields: Vec<&Value> = differences
        .iter()
        .flat_map(|d| d["differences"]["differences"].as_array().unwrap())
        .filter(|d| d["change"] == "fields")
        .flat_map(|d| d["fields"].as_array().unwrap())
        .collect();
    let mark_field = fields
        .iter()
        .find(|f| f["path"].as_str().unwrap().contains(MARK))
        .unwrap_or_else(|| panic!("no mark field difference in {shadow}"));
    assert_eq!(mark_field["expected"], "v1", "{mark_field}");
    assert_eq!(mark_field["actual"], "v2", "{mark_field}");
    let summary = differences[0]["summary"].as_str().unwrap();
    assert!(summary.contains(MARK), "{summary}");
    // Once the serving version's mark is on an object, only the shadow
    // would write: its whole intent is shown.
    let only_shadow = differences
        .iter()
        .flat_map(|d| d["unmatched"].as_array().unwrap())
        .find(|u| u["side"] == "shadow")
        .unwrap_or_else(|| panic!("no shadow-only intent in {shadow}"));
    let annotations = &only_shadow["intent"]["object"]["metadata"]["annotations"];
    assert_eq!(annotations[MARK], "v2", "{only_shadow}");

    // Nothing the shadow computed was written: every object still carries
    // the serving mark, and the serving version wrote each object once.
    assert_eq!(
        marks(&configmaps, &differing).await.unwrap(),
        [Some("v1".into()), Some("v1".into())]
    );
    let applied = host
        .metric_with(
            "kubewasm_intents_total",
            &[
                ("plugin", "probe"),
                ("type", "apply"),
                ("result", "applied"),
            ],
        )
        .unwrap();
    assert_eq!(applied, 3.0, "three objects, one write each");
    let different = host
        .metric_with(
            "kubewasm_shadow_reconciles_total",
            &[("plugin", "probe"), ("result", "different")],
        )
        .unwrap();
    assert!(different >= 2.0, "{different}");
    assert_eq!(
        host.metric_with("kubewasm_shadow_running", &[("plugin", "probe")]),
        Some(1.0)
    );
    assert!(
        host.log()
            .contains("shadow differs from the serving version")
    );

    // `kubewasm shadow` prints the same report.
    let (ok, text) = cli(&host, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("probe: running"), "{text}");
    assert!(
        text.contains(&format!("ConfigMap {}/diff-", ns.name())),
        "{text}"
    );
    assert!(text.contains(MARK), "{text}");
    let (ok, json_text) = cli(&host, &["-o", "json"]);
    assert!(ok, "{json_text}");
    let printed: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(printed["shadows"][0]["plugin"], "probe");

    // Promotion: the shadow's files serve, and its logic with them.
    let (ok, text) = cli(
        &host,
        &[
            "promote",
            "probe",
            "--plugins",
            host.plugin_dir().to_str().unwrap(),
        ],
    );
    assert!(ok, "{text}");
    all_marked(&host, &configmaps, &differing, "v2").await;
    let settings = std::fs::read_to_string(host.plugin_dir().join("probe.settings.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&settings).unwrap(),
        json!({"mark": "v2"})
    );
    assert!(!host.plugin_dir().join("probe.next.wasm").exists());
    host.eventually(WAIT, || async {
        let report = report(&host)?;
        anyhow::ensure!(
            probe_shadow(&report).is_err(),
            "shadow still loaded: {report}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_failing_shadow_is_aborted_while_the_serving_version_carries_on() {
    let ns = TestNamespace::create("shadow-fail").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    // The shadow's mark makes its outcome larger than the host allows.
    let huge = json!({"mark": "x".repeat(100_000)});
    let dir = directory("v1", &probe_bytes(), &huge);
    let host = Host::spawn(
        &ns,
        dir,
        &["--namespace", ns.name(), "--max-result-kib", "64"],
    );
    all_marked(&host, &configmaps, &["a"], "v1").await;

    let shadow = host
        .eventually(WAIT, || async {
            let shadow = probe_shadow(&report(&host)?)?;
            anyhow::ensure!(shadow["state"] == "aborted", "not aborted: {shadow}");
            Ok(shadow)
        })
        .await;
    let reason = shadow["reason"].as_str().unwrap();
    assert!(reason.contains("over the limit"), "{reason}");
    assert_eq!(count(&shadow, "failed"), 1, "{shadow}");
    assert_eq!(
        host.metric_with("kubewasm_shadow_running", &[("plugin", "probe")]),
        Some(0.0)
    );
    assert!(host.log().contains("shadow aborted"));
    let (ok, text) = cli(&host, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("probe: ABORTED"), "{text}");

    // The serving version keeps reconciling; the aborted shadow stays
    // stopped.
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    all_marked(&host, &configmaps, &["a", "b"], "v1").await;
    let after = probe_shadow(&report(&host).unwrap()).unwrap();
    assert_eq!(after["state"], "aborted");
    assert_eq!(
        after["counts"], shadow["counts"],
        "an aborted shadow is not called"
    );

    // Until its settings change: a fresh shadow with fresh counts.
    host::write_atomically(
        &host.plugin_dir().join("probe.next.settings.json"),
        json!({"mark": "v1"}).to_string().as_bytes(),
    );
    host.eventually(WAIT, || async {
        let shadow = probe_shadow(&report(&host)?)?;
        anyhow::ensure!(shadow["state"] == "running", "not restarted: {shadow}");
        Ok(())
    })
    .await;
    probe::create_configmap(&configmaps, "c", "mark", &[]).await;
    all_marked(&host, &configmaps, &["c"], "v1").await;
    host.eventually(WAIT, || async {
        let shadow = probe_shadow(&report(&host)?)?;
        anyhow::ensure!(count(&shadow, "equal") >= 1, "{shadow}");
        anyhow::ensure!(count(&shadow, "failed") == 0, "{shadow}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn an_equal_shadow_is_promoted_after_n_reconciles_when_asked() {
    let ns = TestNamespace::create("shadow-auto").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    for name in ["a", "b", "c"] {
        probe::create_configmap(&configmaps, name, "mark", &[]).await;
    }
    // Another build of the same logic (a custom section makes it a
    // different component), with the same settings.
    let build = host::variant(&probe_bytes(), "kubewasm-e2e-shadow", b"2");
    let dir = directory("v1", &build, &json!({"mark": "v1"}));
    let host = Host::spawn(
        &ns,
        dir,
        &["--namespace", ns.name(), "--shadow-promote-after", "3"],
    );
    all_marked(&host, &configmaps, &["a", "b", "c"], "v1").await;
    let digest = kubewasm_e2e::cluster_plugins::sha256(&build);
    let digest = digest.trim_start_matches("sha256:").to_string();
    host.eventually(WAIT, || async {
        let metrics = host.metrics()?;
        anyhow::ensure!(
            metrics
                .lines()
                .any(|l| l.starts_with("kubewasm_plugin_info")
                    && l.contains("plugin=\"probe\"")
                    && l.contains(&digest)),
            "the promoted build does not serve yet"
        );
        Ok(())
    })
    .await;
    assert_eq!(
        std::fs::read(host.plugin_dir().join("probe.wasm")).unwrap(),
        build
    );
    assert!(!Path::new(&host.plugin_dir().join("probe.next.wasm")).exists());
    assert!(host.log().contains("shadow promoted"));
}

#[tokio::test]
async fn a_broken_shadow_is_reported_and_never_touches_the_serving_version() {
    let ns = TestNamespace::create("shadow-broken").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    let dir = directory("v1", b"\0asm but not a component", &json!({"mark": "v2"}));
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);
    all_marked(&host, &configmaps, &["a"], "v1").await;
    let failure = |report: &Value| -> anyhow::Result<String> {
        let failures = report["loadFailures"].as_array().unwrap();
        let failure = failures
            .iter()
            .find(|f| f["file"] == "probe.next.wasm")
            .ok_or_else(|| anyhow::anyhow!("no load failure in {report}"))?;
        Ok(failure["error"].as_str().unwrap().to_string())
    };
    let error = host
        .eventually(WAIT, || async { failure(&report(&host)?) })
        .await;
    assert!(error.contains("probe.next.wasm"), "{error}");
    assert!(probe_shadow(&report(&host).unwrap()).is_err());
    assert_eq!(
        host.metric_with(
            "kubewasm_plugin_load_failing",
            &[("file", "probe.next.wasm")]
        ),
        Some(1.0)
    );
    let (ok, text) = cli(&host, &[]);
    assert!(ok, "{text}");
    assert!(text.contains("probe.next.wasm: NOT LOADED"), "{text}");

    // Another plugin (with settings it accepts) is no shadow of probe.
    host::write_atomically(&host.plugin_dir().join("probe.next.settings.json"), b"{}");
    let other = std::fs::read(component("v01-labeler")).unwrap();
    host::write_atomically(&host.plugin_dir().join("probe.next.wasm"), &other);
    let error = host
        .eventually(WAIT, || async {
            let error = failure(&report(&host)?)?;
            anyhow::ensure!(error.contains("describes plugin"), "{error}");
            Ok(error)
        })
        .await;
    assert!(error.contains("v01-labeler"), "{error}");

    // The serving version was never touched: it still serves and marks.
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    all_marked(&host, &configmaps, &["a", "b"], "v1").await;
    assert_eq!(host.count("plugin installed plugin=probe"), 1);

    // A good shadow loads and the failure is gone.
    host::write_atomically(&host.plugin_dir().join("probe.next.wasm"), &probe_bytes());
    let settings = json!({"mark": "v2"}).to_string();
    host::write_atomically(
        &host.plugin_dir().join("probe.next.settings.json"),
        settings.as_bytes(),
    );
    host.eventually(WAIT, || async {
        let report = report(&host)?;
        anyhow::ensure!(failure(&report).is_err(), "still failing: {report}");
        anyhow::ensure!(probe_shadow(&report)?["state"] == "running");
        Ok(())
    })
    .await;
    assert_eq!(
        host.metric_with(
            "kubewasm_plugin_load_failing",
            &[("file", "probe.next.wasm")]
        ),
        None
    );
}
