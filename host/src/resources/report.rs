//! What a plugin resource's owner sees: its status (conditions `Ready` and
//! `Degraded`, what serves, what the source resolved to, what failed) and
//! Events for load, swap, refusal and suspension.
//!
//! Status is written by server-side apply with the host's own field
//! manager, so it never conflicts and never needs a `resourceVersion`;
//! only when it changes. Writes go through the host's fenced client, so
//! only the leader's land; a refused or failed write is logged and retried
//! with the next change or poll.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::resources::object::PluginObject;
use crate::resources::{
    ClusterPlugin, Failed, Plugin, PluginStatus, Resolved, Serving, ShadowStatus,
};

/// The field manager of the host's status writes.
pub const STATUS_MANAGER: &str = "kubewasm.dev/host";

/// Largest condition message or Event note written (the API server limits
/// notes to 1 KiB).
const MAX_MESSAGE: usize = 1000;

/// Where statuses and Events go.
#[derive(Clone)]
pub struct Reporting {
    client: kube::Client,
    recorder: Recorder,
}

impl Reporting {
    pub fn new(client: kube::Client, instance: String) -> Self {
        let reporter = Reporter {
            controller: STATUS_MANAGER.into(),
            instance: Some(instance),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    /// Writes `status` to the resource; a write that fails is logged (a
    /// deleted object is not an error).
    pub async fn status(&self, object: &PluginObject, status: &PluginStatus) -> bool {
        let (api, kind): (Api<DynamicObject>, _) = match object.namespace() {
            Some(ns) => (
                Api::namespaced_with(self.client.clone(), ns, &Plugin::api_resource()),
                "Plugin",
            ),
            None => (
                Api::all_with(self.client.clone(), &ClusterPlugin::api_resource()),
                "ClusterPlugin",
            ),
        };
        let name = object.name();
        let resource = &object.origin;
        let patch = serde_json::json!({
            "apiVersion": "kubewasm.dev/v1alpha1",
            "kind": kind,
            "status": status,
        });
        match api
            .patch_status(
                name,
                &PatchParams::apply(STATUS_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
        {
            Ok(_) => true,
            Err(kube::Error::Api(e)) if e.code == 404 => true,
            Err(error) if fenced(&error) => {
                tracing::debug!(%resource, "status not written: not the leader");
                false
            }
            Err(error) => {
                tracing::warn!(%resource, error = %crate::ops::error_chain(&error), "failed to write the plugin resource's status; retried with the next change");
                false
            }
        }
    }

    /// Records an Event about `object`.
    pub async fn event(&self, object: &PluginObject, warning: bool, reason: &str, note: String) {
        let reference = &object.reference;
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(truncate(note)),
            action: "Load".into(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, reference).await
            && !fenced(&error)
        {
            tracing::warn!(resource = %object.origin, reason, error = %crate::ops::error_chain(&error), "failed to record an Event on the plugin resource");
        }
    }
}

/// Whether the host's write fence refused the request: a follower (or a
/// host that cannot reach the API server) does not write; the leader does.
pub(super) fn fenced(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Service(e) if e.is::<crate::cluster::client::WriteRefused>())
}

/// Cuts `text` to [`MAX_MESSAGE`] bytes at a character boundary.
pub fn truncate(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// What the host knows of one resource, from which its status is built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    pub generation: Option<i64>,
    pub serving: Option<Serving>,
    pub resolved: Option<Resolved>,
    pub failed: Option<Failed>,
    pub suspended: bool,
    /// What the serving version did on this replica since it was installed.
    pub counts: crate::resources::Counts,
    pub last_reconcile_time: Option<Time>,
    /// `spec.shadow`'s summary and the `Shadow` condition's message.
    pub shadow: Option<(ShadowStatus, String)>,
}

impl State {
    /// The status to write, keeping the transition times of conditions
    /// whose status did not change in `previous`.
    pub fn status(&self, previous: Option<&PluginStatus>) -> PluginStatus {
        let (ready, ready_reason, ready_message) = if self.suspended {
            (
                "False",
                "Suspended",
                "spec.suspend is true: the plugin is not called".to_string(),
            )
        } else {
            match (&self.serving, &self.failed) {
                (Some(s), None) => (
                    "True",
                    "Serving",
                    format!("{} {} serves ({})", s.name, s.version, s.digest),
                ),
                (Some(s), Some(f)) => (
                    "False",
                    "PreviousVersionServing",
                    format!(
                        "{} {} ({}) keeps serving: the current module failed: {}",
                        s.name, s.version, s.digest, f.message
                    ),
                ),
                (None, Some(f)) => ("False", f.reason.as_str(), f.message.clone()),
                (None, None) => ("False", "Loading", "the module is being loaded".to_string()),
            }
        };
        let (degraded, degraded_reason, degraded_message) = match &self.failed {
            Some(f) if !self.suspended => ("True", f.reason.as_str(), f.message.clone()),
            _ => ("False", "AsExpected", String::new()),
        };
        let condition = |type_: &str, status: &str, reason: &str, message: String| {
            let since = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
                .filter(|c| c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or_else(now);
            Condition {
                type_: type_.into(),
                status: status.into(),
                reason: reason.into(),
                message: truncate(message),
                observed_generation: self.generation,
                last_transition_time: since,
            }
        };
        let mut conditions = vec![
            condition("Ready", ready, ready_reason, ready_message),
            condition("Degraded", degraded, degraded_reason, degraded_message),
        ];
        if let Some((shadow, message)) = &self.shadow {
            let running = matches!(shadow.state.as_str(), "Running" | "Promoted");
            let status = if running { "True" } else { "False" };
            conditions.push(condition("Shadow", status, &shadow.state, message.clone()));
        }
        PluginStatus {
            observed_generation: self.generation,
            conditions,
            serving: if self.suspended {
                None
            } else {
                self.serving.clone()
            },
            resolved: self.resolved.clone(),
            failed: self.failed.clone(),
            last_reconcile_time: self.last_reconcile_time.clone(),
            counts: self.counts.clone(),
            shadow: self.shadow.as_ref().map(|(s, _)| s.clone()),
        }
    }
}

/// A status reason for a load failure's metric label.
pub fn load_reason(kind: &str) -> &'static str {
    match kind {
        "not_wasm" | "not_component" => "NotAComponent",
        "wrong_world" => "WrongWorld",
        "not_granted" => "CapabilityNotGranted",
        "compile" => "CompileFailed",
        "describe" | "invalid_description" => "DescribeFailed",
        "settings" => "SettingsRejected",
        "duplicate_name" => "DuplicateName",
        "grant_missing" => "GrantMissing",
        "cluster_scoped_write" => "ClusterScopedWrite",
        "read_not_permitted" => "ReadNotPermitted",
        "impersonation_denied" => "ImpersonationDenied",
        "interrupted" => "Interrupted",
        _ => "LoadFailed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving(version: &str) -> Serving {
        Serving {
            digest: format!("sha256:{version}"),
            component_digest: format!("sha256:{version}"),
            name: "probe".into(),
            version: version.into(),
            contract: "0.2.0".into(),
            since: now(),
        }
    }

    fn failed(reason: &str) -> Failed {
        Failed {
            digest: "sha256:bad".into(),
            reason: reason.into(),
            message: "it broke".into(),
            time: now(),
        }
    }

    fn condition<'a>(status: &'a PluginStatus, type_: &str) -> (&'a str, &'a str) {
        let c = status.conditions.iter().find(|c| c.type_ == type_).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    #[test]
    fn conditions_say_what_serves_and_what_failed() {
        let mut state = State {
            generation: Some(3),
            serving: Some(serving("1.0.0")),
            ..State::default()
        };
        let ok = state.status(None);
        assert_eq!(condition(&ok, "Ready"), ("True", "Serving"));
        assert_eq!(condition(&ok, "Degraded"), ("False", "AsExpected"));
        assert_eq!(ok.observed_generation, Some(3));

        state.failed = Some(failed("SettingsRejected"));
        let kept = state.status(Some(&ok));
        assert_eq!(
            condition(&kept, "Ready"),
            ("False", "PreviousVersionServing")
        );
        assert_eq!(condition(&kept, "Degraded"), ("True", "SettingsRejected"));
        assert_eq!(kept.serving.as_ref().unwrap().version, "1.0.0");

        state.serving = None;
        let none = state.status(Some(&kept));
        assert_eq!(condition(&none, "Ready"), ("False", "SettingsRejected"));
        // Degraded stayed True: its transition time is kept.
        let time = |s: &PluginStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == "Degraded")
                .unwrap()
                .last_transition_time
                .clone()
        };
        assert_eq!(time(&none), time(&kept));

        state.suspended = true;
        let suspended = state.status(Some(&none));
        assert_eq!(condition(&suspended, "Ready"), ("False", "Suspended"));
        assert_eq!(condition(&suspended, "Degraded"), ("False", "AsExpected"));
    }

    #[test]
    fn a_shadow_adds_its_condition_and_summary() {
        let mut state = State {
            serving: Some(serving("1.0.0")),
            ..State::default()
        };
        let none = state.status(None);
        assert_eq!(condition_of(&none, "Shadow"), None);
        assert_eq!(none.shadow, None);
        let shadow = |s: &str| ShadowStatus {
            state: s.into(),
            ..ShadowStatus::default()
        };
        state.shadow = Some((shadow("Running"), "runs".into()));
        let running = state.status(Some(&none));
        assert_eq!(condition(&running, "Shadow"), ("True", "Running"));
        assert_eq!(running.shadow.as_ref().unwrap().state, "Running");
        assert_eq!(condition(&running, "Ready"), ("True", "Serving"));
        state.shadow = Some((shadow("Aborted"), "trapped".into()));
        let aborted = state.status(Some(&running));
        assert_eq!(condition(&aborted, "Shadow"), ("False", "Aborted"));
        assert_eq!(
            condition(&aborted, "Degraded"),
            ("False", "AsExpected"),
            "a failed shadow does not degrade the serving version"
        );
    }

    fn condition_of<'a>(status: &'a PluginStatus, type_: &str) -> Option<&'a Condition> {
        status.conditions.iter().find(|c| c.type_ == type_)
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let cut = truncate("é".repeat(800));
        assert!(cut.len() <= MAX_MESSAGE, "{}", cut.len());
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short".into()), "short");
    }
}
