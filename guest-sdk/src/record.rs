//! Kubernetes Events (`events.k8s.io/v1`) a plugin records about an object.

use serde::Serialize;

use crate::ObjectRef;

/// Severity of a Kubernetes Event (its `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Severity {
    /// Something expected happened.
    Normal,
    /// Something an operator may need to act on.
    Warning,
}

/// Records a Kubernetes Event about an object, shown by `kubectl describe`
/// and `kubectl events`. Events about an object the plugin reconciles are
/// always within its write scope.
///
/// ```
/// use kubewasm_guest::{ObjectRef, RecordEvent, Severity};
///
/// let website = ObjectRef::new("demo.kubewasm.dev/v1alpha1", "Website", Some("shop"), "blog");
/// let event = RecordEvent::normal(website, "ChildCreated", "created ConfigMap blog").action("Create");
/// assert_eq!(event.severity, Severity::Normal);
/// assert_eq!(event.action, "Create");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordEvent {
    /// The object the Event is about.
    pub regarding: ObjectRef,
    /// Normal or Warning.
    pub severity: Severity,
    /// Short UpperCamelCase machine-readable reason, e.g. `ChildCreated`.
    pub reason: String,
    /// Human-readable description.
    pub note: String,
    /// What was done, e.g. `Reconcile` (the default).
    pub action: String,
}

impl RecordEvent {
    /// A Normal Event with action `Reconcile`.
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, RecordEvent};
    /// let e = RecordEvent::normal(ObjectRef::new("v1", "Pod", Some("a"), "p"), "Seen", "saw the pod");
    /// assert_eq!(e.action, "Reconcile");
    /// ```
    pub fn normal(
        regarding: ObjectRef,
        reason: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        RecordEvent::new(regarding, Severity::Normal, reason.into(), note.into())
    }

    /// A Warning Event with action `Reconcile`.
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, RecordEvent, Severity};
    /// let e = RecordEvent::warning(ObjectRef::new("v1", "Pod", Some("a"), "p"), "Invalid", "spec.title is empty");
    /// assert_eq!(e.severity, Severity::Warning);
    /// ```
    pub fn warning(
        regarding: ObjectRef,
        reason: impl Into<String>,
        note: impl Into<String>,
    ) -> Self {
        RecordEvent::new(regarding, Severity::Warning, reason.into(), note.into())
    }

    /// Sets what was done, e.g. `Create`.
    ///
    /// ```
    /// use kubewasm_guest::{ObjectRef, RecordEvent};
    /// let e = RecordEvent::normal(ObjectRef::new("v1", "Pod", Some("a"), "p"), "R", "n").action("Delete");
    /// assert_eq!(e.action, "Delete");
    /// ```
    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    fn new(regarding: ObjectRef, severity: Severity, reason: String, note: String) -> Self {
        RecordEvent {
            regarding,
            severity,
            reason,
            note,
            action: "Reconcile".to_string(),
        }
    }
}
