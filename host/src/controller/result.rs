//! How a reconcile ended, and what each of its intents came to, as the
//! metrics count them (`kubewasm_reconciles_total{result}` and
//! `kubewasm_intents_total{result}`): one named value per label.

use crate::applier::IntentResult;

/// How one reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// The plugin ran and every intent was applied (or had nothing to do).
    Ok,
    /// The plugin's call failed; the call error's own label (`error`,
    /// `trap`, `timeout`, `memory_limit`, ...).
    CallFailed(&'static str),
    /// The task running the call failed (a panic in the host's call path).
    TaskFailed,
    /// The leader lease was lost during the call; nothing was applied.
    NotLeader,
    /// The key moved to another replica of the shard ring (before the call,
    /// or during it: then nothing was applied).
    Moved,
    /// The plugin changes the object on every call; backing off.
    Loop,
    /// A write conflicted; reconciled again with the newest state.
    Conflict,
    /// An intent was outside the plugin's scope or grant, or malformed.
    Refused,
    /// The API server refused or failed a write.
    ApplyFailed,
    /// The kind's CRD was deleted before the queued key ran.
    KindRemoved,
    /// The plugin was removed before the queued key ran.
    Unloaded,
    /// The object's deletion started without the plugin's finalizer on it:
    /// nothing to clean up, the plugin was not called.
    Terminating,
}

impl ReconcileResult {
    /// The `result` label of `kubewasm_reconciles_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::CallFailed(label) => label,
            Self::TaskFailed => "error",
            Self::NotLeader => "not_leader",
            Self::Moved => "moved",
            Self::Loop => "loop",
            Self::Conflict => "conflict",
            Self::Refused => "refused",
            Self::ApplyFailed => "apply_failed",
            Self::KindRemoved => "kind_removed",
            Self::Unloaded => "unloaded",
            Self::Terminating => "terminating",
        }
    }
}

/// What one intent came to: the applier's [`IntentResult`] as
/// `kubewasm_intents_total` counts it ([`IntentOutcome::of`]), or a refusal
/// or failure.
///
/// | applier's `IntentResult` (its label) | `IntentOutcome` (`result` label) |
/// |---|---|
/// | `Applied` (`applied`)                | `Applied` (`applied`), `DryRun` (`dry_run`) in a dry run |
/// | `Unchanged` (`skipped_noop`)         | `Unchanged` (`unchanged`) |
/// | `AlreadyExists` (`already_exists`)   | `Unchanged` (`unchanged`) |
/// | `AlreadyGone` (`already_gone`)       | `Unchanged` (`unchanged`) |
///
/// The labels are a user contract and differ for `Unchanged` for
/// historical reasons; the Rust names say "unchanged" on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntentOutcome {
    /// Sent and accepted.
    Applied,
    /// Sent as a dry run and accepted, not persisted.
    DryRun,
    /// Not sent, or nothing to do: the object already is what the intent
    /// asks (a no-op write, a create of an existing object, a delete of a
    /// gone one).
    Unchanged,
    /// Refused by the host before it was sent (scope, grant, malformed).
    Refused,
    /// Sent and failed.
    Failed,
}

impl IntentOutcome {
    /// What an intent the applier carried out came to (the table above).
    pub fn of(result: IntentResult, dry_run: bool) -> Self {
        match result {
            IntentResult::Applied if dry_run => Self::DryRun,
            IntentResult::Applied => Self::Applied,
            IntentResult::Unchanged | IntentResult::AlreadyExists | IntentResult::AlreadyGone => {
                Self::Unchanged
            }
        }
    }

    /// The `result` label of `kubewasm_intents_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::DryRun => "dry_run",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}
