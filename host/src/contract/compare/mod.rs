//! Whether two builds of a plugin would do the same: their outcomes for one
//! event, compared after setting aside what cannot change the cluster. The
//! shadow rollout compares the serving version (the reference) with its
//! shadow (the candidate); `kubewasm replay --against` an old build with a
//! new one.
//!
//! Normalised away: the order of intents (each is matched with the one of
//! the other outcome that writes the same object the same way), and writes
//! the cached object already holds (an apply or merge patch every field of
//! which is there). Everything else is a difference: an intent only one side
//! makes, a field of a matched intent, the requeue delay.

mod fields;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};

pub use fields::{Difference, differences};

use crate::cluster::cache::ObjectReader;
use crate::cluster::object::read::contains_json;
use crate::contract::intent::{Intent, Outcome};

/// Field differences listed per intent, at most; the rest are counted in
/// [`Change::Fields`]'s length only up to this.
pub const FIELD_DIFFERENCES: usize = 8;

/// How two outcomes differ; empty when they would write the same.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// By target object, then intent type.
    pub differences: Vec<IntentDifference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requeue: Option<RequeueDifference>,
}

impl Comparison {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty() && self.requeue.is_none()
    }
}

/// The requeue delays (milliseconds) when they differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RequeueDifference {
    pub expected: Option<u64>,
    pub actual: Option<u64>,
}

/// One intent that differs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntentDifference {
    /// The intent's type as written in WIT (`apply`, `merge-patch`, ...).
    pub intent: &'static str,
    /// The object it writes, escaped ([`ObjectRef::describe`](crate::contract::intent::ObjectRef::describe)).
    pub target: String,
    #[serde(flatten)]
    pub change: Change,
}

/// What differs about one intent.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "change", content = "fields", rename_all = "camelCase")]
pub enum Change {
    /// Only the expected (reference, serving, old) outcome makes it.
    Missing,
    /// Only the actual (candidate, shadow, new) outcome makes it.
    Added,
    /// Both make it; these fields differ (JSON paths into the intent, at
    /// most [`FIELD_DIFFERENCES`]).
    Fields(Vec<Difference>),
}

/// Compares `actual` with `expected`. `changes_nothing` says which intents
/// the cluster already reflects (see [`changes_nothing`]); those are left
/// out on both sides. `limit` bounds the intent differences listed.
pub fn compare(
    expected: &Outcome,
    actual: &Outcome,
    changes_nothing: impl Fn(&Intent) -> bool,
    limit: usize,
) -> Comparison {
    let mut pairs: BTreeMap<MatchKey, Sides<'_>> = BTreeMap::new();
    for (side, outcome) in [(0, expected), (1, actual)] {
        for intent in outcome.intents.iter().filter(|i| !changes_nothing(i)) {
            pairs.entry(MatchKey::of(intent)).or_default().0[side].push(intent);
        }
    }
    let mut differences = Vec::new();
    for (key, Sides([expected, actual])) in &mut pairs {
        // Equal intents pair first, wherever they stand; the rest pair in
        // their outcomes' order.
        expected.retain(|e| match actual.iter().position(|a| a == e) {
            Some(at) => {
                actual.remove(at);
                false
            }
            None => true,
        });
        for index in 0..expected.len().max(actual.len()) {
            if differences.len() >= limit {
                break;
            }
            let change = match (expected.get(index), actual.get(index)) {
                (Some(e), Some(a)) => Change::Fields(fields::differences(
                    &intent_json(e),
                    &intent_json(a),
                    FIELD_DIFFERENCES,
                )),
                (Some(_), None) => Change::Missing,
                _ => Change::Added,
            };
            differences.push(IntentDifference {
                intent: key.intent,
                target: key.target.clone(),
                change,
            });
        }
    }
    let requeue =
        (expected.requeue_after_ms != actual.requeue_after_ms).then_some(RequeueDifference {
            expected: expected.requeue_after_ms,
            actual: actual.requeue_after_ms,
        });
    Comparison {
        differences,
        requeue,
    }
}

/// Whether the cluster, as `reader` caches it, already holds everything the
/// intent writes: an apply or merge patch every field of which the cached
/// object (or its status, for the status subresource) has, a `null` counting
/// as absent. Anything else (a create, delete, JSON patch, Event, or an
/// object not cached) changes something.
pub fn changes_nothing(reader: &dyn ObjectReader, intent: &Intent) -> bool {
    let (want, status) = match intent {
        Intent::Apply { object, status, .. } => (object, *status),
        Intent::MergePatch(p) => (&p.patch, p.status),
        _ => return false,
    };
    let target = intent.target();
    let Ok(Some(cached)) = reader.get(
        &target.group_kind(),
        target.namespace.as_deref(),
        &target.name,
    ) else {
        return false;
    };
    match status {
        true => contains_json(cached.json(), &json!({"status": want["status"]})),
        false => contains_json(cached.json(), want),
    }
}

/// Intents are matched when they write the same object the same way.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MatchKey {
    target: String,
    intent: &'static str,
    status: bool,
}

impl MatchKey {
    fn of(intent: &Intent) -> Self {
        let status = match intent {
            Intent::Apply { status, .. } => *status,
            Intent::MergePatch(p) | Intent::JsonPatch(p) => p.status,
            _ => false,
        };
        Self {
            target: intent.target().describe(),
            intent: intent.type_name(),
            status,
        }
    }
}

/// The intents of one key in the expected and the actual outcome, each in
/// its outcome's order.
#[derive(Default)]
struct Sides<'a>([Vec<&'a Intent>; 2]);

fn intent_json(intent: &Intent) -> Value {
    serde_json::to_value(intent).unwrap_or(Value::Null)
}

impl fmt::Display for Comparison {
    /// One line per difference, each field on a line of its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_equal() {
            return writeln!(f, "no differences");
        }
        for d in &self.differences {
            match &d.change {
                Change::Missing => writeln!(
                    f,
                    "{} {}: only in the reference outcome",
                    d.intent, d.target
                )?,
                Change::Added => writeln!(
                    f,
                    "{} {}: only in the candidate outcome",
                    d.intent, d.target
                )?,
                Change::Fields(fields) => {
                    writeln!(f, "{} {}:", d.intent, d.target)?;
                    for field in fields {
                        writeln!(f, "    {field}")?;
                    }
                }
            }
        }
        if let Some(r) = &self.requeue {
            let ms = |v: Option<u64>| v.map_or("none".to_string(), |ms| format!("{ms} ms"));
            writeln!(
                f,
                "requeue after: expected {}, actual {}",
                ms(r.expected),
                ms(r.actual)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
