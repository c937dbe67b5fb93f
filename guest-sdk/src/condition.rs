//! Status conditions (`status.conditions`), the `metav1.Condition` shape.
//!
//! A plugin has no trustworthy clock, so the time a condition changes is
//! passed in by the caller: the best witness of the change the plugin can
//! read, such as the `creationTimestamp` of the child whose appearance made
//! the condition true. A condition whose status does not change keeps its
//! previous `lastTransitionTime`, so repeated reconciles write nothing new.

use serde::{Deserialize, Serialize};

use crate::Object;

/// A condition's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

/// One entry of `status.conditions`.
///
/// ```
/// use kubewasm_guest::{Condition, Status};
///
/// let ready = Condition::new("Ready", Status::True, "ChildReady", "ConfigMap blog exists")
///     .observed_generation(Some(3));
/// assert_eq!(serde_json::to_value(&ready)?, serde_json::json!({
///     "type": "Ready", "status": "True", "reason": "ChildReady",
///     "message": "ConfigMap blog exists", "lastTransitionTime": "", "observedGeneration": 3}));
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type in UpperCamelCase, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: Status,
    /// UpperCamelCase machine-readable reason for the last change.
    pub reason: String,
    /// Human-readable details.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339); set by [`set_condition`].
    #[serde(default)]
    pub last_transition_time: String,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition with no transition time yet ([`set_condition`] sets it).
    ///
    /// ```
    /// use kubewasm_guest::{Condition, Status};
    /// let c = Condition::new("Ready", Status::False, "ChildMissing", "waiting for ConfigMap blog");
    /// assert_eq!(c.type_, "Ready");
    /// ```
    pub fn new(
        type_: impl Into<String>,
        status: Status,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Condition {
            type_: type_.into(),
            status,
            reason: reason.into(),
            message: message.into(),
            last_transition_time: String::new(),
            observed_generation: None,
        }
    }

    /// Sets the generation the condition was computed from.
    ///
    /// ```
    /// use kubewasm_guest::{Condition, Status};
    /// let c = Condition::new("Ready", Status::True, "Ok", "").observed_generation(Some(2));
    /// assert_eq!(c.observed_generation, Some(2));
    /// ```
    pub fn observed_generation(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }
}

/// Sets `condition` in `conditions`, replacing the one of the same type.
///
/// `lastTransitionTime` becomes `transition_time` when the condition is new
/// or its status changes, and stays as it was otherwise. Returns whether
/// anything changed.
///
/// ```
/// use kubewasm_guest::{set_condition, Condition, Status};
///
/// let mut conditions = Vec::new();
/// let missing = Condition::new("Ready", Status::False, "ChildMissing", "waiting");
/// assert!(set_condition(&mut conditions, missing.clone(), "2026-01-01T00:00:00Z"));
/// // Same status again: nothing changes, whatever time is passed.
/// assert!(!set_condition(&mut conditions, missing, "2026-01-01T00:05:00Z"));
/// // A status change moves the transition time.
/// let ready = Condition::new("Ready", Status::True, "ChildReady", "ok");
/// assert!(set_condition(&mut conditions, ready, "2026-01-01T00:10:00Z"));
/// assert_eq!(conditions[0].last_transition_time, "2026-01-01T00:10:00Z");
/// ```
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    mut condition: Condition,
    transition_time: &str,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            condition.last_transition_time = if existing.status == condition.status {
                existing.last_transition_time.clone()
            } else {
                transition_time.to_string()
            };
            let changed = *existing != condition;
            *existing = condition;
            changed
        }
        None => {
            condition.last_transition_time = transition_time.to_string();
            conditions.push(condition);
            true
        }
    }
}

impl Object {
    /// `status.conditions`, skipping malformed entries.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"status": {"conditions": [
    ///     {"type": "Ready", "status": "True", "reason": "Ok", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
    /// assert_eq!(obj.conditions()[0].reason, "Ok");
    /// ```
    pub fn conditions(&self) -> Vec<Condition> {
        self.value()["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| serde_json::from_value(c.clone()).ok())
            .collect()
    }

    /// The condition of one type, if present.
    ///
    /// ```
    /// use kubewasm_guest::{Object, Status};
    /// let obj = Object::from(serde_json::json!({"status": {"conditions": [
    ///     {"type": "Ready", "status": "False", "reason": "Waiting"}]}}));
    /// assert_eq!(obj.condition("Ready").map(|c| c.status), Some(Status::False));
    /// assert!(obj.condition("Degraded").is_none());
    /// ```
    pub fn condition(&self, type_: &str) -> Option<Condition> {
        self.conditions().into_iter().find(|c| c.type_ == type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T01:00:00Z";

    #[test]
    fn new_condition_gets_the_time() {
        let mut conditions = Vec::new();
        assert!(set_condition(
            &mut conditions,
            Condition::new("Ready", Status::Unknown, "Init", ""),
            T0
        ));
        assert_eq!(conditions[0].last_transition_time, T0);
    }

    #[test]
    fn same_status_keeps_time_but_updates_reason_and_generation() {
        let mut conditions = vec![Condition {
            last_transition_time: T0.into(),
            ..Condition::new("Ready", Status::True, "Old", "old").observed_generation(Some(1))
        }];
        let update =
            Condition::new("Ready", Status::True, "New", "new").observed_generation(Some(2));
        assert!(set_condition(&mut conditions, update, T1));
        assert_eq!(conditions[0].last_transition_time, T0);
        assert_eq!(conditions[0].reason, "New");
        assert_eq!(conditions[0].observed_generation, Some(2));
    }

    #[test]
    fn identical_condition_is_not_a_change() {
        let mut conditions = Vec::new();
        let c = Condition::new("Ready", Status::True, "Ok", "fine");
        set_condition(&mut conditions, c.clone(), T0);
        assert!(!set_condition(&mut conditions, c, T1));
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, T0);
    }

    #[test]
    fn other_types_are_kept_in_order() {
        let mut conditions = Vec::new();
        set_condition(
            &mut conditions,
            Condition::new("A", Status::True, "R", ""),
            T0,
        );
        set_condition(
            &mut conditions,
            Condition::new("B", Status::True, "R", ""),
            T0,
        );
        set_condition(
            &mut conditions,
            Condition::new("A", Status::False, "R", ""),
            T1,
        );
        let types: Vec<_> = conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.last_transition_time.as_str()))
            .collect();
        assert_eq!(types, [("A", T1), ("B", T0)]);
    }

    #[test]
    fn malformed_conditions_are_skipped() {
        let obj = Object::from(
            serde_json::json!({"status": {"conditions": [{"type": "A", "status": "Maybe", "reason": "R"}]}}),
        );
        assert!(obj.conditions().is_empty());
    }
}
