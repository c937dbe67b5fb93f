//! `kubewasm push` and `kubewasm pull` against the real test registry
//! (`tests/registry/registry.sh`: distribution v3 with TLS and basic auth):
//! a round trip keeps the component byte for byte and prints its digests,
//! and each failure a user meets says which reference failed and why.

use std::path::Path;
use std::process::{Command, Output};

use kubewasm_e2e::host::{component, kubewasm_binary};
use kubewasm_e2e::registry::TestRegistry;
use kubewasm_e2e::unique_name;
use sha2::{Digest, Sha256};

fn kubewasm(args: &[&str], cache: &Path) -> Output {
    Command::new(kubewasm_binary())
        .args(args)
        // No user cache touched: compile and blob caches in the test's dir.
        .env("XDG_CACHE_HOME", cache)
        .env_remove("KUBEWASM_REGISTRY_AUTH")
        .env_remove("KUBEWASM_OCI_CACHE")
        .env_remove("KUBEWASM_COMPILE_CACHE")
        .output()
        .expect("the kubewasm binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The value of `key: value` in `kubewasm pull`'s output.
fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn push_then_pull_round_trips_the_component_and_prints_its_digests() {
    let registry = TestRegistry::shared().expect("test registry");
    let dir = tempfile::tempdir().unwrap();
    let plugin = component("conformance-rust");
    let bytes = std::fs::read(&plugin).unwrap();
    let reference = registry.reference(&format!("team/{}", unique_name("conformance")), "v1");
    let (auth, ca) = (path(&registry.auth), path(&registry.ca));

    let pushed = kubewasm(
        &[
            "push",
            path(&plugin),
            &reference,
            "--auth",
            auth,
            "--ca",
            ca,
        ],
        dir.path(),
    );
    assert!(pushed.status.success(), "push failed: {}", stderr(&pushed));
    let pinned = stdout(&pushed).trim().to_string();
    let manifest_digest = pinned
        .strip_prefix(&format!("{reference}@"))
        .unwrap_or_else(|| panic!("push printed {pinned:?}, not {reference}@sha256:…"));
    assert!(
        manifest_digest.starts_with("sha256:") && manifest_digest.len() == 71,
        "{pinned}"
    );

    let out = dir.path().join("pulled.wasm");
    let pulled = kubewasm(
        &[
            "pull",
            &reference,
            "-o",
            path(&out),
            "--auth",
            auth,
            "--ca",
            ca,
        ],
        dir.path(),
    );
    assert!(pulled.status.success(), "pull failed: {}", stderr(&pulled));
    let text = stdout(&pulled);
    assert_eq!(std::fs::read(&out).unwrap(), bytes, "pulled bytes differ");
    assert_eq!(field(&text, "reference"), pinned);
    assert_eq!(field(&text, "digest"), manifest_digest);
    let component_digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    assert_eq!(field(&text, "component"), component_digest);
    assert_eq!(field(&text, "name"), "conformance");
    assert_eq!(field(&text, "target"), "kubewasm:plugin/plugin@0.2.0");
    assert_eq!(field(&text, "cached"), "false");
    // The layer is in the content-addressed cache under its digest.
    let blob = dir
        .path()
        .join("kubewasm/oci/blobs/sha256")
        .join(component_digest.trim_start_matches("sha256:"));
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);

    // By digest, the layer comes from the cache; a tampered cache entry is
    // refused and pulled again.
    let again = kubewasm(&["pull", &pinned, "--auth", auth, "--ca", ca], dir.path());
    assert!(
        again.status.success(),
        "pull by digest failed: {}",
        stderr(&again)
    );
    assert_eq!(field(&stdout(&again), "cached"), "true");
    std::fs::write(&blob, b"\0asm tampered").unwrap();
    let repaired = kubewasm(&["pull", &pinned, "--auth", auth, "--ca", ca], dir.path());
    assert!(
        repaired.status.success(),
        "pull after tampering failed: {}",
        stderr(&repaired)
    );
    assert_eq!(field(&stdout(&repaired), "cached"), "false");
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);
}

#[test]
fn content_that_does_not_match_its_digest_is_refused_and_not_cached() {
    let registry = TestRegistry::shared().expect("test registry");
    let dir = tempfile::tempdir().unwrap();
    // A build of its own (a custom section more), so corrupting its blob in
    // the registry touches no other test's content.
    let original = std::fs::read(component("conformance-rust")).unwrap();
    let bytes = kubewasm_e2e::host::variant(&original, "oci-test", unique_name("m").as_bytes());
    let plugin = dir.path().join("plugin.wasm");
    std::fs::write(&plugin, &bytes).unwrap();
    let reference = registry.reference(&format!("team/{}", unique_name("mismatch")), "v1");
    let (auth, ca) = (path(&registry.auth), path(&registry.ca));
    let pushed = kubewasm(
        &[
            "push",
            path(&plugin),
            &reference,
            "--auth",
            auth,
            "--ca",
            ca,
        ],
        dir.path(),
    );
    assert!(pushed.status.success(), "push failed: {}", stderr(&pushed));

    // The registry now serves other bytes of the same length under the digest.
    let hex = hex::encode(Sha256::digest(&bytes));
    let stored = registry.blob_file(&hex);
    let mut corrupted = std::fs::read(&stored).expect("the registry stores the layer");
    assert_eq!(corrupted, bytes);
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0xff;
    std::fs::write(&stored, &corrupted).unwrap();

    let output = kubewasm(
        &["pull", &reference, "--auth", auth, "--ca", ca],
        dir.path(),
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&reference) && message.contains("digest mismatch"),
        "{message}"
    );
    let cached = dir.path().join("kubewasm/oci/blobs/sha256").join(&hex);
    assert!(
        !cached.exists(),
        "a layer that failed verification was cached"
    );
}

#[test]
fn wrong_password_is_an_authentication_error_naming_the_reference() {
    let registry = TestRegistry::shared().expect("test registry");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("config.json");
    let config = serde_json::json!({"auths": {registry.host.as_str(): {
        "username": registry.user, "password": "not-the-password"}}});
    std::fs::write(&bad, config.to_string()).unwrap();
    let reference = registry.reference(&format!("team/{}", unique_name("auth")), "v1");
    let plugin = component("conformance-rust");
    let ca = path(&registry.ca);

    for args in [
        vec![
            "push",
            path(&plugin),
            &reference,
            "--auth",
            path(&bad),
            "--ca",
            ca,
        ],
        vec!["pull", &reference, "--auth", path(&bad), "--ca", ca],
        vec!["pull", &reference, "--ca", ca],
    ] {
        let output = kubewasm(&args, dir.path());
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {message}");
        assert!(message.contains(&reference), "{args:?}: {message}");
        assert!(
            message.contains("registry authentication failed"),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn a_registry_certificate_from_an_unknown_ca_is_refused() {
    let registry = TestRegistry::shared().expect("test registry");
    let dir = tempfile::tempdir().unwrap();
    let reference = registry.reference("team/anything", "v1");
    let output = kubewasm(
        &["pull", &reference, "--auth", path(&registry.auth)],
        dir.path(),
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(message.contains(&reference), "{message}");
    assert!(
        message.contains("unknown CA") && message.contains("--ca"),
        "{message}"
    );
}

#[test]
fn pulling_a_missing_tag_says_not_found() {
    let registry = TestRegistry::shared().expect("test registry");
    let dir = tempfile::tempdir().unwrap();
    let reference = registry.reference("team/never-pushed", "v9");
    let output = kubewasm(
        &[
            "pull",
            &reference,
            "--auth",
            path(&registry.auth),
            "--ca",
            path(&registry.ca),
        ],
        dir.path(),
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&reference) && message.contains("not found"),
        "{message}"
    );
}

#[test]
fn tagless_references_and_non_plugins_are_refused_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: nothing answers, so any request would fail
    // differently; these fail on the input itself.
    let tagless = "127.0.0.1:9/team/plugin";
    let output = kubewasm(&["pull", tagless], dir.path());
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(
        message.contains(tagless) && message.contains("no tag or digest"),
        "{message}"
    );

    let not_a_plugin = dir.path().join("module.wasm");
    std::fs::write(&not_a_plugin, wat_core_module()).unwrap();
    let output = kubewasm(
        &["push", path(&not_a_plugin), "127.0.0.1:9/team/plugin:v1"],
        dir.path(),
    );
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{message}");
    assert!(
        message.contains("module.wasm") && message.contains("component"),
        "{message}"
    );
}

/// The smallest core module (`(module)`): Wasm, but not a component.
fn wat_core_module() -> &'static [u8] {
    b"\0asm\x01\0\0\0"
}
