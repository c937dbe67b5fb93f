//! The Website's status: `observedGeneration` and the `Ready` condition,
//! written through the status subresource only when they change.

use kubewasm_guest::{Apply, Condition, Object, Status, StatusUpdate};

/// The condition type the plugin owns.
pub const READY: &str = "Ready";

/// The Ready condition the plugin wants.
pub struct Readiness {
    pub status: Status,
    pub reason: &'static str,
    pub message: String,
}

impl Readiness {
    pub fn new(status: Status, reason: &'static str, message: String) -> Self {
        Readiness {
            status,
            reason,
            message,
        }
    }
}

/// The status apply that records `readiness` for the Website's current
/// generation, or none if the status already says exactly that. Only the
/// `Ready` condition is applied: conditions of other managers stay theirs.
/// A change of the condition's status is stamped with the host's clock.
pub fn apply_for(website: &Object, readiness: &Readiness) -> Option<Apply> {
    StatusUpdate::new(website)
        .condition(Condition::new(
            READY,
            readiness.status,
            readiness.reason,
            readiness.message.clone(),
        ))
        .observed_generation()
        .into_apply()
}

/// Whether the Website's Ready condition currently has this reason (to
/// record an Event only when the reason first appears).
pub fn has_reason(website: &Object, reason: &str) -> bool {
    website.condition(READY).is_some_and(|c| c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubewasm_guest::Timestamp;
    use kubewasm_guest::testing::TestHost;
    use serde_json::json;

    const NOW: &str = "2026-03-09T00:00:00Z";

    fn website(status: serde_json::Value) -> Object {
        TestHost::new()
            .now(Timestamp::parse(NOW).unwrap())
            .install();
        Object::from(json!({
            "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
            "metadata": {"name": "blog", "namespace": "web", "generation": 2,
                         "creationTimestamp": "2026-03-01T10:00:00Z"},
            "status": status}))
    }

    fn ready() -> Readiness {
        Readiness::new(
            Status::True,
            "ChildReady",
            "ConfigMap blog serves the page".into(),
        )
    }

    #[test]
    fn first_status_uses_the_clock() {
        let apply = apply_for(&website(json!(null)), &ready()).unwrap();
        assert!(apply.status);
        assert_eq!(
            apply.object["status"],
            json!({"observedGeneration": 2, "conditions": [{
                "type": "Ready", "status": "True", "reason": "ChildReady",
                "message": "ConfigMap blog serves the page",
                "lastTransitionTime": NOW, "observedGeneration": 2}]})
        );
    }

    #[test]
    fn unchanged_status_is_not_written() {
        let current = json!({"observedGeneration": 2, "conditions": [{
            "type": "Ready", "status": "True", "reason": "ChildReady",
            "message": "ConfigMap blog serves the page",
            "lastTransitionTime": "2026-03-01T10:00:05Z", "observedGeneration": 2}]});
        assert!(apply_for(&website(current), &ready()).is_none());
    }

    #[test]
    fn new_generation_keeps_the_transition_time() {
        let current = json!({"observedGeneration": 1, "conditions": [{
            "type": "Ready", "status": "True", "reason": "ChildReady",
            "message": "ConfigMap blog serves the page",
            "lastTransitionTime": "2026-03-01T10:00:05Z", "observedGeneration": 1}]});
        let apply = apply_for(&website(current), &ready()).unwrap();
        assert_eq!(
            apply.object["status"]["conditions"][0]["lastTransitionTime"],
            "2026-03-01T10:00:05Z"
        );
        assert_eq!(apply.object["status"]["observedGeneration"], 2);
    }
}
