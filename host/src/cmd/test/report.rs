//! What a `kubewasm test` run found: a verdict per case, and how it is
//! shown (a line per case, the diff of a failure, the summary).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::diff;

/// Differences listed by JSON path in a failure.
const LISTED_DIFFERENCES: usize = 5;

/// The result of a whole run.
#[derive(Clone, Debug)]
pub struct SuiteReport {
    /// The plugin's name, from its `describe`.
    pub plugin: String,
    pub component: PathBuf,
    pub fixtures: PathBuf,
    pub cases: Vec<CaseResult>,
    /// From loading the component to the last case.
    pub duration: Duration,
}

impl SuiteReport {
    pub fn failed(&self) -> usize {
        self.cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
            .count()
    }

    /// The last line of a run: the counts, and where they came from.
    pub fn summary(&self) -> String {
        let failed = self.failed();
        let blessed = self
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Blessed))
            .count();
        let passed = self.cases.len() - failed - blessed;
        let mut counts = format!("{passed} passed, {failed} failed");
        if blessed > 0 {
            counts.push_str(&format!(", {blessed} blessed"));
        }
        format!(
            "test result: {}. {counts} ({} cases of plugin {} from {} in {:.2} s)",
            if failed == 0 { "ok" } else { "FAILED" },
            self.cases.len(),
            self.plugin,
            self.fixtures.display(),
            self.duration.as_secs_f64()
        )
    }
}

#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case's directory name.
    pub name: String,
    pub verdict: Verdict,
    pub duration: Duration,
}

impl CaseResult {
    /// `ok   name (3 ms)`, or `FAIL name (3 ms)` and the failure's details,
    /// indented.
    pub fn render(&self) -> String {
        let ms = self.duration.as_millis();
        match &self.verdict {
            Verdict::Passed => format!("ok    {} ({ms} ms)\n", self.name),
            Verdict::Blessed => format!("bless {} ({ms} ms)\n", self.name),
            Verdict::Failed(failure) => {
                let mut text = format!("FAIL  {} ({ms} ms)\n", self.name);
                for line in failure.details().lines() {
                    text.push_str("      ");
                    text.push_str(line);
                    text.push('\n');
                }
                text
            }
        }
    }
}

#[derive(Clone, Debug)]
pub enum Verdict {
    Passed,
    /// `--bless` wrote the actual outcome to `expected.json`.
    Blessed,
    Failed(Failure),
}

/// Why a case failed.
#[derive(Clone, Debug)]
pub enum Failure {
    /// The outcome is not the expected one.
    Mismatch {
        expected_file: PathBuf,
        expected: Value,
        actual: Value,
    },
    /// A settings-only case whose settings the plugin accepted.
    SettingsAccepted { expected: String },
    /// A settings-only case refused with another message.
    SettingsMessage { expected: String, actual: String },
    /// The plugin's call failed other than with a reconcile error (a trap,
    /// a limit, an intent outside its write scope).
    Call(String),
    /// The case's files are missing or malformed.
    Case(String),
}

impl Failure {
    /// A bounded name of the failure's kind (the JUnit `type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Mismatch { .. } => "mismatch",
            Failure::SettingsAccepted { .. } | Failure::SettingsMessage { .. } => "settings",
            Failure::Call(_) => "call",
            Failure::Case(_) => "case",
        }
    }

    /// One line.
    pub fn summary(&self) -> String {
        match self {
            Failure::Mismatch {
                expected_file,
                expected,
                actual,
            } => {
                let first = diff::differences(expected, actual, 1);
                let at = first
                    .first()
                    .map(|d| format!(" at {d}"))
                    .unwrap_or_default();
                format!("outcome differs from {}{at}", expected_file.display())
            }
            Failure::SettingsAccepted { expected } => {
                format!("settings accepted, expected them refused with {expected:?}")
            }
            Failure::SettingsMessage { expected, actual } => format!(
                "settings refused with {actual:?}, expected a message containing {expected:?}"
            ),
            Failure::Call(message) | Failure::Case(message) => message.clone(),
        }
    }

    /// The summary, then for a mismatch the first differences by JSON path
    /// and a line diff of expected and actual.
    pub fn details(&self) -> String {
        let Failure::Mismatch {
            expected_file,
            expected,
            actual,
        } = self
        else {
            return self.summary();
        };
        let mut text = format!("outcome differs from {}\n", expected_file.display());
        let found = diff::differences(expected, actual, LISTED_DIFFERENCES);
        for difference in &found {
            text.push_str(&format!("  {difference}\n"));
        }
        if found.len() == LISTED_DIFFERENCES {
            text.push_str("  (first differences only)\n");
        }
        let expected = pretty(expected);
        let actual = pretty(actual);
        match diff::line_diff(&expected, &actual) {
            Some(lines) => text.push_str(&format!("--- expected\n+++ actual\n{lines}")),
            None => text.push_str(&format!("--- expected\n{expected}+++ actual\n{actual}")),
        }
        text
    }
}

pub(super) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_case_shows_the_paths_and_the_line_diff() {
        let case = CaseResult {
            name: "stale".into(),
            verdict: Verdict::Failed(Failure::Mismatch {
                expected_file: PathBuf::from("fixtures/stale/expected.json"),
                expected: json!({"intents": [{"type": "apply", "force": true}], "requeueAfterMs": null}),
                actual: json!({"intents": [{"type": "apply", "force": false}], "requeueAfterMs": null}),
            }),
            duration: Duration::from_millis(7),
        };
        assert_eq!(
            case.render(),
            "FAIL  stale (7 ms)\n\
             \x20     outcome differs from fixtures/stale/expected.json\n\
             \x20       $.intents[0].force: expected true, actual false\n\
             \x20     --- expected\n\
             \x20     +++ actual\n\
             \x20       {\n\
             \x20         \"intents\": [\n\
             \x20           {\n\
             \x20     -       \"force\": true,\n\
             \x20     +       \"force\": false,\n\
             \x20             \"type\": \"apply\"\n\
             \x20           }\n\
             \x20         ],\n\
             \x20       ...\n"
        );
        let passed = CaseResult {
            name: "fine".into(),
            verdict: Verdict::Passed,
            duration: Duration::from_millis(3),
        };
        assert_eq!(passed.render(), "ok    fine (3 ms)\n");
        let report = SuiteReport {
            plugin: "demo".into(),
            component: PathBuf::from("demo.wasm"),
            fixtures: PathBuf::from("fixtures"),
            cases: vec![case, passed],
            duration: Duration::from_millis(250),
        };
        assert_eq!(
            report.summary(),
            "test result: FAILED. 1 passed, 1 failed (2 cases of plugin demo from fixtures in 0.25 s)"
        );
    }

    #[test]
    fn settings_failures_say_what_was_expected() {
        let failure = Failure::SettingsMessage {
            expected: "settings.x".into(),
            actual: "settings.y: unknown field".into(),
        };
        assert_eq!(
            failure.details(),
            r#"settings refused with "settings.y: unknown field", expected a message containing "settings.x""#
        );
        assert_eq!(failure.kind(), "settings");
    }
}
