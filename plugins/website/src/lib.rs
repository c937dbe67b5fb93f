//! website: serves the page of a `Website` custom resource
//! (`demo.kubewasm.dev/v1alpha1`, see `deploy/crd.yaml`) from a child
//! ConfigMap.
//!
//! For each Website the plugin server-side applies a ConfigMap of the same
//! name holding the rendered `index.html`, with a controller owner reference
//! so the garbage collector deletes it with the Website. It reports progress
//! in `status.conditions` (`Ready`) and `status.observedGeneration` through
//! the status subresource, asks to be called again while the ConfigMap has
//! not appeared in the cache yet, and records Events when it creates the
//! ConfigMap or finds a problem.
//!
//! It also subscribes to ConfigMaps, which it needs to read the child from
//! the host cache: a change to a child (an edit, a deletion) reconciles the
//! owning Website again, so drift is repaired.
//!
//! A plugin has no clock, so `lastTransitionTime` comes from the best witness
//! it can read: the child's `creationTimestamp` when the Website becomes
//! ready, the Website's own `creationTimestamp` otherwise.

mod child;
mod page;
mod status;

use std::time::Duration;

use kubewasm_guest::{
    Error, Event, Object, Outcome, Plugin, PluginInfo, RecordEvent, Status, Subscription,
    WriteScope, cache,
};

use crate::page::WebsiteSpec;
use crate::status::Readiness;

/// The custom resource's group.
pub const GROUP: &str = "demo.kubewasm.dev";

/// How long to wait before looking again for a child that was just applied.
pub const PENDING_REQUEUE: Duration = Duration::from_secs(2);

/// How long to wait before looking again at a name taken by someone else's
/// ConfigMap.
pub const CONFLICT_REQUEUE: Duration = Duration::from_secs(30);

/// The plugin.
pub struct Website;

impl Plugin for Website {
    fn describe() -> PluginInfo {
        PluginInfo::new("website", env!("CARGO_PKG_VERSION"))
            .subscribe(Subscription::new(GROUP, "v1alpha1", "Website"))
            // No label selector: a ConfigMap of the child's name that someone
            // else created must be seen too, so it is never taken over.
            .subscribe(Subscription::new("", "v1", "ConfigMap"))
            .writes(WriteScope::new(GROUP, "Website"))
            .writes(WriteScope::new("", "ConfigMap"))
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let object = &event.object;
        if event.kind.group == GROUP && event.kind.kind == "Website" {
            if event.is_deleted() {
                // The event carries the last state the host saw.
                let last_reason = object
                    .condition("Ready")
                    .map(|c| c.reason)
                    .unwrap_or_else(|| "none".into());
                kubewasm_guest::info!(
                    "Website deleted; its ConfigMap goes with it";
                    website = object.name(),
                    last_ready_reason = &last_reason
                );
                return Ok(Outcome::new());
            }
            return reconcile_website(object);
        }
        // A ConfigMap: reconcile the Website that controls it, if any.
        let Some(owner) = object.controller() else {
            return Ok(Outcome::new());
        };
        if owner.kind != "Website" || !owner.api_version.starts_with(&format!("{GROUP}/")) {
            return Ok(Outcome::new());
        }
        match cache::get(
            &owner.api_version,
            "Website",
            object.namespace(),
            &owner.name,
        )? {
            Some(website) if website.uid() == Some(owner.uid.as_str()) => {
                reconcile_website(&website)
            }
            _ => Ok(Outcome::new()),
        }
    }
}

/// Brings one Website's child and status in line with its spec.
fn reconcile_website(website: &Object) -> Result<Outcome, Error> {
    if website.is_being_deleted() {
        return Ok(Outcome::new());
    }
    let mut outcome = Outcome::new();
    let spec = website
        .get_as::<WebsiteSpec>("spec")
        .and_then(|spec| spec.ok_or_else(|| Error::msg("spec is missing")))
        .and_then(|spec| spec.validate().map(|()| spec).map_err(Error::msg));
    let spec = match spec {
        Ok(spec) => spec,
        Err(err) => {
            let readiness = Readiness {
                status: Status::False,
                reason: "InvalidSpec",
                message: err.to_string(),
                since: None,
            };
            if !status::has_reason(website, readiness.reason) {
                outcome.push(RecordEvent::warning(
                    website.object_ref(),
                    "InvalidSpec",
                    err.to_string(),
                ));
            }
            outcome.extend(status::apply_for(website, &readiness));
            return Ok(outcome);
        }
    };

    let child_ref = child::child_ref(website);
    let desired = child::desired(website, &spec.render())?;
    let readiness = match cache::get_ref(&child_ref)? {
        None => {
            // Applied again on every call until the cache shows it (the
            // apply is idempotent); the Event only on the first.
            outcome.push(desired);
            if !status::has_reason(website, "ChildPending") {
                outcome.push(
                    RecordEvent::normal(
                        website.object_ref(),
                        "ChildCreated",
                        format!(
                            "Created ConfigMap {} with the rendered page",
                            child_ref.name
                        ),
                    )
                    .action("Create"),
                );
            }
            outcome = outcome.requeue_after(PENDING_REQUEUE);
            Readiness {
                status: Status::False,
                reason: "ChildPending",
                message: format!("Waiting for ConfigMap {} to appear", child_ref.name),
                since: None,
            }
        }
        Some(child) if !child.is_controlled_by(website) => {
            let message = format!(
                "ConfigMap {} exists and is not controlled by this Website",
                child_ref.name
            );
            if !status::has_reason(website, "ChildConflict") {
                outcome.push(RecordEvent::warning(
                    website.object_ref(),
                    "ChildConflict",
                    message.clone(),
                ));
            }
            outcome = outcome.requeue_after(CONFLICT_REQUEUE);
            Readiness {
                status: Status::False,
                reason: "ChildConflict",
                message,
                since: None,
            }
        }
        Some(child) => {
            if !child::is_up_to_date(&child, &desired) {
                outcome.push(desired);
                outcome.push(
                    RecordEvent::normal(
                        website.object_ref(),
                        "ChildUpdated",
                        format!("Updated the page in ConfigMap {}", child_ref.name),
                    )
                    .action("Update"),
                );
            }
            Readiness {
                status: Status::True,
                reason: "ChildReady",
                message: format!("ConfigMap {} serves the page", child_ref.name),
                since: child.creation_timestamp().map(str::to_string),
            }
        }
    };
    outcome.extend(status::apply_for(website, &readiness));
    Ok(outcome)
}

kubewasm_guest::export_plugin!(Website);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_websites_and_configmaps() {
        let info = Website::describe();
        assert_eq!(info.name, "website");
        let subs: Vec<_> = info
            .subscriptions
            .iter()
            .map(|s| format!("{}/{}/{}", s.group, s.version, s.kind))
            .collect();
        assert_eq!(
            subs,
            ["demo.kubewasm.dev/v1alpha1/Website", "/v1/ConfigMap"]
        );
        assert_eq!(info.writes.len(), 2);
    }
}
