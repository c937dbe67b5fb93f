//! The plugin directory and the compile cache are input too (issue 10 §1),
//! end to end with the `kubewasm run` binary on the real control plane:
//!
//! - a FIFO, a symlink to `/dev/zero`, a symlink to a component outside
//!   the plugin directory and a 2 GiB file, present at startup and added
//!   while the host runs, are each refused by name (log, `kubewasm_plugin_load_failing`)
//!   without blocking: the working plugin reconciles, and a good plugin
//!   added afterwards loads;
//! - a compiled artefact copied over another plugin's compile cache entry is
//!   refused (`kubewasm_compile_cache_rejected_total`), not run: that plugin
//!   behaves as itself.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kubewasm_e2e::TestNamespace;
use kubewasm_e2e::host::{Host, component, sample, write_atomically};
use kubewasm_e2e::probe::{self, MARK};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
const NOT_LOADED: &str = "plugin file not loaded";

/// Waits until `name` carries the probe's mark and, if `team` is given,
/// the label-propagator's `team` label with that value.
async fn reconciled(host: &Host, configmaps: &Api<ConfigMap>, name: &str, team: Option<&str>) {
    host.eventually(WAIT, || async {
        let cm = configmaps.get(name).await?;
        let marked = probe::annotation(&cm, MARK);
        anyhow::ensure!(marked.as_deref() == Some("seen"), "{name} is not marked");
        let labelled = cm.metadata.labels.unwrap_or_default().get("team").cloned();
        anyhow::ensure!(
            team.is_none() || labelled.as_deref() == team,
            "{name} has team={labelled:?}"
        );
        Ok(())
    })
    .await
}

/// Writes `name`'s settings, then its component by rename, so the host
/// never sees the component without them.
fn add_plugin(dir: &Path, name: &str, settings: serde_json::Value) {
    std::fs::write(
        dir.join(format!("{name}.settings.json")),
        settings.to_string(),
    )
    .unwrap();
    let wasm = std::fs::read(component(name)).unwrap();
    write_atomically(&dir.join(format!("{name}.wasm")), &wasm);
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A FIFO, a symlink to `/dev/zero`, a symlink to a working component
/// outside `dir` and a 2 GiB file, named `fifo{suffix}.wasm`,
/// `zero{suffix}.wasm`, `outside{suffix}.wasm` and `big{suffix}.wasm`, with
/// what the host must say about each.
fn hostile_files(dir: &Path, outside: &Path, suffix: &str) -> Vec<(String, String)> {
    let fifo = format!("fifo{suffix}.wasm");
    mkfifo(&dir.join(&fifo));
    let zero = format!("zero{suffix}.wasm");
    std::os::unix::fs::symlink("/dev/zero", dir.join(&zero)).unwrap();
    let escape = format!("outside{suffix}.wasm");
    std::os::unix::fs::symlink(outside, dir.join(&escape)).unwrap();
    // Sparse: 2 GiB long, no disk blocks.
    let big = format!("big{suffix}.wasm");
    std::fs::File::create(dir.join(&big))
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    let outside_dir =
        |target: &str| format!("it is a symlink to {target}, outside the plugin directory");
    vec![
        (fifo, "it is a FIFO, not a regular file".to_owned()),
        (zero, outside_dir("/dev/zero")),
        (escape, outside_dir(&outside.display().to_string())),
        // The default --max-plugin-file-mib, 64.
        (
            big,
            format!("it is larger than the limit of {} bytes", 64 << 20),
        ),
    ]
}

/// Waits until each file is refused with its reason, and checks it was
/// logged once and shows in `kubewasm_plugin_load_failing`.
async fn refused(host: &Host, files: &[(String, String)]) {
    for (file, reason) in files {
        host.logged(WAIT, &format!("/{file}: {reason}")).await;
    }
    let log = host.log();
    let metrics = host.metrics().unwrap();
    for (file, _) in files {
        let lines = log
            .lines()
            .filter(|l| l.contains(NOT_LOADED) && l.contains(&format!("/{file}:")))
            .count();
        assert_eq!(lines, 1, "{file} refused {lines} times:\n{log}");
        let failing = format!("kubewasm_plugin_load_failing{{file=\"{file}\"}}");
        assert_eq!(sample(&metrics, &failing), Some(1.0), "{metrics}");
    }
}

#[tokio::test]
async fn special_files_in_the_plugin_directory_are_refused_by_name_and_block_nothing() {
    let ns = TestNamespace::create("inputs-files").await.unwrap();
    ns.label(json!({"team": "blue"})).await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();

    // A working plugin, and beside it three files that would block a
    // reader or load code from outside the directory (a real component:
    // following the link would load it).
    let outside = tempfile::tempdir().unwrap();
    let escaped = outside.path().join("label-propagator.wasm");
    std::fs::copy(component("label-propagator"), &escaped).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component("probe"), dir.path().join("probe.wasm")).unwrap();
    let at_start = hostile_files(dir.path(), &escaped, "");
    let host = Host::spawn(&ns, dir, &["--namespace", ns.name()]);

    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    reconciled(&host, &configmaps, "a", None).await;
    refused(&host, &at_start).await;

    // The same added while the host runs, then a good plugin: the
    // directory's reload is not blocked by them.
    let added = hostile_files(host.plugin_dir(), &escaped, "-added");
    refused(&host, &added).await;
    add_plugin(
        host.plugin_dir(),
        "label-propagator",
        json!({"labels": ["team"]}),
    );
    probe::create_configmap(&configmaps, "b", "mark", &[]).await;
    reconciled(&host, &configmaps, "a", Some("blue")).await;
    reconciled(&host, &configmaps, "b", Some("blue")).await;

    // The component behind the outside links was never loaded through
    // them: label-propagator was installed once, from its own file.
    assert_eq!(
        host.count("plugin installed plugin=label-propagator"),
        1,
        "{}",
        host.log()
    );
    refused(&host, &[at_start, added].concat()).await;
}

/// The `.cwasm` entries of a compile cache directory.
fn entries(cache: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
        .collect()
}

/// A plugin directory with `probe` and `label-propagator`.
fn both_plugins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component("probe"), dir.path().join("probe.wasm")).unwrap();
    add_plugin(dir.path(), "label-propagator", json!({"labels": ["team"]}));
    dir
}

#[tokio::test]
async fn an_artefact_copied_over_another_plugins_cache_entry_is_refused_not_run() {
    let ns = TestNamespace::create("inputs-cache").await.unwrap();
    ns.label(json!({"team": "blue"})).await.unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let cache_root = tempfile::tempdir().unwrap();
    let cache = cache_root.path().join("compiled");
    let cache_arg = cache.to_str().unwrap();
    let args = ["--namespace", ns.name(), "--compile-cache", cache_arg];

    // One host run compiles probe, then label-propagator (added while it
    // runs), into an empty cache: one new entry each.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(component("probe"), dir.path().join("probe.wasm")).unwrap();
    let mut first = Host::spawn(&ns, dir, &args);
    first.logged(WAIT, "plugin installed plugin=probe").await;
    let probe_entries = entries(&cache);
    assert_eq!(probe_entries.len(), 1, "{probe_entries:?}");
    add_plugin(
        first.plugin_dir(),
        "label-propagator",
        json!({"labels": ["team"]}),
    );
    first
        .logged(WAIT, "plugin installed plugin=label-propagator")
        .await;
    assert!(
        first.terminate(WAIT).is_some(),
        "the first host did not stop"
    );
    let probe_entry = probe_entries.into_iter().next().unwrap();
    let propagator_entry = entries(&cache)
        .into_iter()
        .find(|e| *e != probe_entry)
        .expect("label-propagator's entry");

    // Someone who may write the cache puts probe's artefact (a valid entry
    // of this host) in label-propagator's place.
    std::fs::copy(&probe_entry, &propagator_entry).unwrap();
    let host = Host::spawn(&ns, both_plugins(), &args);

    // label-propagator behaves as itself: it labels, and probe marks.
    probe::create_configmap(&configmaps, "a", "mark", &[]).await;
    reconciled(&host, &configmaps, "a", Some("blue")).await;
    for plugin in ["probe", "label-propagator"] {
        let installed = format!("plugin installed plugin={plugin} ");
        assert_eq!(host.count(&installed), 1, "{}", host.log());
    }
    assert_eq!(host.count(NOT_LOADED), 0, "{}", host.log());
    let refused_entry = host
        .log()
        .lines()
        .find(|l| l.contains("compile cache entry refused"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no refusal logged:\n{}", host.log()));
    assert!(
        refused_entry.contains(&propagator_entry.display().to_string())
            && refused_entry.contains("label-propagator.wasm"),
        "{refused_entry}"
    );
    let metrics = host.metrics().unwrap();
    assert_eq!(
        sample(&metrics, "kubewasm_compile_cache_rejected_total"),
        Some(1.0),
        "{metrics}"
    );
    // The entry was recompiled and written again, for label-propagator.
    assert_ne!(
        std::fs::read(&propagator_entry).unwrap(),
        std::fs::read(&probe_entry).unwrap()
    );
}
