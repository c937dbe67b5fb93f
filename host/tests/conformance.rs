//! Conformance: every example plugin, built as a component by
//! `plugins/build.sh`, runs every fixture case under `plugins/**/fixtures`
//! through the runner of `kubewasm test`, and must return exactly the
//! expected outcome (see `plugins/label-propagator/fixtures/README.md` for
//! the layout). The same cases run natively in the plugins' own tests; here
//! they prove the compiled components, the WIT bindings on both sides and the
//! host's conversions agree, for Rust, JavaScript and Python alike.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use kubewasm::cmd::test::{Suite, SuiteReport, Verdict, run_suite};
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

/// Runs every case under `fixtures` against the component `plugin` through
/// `kubewasm test`'s runner, and fails with each failed case's diff.
fn run_fixtures(plugin: &str, fixtures: &str) -> SuiteReport {
    let suite = Suite {
        component: component(plugin),
        fixtures: repo().join(fixtures),
    };
    let report = run_suite(&suite, &support::runtime_args(), false, &mut |_| {})
        .unwrap_or_else(|e| panic!("{plugin}: {}", kubewasm::error_chain(&e)));
    let failures: Vec<String> = report
        .cases
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
        .map(|c| format!("{plugin}/{}", c.render()))
        .collect();
    assert!(
        failures.is_empty(),
        "{}\n{}",
        report.summary(),
        failures.join("\n")
    );
    report
}

#[test]
fn label_propagator_fixtures() {
    run_fixtures("label-propagator", "plugins/label-propagator/fixtures");
}

#[test]
fn bench_labeller_fixtures() {
    run_fixtures("bench-labeller", "plugins/bench-labeller/fixtures");
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

/// The website plugin in TypeScript (`plugins/ts/website-ts`, with the
/// TypeScript SDK) passes the Rust plugin's fixtures unchanged.
#[test]
fn typescript_website_fixtures() {
    run_fixtures("website-ts", "plugins/website/fixtures");
}

#[test]
fn go_namespace_quota_labeller_fixtures() {
    run_fixtures(
        "namespace-quota-labeller",
        "plugins/go/namespace-quota-labeller/fixtures",
    );
}

#[test]
fn python_configmap_validator_fixtures() {
    run_fixtures(
        "configmap-validator",
        "plugins/python/configmap-validator/fixtures",
    );
}

#[test]
fn c_configmap_size_guard_fixtures() {
    run_fixtures(
        "configmap-size-guard",
        "plugins/c/configmap-size-guard/fixtures",
    );
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
        ("configmap-validator", "ConfigMap", "0.2.0"),
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

/// Copies a directory tree (a plugin's fixtures) for a test to change.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a plugin author sees when an outcome changes: `kubewasm test` on a
/// project directory (component found in it, cases in `fixtures/`) fails,
/// names the case and the JSON path of the changed field with both values,
/// shows a line diff, and writes the same into the JUnit report.
#[test]
fn a_wrong_expected_outcome_fails_with_a_diff_naming_the_field() {
    let project = tempfile::tempdir().unwrap();
    copy_tree(
        &repo().join("plugins/label-propagator/fixtures"),
        &project.path().join("fixtures"),
    );
    std::fs::copy(
        component("label-propagator"),
        project.path().join("label-propagator.wasm"),
    )
    .unwrap();
    let expected = project
        .path()
        .join("fixtures/configmap-gets-labels/expected.json");
    let mut outcome: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    outcome["intents"][0]["object"]["metadata"]["labels"]["team"] = "payments".into();
    std::fs::write(&expected, serde_json::to_string_pretty(&outcome).unwrap()).unwrap();

    let junit = project.path().join("report.xml");
    let out = kubewasm(&[
        "--log",
        "warn",
        "test",
        project.path().to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  configmap-gets-labels"), "{stdout}");
    assert!(
        stdout.contains(
            r#"$.intents[0].object.metadata.labels.team: expected "payments", actual "web-store""#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"-             "team": "payments""#),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#"+             "team": "web-store""#),
        "{stdout}"
    );
    assert!(stdout.contains("ok    service-stale-value"), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 13 passed, 1 failed"),
        "{stdout}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: 1 of 14 fixture cases failed"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"<testsuite name="label-propagator" tests="14" failures="1""#),
        "{xml}"
    );
    assert!(
        xml.contains("labels.team: expected &quot;payments&quot;, actual &quot;web-store&quot;\" type=\"mismatch\">"),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase name="service-stale-value" classname="label-propagator""#),
        "{xml}"
    );

    // Put right again, the same command passes.
    outcome["intents"][0]["object"]["metadata"]["labels"]["team"] = "web-store".into();
    std::fs::write(&expected, serde_json::to_string_pretty(&outcome).unwrap()).unwrap();
    let out = kubewasm(&["--log", "warn", "test", project.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("test result: ok. 14 passed, 0 failed"),
        "{stdout}"
    );
}

/// `kubewasm test` refuses, as a usage error, a directory whose component
/// it cannot tell.
#[test]
fn test_needs_one_component() {
    let project = tempfile::tempdir().unwrap();
    copy_tree(
        &repo().join("plugins/label-propagator/fixtures"),
        &project.path().join("fixtures"),
    );
    let out = kubewasm(&["test", project.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no component (.wasm) in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["a.wasm", "b.wasm"] {
        std::fs::write(project.path().join(name), b"").unwrap();
    }
    let out = kubewasm(&["test", project.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("several components"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The conformance suite (`conformance/fixtures`, specified in
/// `conformance/README.md`) passes for the conformance plugin of every
/// language, with the same outcome for every case.
#[test]
fn conformance_suite_passes_identically_in_every_language() {
    let rust = run_fixtures("conformance-rust", "conformance/fixtures");
    let names = |report: &SuiteReport| -> Vec<String> {
        report.cases.iter().map(|c| c.name.clone()).collect()
    };
    assert_eq!(rust.plugin, "conformance");
    for other in [
        "conformance-js",
        "conformance-ts",
        "conformance-py",
        "conformance-go",
        "conformance-c",
    ] {
        let report = run_fixtures(other, "conformance/fixtures");
        assert_eq!(names(&report), names(&rust), "{other}");
        assert_eq!(report.plugin, "conformance", "{other}");
    }
}

/// `--bless` writes each case's actual outcome into its `expected.json`,
/// after which the same cases pass.
#[test]
fn bless_writes_the_actual_outcomes() {
    let project = tempfile::tempdir().unwrap();
    let fixtures = project.path().join("fixtures");
    copy_tree(&repo().join("plugins/label-propagator/fixtures"), &fixtures);
    let expected = fixtures.join("service-stale-value/expected.json");
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    std::fs::write(&expected, "{}").unwrap();
    let wasm = component("label-propagator");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--log",
            "warn",
            "test",
            project.path().to_str().unwrap(),
            "--plugin",
            wasm.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        kubewasm(&args)
    };
    assert_eq!(run(&[]).status.code(), Some(1));
    let blessed = run(&["--bless"]);
    let stdout = String::from_utf8_lossy(&blessed.stdout);
    assert!(blessed.status.success(), "{stdout}");
    assert!(stdout.contains("bless service-stale-value"), "{stdout}");
    let rewritten: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    assert_eq!(rewritten, original);
    assert!(run(&[]).status.success());
}
