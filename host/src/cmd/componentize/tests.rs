use super::*;

#[test]
fn default_output_replaces_the_module_suffix() {
    for (module, component) in [
        ("dist/main.core.wasm", "dist/main.component.wasm"),
        ("x.module.wasm", "x.component.wasm"),
        ("/tmp/plugin.wasm", "/tmp/plugin.component.wasm"),
        ("plain", "plain.component.wasm"),
    ] {
        assert_eq!(default_output(Path::new(module)), PathBuf::from(component));
    }
}

#[test]
fn refuses_what_is_not_a_core_module() {
    let component = wat::parse_str("(component)").unwrap();
    assert!(matches!(
        componentize(&component, ContractArg::V0_2),
        Err(ComponentizeError::AlreadyComponent)
    ));
    assert!(matches!(
        componentize(b"#!/bin/sh\necho not wasm\n", ContractArg::V0_2),
        Err(ComponentizeError::NotWasm)
    ));
    // A module header followed by garbage.
    let mut truncated = wat::parse_str("(module (func (export \"f\")))").unwrap();
    truncated.truncate(12);
    let err = componentize(&truncated, ContractArg::V0_2).unwrap_err();
    assert!(
        matches!(
            err,
            ComponentizeError::Invalid(_) | ComponentizeError::Encode { .. }
        ),
        "{err}"
    );
}

#[test]
fn a_module_without_the_contract_exports_is_refused_naming_what_is_missing() {
    let module = wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let err = componentize(&module, ContractArg::V0_2)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("cannot become a kubewasm:plugin@0.2.0 component"),
        "{err}"
    );
    assert!(
        err.contains("describe") || err.contains("reconciler"),
        "{err}"
    );
}

#[test]
fn every_contract_version_has_its_wit() {
    for version in [ContractArg::V0_1, ContractArg::V0_2] {
        let (number, text) = contract(version);
        assert!(
            text.contains(&format!("package kubewasm:plugin@{number};")),
            "{number}"
        );
        assert!(text.contains("world plugin"), "{number}");
    }
}
