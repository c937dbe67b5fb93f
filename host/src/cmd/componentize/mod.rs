//! `kubewasm wit` and `kubewasm componentize`: what a plugin author in a
//! language without a component tool chain (Go, C) needs from `wasm-tools`,
//! built into the binary they already have.
//!
//! - `wit` writes the contract's WIT package, the input of every bindings
//!   generator (`wit-bindgen go|c`, `jco types`, `componentize-py`);
//! - `componentize` turns a core module into a plugin component: it embeds
//!   the contract's `plugin` world unless the module carries its own
//!   `component-type` section (as `wit-bindgen c` output does), and links the
//!   WASI preview1 *reactor* adapter when the module imports
//!   `wasi_snapshot_preview1` (Go's `GOOS=wasip1` runtime, wasi-libc).

use std::path::{Path, PathBuf};

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

use crate::cmd::check::OfflineError;
use crate::cmd::cli::{ComponentizeArgs, ContractArg, WitArgs};

/// The contract versions a plugin may target, newest first, with their WIT
/// text exactly as the host's bindings are generated from it.
const CONTRACTS: &[(ContractArg, &str, &str)] = &[
    (
        ContractArg::V0_2,
        "0.2.0",
        include_str!("../../../../wit/plugin.wit"),
    ),
    (
        ContractArg::V0_1,
        "0.1.0",
        include_str!("../../../../wit/v0.1.0/plugin.wit"),
    ),
];

/// The world every plugin implements.
const WORLD: &str = "plugin";

fn contract(version: ContractArg) -> (&'static str, &'static str) {
    let (_, number, text) = CONTRACTS
        .iter()
        .find(|(v, _, _)| *v == version)
        .expect("every ContractArg has a WIT text");
    (number, text)
}

/// `kubewasm wit`: the contract's WIT, printed or written to
/// `DIR/plugin.wit` (the layout bindings generators read).
pub fn wit(args: &WitArgs) -> Result<String, OfflineError> {
    let (number, text) = contract(args.contract);
    let Some(dir) = &args.out else {
        return Ok(text.to_string());
    };
    std::fs::create_dir_all(dir).map_err(|source| OfflineError::Write {
        what: "WIT directory",
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("plugin.wit");
    write_atomically(&path, text.as_bytes(), "WIT file")?;
    Ok(format!(
        "wrote {} (kubewasm:plugin@{number}, world `{WORLD}`)\n",
        path.display()
    ))
}

/// What `componentize` did, for its one-line report.
#[derive(Debug, PartialEq, Eq)]
pub struct Componentized {
    pub bytes: Vec<u8>,
    /// The module had its own `component-type` section (from a bindings
    /// generator), so the contract was not embedded again.
    pub had_metadata: bool,
    /// The WASI preview1 reactor adapter was linked in.
    pub adapted: bool,
}

/// Why a module does not become a component; the message names the cause.
#[derive(Debug, thiserror::Error)]
pub enum ComponentizeError {
    #[error("is already a component (nothing to do: `kubewasm check` it)")]
    AlreadyComponent,
    #[error("is not a WebAssembly module")]
    NotWasm,
    #[error("is not a valid WebAssembly module: {0}")]
    Invalid(String),
    /// The encoder refused it: typically an export or import the contract's
    /// world does not have (the message names it).
    #[error("cannot become a kubewasm:plugin@{version} component: {message}")]
    Encode {
        version: &'static str,
        message: String,
    },
}

/// Turns core module `module` into a component of contract `version`.
pub fn componentize(
    module: &[u8],
    version: ContractArg,
) -> Result<Componentized, ComponentizeError> {
    if wasmparser::Parser::is_component(module) {
        return Err(ComponentizeError::AlreadyComponent);
    }
    if !wasmparser::Parser::is_core_wasm(module) {
        return Err(ComponentizeError::NotWasm);
    }
    let (number, text) = contract(version);
    let encode_error = |e: anyhow::Error| ComponentizeError::Encode {
        version: number,
        message: format!("{e:#}"),
    };
    let (stripped, _) = wit_component::metadata::decode(module)
        .map_err(|e| ComponentizeError::Invalid(format!("{e:#}")))?;
    let had_metadata = stripped.is_some();
    let mut bytes = module.to_vec();
    if !had_metadata {
        let mut resolve = Resolve::default();
        let package = resolve
            .push_str("plugin.wit", text)
            .expect("the contract's WIT parses (the host is built from it)");
        let world = resolve
            .select_world(&[package], Some(WORLD))
            .expect("the contract has a `plugin` world");
        wit_component::embed_component_metadata(&mut bytes, &resolve, world, StringEncoding::UTF8)
            .map_err(encode_error)?;
    }
    let adapted = imports_module(module, WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME)?;
    let mut encoder = ComponentEncoder::default()
        .validate(true)
        .module(&bytes)
        .map_err(encode_error)?;
    if adapted {
        encoder = encoder
            .adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
            .map_err(encode_error)?;
    }
    let bytes = encoder.encode().map_err(encode_error)?;
    Ok(Componentized {
        bytes,
        had_metadata,
        adapted,
    })
}

/// Whether `module` imports anything from core module `name`.
fn imports_module(module: &[u8], name: &str) -> Result<bool, ComponentizeError> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let payload = payload.map_err(|e| ComponentizeError::Invalid(e.to_string()))?;
        if let wasmparser::Payload::ImportSection(imports) = payload {
            for import in imports.into_imports() {
                let import = import.map_err(|e| ComponentizeError::Invalid(e.to_string()))?;
                if import.module == name {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

/// `kubewasm componentize CORE.wasm -o OUT.wasm`.
pub fn run(args: &ComponentizeArgs) -> Result<String, OfflineError> {
    let module = std::fs::read(&args.module).map_err(|source| OfflineError::Read {
        what: "module",
        path: args.module.clone(),
        source,
    })?;
    let done = componentize(&module, args.contract).map_err(|e| {
        // A bad module is the author's input: a usage error naming the file.
        OfflineError::Usage(format!("{}: {e}", args.module.display()))
    })?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_output(&args.module));
    write_atomically(&out, &done.bytes, "component")?;
    let (number, _) = contract(args.contract);
    let metadata = match done.had_metadata {
        true => "the module's own bindings metadata",
        false => "world `plugin` embedded",
    };
    let adapter = match done.adapted {
        true => ", WASI preview1 reactor adapter linked",
        false => "",
    };
    Ok(format!(
        "wrote {} ({} bytes): kubewasm:plugin@{number} component, {metadata}{adapter}\n",
        out.display(),
        done.bytes.len(),
    ))
}

/// `x.core.wasm`, `x.module.wasm` or `x.wasm` → `x.component.wasm` beside it.
fn default_output(module: &Path) -> PathBuf {
    let name = module
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = [".core.wasm", ".module.wasm", ".wasm"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(&name);
    module.with_file_name(format!("{stem}.component.wasm"))
}

/// Writes through a temporary file in the same directory and renames it into
/// place, so a host watching that directory never sees half a component.
fn write_atomically(path: &Path, bytes: &[u8], what: &'static str) -> Result<(), OfflineError> {
    let error = |source| OfflineError::Write {
        what,
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(error)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(error)?;
    tmp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
