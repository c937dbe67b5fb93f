//! The Website's status: `observedGeneration` and the `Ready` condition,
//! written through the status subresource only when they change.

use kubewasm_guest::{Apply, Condition, Object, Status, set_condition};
use serde_json::json;

/// The condition type the plugin owns.
pub const READY: &str = "Ready";

/// Used as a transition time only if the Website has no
/// `creationTimestamp` (never the case for an object read from a cluster).
const EPOCH: &str = "1970-01-01T00:00:00Z";

/// The Ready condition the plugin wants, and the best time it knows for a
/// change of its status (the plugin has no clock: see `reconcile`).
pub struct Readiness {
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
    pub since: Option<String>,
}

/// The status apply that records `readiness` for the Website's current
/// generation, or none if the status already says exactly that. Only the
/// `Ready` condition is applied: conditions of other managers stay theirs.
pub fn apply_for(website: &Object, readiness: &Readiness) -> Option<Apply> {
    let generation = website.generation();
    let wanted = Condition::new(
        READY,
        readiness.status,
        readiness.reason,
        readiness.message.clone(),
    )
    .observed_generation(generation);
    let since = readiness
        .since
        .as_deref()
        .or(website.creation_timestamp())
        .unwrap_or(EPOCH);
    let mut conditions: Vec<Condition> = website.condition(READY).into_iter().collect();
    let changed = set_condition(&mut conditions, wanted, since);
    let observed = website
        .get_path("status.observedGeneration")
        .and_then(|v| v.as_i64());
    if !changed && observed == generation {
        return None;
    }
    let status = json!({"observedGeneration": generation, "conditions": conditions});
    Some(Apply::status_of(&website.object_ref(), status))
}

/// Whether the Website's Ready condition currently has this reason (to
/// record an Event only when the reason first appears).
pub fn has_reason(website: &Object, reason: &str) -> bool {
    website.condition(READY).is_some_and(|c| c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn website(status: serde_json::Value) -> Object {
        Object::from(json!({
            "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
            "metadata": {"name": "blog", "namespace": "web", "generation": 2,
                         "creationTimestamp": "2026-03-01T10:00:00Z"},
            "status": status}))
    }

    fn ready(since: &str) -> Readiness {
        Readiness {
            status: Status::True,
            reason: "ChildReady",
            message: "ConfigMap blog serves the page".into(),
            since: Some(since.into()),
        }
    }

    #[test]
    fn first_status_uses_the_witness_time() {
        let apply = apply_for(&website(json!(null)), &ready("2026-03-01T10:00:05Z")).unwrap();
        assert!(apply.status);
        assert_eq!(
            apply.object["status"],
            json!({"observedGeneration": 2, "conditions": [{
                "type": "Ready", "status": "True", "reason": "ChildReady",
                "message": "ConfigMap blog serves the page",
                "lastTransitionTime": "2026-03-01T10:00:05Z", "observedGeneration": 2}]})
        );
    }

    #[test]
    fn unchanged_status_is_not_written() {
        let current = json!({"observedGeneration": 2, "conditions": [{
            "type": "Ready", "status": "True", "reason": "ChildReady",
            "message": "ConfigMap blog serves the page",
            "lastTransitionTime": "2026-03-01T10:00:05Z", "observedGeneration": 2}]});
        assert!(apply_for(&website(current), &ready("2026-03-09T00:00:00Z")).is_none());
    }

    #[test]
    fn new_generation_keeps_the_transition_time() {
        let current = json!({"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "True", "reason": "ChildReady",
            "message": "ConfigMap blog serves the page",
            "lastTransitionTime": "2026-03-01T10:00:05Z", "observedGeneration": 1}]});
        let apply = apply_for(&website(current), &ready("2026-03-09T00:00:00Z")).unwrap();
        assert_eq!(
            apply.object["status"]["conditions"][0]["lastTransitionTime"],
            "2026-03-01T10:00:05Z"
        );
        assert_eq!(apply.object["status"]["observedGeneration"], 2);
    }

    #[test]
    fn without_a_witness_the_creation_time_is_used() {
        let pending = Readiness {
            status: Status::False,
            reason: "ChildPending",
            message: "waiting".into(),
            since: None,
        };
        let apply = apply_for(&website(json!(null)), &pending).unwrap();
        assert_eq!(
            apply.object["status"]["conditions"][0]["lastTransitionTime"],
            "2026-03-01T10:00:00Z"
        );
    }
}
