//! Bindings generated from the `kubewasm:plugin` WIT package in `wit/`.
#![allow(unsafe_code, missing_docs)]

wit_bindgen::generate!({
    path: "../wit",
    world: "kubewasm:plugin/plugin",
    pub_export_macro: true,
    export_macro_name: "export_world",
    default_bindings_module: "kubewasm_guest::__bindings",
});
