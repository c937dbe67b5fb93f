//! `kubewasm push` and `kubewasm pull`: plugin components through an OCI
//! registry (the artifact layout and verification are in [`crate::oci`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::cmd::check::{OfflineError, new_runtime};
use crate::cmd::cli::{PullArgs, PushArgs};
use crate::oci::{
    ANNOTATION_CREATED, ANNOTATION_TITLE, ANNOTATION_VERSION, Artifact, BlobStore, COMPONENT_OS,
    ComponentConfig, OciError, Registry, WASM_ARCHITECTURE, WasmConfig, parse_reference,
};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, OfflineError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OfflineError::AsyncRuntime)?;
    Ok(rt.block_on(future))
}

/// `kubewasm push`: loads the component (a file that is not a kubewasm
/// plugin is never pushed), pushes it and prints `REF@sha256:…`.
pub fn push(args: &PushArgs) -> Result<String, OfflineError> {
    let reference = parse_reference(&args.reference)?;
    let registry = Registry::new(&args.registry.options())?;
    let component = std::fs::read(&args.file).map_err(|source| OfflineError::Read {
        what: "plugin",
        path: args.file.clone(),
        source,
    })?;
    // The checks of `kubewasm check`: what is pushed is a plugin this host loads.
    let runtime = new_runtime(&args.runtime)?;
    let plugin = runtime.load(&args.file.display().to_string(), &component)?;
    let created = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string();
    let info = plugin.info();
    let interfaces = plugin.interfaces();
    let config = WasmConfig {
        created: Some(created.clone()),
        author: None,
        architecture: WASM_ARCHITECTURE.to_string(),
        os: COMPONENT_OS.to_string(),
        layer_digests: Vec::new(),
        component: Some(ComponentConfig {
            exports: interfaces.exports.clone(),
            imports: interfaces.imports.clone(),
            target: Some(format!(
                "{}/plugin@{}",
                crate::runtime::WORLD_PACKAGE,
                plugin.contract_version()
            )),
        }),
    };
    let mut annotations = BTreeMap::from([
        (ANNOTATION_TITLE.to_string(), info.name.clone()),
        (ANNOTATION_VERSION.to_string(), info.version.clone()),
        (ANNOTATION_CREATED.to_string(), created),
    ]);
    annotations.extend(args.annotations.iter().cloned());
    let artifact = Artifact {
        component,
        config,
        annotations,
    };
    let digest = block_on(registry.push(&reference, artifact))??;
    Ok(format!("{}@{digest}\n", reference.whole()))
}

/// `kubewasm pull`: pulls into the blob cache, verifying every digest,
/// optionally writes the component, and prints what it resolved.
pub fn pull(args: &PullArgs) -> Result<String, OfflineError> {
    let reference = parse_reference(&args.reference)?;
    let registry = Registry::new(&args.registry.options())?;
    let cache = args.oci_cache().ok_or_else(|| {
        OfflineError::Usage("no cache directory: set --oci-cache, XDG_CACHE_HOME or HOME".into())
    })?;
    let store = BlobStore::open(&cache).map_err(OciError::from)?;
    let limit = u64::from(args.max_plugin_file_mib) << 20;
    let pulled = block_on(registry.pull(&reference, &store, limit))??;
    let file = match &args.output {
        Some(path) => {
            std::fs::write(path, &pulled.component).map_err(|source| OfflineError::Write {
                what: "plugin",
                path: path.clone(),
                source,
            })?;
            path.clone()
        }
        None => pulled.path.clone(),
    };
    let pinned = match reference.digest() {
        Some(_) => reference.whole(),
        None => format!("{}@{}", reference.whole(), pulled.manifest_digest),
    };
    let annotation = |key: &str| pulled.annotations.get(key).map_or("", String::as_str);
    let mut out = String::new();
    let _ = writeln!(out, "reference: {pinned}");
    let _ = writeln!(out, "digest: {}", pulled.manifest_digest);
    let _ = writeln!(out, "component: {}", pulled.component_digest);
    let _ = writeln!(out, "name: {}", annotation(ANNOTATION_TITLE));
    let _ = writeln!(out, "version: {}", annotation(ANNOTATION_VERSION));
    if let Some(target) = pulled
        .config
        .component
        .as_ref()
        .and_then(|c| c.target.as_ref())
    {
        let _ = writeln!(out, "target: {target}");
    }
    let _ = writeln!(out, "size: {}", pulled.component.len());
    let _ = writeln!(out, "cached: {}", pulled.cached);
    let _ = writeln!(out, "file: {}", file.display());
    Ok(out)
}
