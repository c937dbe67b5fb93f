//! The `kubewasm replay` command: loads the recording and the plugin
//! version(s) as `kubewasm run` would load them from a plugin directory
//! (settings and scope file beside the component), replays, prints.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Reconcile, Version, replay};
use crate::cmd::check::{OfflineError, new_runtime};
use crate::cmd::cli::{ReplayArgs, ReplayFormat};
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::{Grant, grant_path};
use crate::plugins::loader::{ComponentError, load_component, settings_path};
use crate::recording::{Limits, Recording};
use crate::runtime::Runtime;

/// Loads one version: the component, its settings (`settings`, else the
/// file beside it, else `{}`) accepted by the plugin, its scope file.
/// `notes` hears which companion files were used.
pub fn load_version(
    runtime: &Runtime,
    wasm: &Path,
    settings: Option<&Path>,
    notes: &mut dyn FnMut(String),
) -> Result<LoadedPlugin, OfflineError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| OfflineError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })
    };
    let bytes = read("plugin", wasm)?;
    let beside = settings_path(wasm);
    let settings_file: Option<PathBuf> = match settings {
        Some(path) => Some(path.to_path_buf()),
        None if beside.is_file() => Some(beside),
        None => None,
    };
    let settings = match &settings_file {
        Some(path) => {
            notes(format!("{}: settings {}", wasm.display(), path.display()));
            let value: serde_json::Value = serde_json::from_slice(&read("settings", path)?)
                .map_err(|source| OfflineError::SettingsJson {
                    path: path.clone(),
                    source,
                })?;
            value.to_string()
        }
        None => "{}".to_string(),
    };
    let scope = grant_path(wasm);
    let grant = match scope.is_file() {
        true => {
            notes(format!("{}: scope {}", wasm.display(), scope.display()));
            let text = String::from_utf8_lossy(&read("scope file", &scope)?).into_owned();
            Grant::parse(&text).map_err(|reason| {
                OfflineError::Usage(format!(
                    "scope file {} is invalid: {reason}",
                    scope.display()
                ))
            })?
        }
        false => Grant::unconfined(),
    };
    load_component(
        runtime,
        &wasm.display().to_string(),
        &bytes,
        settings,
        grant,
    )
    .map_err(|e| match e {
        ComponentError::Load(e) => OfflineError::Load(e),
        rejected @ ComponentError::SettingsRejected { .. } => OfflineError::Usage(format!(
            "{}{}: {rejected}",
            wasm.display(),
            settings_file
                .map(|p| format!(" with settings {}", p.display()))
                .unwrap_or_default()
        )),
    })
}

/// `kubewasm replay`: prints the report to `out` and notes (files used,
/// kinds missing, speed) to `err`; returns the exit code (see
/// [`super::report`]).
pub fn command(
    args: &ReplayArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, OfflineError> {
    let recording = Recording::read(&args.recording, Limits::default())?;
    let runtime = new_runtime(&args.runtime)?;
    let mut note = |line: String| {
        let _ = writeln!(err, "{line}");
    };
    let new = Version::new(
        load_version(&runtime, &args.plugin, args.settings.as_deref(), &mut note)?,
        &recording,
    );
    let old = match &args.against {
        Some(path) => Some(Version::new(
            load_version(&runtime, path, args.against_settings.as_deref(), &mut note)?,
            &recording,
        )),
        None => None,
    };
    for version in std::iter::once(&new).chain(old.as_ref()) {
        let missing = version.missing_kinds(&recording);
        if !missing.is_empty() {
            note(format!(
                "plugin {} names kinds the recording does not hold ({}): it is not called for them and its reads of them fail",
                version.loaded.plugin.info().name,
                missing.join(", ")
            ));
        }
    }
    let write = |out: &mut dyn Write, text: &str| {
        out.write_all(text.as_bytes())
            .map_err(|e| OfflineError::Render(e.into()))
    };
    let limit = args.max_differences as usize;
    let mut shown: Vec<Reconcile> = Vec::new();
    let mut failed_write = None;
    let summary = replay(&recording, &new, old.as_ref(), limit, &mut |reconcile| {
        if !reconcile.shown() {
            return;
        }
        match args.output {
            ReplayFormat::Json => shown.push(reconcile.clone()),
            ReplayFormat::Text => {
                if failed_write.is_none()
                    && let Err(e) = write(out, &reconcile.render())
                {
                    failed_write = Some(e);
                }
            }
        }
    });
    if let Some(e) = failed_write {
        return Err(e);
    }
    match args.output {
        ReplayFormat::Text => write(out, &format!("\n{}", summary.render()))?,
        ReplayFormat::Json => {
            let document = summary.document(shown);
            let text = serde_json::to_string_pretty(&document)
                .map_err(|e| OfflineError::Render(e.into()))?;
            write(out, &(text + "\n"))?;
        }
    }
    let seconds = summary.elapsed.as_secs_f64();
    let reconciles = summary
        .compared
        .as_ref()
        .map_or(summary.reconciles, |c| c.reconciles);
    note(format!(
        "replayed {reconciles} reconciles in {seconds:.2} s ({:.0} reconciles/s)",
        reconciles as f64 / seconds.max(1e-9)
    ));
    Ok(summary.exit_code())
}
