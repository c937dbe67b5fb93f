//! Conformance: every example plugin, built as a component by
//! `plugins/build.sh`, runs every fixture case under `plugins/**/fixtures`
//! through the code path of `kubewasm eval`, and must return exactly the
//! expected outcome (see `plugins/label-propagator/fixtures/README.md` for
//! the layout). The same cases run natively in the plugins' own tests; here
//! they prove the compiled components, the WIT bindings on both sides and the
//! host's conversions agree, for Rust and JavaScript alike.

use std::path::{Path, PathBuf};
use std::process::Command;

use kubewasm::cmd::check::{self, OfflineError};
use kubewasm::cmd::cli::{CheckArgs, EvalArgs, EventArg, OutputFormat, RuntimeArgs};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `plugins/build.sh` put the components.
fn plugin_dir() -> PathBuf {
    std::env::var_os("KUBEWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("plugins/dist"))
}

fn component(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the example plugins first with plugins/build.sh \
         (or run the whole suite with tests/run.sh)",
        path.display()
    );
    path
}

fn runtime_args() -> RuntimeArgs {
    RuntimeArgs {
        max_memory_mib: 128,
        call_timeout_ms: 10_000,
        max_result_kib: 4096,
        max_intents: 1000,
        max_host_read_mib: 64,
        plugin_memory_budget_mib: 1024,
        max_plugin_file_mib: 64,
        compile_cache: None,
        no_compile_cache: false,
    }
}

/// The case's own file, else the one shared by every case of the plugin.
fn case_or_shared(case: &Path, name: &str) -> Option<PathBuf> {
    [case.join(name), case.join("..").join(name)]
        .into_iter()
        .find(|p| p.exists())
}

fn event_of(case: &Path) -> EventArg {
    match std::fs::read_to_string(case.join("event"))
        .ok()
        .as_deref()
        .map(str::trim)
    {
        None | Some("applied") => EventArg::Applied,
        Some("deleted") => EventArg::Deleted,
        Some("resync") => EventArg::Resync,
        Some("finalizing") => EventArg::Finalizing,
        Some(other) => panic!("{}: unknown event {other:?}", case.display()),
    }
}

/// The case's `now` (RFC 3339, in the case or shared by the plugin's
/// cases), else the Unix epoch, as the SDKs' fixture runners read it.
fn now_of(case: &Path) -> i64 {
    let Some(path) = case_or_shared(case, "now") else {
        return 0;
    };
    let text = std::fs::read_to_string(&path).unwrap();
    let now: jiff::Timestamp = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    now.as_millisecond()
}

fn run_fixtures(plugin: &str, fixtures: &str) {
    let wasm = component(plugin);
    let root = repo().join(fixtures);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n != "cache"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {}", root.display());
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if let Err(problem) = run_case(&wasm, case) {
            failures.push(format!("{plugin}/{name}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn run_case(wasm: &Path, case: &Path) -> Result<(), String> {
    let settings = case_or_shared(case, "settings.json");
    if !case.join("object.yaml").exists() {
        // A settings-only case: the plugin must refuse them with this message.
        let expected = std::fs::read_to_string(case.join("expected-error.txt"))
            .map_err(|e| format!("no object.yaml and no expected-error.txt: {e}"))?;
        let result = check::check(&CheckArgs {
            plugin: wasm.to_path_buf(),
            settings,
            output: OutputFormat::Json,
            runtime: runtime_args(),
        });
        return match result {
            Err(OfflineError::Usage(message)) if message.contains(expected.trim()) => Ok(()),
            other => Err(format!(
                "expected settings to be refused with {:?}, got {other:?}",
                expected.trim()
            )),
        };
    }
    let output = check::eval(&EvalArgs {
        plugin: wasm.to_path_buf(),
        object: case.join("object.yaml"),
        event: event_of(case),
        now: Some(now_of(case)),
        settings,
        cache: case_or_shared(case, "cache"),
        output: OutputFormat::Json,
        runtime: runtime_args(),
    })
    .map_err(|e| format!("eval failed: {e}"))?;
    let actual: Value = serde_json::from_str(&output).map_err(|e| e.to_string())?;
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(case.join("expected.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("expected.json: {e}"))?;
    if actual != expected {
        return Err(format!(
            "outcome differs\nexpected: {expected:#}\nactual:   {actual:#}"
        ));
    }
    Ok(())
}

#[test]
fn label_propagator_fixtures() {
    run_fixtures("label-propagator", "plugins/label-propagator/fixtures");
}

#[test]
fn website_fixtures() {
    run_fixtures("website", "plugins/website/fixtures");
}

/// A plugin built against the previous contract, `kubewasm:plugin@0.1.0`,
/// still loads and reconciles as it did.
#[test]
fn contract_0_1_plugin_fixtures() {
    run_fixtures("v01-labeler", "plugins/v01-labeler/fixtures");
}

#[test]
fn javascript_configmap_hasher_fixtures() {
    run_fixtures("configmap-hasher", "plugins/js/configmap-hasher/fixtures");
}

fn kubewasm(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kubewasm"))
        .args(args)
        .output()
        .expect("kubewasm runs")
}

#[test]
fn check_prints_each_plugins_description() {
    for (plugin, subscribes_to, contract) in [
        ("label-propagator", "Namespace", "0.2.0"),
        ("website", "Website", "0.2.0"),
        ("configmap-hasher", "ConfigMap", "0.2.0"),
        ("v01-labeler", "ConfigMap", "0.1.0"),
    ] {
        let path = component(plugin);
        let out = kubewasm(&["check", path.to_str().unwrap(), "--output", "json"]);
        assert!(
            out.status.success(),
            "{plugin}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["name"], plugin);
        assert_eq!(report["fieldManager"], format!("kubewasm/{plugin}"));
        assert_eq!(
            report["world"],
            format!("kubewasm:plugin/plugin@{contract}")
        );
        let kinds: Vec<&str> = report["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["kind"].as_str())
            .collect();
        assert!(
            kinds.contains(&subscribes_to),
            "{plugin} subscribes to {kinds:?}"
        );
    }
}

#[test]
fn exit_codes_tell_usage_errors_from_plugin_failures() {
    let dir = tempfile::tempdir().unwrap();
    let missing = kubewasm(&["check", dir.path().join("nope.wasm").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.wasm"));

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let failed = kubewasm(&["check", junk.to_str().unwrap()]);
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&failed.stderr).trim(),
        format!(
            "error: {}: not a WebAssembly file (it does not start with the \\0asm magic bytes)",
            junk.display()
        )
    );

    let bad_flag = kubewasm(&["eval", junk.to_str().unwrap()]);
    assert_eq!(
        bad_flag.status.code(),
        Some(2),
        "missing --object is a usage error"
    );

    let bad_filter = kubewasm(&["--log", "kubewasm=loud", "check", junk.to_str().unwrap()]);
    assert_eq!(bad_filter.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad_filter.stderr);
    assert!(
        stderr.contains(r#"invalid --log filter "kubewasm=loud""#),
        "{stderr}"
    );
}
