//! `kubewasm test`: runs a plugin's fixture cases against its built
//! component, whatever language it is written in, and reports each case.
//!
//! A fixtures directory holds one subdirectory per case (the layout of
//! `plugins/label-propagator/fixtures/README.md`): `object.yaml`, `event`,
//! `now`, `settings.json`, `cache/` and `expected.json` (or a settings-only
//! case with `expected-error.txt`), where `now`, `settings.json` and
//! `cache/` may also sit in the fixtures directory, shared by every case.
//! A case may instead hold a recording of cluster traffic
//! (`recording.jsonl`, from `kubewasm record`) and, as its `expected.json`,
//! the whole replay of it (what `kubewasm replay --output json` prints),
//! with the case's or the shared `settings.json` ([`recorded`]).
//! The component is compiled once and every case is one call of it, through
//! the same runtime `kubewasm run` uses.

pub mod diff;
pub mod junit;
mod recorded;
mod report;

use report::pretty;
pub use report::{CaseResult, Failure, SuiteReport, Verdict};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use crate::cluster::cache::{StaticObjects, load_objects};
use crate::cmd::check::{OfflineError, kind_of_object, load_plugin, new_runtime, read_settings};
use crate::cmd::cli::{RuntimeArgs, TestArgs};
use crate::contract::intent;
use crate::contract::{Event, EventType};
use crate::runtime::{CallError, Clock, Plugin, ReadAccess, Runtime};

/// Where a run finds the component and the cases.
#[derive(Clone, Debug)]
pub struct Suite {
    pub component: PathBuf,
    pub fixtures: PathBuf,
}

impl Suite {
    /// The fixtures are `DIR/fixtures` if that is a directory, else DIR. The
    /// component is `plugin` if given, else the one `.wasm` file directly in
    /// DIR, else the one in `DIR/dist`.
    pub fn locate(dir: &Path, plugin: Option<&Path>) -> Result<Suite, OfflineError> {
        if !dir.is_dir() {
            return Err(OfflineError::Usage(format!(
                "{}: not a directory",
                dir.display()
            )));
        }
        let fixtures = match dir.join("fixtures") {
            nested if nested.is_dir() => nested,
            _ => dir.to_path_buf(),
        };
        let component = match plugin {
            Some(path) => path.to_path_buf(),
            None => find_component(dir)?,
        };
        Ok(Suite {
            component,
            fixtures,
        })
    }
}

fn find_component(dir: &Path) -> Result<PathBuf, OfflineError> {
    for candidate in [dir.to_path_buf(), dir.join("dist")] {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&candidate)
            .into_iter()
            .flatten()
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        found.sort();
        match found.len() {
            0 => continue,
            1 => return Ok(found.remove(0)),
            _ => {
                let names: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
                return Err(OfflineError::Usage(format!(
                    "{} holds several components ({}); name one with --plugin",
                    candidate.display(),
                    names.join(", ")
                )));
            }
        }
    }
    Err(OfflineError::Usage(format!(
        "no component (.wasm) in {} or {}; build the plugin or name it with --plugin",
        dir.display(),
        dir.join("dist").display()
    )))
}

/// `kubewasm test`: runs the suite, writes a line per case and the summary
/// to `out` (and the JUnit report if asked), and fails if any case failed.
pub fn test(args: &TestArgs, out: &mut dyn Write) -> Result<(), OfflineError> {
    let suite = Suite::locate(&args.dir, args.plugin.as_deref())?;
    let report = run_suite(&suite, &args.runtime, args.bless, &mut |case| {
        // A closed stdout must not stop the run; the exit code still tells.
        let _ = out.write_all(case.render().as_bytes());
        let _ = out.flush();
    })?;
    let _ = writeln!(out, "\n{}", report.summary());
    if let Some(path) = &args.junit {
        std::fs::write(path, junit::render(&report)).map_err(|source| OfflineError::Write {
            what: "JUnit report",
            path: path.clone(),
            source,
        })?;
    }
    match report.failed() {
        0 => Ok(()),
        failed => Err(OfflineError::TestsFailed {
            failed,
            total: report.cases.len(),
        }),
    }
}

/// Loads the component once and runs every case, calling `on_case` as each
/// finishes. Fails only if the run cannot start (no cases, the component
/// does not load); a failing case is a [`Verdict::Failed`].
pub fn run_suite(
    suite: &Suite,
    runtime: &RuntimeArgs,
    bless: bool,
    on_case: &mut dyn FnMut(&CaseResult),
) -> Result<SuiteReport, OfflineError> {
    let runtime = new_runtime(runtime)?;
    run_suite_on(&runtime, suite, bless, on_case)
}

/// [`run_suite`] on a runtime built by the caller (a configuration the CLI
/// does not offer, e.g. another compiler strategy).
pub fn run_suite_on(
    runtime: &Runtime,
    suite: &Suite,
    bless: bool,
    on_case: &mut dyn FnMut(&CaseResult),
) -> Result<SuiteReport, OfflineError> {
    let started = Instant::now();
    let cases = case_dirs(&suite.fixtures)?;
    let plugin = load_plugin(runtime, &suite.component)?;
    let mut results = Vec::with_capacity(cases.len());
    for dir in &cases {
        let case_started = Instant::now();
        let verdict = run_case(&plugin, &suite.fixtures, dir, bless);
        let result = CaseResult {
            name: dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
            verdict,
            duration: case_started.elapsed(),
        };
        on_case(&result);
        results.push(result);
    }
    Ok(SuiteReport {
        plugin: plugin.info().name.clone(),
        component: suite.component.clone(),
        fixtures: suite.fixtures.clone(),
        cases: results,
        duration: started.elapsed(),
    })
}

/// The cases: subdirectories other than `cache` and hidden ones, sorted.
fn case_dirs(fixtures: &Path) -> Result<Vec<PathBuf>, OfflineError> {
    let entries = std::fs::read_dir(fixtures).map_err(|source| OfflineError::Read {
        what: "fixtures directory",
        path: fixtures.to_path_buf(),
        source,
    })?;
    let mut cases: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n != "cache" && !n.starts_with('.'))
        })
        .collect();
    cases.sort();
    if cases.is_empty() {
        return Err(OfflineError::Usage(format!(
            "no fixture cases in {} (each case is a directory with object.yaml and expected.json)",
            fixtures.display()
        )));
    }
    Ok(cases)
}

/// The case's own file (or, for `cache`, directory), else the one shared by
/// every case.
fn case_or_shared(fixtures: &Path, case: &Path, name: &str) -> Option<PathBuf> {
    let wanted = |p: &PathBuf| {
        if name == "cache" {
            p.is_dir()
        } else {
            p.is_file()
        }
    };
    [case.join(name), fixtures.join(name)]
        .into_iter()
        .find(wanted)
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Case(format!("{}: {e}", path.display())))
}

fn run_case(plugin: &Plugin, fixtures: &Path, case: &Path, bless: bool) -> Verdict {
    let result = if case.join("object.yaml").exists() {
        reconcile_case(plugin, fixtures, case, bless)
    } else if case.join(recorded::RECORDING).exists() {
        recorded::replay_case(plugin, fixtures, case, bless)
    } else {
        settings_case(plugin, fixtures, case)
    };
    match result {
        Ok(verdict) => verdict,
        Err(failure) => Verdict::Failed(failure),
    }
}

/// A settings-only case: `validate-settings` must refuse the settings with
/// a message containing `expected-error.txt`.
fn settings_case(plugin: &Plugin, fixtures: &Path, case: &Path) -> Result<Verdict, Failure> {
    let expected_path = case.join("expected-error.txt");
    if !expected_path.exists() {
        return Err(Failure::Case(format!(
            "{}: no object.yaml and no expected-error.txt",
            case.display()
        )));
    }
    let expected = read_text(&expected_path)?.trim().to_string();
    let settings = match case_or_shared(fixtures, case, "settings.json") {
        Some(path) => read_text(&path)?,
        None => "{}".to_string(),
    };
    match plugin.validate_settings(&settings) {
        Ok(()) => Err(Failure::SettingsAccepted { expected }),
        Err(CallError::Failed { message, .. }) if message.contains(&expected) => {
            Ok(Verdict::Passed)
        }
        Err(CallError::Failed { message, .. }) => Err(Failure::SettingsMessage {
            expected,
            actual: message,
        }),
        Err(other) => Err(Failure::Call(crate::ops::error_chain(&other))),
    }
}

fn event_type(case: &Path) -> Result<EventType, Failure> {
    let path = case.join("event");
    if !path.exists() {
        return Ok(EventType::Applied);
    }
    match read_text(&path)?.trim() {
        "applied" => Ok(EventType::Applied),
        "deleted" => Ok(EventType::Deleted),
        "resync" => Ok(EventType::Resync),
        "finalizing" => Ok(EventType::Finalizing),
        other => Err(Failure::Case(format!(
            "{}: unknown event {other:?} (applied, deleted, resync or finalizing)",
            path.display()
        ))),
    }
}

/// The case's `now`, else the shared one, else the Unix epoch.
fn now(fixtures: &Path, case: &Path) -> Result<i64, Failure> {
    let Some(path) = case_or_shared(fixtures, case, "now") else {
        return Ok(0);
    };
    let text = read_text(&path)?;
    text.trim()
        .parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            Failure::Case(format!(
                "{}: {:?} is not an RFC 3339 instant: {e}",
                path.display(),
                text.trim()
            ))
        })
}

fn case_error(error: OfflineError) -> Failure {
    Failure::Case(crate::ops::error_chain(&error))
}

/// Compares `actual` with the case's `expected.json`, or writes it there.
fn expect(case: &Path, actual: Value, bless: bool) -> Result<Verdict, Failure> {
    let expected_file = case.join("expected.json");
    if bless {
        std::fs::write(&expected_file, pretty(&actual))
            .map_err(|e| Failure::Case(format!("writing {}: {e}", expected_file.display())))?;
        return Ok(Verdict::Blessed);
    }
    let expected: Value = serde_json::from_str(&read_text(&expected_file)?)
        .map_err(|e| Failure::Case(format!("{}: not valid JSON: {e}", expected_file.display())))?;
    if expected == actual {
        Ok(Verdict::Passed)
    } else {
        Err(Failure::Mismatch {
            expected_file,
            expected,
            actual,
        })
    }
}

fn reconcile_case(
    plugin: &Plugin,
    fixtures: &Path,
    case: &Path,
    bless: bool,
) -> Result<Verdict, Failure> {
    let object_path = case.join("object.yaml");
    let mut objects = load_objects(&object_path).map_err(|e| case_error(e.into()))?;
    if objects.len() != 1 {
        return Err(Failure::Case(format!(
            "{} holds {} objects; a case has exactly one",
            object_path.display(),
            objects.len()
        )));
    }
    let object = objects.remove(0);
    let reader = match case_or_shared(fixtures, case, "cache") {
        Some(dir) => StaticObjects::from_dir(&dir).map_err(|e| case_error(e.into()))?,
        None => StaticObjects::default(),
    };
    let settings_path = case_or_shared(fixtures, case, "settings.json");
    let settings = read_settings(settings_path.as_deref(), plugin).map_err(case_error)?;
    let event = Event {
        event_type: event_type(case)?,
        kind: kind_of_object(&object),
        object: Arc::new(object.into()),
    };
    let access = ReadAccess {
        reader: Arc::new(reader),
        settings: settings.into(),
        clock: Clock::Fixed(now(fixtures, case)?),
    };
    let actual = match plugin.reconcile(&event, access) {
        Ok(outcome) => {
            intent::check_scope(plugin.info(), &outcome)
                .map_err(|e| Failure::Call(format!("refused: {e}")))?;
            serde_json::to_value(&outcome)
                .map_err(|e| Failure::Call(format!("outcome does not serialize: {e}")))?
        }
        Err(CallError::Failed { message, .. }) => json!({ "error": message }),
        Err(other) => return Err(Failure::Call(crate::ops::error_chain(&other))),
    };
    expect(case, actual, bless)
}
