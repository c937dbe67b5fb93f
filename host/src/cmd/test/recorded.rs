//! A fixture case holding a recording: the plugin replayed over it (as
//! `kubewasm replay` does, unconfined unless the case has a `scope.json`),
//! the whole replay compared with `expected.json`.

use std::path::Path;
use std::sync::Arc;

use super::{Failure, Verdict, case_error, case_or_shared, expect, read_text};
use crate::cmd::check::read_settings;
use crate::cmd::replay::{Version, replay};
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::Grant;
use crate::recording::{Limits, Recording};
use crate::runtime::Plugin;

/// The recording file of a case.
pub(super) const RECORDING: &str = "recording.jsonl";

/// Differences listed per reconcile: none, a case replays one version.
const LIMIT: usize = 0;

pub(super) fn replay_case(
    plugin: &Plugin,
    fixtures: &Path,
    case: &Path,
    bless: bool,
) -> Result<Verdict, Failure> {
    let recording = Recording::read(&case.join(RECORDING), Limits::default())
        .map_err(|e| case_error(e.into()))?;
    let settings_path = case_or_shared(fixtures, case, "settings.json");
    let settings = read_settings(settings_path.as_deref(), plugin).map_err(case_error)?;
    let scope = case.join("scope.json");
    let grant = match scope.is_file() {
        true => Grant::parse(&read_text(&scope)?)
            .map_err(|e| Failure::Case(format!("{}: {e}", scope.display())))?,
        false => Grant::unconfined(),
    };
    let loaded = LoadedPlugin {
        id: plugin.info().name.clone(),
        plugin: plugin.clone(),
        settings: settings.into(),
        grant: Arc::new(grant),
        dry_run: false,
        identity: None,
    };
    let version = Version::new(loaded, &recording);
    let mut reconciles = Vec::new();
    let summary = replay(&recording, &version, None, LIMIT, &mut |r| {
        reconciles.push(r.clone())
    });
    expect(case, summary.document(reconciles), bless)
}
