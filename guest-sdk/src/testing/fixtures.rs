//! Runs a plugin natively against conformance fixtures, the same files the
//! host's `kubewasm eval` runs the built component against.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{TestHost, read_yaml_objects};
use crate::{Error, Event, EventType, Plugin, Timestamp};

/// Environment variable that makes [`assert_fixtures`] write each case's
/// actual outcome to its `expected.json` instead of comparing.
const BLESS: &str = "KUBEWASM_BLESS";

/// Runs `P::reconcile` on `event` and returns the result as fixture JSON:
/// the serialized [`Outcome`](crate::Outcome), or `{"error": message}`.
///
/// ```
/// use kubewasm_guest::{testing, Error, Event, EventType, Object, Outcome, Plugin, PluginInfo};
///
/// struct Noop;
/// impl Plugin for Noop {
///     fn describe() -> PluginInfo { PluginInfo::new("noop", "0.1.0") }
///     fn reconcile(_: &Event) -> Result<Outcome, Error> { Ok(Outcome::new()) }
/// }
///
/// let event = Event::new(EventType::Applied, Object::default());
/// assert_eq!(testing::run_event::<Noop>(&event), serde_json::json!({"intents": [], "requeueAfterMs": null}));
/// ```
pub fn run_event<P: Plugin>(event: &Event) -> Value {
    match P::reconcile(event) {
        Ok(outcome) => {
            serde_json::to_value(outcome).unwrap_or_else(|e| json!({ "error": e.to_string() }))
        }
        Err(err) => json!({ "error": err.message() }),
    }
}

/// Runs every case under `dir` and panics with a readable diff if any
/// outcome differs from its `expected.json`. With `KUBEWASM_BLESS=1` in the environment it writes the
/// actual outcomes instead, for review.
///
/// The layout of a fixtures directory:
///
/// ```text
/// fixtures/
///   settings.json          settings for every case (optional, default {})
///   now                    the host's clock for every case: one RFC 3339
///                          time, e.g. 2026-03-02T08:30:00Z (optional,
///                          default 1970-01-01T00:00:00Z)
///   cache/*.yaml           objects the plugin can read through the cache
///                          (optional): subscribed kinds, owned children
///                          (with ownerReferences), watched sources
///   <case>/object.yaml     the object of the event
///   <case>/event           the event type: applied, deleted, resync or
///                          finalizing (optional, default applied; a
///                          finalizing object should carry
///                          metadata.deletionTimestamp and the finalizer)
///   <case>/now             the clock for this case, instead of ../now
///   <case>/settings.json   settings for this case, instead of ../settings.json
///   <case>/cache/          cache for this case, instead of ../cache/
///   <case>/expected.json   the outcome: {"intents": [...], "requeueAfterMs": null}
///                          or, for a failed reconcile, {"error": "message"}
///
///   <case>/settings.json   a settings-only case (no object.yaml): settings
///   <case>/expected-error.txt  that validate_settings must refuse with an
///                          error containing this text
/// ```
///
/// ```no_run
/// # struct MyPlugin;
/// # impl kubewasm_guest::Plugin for MyPlugin {
/// #     fn describe() -> kubewasm_guest::PluginInfo { kubewasm_guest::PluginInfo::new("p", "1") }
/// #     fn reconcile(_: &kubewasm_guest::Event) -> Result<kubewasm_guest::Outcome, kubewasm_guest::Error> { Ok(Default::default()) }
/// # }
/// // tests/fixtures.rs of a plugin crate
/// #[test]
/// fn fixtures() {
///     kubewasm_guest::testing::assert_fixtures::<MyPlugin>(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
/// }
/// ```
pub fn assert_fixtures<P: Plugin>(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let bless = std::env::var_os(BLESS).is_some_and(|v| !v.is_empty() && v != "0");
    let cases = case_dirs(dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !cases.is_empty(),
        "no fixture cases under {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !case.join("object.yaml").exists() {
            if let Err(err) = run_settings_case::<P>(dir, case) {
                failures.push(format!("case {name}: {err}"));
            }
            continue;
        }
        match run_case::<P>(dir, case) {
            Err(err) => failures.push(format!("case {name}: {err}")),
            Ok(actual) => {
                let expected_path = case.join("expected.json");
                let pretty = serde_json::to_string_pretty(&actual).unwrap_or_default() + "\n";
                if bless {
                    if let Err(e) = std::fs::write(&expected_path, pretty) {
                        failures.push(format!(
                            "case {name}: writing {}: {e}",
                            expected_path.display()
                        ));
                    }
                    continue;
                }
                match read_json(&expected_path) {
                    Err(err) => failures.push(format!("case {name}: {err}")),
                    Ok(expected) if expected != actual => failures.push(format!(
                        "case {name}: outcome differs from {}\n--- expected\n{}\n--- actual\n{pretty}",
                        expected_path.display(),
                        serde_json::to_string_pretty(&expected).unwrap_or_default()
                    )),
                    Ok(_) => {}
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixture cases failed (set {BLESS}=1 to rewrite expected.json):\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Subdirectories of `dir` other than `cache`, sorted.
fn case_dirs(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::from(e).context(format!("reading {}", dir.display())))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|p| p.is_dir() && !p.ends_with("cache"))
        .collect();
    cases.sort();
    Ok(cases)
}

/// Checks that `validate_settings` refuses the case's settings with the
/// message in `expected-error.txt`.
fn run_settings_case<P: Plugin>(dir: &Path, case: &Path) -> Result<(), Error> {
    let expected = read_optional(&case.join("expected-error.txt"))?
        .ok_or_else(|| Error::msg("no object.yaml and no expected-error.txt"))?;
    match P::validate_settings(&case_settings(dir, case)?) {
        Err(err) if err.message().contains(expected.trim()) => Ok(()),
        Err(err) => Err(Error::msg(format!(
            "settings refused with {:?}, expected a message containing {:?}",
            err.message(),
            expected.trim()
        ))),
        Ok(()) => Err(Error::msg(format!(
            "settings accepted, expected them refused with {:?}",
            expected.trim()
        ))),
    }
}

/// The case's settings, else the shared ones, else `{}`.
fn case_settings(dir: &Path, case: &Path) -> Result<String, Error> {
    Ok(match read_optional(&case.join("settings.json"))? {
        Some(settings) => Some(settings),
        None => read_optional(&dir.join("settings.json"))?,
    }
    .unwrap_or_else(|| "{}".to_string()))
}

/// Runs one case and returns its actual outcome JSON.
fn run_case<P: Plugin>(dir: &Path, case: &Path) -> Result<Value, Error> {
    let event_type = match read_optional(&case.join("event"))? {
        None => EventType::Applied,
        Some(text) => EventType::parse(text.trim()).ok_or_else(|| {
            Error::msg(format!(
                "{}/event: unknown event type {:?}",
                case.display(),
                text.trim()
            ))
        })?,
    };
    let object_path = case.join("object.yaml");
    let mut objects = read_yaml_objects(&object_path)?;
    if objects.len() != 1 {
        return Err(Error::msg(format!(
            "{} must hold exactly one object",
            object_path.display()
        )));
    }
    let settings = case_settings(dir, case)?;
    P::validate_settings(&settings)
        .map_err(|e| e.context("settings rejected by validate_settings"))?;
    let mut host = TestHost::new()
        .scope(&P::describe())
        .settings(settings)
        .now(case_now(dir, case)?);
    if let Some(cache) = [case.join("cache"), dir.join("cache")]
        .into_iter()
        .find(|p| p.is_dir())
    {
        host = host.objects_from_dir(cache)?;
    }
    host.install();
    Ok(run_event::<P>(&Event::new(event_type, objects.remove(0))))
}

/// The case's clock, else the shared one, else [`DEFAULT_NOW`](super::DEFAULT_NOW).
fn case_now(dir: &Path, case: &Path) -> Result<Timestamp, Error> {
    for path in [case.join("now"), dir.join("now")] {
        if let Some(text) = read_optional(&path)? {
            return Timestamp::parse(text.trim()).map_err(|e| e.context(path.display()));
        }
    }
    Ok(Timestamp::from_epoch_ms(0))
}

/// The content of a file, or none if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::from(e).context(format!("reading {}", path.display()))),
    }
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::from(e).context(format!("reading {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::from(e).context(format!("parsing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Outcome, PluginInfo, RecordEvent};

    /// Records what it was called with: the event type and the clock.
    struct Witness;

    impl Plugin for Witness {
        fn describe() -> PluginInfo {
            PluginInfo::new("witness", "0.1.0")
        }

        fn reconcile(event: &Event) -> Result<Outcome, Error> {
            let note = format!("{} at {}", event.event_type.as_str(), crate::now());
            Ok(Outcome::new().with(RecordEvent::normal(event.object.object_ref(), "Seen", note)))
        }
    }

    /// A fixtures directory under the system's temporary directory, removed
    /// when dropped.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "kubewasm-guest-fixtures-{name}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            Dir(dir)
        }

        fn write(&self, path: &str, text: &str) {
            let path = self.0.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    const OBJECT: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: n}\n";

    fn note(dir: &Dir, case: &str) -> Value {
        run_case::<Witness>(&dir.0, &dir.0.join(case)).unwrap()["intents"][0]["note"].clone()
    }

    #[test]
    fn cases_get_the_event_type_and_the_clock_of_their_files() {
        let dir = Dir::new("clock");
        dir.write("now", "2026-03-05T12:00:00Z\n");
        dir.write("shared-clock/object.yaml", OBJECT);
        dir.write("own-clock/object.yaml", OBJECT);
        dir.write("own-clock/now", "2026-03-06T00:00:00+01:00");
        dir.write("own-clock/event", "finalizing\n");
        assert_eq!(
            note(&dir, "shared-clock"),
            "applied at 2026-03-05T12:00:00Z"
        );
        assert_eq!(
            note(&dir, "own-clock"),
            "finalizing at 2026-03-05T23:00:00Z"
        );
    }

    #[test]
    fn without_a_clock_file_the_clock_is_the_epoch() {
        let dir = Dir::new("epoch");
        dir.write("case/object.yaml", OBJECT);
        assert_eq!(note(&dir, "case"), "applied at 1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_bad_clock_file_names_the_file() {
        let dir = Dir::new("bad-clock");
        dir.write("case/object.yaml", OBJECT);
        dir.write("case/now", "tomorrow");
        let err = run_case::<Witness>(&dir.0, &dir.0.join("case")).unwrap_err();
        assert_eq!(
            err.message(),
            format!(
                "{}: \"tomorrow\" is not an RFC 3339 time",
                dir.0.join("case/now").display()
            )
        );
    }
}
