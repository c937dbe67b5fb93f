//! What the applier did, intent by intent, for logs and metrics.

use serde::Serialize;

use crate::contract::intent::ObjectRef;

/// What happened to one intent.
///
/// "Unchanged" is the one word for an intent that left its object as it
/// was: [`IntentResult::Unchanged`] (not sent), and, counted with it,
/// [`IntentResult::AlreadyExists`] and [`IntentResult::AlreadyGone`] (sent,
/// found already done). The labels predate that vocabulary and are kept as
/// they are: `Unchanged` is `skipped_noop` here, and all three are
/// `unchanged` in `kubewasm_intents_total`; the mapping is documented once,
/// on `controller::IntentOutcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentResult {
    /// Sent and accepted (in a dry run: accepted, not persisted).
    Applied,
    /// Not sent: the cached object already is what the write would make it.
    #[serde(rename = "skipped_noop")]
    Unchanged,
    /// A create whose object already exists. Counts as done: create means
    /// "make sure it exists"; use apply to converge its content.
    AlreadyExists,
    /// A delete whose object is already gone. Counts as done.
    AlreadyGone,
}

impl IntentResult {
    /// A bounded label for logs (`result` of "intent done").
    pub fn metric_label(&self) -> &'static str {
        match self {
            IntentResult::Applied => "applied",
            IntentResult::Unchanged => "skipped_noop",
            IntentResult::AlreadyExists => "already_exists",
            IntentResult::AlreadyGone => "already_gone",
        }
    }
}

/// One intent's result. `target` is the object written (for an Event: the
/// object it is about); for a create with `generateName` it carries the name
/// the server chose.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentReport {
    pub index: usize,
    pub intent: &'static str,
    pub target: ObjectRef,
    pub result: IntentResult,
    /// The object's `resourceVersion` after the write, when the server
    /// returned the object (apply, patch, create; the Event for record-event).
    pub resource_version: Option<String>,
}

/// What one write came to, before [`Applier::apply`](super::Applier::apply)
/// numbers it into an [`IntentReport`].
pub(super) struct Written {
    pub(super) result: IntentResult,
    /// The object written; for a create with `generateName`, with the name
    /// the server chose.
    pub(super) target: ObjectRef,
    pub(super) resource_version: Option<String>,
}

impl Written {
    /// Sent and accepted; `resource_version` if the server returned the object.
    pub(super) fn applied(target: ObjectRef, resource_version: Option<String>) -> Self {
        Self {
            result: IntentResult::Applied,
            target,
            resource_version,
        }
    }

    /// Not sent, or found already done (`result` says which).
    pub(super) fn unchanged(result: IntentResult, target: &ObjectRef) -> Self {
        Self {
            result,
            target: target.clone(),
            resource_version: None,
        }
    }
}

/// What [`Applier::apply`] did, intent by intent, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub dry_run: bool,
    pub intents: Vec<IntentReport>,
}

impl ApplyReport {
    /// How many intents were sent to the API server.
    pub fn sent(&self) -> usize {
        self.intents
            .iter()
            .filter(|i| i.result != IntentResult::Unchanged)
            .count()
    }
}
