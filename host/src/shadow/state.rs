//! What one shadow did so far, and what it comes to: keep running, stop
//! (abort) or be promoted. Pure bookkeeping, so the rules are tested alone.
//!
//! - every compared reconcile is `equal` or `different`; a shadow call that
//!   fails (an error it returned, a trap, a timeout, a limit, or an outcome
//!   the applier would refuse: a write outside its declared scope or grant,
//!   a malformed intent) is `failed` and aborts the shadow: it stops
//!   running, the reason is kept, and it stays stopped until its file (or
//!   settings) change, which loads a fresh shadow;
//! - events the shadow's own subscriptions do not cover are `skipped`;
//!   reconciles the bounded queue had no room for are `dropped`;
//! - with a promotion threshold N, the shadow is promoted once N compared
//!   reconciles in a row were equal (a difference starts the count over,
//!   and so does a new serving version).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Recent differences kept per shadow.
pub const SAMPLES: usize = 20;
/// Longest text kept of one value in a kept difference.
pub const MAX_VALUE_CHARS: usize = 512;
/// Longest summary kept of one differing reconcile.
pub const MAX_SUMMARY_CHARS: usize = 4096;
/// Longest JSON text of a sample's differences, or of an intent only one
/// version makes, kept as data.
pub const MAX_SAMPLE_JSON_CHARS: usize = 16 * 1024;

/// Where a shadow stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum State {
    /// Called for every reconcile of its plugin.
    Running,
    /// Stopped after a failure (the reason); until its files change.
    Aborted(String),
    /// Promotion was started: its files were renamed into place (a plugin
    /// resource's: its task patches the spec).
    Promoted,
    /// Promotion was asked for but could not be done (the reason); stopped.
    PromotionFailed(String),
}

/// Reconciles by how they ended for the shadow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub equal: u64,
    pub different: u64,
    pub failed: u64,
    pub dropped: u64,
    pub skipped: u64,
    /// Reads the serving call did not make, answered by the live cache.
    pub uncaptured_reads: u64,
}

/// One differing reconcile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When it was compared (RFC 3339).
    pub at: String,
    /// `Kind namespace/name` of the reconciled object.
    pub object: String,
    pub event: String,
    /// The serving version's digest (first 12 hex digits).
    pub serving: String,
    /// The differences in words, truncated.
    pub summary: String,
    /// The differences as data (intent, target, field paths with both
    /// values), long values truncated.
    pub differences: serde_json::Value,
    /// The intents only one version makes (`side`: `serving` or
    /// `shadow`), as JSON, long values truncated.
    #[serde(default)]
    pub unmatched: Vec<serde_json::Value>,
}

/// How one shadow reconcile ended.
#[derive(Debug)]
pub enum Verdict {
    Equal,
    Different(Sample),
    /// The metric label and the whole reason.
    Failed(&'static str, String),
    Skipped,
}

impl Verdict {
    /// The `result` label of `kubewasm_shadow_reconciles_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Verdict::Equal => "equal",
            Verdict::Different(_) => "different",
            Verdict::Failed(..) => "failed",
            Verdict::Skipped => "skipped",
        }
    }
}

/// What happens to the shadow after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Abort,
    Promote,
}

/// One shadow's bookkeeping.
#[derive(Debug)]
pub struct Ledger {
    pub state: State,
    pub counts: Counts,
    /// Compared reconciles in a row that were equal.
    pub streak: u64,
    pub promote_after: Option<u64>,
    pub recent: VecDeque<Sample>,
    /// The serving version the streak was counted against.
    serving: String,
}

impl Ledger {
    pub fn new(promote_after: Option<u64>) -> Self {
        Self {
            state: State::Running,
            counts: Counts::default(),
            streak: 0,
            promote_after,
            recent: VecDeque::new(),
            serving: String::new(),
        }
    }

    pub fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// Records a reconcile compared against serving version `serving`.
    pub fn record(&mut self, serving: &str, verdict: Verdict) -> Next {
        if !self.is_running() {
            return Next::Continue;
        }
        if self.serving != serving {
            self.serving = serving.to_string();
            self.streak = 0;
        }
        match verdict {
            Verdict::Skipped => {
                self.counts.skipped += 1;
                Next::Continue
            }
            Verdict::Failed(_, reason) => {
                self.counts.failed += 1;
                self.streak = 0;
                self.state = State::Aborted(reason);
                Next::Abort
            }
            Verdict::Different(sample) => {
                self.counts.different += 1;
                self.streak = 0;
                if self.recent.len() == SAMPLES {
                    self.recent.pop_front();
                }
                self.recent.push_back(sample);
                Next::Continue
            }
            Verdict::Equal => {
                self.counts.equal += 1;
                self.streak += 1;
                match self.promote_after {
                    Some(n) if self.streak >= n && self.counts.failed == 0 => {
                        self.state = State::Promoted;
                        Next::Promote
                    }
                    _ => Next::Continue,
                }
            }
        }
    }

    /// A reconcile the queue had no room for.
    pub fn dropped(&mut self) {
        self.counts.dropped += 1;
    }
}

/// `text` cut at `max` characters, marking the cut.
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// `value` if its JSON text is at most `max` characters, else that text
/// cut (as a string): truncating strings does not bound keys, numbers or
/// array lengths, and a plugin's intent may hold millions of them.
pub fn bounded(value: serde_json::Value, max: usize) -> serde_json::Value {
    let text = value.to_string();
    match text.chars().nth(max) {
        None => value,
        Some(_) => serde_json::Value::String(truncated(&text, max)),
    }
}

/// Cuts every string in `value` at `max` characters.
pub fn truncate_strings(value: &mut serde_json::Value, max: usize) {
    use serde_json::Value;
    match value {
        Value::String(s) if s.chars().count() > max => *s = truncated(s, max),
        Value::Array(items) => items.iter_mut().for_each(|v| truncate_strings(v, max)),
        Value::Object(map) => map.values_mut().for_each(|v| truncate_strings(v, max)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_value_is_bounded_by_its_text_not_only_its_strings() {
        let huge: serde_json::Map<String, serde_json::Value> =
            (0..100_000).map(|n| (format!("k{n}"), 1.into())).collect();
        let mut value = serde_json::Value::Object(huge);
        truncate_strings(&mut value, MAX_VALUE_CHARS);
        let kept = bounded(value, MAX_SAMPLE_JSON_CHARS);
        let text = kept.as_str().expect("cut to text");
        assert_eq!(text.chars().count(), MAX_SAMPLE_JSON_CHARS + 1);
        assert!(text.ends_with('…'));
        let small = serde_json::json!({"a": [1, 2]});
        assert_eq!(bounded(small.clone(), MAX_SAMPLE_JSON_CHARS), small);
    }

    fn sample(n: usize) -> Sample {
        Sample {
            at: String::new(),
            object: format!("ConfigMap ns/o{n}"),
            event: "applied".into(),
            serving: "abc".into(),
            summary: String::new(),
            differences: serde_json::Value::Null,
            unmatched: Vec::new(),
        }
    }

    #[test]
    fn promotes_after_n_equal_reconciles_in_a_row() {
        let mut ledger = Ledger::new(Some(3));
        assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        assert_eq!(
            ledger.record("v1", Verdict::Different(sample(0))),
            Next::Continue
        );
        assert_eq!(ledger.streak, 0, "a difference starts over");
        assert_eq!(ledger.record("v1", Verdict::Skipped), Next::Continue);
        assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.record("v2", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.streak, 1, "a new serving version starts over");
        ledger.record("v2", Verdict::Equal);
        assert_eq!(ledger.record("v2", Verdict::Equal), Next::Promote);
        assert_eq!(ledger.state, State::Promoted);
        assert_eq!(
            ledger.counts,
            Counts {
                equal: 7,
                different: 1,
                skipped: 1,
                ..Counts::default()
            }
        );
        // Once promoted nothing more is counted.
        assert_eq!(ledger.record("v2", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.counts.equal, 7);
    }

    #[test]
    fn never_promotes_without_a_threshold() {
        let mut ledger = Ledger::new(None);
        for _ in 0..1000 {
            assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        }
        assert!(ledger.is_running());
    }

    #[test]
    fn a_failure_aborts_and_keeps_the_reason() {
        let mut ledger = Ledger::new(Some(1));
        assert_eq!(
            ledger.record("v1", Verdict::Failed("trap", "plugin trapped".into())),
            Next::Abort
        );
        assert_eq!(ledger.state, State::Aborted("plugin trapped".into()));
        assert!(!ledger.is_running());
        assert_eq!(ledger.record("v1", Verdict::Equal), Next::Continue);
        assert_eq!(ledger.counts.failed, 1);
        assert_eq!(ledger.counts.equal, 0, "an aborted shadow counts nothing");
    }

    #[test]
    fn the_sample_keeps_the_newest_differences() {
        let mut ledger = Ledger::new(None);
        for n in 0..SAMPLES + 5 {
            ledger.record("v1", Verdict::Different(sample(n)));
        }
        assert_eq!(ledger.recent.len(), SAMPLES);
        assert_eq!(ledger.recent[0].object, "ConfigMap ns/o5");
        assert_eq!(ledger.counts.different, (SAMPLES + 5) as u64);
    }

    #[test]
    fn long_values_are_cut() {
        let mut value = serde_json::json!({"a": ["é".repeat(10), "shrt"], "b": 1});
        truncate_strings(&mut value, 4);
        assert_eq!(value, serde_json::json!({"a": ["éééé…", "shrt"], "b": 1}));
    }
}
