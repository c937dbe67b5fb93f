//! `kubewasm componentize` on core modules: the result loads in the host's
//! runtime, with the contract embedded when the module has none, and with
//! the WASI preview1 adapter when the module imports `wasi_snapshot_preview1`
//! (as Go's and wasi-libc's modules do).

mod support;

use kubewasm::cmd::cli::ContractArg;
use kubewasm::cmd::componentize::componentize;
use kubewasm::runtime::{ReadAccess, Runtime, RuntimeConfig};
use support::OK_REQUEUE_RET;

fn access() -> ReadAccess {
    ReadAccess::offline("{}")
}

/// The hand-written 0.1.0 plugin's core module, before any component step.
fn core_module(name: &str, imports: &str, reconcile_body: &str) -> Vec<u8> {
    wat::parse_str(support::core_module(name, imports, reconcile_body, "")).unwrap()
}

#[test]
fn a_bare_core_module_gets_the_contract_and_runs() {
    let module = core_module("bare", "", &format!("(i32.const {OK_REQUEUE_RET})"));
    let done = componentize(&module, ContractArg::V0_1).expect("componentizes");
    assert!(!done.had_metadata && !done.adapted);

    let plugin = Runtime::new(RuntimeConfig::default())
        .unwrap()
        .load("bare", &done.bytes)
        .expect("the component loads");
    assert_eq!(plugin.info().name, "bare");
    assert_eq!(plugin.contract_version(), "0.1.0");
    let outcome = plugin
        .reconcile(&support::event(), access())
        .expect("reconcile");
    assert_eq!(outcome.requeue_after_ms, Some(5000));
}

#[test]
fn a_module_importing_wasi_preview1_is_adapted_and_its_calls_work() {
    // random_get through the adapter, then the usual return area.
    let imports = r#"(import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))"#;
    let body = format!(
        "(if (i32.ne (call $random (i32.const 0x3000) (i32.const 16)) (i32.const 0)) (then unreachable))
         (i32.const {OK_REQUEUE_RET})"
    );
    let done = componentize(&core_module("adapted", imports, &body), ContractArg::V0_1)
        .expect("componentizes");
    assert!(done.adapted, "the preview1 adapter is linked in");

    let plugin = Runtime::new(RuntimeConfig::default())
        .unwrap()
        .load("adapted", &done.bytes)
        .expect("the adapted component passes the host's import checks");
    let outcome = plugin
        .reconcile(&support::event(), access())
        .expect("random_get through the adapter succeeds");
    assert_eq!(outcome.requeue_after_ms, Some(5000));
}

#[test]
fn a_module_with_its_own_bindings_metadata_keeps_it() {
    // What a bindings generator's output looks like: the world already
    // embedded. Componentizing must not embed it a second time.
    let mut module = core_module("own", "", &format!("(i32.const {OK_REQUEUE_RET})"));
    let mut resolve = wit_parser::Resolve::default();
    let wit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit/v0.1.0");
    let (package, _) = resolve.push_dir(&wit).unwrap();
    let world = resolve.select_world(&[package], Some("plugin")).unwrap();
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    // Asked for 0.2.0, but the module says 0.1.0: the module's word wins.
    let done = componentize(&module, ContractArg::V0_2).expect("componentizes");
    assert!(done.had_metadata);
    let plugin = Runtime::new(RuntimeConfig::default())
        .unwrap()
        .load("own", &done.bytes)
        .expect("loads");
    assert_eq!(plugin.contract_version(), "0.1.0");
}

#[test]
fn a_0_1_module_componentized_as_0_2_is_refused_naming_the_mismatch() {
    let module = core_module("wrong", "", &format!("(i32.const {OK_REQUEUE_RET})"));
    let err = componentize(&module, ContractArg::V0_2)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot become a kubewasm:plugin@0.2.0 component"),
        "{err}"
    );
}
