//! Hot reload end to end: plugin files change under a running `kubewasm
//! run` and its behaviour follows, without a restart, on the real control
//! plane. Uses the `probe` plugin, whose `mark` annotation comes from its
//! settings, so each version of the plugin leaves a different mark.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{self, Host, component, sample, write_atomically};
use kubewasm_e2e::probe::{self, ECHO, MARK};
use serde_json::json;
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(120);
const INSTALLED: &str = "plugin installed plugin=probe";

fn settings(mark: &str) -> Vec<u8> {
    json!({ "mark": mark }).to_string().into_bytes()
}

/// The probe component with a custom section appended: the same logic, a
/// different content hash (so a different build as far as the host knows).
fn variant(tag: u8) -> Vec<u8> {
    let probe = std::fs::read(component("probe")).unwrap();
    host::variant(&probe, "kubewasm-e2e-variant", &[tag])
}

async fn create_configmap(configmaps: &Api<ConfigMap>, name: &str) {
    probe::create_configmap(configmaps, name, "mark", &[("n", "0")]).await;
}

/// Waits until every named ConfigMap carries `mark`.
async fn all_marked(host: &Host, configmaps: &Api<ConfigMap>, names: &[&str], mark: &str) {
    host.eventually(WAIT, || async {
        for name in names {
            let cm = configmaps.get(name).await?;
            let found = probe::annotation(&cm, MARK);
            anyhow::ensure!(
                found.as_deref() == Some(mark),
                "{name} has mark {found:?}, not {mark}"
            );
        }
        Ok(())
    })
    .await;
}

async fn log_contains(host: &Host, needle: &str, times: usize) {
    host.eventually(WAIT, || async {
        let n = host.count(needle);
        anyhow::ensure!(
            n >= times,
            "{needle:?} logged {n} times, waiting for {times}"
        );
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_replaced_plugin_changes_behaviour_and_a_broken_one_keeps_the_old() {
    let ns = TestNamespace::create("reload").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    for name in ["a", "b"] {
        create_configmap(&configmaps, name).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("probe.wasm");
    let settings_file = dir.path().join("probe.settings.json");
    let good = std::fs::read(component("probe")).unwrap();
    std::fs::write(&wasm, &good).unwrap();
    std::fs::write(&settings_file, settings("v1")).unwrap();
    let mut host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);
    all_marked(&host, &configmaps, &["a", "b"], "v1").await;

    // New settings: existing objects are resynced by the new version, and
    // the next event is handled by it.
    write_atomically(&settings_file, &settings("v2"));
    all_marked(&host, &configmaps, &["a", "b"], "v2").await;
    create_configmap(&configmaps, "c").await;
    all_marked(&host, &configmaps, &["c"], "v2").await;

    // A truncated copy and a file that is not Wasm at all: reported, and
    // the working version keeps serving.
    write_atomically(&wasm, &good[..good.len() / 2]);
    log_contains(&host, "plugin file not loaded", 1).await;
    write_atomically(&wasm, b"this is not a component");
    log_contains(&host, "not a WebAssembly file", 1).await;
    create_configmap(&configmaps, "d").await;
    all_marked(&host, &configmaps, &["d"], "v2").await;
    let log = host.log();
    let failure = log
        .lines()
        .find(|l| l.contains("plugin file not loaded"))
        .unwrap();
    assert!(
        failure.contains("probe.wasm") && failure.contains("still_serving=probe"),
        "the failure names the file and what still serves: {failure}"
    );
    // Each failing content is logged once (d was created and marked since),
    // and the file is shown failing in the metrics.
    assert_eq!(host.count("plugin file not loaded"), 2, "{log}");
    let failing = r#"kubewasm_plugin_load_failing{file="probe.wasm"}"#;
    let metrics = host.metrics().unwrap();
    assert_eq!(sample(&metrics, failing), Some(1.0), "{metrics}");

    // Restoring a good file recovers; a new version then takes over.
    write_atomically(&wasm, &good);
    write_atomically(&settings_file, &settings("v3"));
    all_marked(&host, &configmaps, &["a", "b", "c", "d"], "v3").await;
    let metrics = host.metrics().unwrap();
    assert_eq!(sample(&metrics, failing), Some(0.0), "{metrics}");

    // Another build of the component: its calls are the ones that reconcile
    // now (each reconcile names the build it ran on).
    let build = variant(7);
    let digest = hex::encode(Sha256::digest(&build));
    let version = format!("version=\"{}\"", &digest[..12]);
    assert_eq!(host.count(&version), 0);
    write_atomically(&wasm, &build);
    write_atomically(&settings_file, &settings("v4"));
    all_marked(&host, &configmaps, &["a", "b", "c", "d"], "v4").await;
    let by_new_build = host
        .log()
        .lines()
        .filter(|l| l.contains(&version) && l.contains("reconcile done"))
        .count();
    assert!(by_new_build >= 4, "{by_new_build} reconciles on {version}");
    assert!(host.is_running());
    assert_eq!(host.count("kubewasm running"), 1, "the host restarted");
}

#[tokio::test]
async fn a_configmap_volume_update_reloads_exactly_once() {
    let ns = TestNamespace::create("reload-volume").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    create_configmap(&configmaps, "a").await;

    // The layout kubelet's atomic writer gives a ConfigMap volume.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let first = root.join("..2026_11_22_08_00_00.000000001");
    std::fs::create_dir(&first).unwrap();
    std::fs::copy(component("probe"), first.join("probe.wasm")).unwrap();
    std::fs::write(first.join("probe.settings.json"), settings("v1")).unwrap();
    std::os::unix::fs::symlink(first.file_name().unwrap(), root.join("..data")).unwrap();
    for file in ["probe.wasm", "probe.settings.json"] {
        std::os::unix::fs::symlink(Path::new("..data").join(file), root.join(file)).unwrap();
    }
    let root = root.to_path_buf();
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);
    all_marked(&host, &configmaps, &["a"], "v1").await;
    assert_eq!(host.count(INSTALLED), 1);

    // The update: a new timestamped directory, `..data` re-pointed by an
    // atomic rename, the old directory removed.
    let second = root.join("..2026_11_22_08_05_00.000000002");
    std::fs::create_dir(&second).unwrap();
    std::fs::copy(component("probe"), second.join("probe.wasm")).unwrap();
    std::fs::write(second.join("probe.settings.json"), settings("v2")).unwrap();
    std::os::unix::fs::symlink(second.file_name().unwrap(), root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();

    all_marked(&host, &configmaps, &["a"], "v2").await;
    // Give any straggling event batch time to (wrongly) reload again: the
    // debounce is 300 ms.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(host.count(INSTALLED), 2, "{}", host.log());
}

/// Per object, the reconcile log lines of the probe plugin alternate
/// between started and finished: never two calls at once for one key.
fn assert_one_call_at_a_time(log: &str) {
    let mut running: BTreeMap<String, bool> = BTreeMap::new();
    for line in log
        .lines()
        .filter(|l| l.contains("reconcile{plugin=probe "))
    {
        let Some(object) = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("object="))
        else {
            continue;
        };
        let started = line.contains("reconcile started");
        let finished = line.contains("reconcile finished");
        let state = running.entry(object.to_string()).or_default();
        if started {
            assert!(!*state, "two calls at once for {object}: {line}");
            *state = true;
        } else if finished {
            assert!(*state, "finished without a start for {object}: {line}");
            *state = false;
        }
    }
    assert!(!running.is_empty(), "no reconcile lines in the log");
}

#[tokio::test]
async fn twenty_swaps_under_load_lose_nothing_and_never_overlap() {
    let ns = TestNamespace::create("reload-swaps").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let names: Vec<String> = (0..8).map(|i| format!("cm-{i}")).collect();
    for name in &names {
        create_configmap(&configmaps, name).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("probe.wasm");
    let settings_file = dir.path().join("probe.settings.json");
    std::fs::write(&wasm, variant(0)).unwrap();
    std::fs::write(&settings_file, settings("v0")).unwrap();
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    all_marked(&host, &configmaps, &refs, "v0").await;

    // Objects change continuously while the plugin is swapped.
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let configmaps = configmaps.clone();
        let names = names.clone();
        tokio::spawn(async move {
            let mut last = BTreeMap::new();
            for n in 1u64.. {
                for name in &names {
                    let patch = json!({"data": {"n": n.to_string()}});
                    configmaps
                        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await
                        .unwrap();
                    last.insert(name.clone(), n.to_string());
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            last
        })
    };

    // Each swap changes both the component (another build) and the
    // settings, waiting for the host to take it before the next one.
    for swap in 1..=20u8 {
        write_atomically(&wasm, &variant(swap % 2));
        write_atomically(&settings_file, &settings(&format!("v{swap}")));
        log_contains(&host, INSTALLED, 1 + swap as usize).await;
    }
    stop.send(()).unwrap();
    let last = writer.await.unwrap();

    // Every object ends reconciled by the final version, in its final state.
    host.eventually(WAIT, || async {
        for (name, n) in &last {
            let cm = configmaps.get(name).await?;
            let (mark, echo) = (probe::annotation(&cm, MARK), probe::annotation(&cm, ECHO));
            anyhow::ensure!(
                mark.as_deref() == Some("v20") && echo.as_ref() == Some(n),
                "{name}: mark {mark:?} echo {echo:?}, want v20 and {n}"
            );
        }
        Ok(())
    })
    .await;
    assert_one_call_at_a_time(&host.log());
}

#[tokio::test]
async fn removing_a_plugin_file_unloads_it_and_stops_unneeded_informers() {
    let ns = TestNamespace::create("reload-remove").await.unwrap();
    let team = format!("team-{}", ns.name());
    ns.label(json!({&team: "blue"})).await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    create_configmap(&configmaps, "before").await;
    let host = Host::start(
        &ns,
        &[
            ("probe", None),
            ("label-propagator", Some(json!({"labels": [&team]}))),
        ],
        &["--namespace", ns.name()],
    );
    all_marked(&host, &configmaps, &["before"], "seen").await;

    // probe goes; label-propagator still needs the ConfigMap informer.
    std::fs::remove_file(host.plugin_dir().join("probe.wasm")).unwrap();
    log_contains(&host, "plugin unloaded", 1).await;
    create_configmap(&configmaps, "after").await;
    host.eventually(WAIT, || async {
        let cm = configmaps.get("after").await?;
        anyhow::ensure!(cm.metadata.labels.unwrap_or_default().contains_key(&team));
        Ok(())
    })
    .await;
    let cm = configmaps.get("after").await.unwrap();
    assert_eq!(
        probe::annotation(&cm, MARK),
        None,
        "an unloaded plugin still ran"
    );
    assert_eq!(
        host.count("stopping informer: no subscriber left group= version=v1 kind=ConfigMap"),
        0,
        "the ConfigMap informer label-propagator needs was stopped:\n{}",
        host.log()
    );

    // label-propagator goes too: nothing needs any informer any more.
    std::fs::remove_file(host.plugin_dir().join("label-propagator.wasm")).unwrap();
    log_contains(&host, "plugin unloaded", 2).await;
    for (group, kind) in [
        ("", "Namespace"),
        ("", "ConfigMap"),
        ("apps", "Deployment"),
        ("", "Service"),
    ] {
        let stopped =
            format!("stopping informer: no subscriber left group={group} version=v1 kind={kind}");
        log_contains(&host, &stopped, 1).await;
    }
}

#[tokio::test]
async fn a_file_still_being_written_is_read_at_its_close_not_before() {
    use std::io::Write;
    let ns = TestNamespace::create("reload-writer").await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    create_configmap(&configmaps, "a").await;
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("probe.wasm");
    std::fs::write(&wasm, variant(1)).unwrap();
    std::fs::write(dir.path().join("probe.settings.json"), settings("v1")).unwrap();
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);
    all_marked(&host, &configmaps, &["a"], "v1").await;
    let loads = |h: &Host| h.count(INSTALLED);
    let before = loads(&host);

    // A writer copying a new build in place, slowly: half of it, a pause
    // well past the quiet period, then the rest.
    let next = variant(2);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&wasm)
        .unwrap();
    file.write_all(&next[..next.len() / 2]).unwrap();
    file.flush().unwrap();
    // A finished change elsewhere in the directory makes the host sync
    // while the component is half-written: it must not read it.
    write_atomically(&host.plugin_dir().join("other.settings.json"), b"{}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    create_configmap(&configmaps, "b").await;
    all_marked(&host, &configmaps, &["b"], "v1").await;
    assert_eq!(host.count("plugin file not loaded"), 0, "{}", host.log());
    file.write_all(&next[next.len() / 2..]).unwrap();
    drop(file);

    // Read once at the close: one more install, no failure.
    log_contains(&host, INSTALLED, before + 1).await;
    let metrics = host.metrics().unwrap();
    let failing = sample(
        &metrics,
        r#"kubewasm_plugin_load_failing{file="probe.wasm"}"#,
    );
    assert_ne!(failing, Some(1.0), "{metrics}");
    assert_eq!(host.count("plugin file not loaded"), 0, "{}", host.log());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(loads(&host), before + 1, "{}", host.log());
}
