//! What a replay reports: each reconcile (or, with `--against`, each one
//! that differs), the summary, and the exit code CI reads.
//!
//! | exit | when |
//! |---|---|
//! | 0 | every reconcile succeeded (and, with `--against`, the versions agree) |
//! | 1 | `--against`: some reconciles differ |
//! | 4 | the replayed plugin failed a call: an error it returned, a trap, a limit, intents outside its write scope (with `--against`, only one the old version did not fail the same way) |
//!
//! A bad recording, plugin or flag exits 2, before anything is replayed.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::contract::compare::Comparison;
use crate::contract::intent::Outcome;
use crate::ops::printable;
use crate::recording::Recording;

/// Longest plugin message a report line repeats.
const MAX_MESSAGE_CHARS: usize = 1024;

/// What one version did with one reconcile.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Answer {
    /// The intents it returned (within its write scope).
    Outcome(Outcome),
    /// The error it returned.
    Error(String),
    /// The call failed: a trap, a limit, intents refused.
    Failure(String),
    /// This version is not called for this object (its subscriptions,
    /// grant or finalizer differ).
    NotCalled,
}

impl Answer {
    fn failed(&self) -> bool {
        matches!(self, Answer::Error(_) | Answer::Failure(_))
    }

    fn render(&self) -> String {
        match self {
            Answer::Outcome(o) => {
                let n = o.intents.len();
                let mut text = format!("{n} intent{}", if n == 1 { "" } else { "s" });
                if let Some(ms) = o.requeue_after_ms {
                    let _ = write!(text, ", requeue after {ms} ms");
                }
                text
            }
            Answer::Error(message) => format!("error: {}", printable(message, MAX_MESSAGE_CHARS)),
            Answer::Failure(message) => {
                format!("failed: {}", printable(message, MAX_MESSAGE_CHARS))
            }
            Answer::NotCalled => "not called".into(),
        }
    }
}

/// How the two versions' answers differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Differences {
    None,
    /// Their intents (or requeue delays): the old version's are expected,
    /// the new one's actual.
    Intents(Comparison),
    /// One failed (or failed differently) where the other did not.
    Answers,
}

/// One reconcile of the replay.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconcile {
    /// The event's line in the recording; none for the initial objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The plugin's clock: when the event was recorded.
    pub at: String,
    /// What happened: `modified ConfigMap team-a/web`, `initial ...`.
    pub trigger: String,
    /// The event the plugin is called with.
    pub event: &'static str,
    /// `apiVersion kind` of the object reconciled.
    pub kind: String,
    /// `namespace/name` (or `name`) of the object reconciled.
    pub object: String,
    /// Why a different object than the trigger is reconciled: `owner`, `watch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via: Option<&'static str>,
    /// The replayed (new) version's answer.
    pub result: Answer,
    /// The `--against` (old) version's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differences: Option<Differences>,
}

impl Reconcile {
    pub fn differs(&self) -> bool {
        matches!(
            self.differences,
            Some(Differences::Intents(_) | Differences::Answers)
        )
    }

    /// Whether the new version failed where the old one (if compared) did
    /// not fail the same way.
    pub fn failed(&self) -> bool {
        self.result.failed() && self.against.as_ref() != Some(&self.result)
    }

    /// Whether the report lists it: every reconcile, or with `--against`
    /// those that differ or fail.
    pub fn shown(&self) -> bool {
        self.against.is_none() || self.differs() || self.failed()
    }

    /// The reconcile as text: a line for the event and the call, then the
    /// intents (one JSON document a line) or the differences.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let line = self.line.map(|l| format!(" line {l}")).unwrap_or_default();
        let via = self.via.map(|v| format!(" (via {v})")).unwrap_or_default();
        let _ = writeln!(text, "{}{line}: {}", self.at, self.trigger);
        let call = format!("{} {} {}{via}", self.event, self.kind, self.object);
        match (&self.against, &self.differences) {
            (None, _) => {
                let _ = writeln!(text, "  {call}: {}", self.result.render());
                if let Answer::Outcome(outcome) = &self.result {
                    for intent in &outcome.intents {
                        let json = serde_json::to_string(intent).unwrap_or_default();
                        let _ = writeln!(text, "    {json}");
                    }
                }
            }
            (Some(old), Some(Differences::Intents(comparison))) => {
                let _ = writeln!(
                    text,
                    "  {call}: differs (expected: --against {}; actual: {})",
                    old.render(),
                    self.result.render()
                );
                for line in comparison.to_string().lines() {
                    let _ = writeln!(text, "    {line}");
                }
            }
            (Some(old), _) => {
                let verdict = if self.differs() { "differs" } else { "same" };
                let _ = writeln!(text, "  {call}: {verdict}");
                let _ = writeln!(text, "    --against: {}", old.render());
                let _ = writeln!(text, "    new:       {}", self.result.render());
            }
        }
        text
    }
}

/// The counts of a replay.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub initial_objects: usize,
    pub events: usize,
    /// Whether the recording has its end line (it was not cut short).
    pub complete: bool,
    /// Reconciles of the replayed (new) version.
    pub reconciles: usize,
    pub intents: usize,
    /// Calls where it returned an error.
    pub errors: usize,
    /// Calls that trapped, hit a limit or were refused.
    pub failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<Compared>,
    /// Wall time of the replay (never in the output, which must not vary).
    #[serde(skip)]
    pub elapsed: Duration,
}

/// The counts of a comparison with `--against`.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Compared {
    /// Reconciles either version makes.
    pub reconciles: usize,
    pub equal: usize,
    pub differing: usize,
    /// The new version's errors and failures the old one did not have.
    pub new_failures: usize,
    /// The old version's errors and failures.
    pub old_failures: usize,
}

impl Summary {
    pub fn new(recording: &Recording, compared: bool) -> Self {
        Self {
            initial_objects: recording.initial.len(),
            events: recording.events.len(),
            complete: recording.end.is_some(),
            compared: compared.then(Compared::default),
            ..Self::default()
        }
    }

    pub fn count(&mut self, reconcile: &Reconcile) {
        match &reconcile.result {
            Answer::Outcome(o) => {
                self.reconciles += 1;
                self.intents += o.intents.len();
            }
            Answer::Error(_) => {
                self.reconciles += 1;
                self.errors += 1;
            }
            Answer::Failure(_) => {
                self.reconciles += 1;
                self.failures += 1;
            }
            Answer::NotCalled => {}
        }
        if let Some(compared) = &mut self.compared {
            compared.reconciles += 1;
            match reconcile.differs() {
                true => compared.differing += 1,
                false => compared.equal += 1,
            }
            compared.new_failures += usize::from(reconcile.failed());
            compared.old_failures +=
                usize::from(reconcile.against.as_ref().is_some_and(Answer::failed));
        }
    }

    /// 4 if the replayed version failed, else 1 if the versions differ,
    /// else 0 (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match &self.compared {
            Some(c) if c.new_failures > 0 => 4,
            Some(c) if c.differing > 0 => 1,
            None if self.errors + self.failures > 0 => 4,
            _ => 0,
        }
    }

    /// The summary as text: what was replayed, then how it went.
    pub fn render(&self) -> String {
        let mut text = format!(
            "replayed {} initial objects and {} events{}: {} reconciles, {} intents, {} errors, {} failures\n",
            self.initial_objects,
            self.events,
            if self.complete {
                ""
            } else {
                " (the recording was cut short: no end line)"
            },
            self.reconciles,
            self.intents,
            self.errors,
            self.failures
        );
        if let Some(c) = &self.compared {
            let _ = writeln!(
                text,
                "compared with --against: {} reconciles, {} equal, {} differ; {} new errors or failures (the old version had {})",
                c.reconciles, c.equal, c.differing, c.new_failures, c.old_failures
            );
        }
        text
    }

    /// The replay as one JSON document: the reconciles shown and the summary.
    pub fn document(&self, shown: Vec<Reconcile>) -> Value {
        json!({"reconciles": shown, "summary": self})
    }
}
