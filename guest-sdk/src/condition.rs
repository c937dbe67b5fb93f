//! Status conditions (`status.conditions`), the `metav1.Condition` shape.
//!
//! [`StatusUpdate`] is the helper to use: it sets `observedGeneration` from
//! the object, stamps `lastTransitionTime` with the host's [`now`](crate::now)
//! only when a condition is new or its status changes, and gives the status
//! apply only if something changed, so repeated reconciles write nothing.
//! [`set_condition`] is the same rule on a plain list, with the time passed
//! in.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Apply, Object, ObjectRef};

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

/// The status an object should have, built from its current state: the
/// conditions (and other status fields) a reconcile sets, written with one
/// server-side apply to the `status` subresource only if they change it.
///
/// A condition set here gets the object's `metadata.generation` as its
/// `observedGeneration` (unless it names one), and keeps its current
/// `lastTransitionTime` unless it is new or its status changes, when it
/// gets the host's [`now`](crate::now). Only the conditions set are applied:
/// other managers' conditions stay theirs when the CRD declares
/// `status.conditions` a map list (`x-kubernetes-list-type: map`,
/// `x-kubernetes-list-map-keys: [type]`), as `metav1.Condition` lists do.
///
/// ```
/// use kubewasm_guest::{testing::TestHost, Condition, Object, Outcome, Status, StatusUpdate, Timestamp};
/// use serde_json::json;
///
/// TestHost::new().now(Timestamp::parse("2026-03-01T10:00:00Z")?).install();
/// let website = Object::from(json!({"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
///     "metadata": {"name": "blog", "namespace": "web", "generation": 3}}));
/// let update = StatusUpdate::new(&website)
///     .condition(Condition::new("Ready", Status::True, "ChildReady", "ConfigMap blog serves the page"))
///     .observed_generation();
/// let apply = update.into_apply().expect("the status changes");
/// assert!(apply.status);
/// assert_eq!(apply.object["status"], json!({"observedGeneration": 3, "conditions": [{
///     "type": "Ready", "status": "True", "reason": "ChildReady",
///     "message": "ConfigMap blog serves the page",
///     "lastTransitionTime": "2026-03-01T10:00:00Z", "observedGeneration": 3}]}));
///
/// // Once the object carries that status, the same update writes nothing.
/// let mut current = website.into_value();
/// current["status"] = apply.object["status"].clone();
/// let again = StatusUpdate::new(&Object::from(current))
///     .condition(Condition::new("Ready", Status::True, "ChildReady", "ConfigMap blog serves the page"))
///     .observed_generation();
/// assert!(again.into_apply().is_none());
/// let outcome = Outcome::new(); // outcome.extend(update.into_apply()) adds it when there is one
/// # let _ = outcome;
/// # Ok::<(), kubewasm_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StatusUpdate {
    target: ObjectRef,
    generation: Option<i64>,
    current: Value,
    conditions: Vec<Condition>,
    fields: Map<String, Value>,
    changed: bool,
}

impl StatusUpdate {
    /// An update of `object`'s status that changes nothing yet.
    ///
    /// ```
    /// let obj = kubewasm_guest::Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p", "namespace": "n"}}));
    /// assert!(kubewasm_guest::StatusUpdate::new(&obj).into_apply().is_none());
    /// ```
    pub fn new(object: &Object) -> Self {
        StatusUpdate {
            target: object.object_ref(),
            generation: object.generation(),
            current: object.value()["status"].clone(),
            conditions: Vec::new(),
            fields: Map::new(),
            changed: false,
        }
    }

    /// Sets a condition (builder form of [`set`](Self::set)).
    ///
    /// ```
    /// use kubewasm_guest::{Condition, Object, Status, StatusUpdate};
    /// # kubewasm_guest::testing::TestHost::new().install();
    /// let obj = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p", "generation": 2}}));
    /// let update = StatusUpdate::new(&obj).condition(Condition::new("Ready", Status::False, "Waiting", ""));
    /// assert_eq!(update.conditions()[0].observed_generation, Some(2));
    /// ```
    pub fn condition(mut self, condition: Condition) -> Self {
        self.set(condition);
        self
    }

    /// Sets a condition, replacing one of the same type set earlier in this
    /// update: `observedGeneration` defaults to the object's generation,
    /// `lastTransitionTime` is kept from the object's current condition of
    /// that type if the status is the same, and is [`now`](crate::now)
    /// otherwise.
    ///
    /// ```
    /// use kubewasm_guest::{Condition, Object, Status, StatusUpdate};
    /// # kubewasm_guest::testing::TestHost::new().install();
    /// let obj = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p"}, "status": {"conditions": [{"type": "Ready", "status": "False",
    ///     "reason": "Waiting", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}));
    /// let mut update = StatusUpdate::new(&obj);
    /// update.set(Condition::new("Ready", Status::False, "StillWaiting", ""));
    /// assert_eq!(update.conditions()[0].last_transition_time, "2026-01-01T00:00:00Z");
    /// assert!(update.is_changed()); // the reason changed
    /// ```
    pub fn set(&mut self, mut condition: Condition) {
        if condition.observed_generation.is_none() {
            condition.observed_generation = self.generation;
        }
        let current = current_condition(&self.current, &condition.type_);
        condition.last_transition_time = match &current {
            Some(c) if c.status == condition.status && !c.last_transition_time.is_empty() => {
                c.last_transition_time.clone()
            }
            _ => crate::now().rfc3339().to_string(),
        };
        self.changed |= current.as_ref() != Some(&condition);
        match self
            .conditions
            .iter_mut()
            .find(|c| c.type_ == condition.type_)
        {
            Some(earlier) => *earlier = condition,
            None => self.conditions.push(condition),
        }
    }

    /// Sets `status.<key>` (any JSON value) alongside the conditions.
    ///
    /// ```
    /// use kubewasm_guest::{Object, StatusUpdate};
    /// let obj = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p"}, "status": {"url": "http://a"}}));
    /// assert!(!StatusUpdate::new(&obj).field("url", "http://a").is_changed());
    /// assert!(StatusUpdate::new(&obj).field("url", "http://b").is_changed());
    /// ```
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        let (key, value) = (key.into(), value.into());
        self.changed |= self.current.get(&key) != Some(&value);
        self.fields.insert(key, value);
        self
    }

    /// Sets `status.observedGeneration` to the object's
    /// `metadata.generation`.
    ///
    /// ```
    /// use kubewasm_guest::{Object, StatusUpdate};
    /// let obj = Object::from(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p", "generation": 4}, "status": {"observedGeneration": 3}}));
    /// let apply = StatusUpdate::new(&obj).observed_generation().into_apply().unwrap();
    /// assert_eq!(apply.object["status"]["observedGeneration"], 4);
    /// ```
    pub fn observed_generation(self) -> Self {
        let generation = self.generation;
        self.field("observedGeneration", generation)
    }

    /// The conditions set so far, with their final transition times.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Whether the update changes the object's status.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The server-side apply of the status subresource holding the fields
    /// and conditions set, or none if they are what the object already has.
    /// `Outcome::extend` takes the `Option` as it is.
    pub fn into_apply(self) -> Option<Apply> {
        if !self.changed {
            return None;
        }
        let mut status = self.fields;
        if !self.conditions.is_empty() {
            status.insert(
                "conditions".to_string(),
                serde_json::to_value(&self.conditions).unwrap_or_default(),
            );
        }
        Some(Apply::status_of(&self.target, Value::Object(status)))
    }
}

/// The condition of one type in a `status` value, if well-formed.
fn current_condition(status: &Value, type_: &str) -> Option<Condition> {
    status["conditions"]
        .as_array()?
        .iter()
        .filter(|c| c["type"] == type_)
        .find_map(|c| serde_json::from_value(c.clone()).ok())
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

    fn website(status: serde_json::Value) -> Object {
        Object::from(serde_json::json!({
            "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
            "metadata": {"name": "blog", "namespace": "web", "generation": 2},
            "status": status}))
    }

    fn at(time: &str) {
        crate::testing::TestHost::new()
            .now(crate::Timestamp::parse(time).unwrap())
            .install();
    }

    #[test]
    fn status_update_stamps_now_only_when_the_status_changes() {
        at(T1);
        let current = website(serde_json::json!({"conditions": [
            {"type": "Ready", "status": "False", "reason": "Pending", "message": "",
             "lastTransitionTime": T0, "observedGeneration": 2},
            {"type": "Degraded", "status": "False", "reason": "Fine", "message": "",
             "lastTransitionTime": T0}]}));
        let same = StatusUpdate::new(&current).condition(Condition::new(
            "Ready",
            Status::False,
            "Pending",
            "",
        ));
        assert!(!same.is_changed());
        assert!(same.into_apply().is_none());

        let flipped = StatusUpdate::new(&current)
            .condition(Condition::new("Ready", Status::True, "Done", "ok"))
            .into_apply()
            .unwrap();
        // Only the condition set is applied; Degraded stays another manager's.
        assert_eq!(
            flipped.object["status"],
            serde_json::json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Done",
                "message": "ok", "lastTransitionTime": T1, "observedGeneration": 2}]})
        );
    }

    #[test]
    fn status_update_keeps_an_explicit_generation_and_the_last_of_a_type() {
        at(T1);
        let mut update = StatusUpdate::new(&website(serde_json::Value::Null));
        update
            .set(Condition::new("Ready", Status::Unknown, "Init", "").observed_generation(Some(1)));
        update.set(
            Condition::new("Ready", Status::False, "Pending", "").observed_generation(Some(1)),
        );
        assert_eq!(update.conditions().len(), 1);
        assert_eq!(update.conditions()[0].reason, "Pending");
        assert_eq!(update.conditions()[0].observed_generation, Some(1));
        assert_eq!(update.conditions()[0].last_transition_time, T1);
    }

    #[test]
    fn status_update_with_a_new_generation_keeps_the_transition_time() {
        at(T1);
        let current = website(serde_json::json!({"observedGeneration": 1, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Done", "message": "ok",
             "lastTransitionTime": T0, "observedGeneration": 1}]}));
        let apply = StatusUpdate::new(&current)
            .condition(Condition::new("Ready", Status::True, "Done", "ok"))
            .observed_generation()
            .into_apply()
            .unwrap();
        assert_eq!(apply.object["status"]["observedGeneration"], 2);
        assert_eq!(
            apply.object["status"]["conditions"][0]["lastTransitionTime"],
            T0
        );
        assert_eq!(
            apply.object["status"]["conditions"][0]["observedGeneration"],
            2
        );
    }
}
