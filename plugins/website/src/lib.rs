//! website: serves the page of a `Website` custom resource
//! (`demo.kubewasm.dev/v1alpha1`, see `deploy/crd.yaml`) from a child
//! ConfigMap.
//!
//! For each Website the plugin server-side applies a ConfigMap of the same
//! name holding the rendered `index.html`, with a controller owner reference
//! to the Website. It reports progress in `status.conditions` (`Ready`) and
//! `status.observedGeneration` through the status subresource, asks to be
//! called again while the ConfigMap has not appeared in the cache yet, and
//! records Events when it creates the ConfigMap or finds a problem.
//!
//! It owns ConfigMaps (`PluginInfo::owns`) rather than subscribing to them:
//! when a child is edited or deleted the host reconciles the owning Website,
//! which repairs or recreates it; ConfigMaps nobody owns never call the
//! plugin. It reads its children with `cache::list_owned` and deletes an
//! owned ConfigMap that is not the current child.
//!
//! A Website may take more text from a ConfigMap it names in
//! `spec.configMapRef` (`name`, `key` default `content`). A mapped watch
//! (`PluginInfo::watches`, rule `field-ref` on `spec.configMapRef.name`)
//! makes the host reconcile every Website naming a ConfigMap when that
//! ConfigMap changes, so the page follows its source without a requeue.
//!
//! It asks the host to manage the finalizer `kubewasm.dev/website` on
//! Websites: when a Website is deleted the plugin is called with a
//! `finalizing` event, deletes the child itself (so cleanup does not depend
//! on the garbage collector) and records a `Finalized` Event; the host then
//! removes the finalizer and the Website goes.
//!
//! `lastTransitionTime` of the `Ready` condition is the host's clock
//! (`kubewasm_guest::now`) when the condition's status changes.

mod child;
mod page;
mod status;

use std::time::Duration;

use kubewasm_guest::{
    Delete, Error, Event, GroupKind, KindRef, MappedWatch, Object, Outcome, Plugin, PluginInfo,
    RecordEvent, Status, Subscription, WriteScope, cache,
};

use crate::page::{CONFIG_MAP_REF_PATH, WebsiteSpec};
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
            // A child's change reconciles its Website. Owning the kind also
            // lets the plugin read any ConfigMap from the cache, so a
            // ConfigMap of the child's name that someone else created is
            // seen, and never taken over.
            .owns(KindRef::new("", "ConfigMap").version("v1"))
            // A change of a ConfigMap reconciles the Websites whose
            // spec.configMapRef.name names it.
            .watches(MappedWatch::field_ref(
                KindRef::new("", "ConfigMap").version("v1"),
                GroupKind::new(GROUP, "Website"),
                CONFIG_MAP_REF_PATH,
            ))
            .writes(WriteScope::new(GROUP, "Website"))
            .writes(WriteScope::new("", "ConfigMap"))
            .finalizer([GroupKind::new(GROUP, "Website")])
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let website = &event.object;
        if event.kind.group != GROUP || event.kind.kind != "Website" {
            return Ok(Outcome::new());
        }
        if event.is_finalizing() {
            return finalize(website);
        }
        if event.is_deleted() {
            // The event carries the last state the host saw.
            let last_reason = website
                .condition(status::READY)
                .map(|c| c.reason)
                .unwrap_or_else(|| "none".into());
            kubewasm_guest::info!(
                "Website deleted";
                website = website.name(),
                last_ready_reason = &last_reason
            );
            return Ok(Outcome::new());
        }
        if website.is_being_deleted() {
            // The finalizing event does the cleanup.
            return Ok(Outcome::new());
        }
        reconcile_website(website)
    }
}

/// The ConfigMaps the Website controls, from the cache: the current child
/// (if any) and stale ones of other names.
fn children(website: &Object) -> Result<(Option<Object>, Vec<Object>), Error> {
    let (current, stale): (Vec<Object>, Vec<Object>) =
        cache::list_owned("v1", "ConfigMap", website)?
            .into_iter()
            .partition(|c| c.name() == website.name());
    Ok((current.into_iter().next(), stale))
}

/// Cleanup before a Website goes: delete its child, and say so.
fn finalize(website: &Object) -> Result<Outcome, Error> {
    let (current, stale) = children(website)?;
    let mut outcome = Outcome::new();
    let mut deleted = Vec::new();
    for child in current.iter().chain(&stale) {
        outcome.push(Delete::new(child.object_ref()));
        deleted.push(child.name());
    }
    let note = if deleted.is_empty() {
        "No ConfigMap to delete; the Website can go".to_string()
    } else {
        format!(
            "Deleted ConfigMap {} before the Website goes",
            deleted.join(", ")
        )
    };
    outcome.push(RecordEvent::normal(website.object_ref(), "Finalized", note).action("Delete"));
    Ok(outcome)
}

/// Ready=False for a reason the user must fix: a Warning Event when the
/// reason first appears, and the status; the child is left as it is.
fn not_ready(website: &Object, reason: &'static str, message: String) -> Outcome {
    let mut outcome = Outcome::new();
    if !status::has_reason(website, reason) {
        outcome.push(RecordEvent::warning(
            website.object_ref(),
            reason,
            message.clone(),
        ));
    }
    let readiness = Readiness::new(Status::False, reason, message);
    outcome.extend(status::apply_for(website, &readiness));
    outcome
}

/// What `spec.configMapRef` adds to the page.
enum Referenced {
    /// No reference.
    Nothing,
    /// The text of the referenced key.
    Text(String),
    /// Why the text cannot be read: the ConfigMap or its key is missing.
    Missing(String),
}

fn referenced_text(website: &Object, spec: &WebsiteSpec) -> Result<Referenced, Error> {
    let Some(reference) = &spec.config_map_ref else {
        return Ok(Referenced::Nothing);
    };
    let Some(source) = cache::get("v1", "ConfigMap", website.namespace(), &reference.name)? else {
        return Ok(Referenced::Missing(format!(
            "ConfigMap {} does not exist",
            reference.name
        )));
    };
    Ok(match source.value()["data"][&reference.key].as_str() {
        Some(text) => Referenced::Text(text.to_string()),
        None => Referenced::Missing(format!(
            "ConfigMap {} has no key {}",
            reference.name, reference.key
        )),
    })
}

/// Brings one Website's child and status in line with its spec.
fn reconcile_website(website: &Object) -> Result<Outcome, Error> {
    let spec = website
        .get_as::<WebsiteSpec>("spec")
        .and_then(|spec| spec.ok_or_else(|| Error::msg("spec is missing")))
        .and_then(|spec| {
            spec.validate(website.name())
                .map(|()| spec)
                .map_err(Error::msg)
        });
    let spec = match spec {
        Ok(spec) => spec,
        Err(err) => return Ok(not_ready(website, "InvalidSpec", err.to_string())),
    };
    let referenced = match referenced_text(website, &spec)? {
        Referenced::Nothing => None,
        Referenced::Text(text) => Some(text),
        // The mapped watch calls again when the ConfigMap changes.
        Referenced::Missing(message) => return Ok(not_ready(website, "ContentMissing", message)),
    };

    let mut outcome = Outcome::new();
    let child_ref = child::child_ref(website);
    let desired = child::desired(website, &spec.render_with(referenced.as_deref()))?;
    let (current, stale) = children(website)?;
    for old in &stale {
        outcome.push(Delete::new(old.object_ref()));
    }
    let current = match current {
        Some(child) => Some(child),
        // Not ours, or not there: someone else's ConfigMap of that name?
        None => cache::get_ref(&child_ref)?,
    };
    let readiness = match current {
        None => {
            // Applied again on every call until the cache shows it (the
            // apply is idempotent); the Event only on the first.
            outcome.push(desired);
            let was_ready = status::has_reason(website, "ChildReady");
            if was_ready {
                outcome.push(
                    RecordEvent::normal(
                        website.object_ref(),
                        "ChildRecreated",
                        format!("Recreated ConfigMap {}, which was deleted", child_ref.name),
                    )
                    .action("Create"),
                );
            } else if !status::has_reason(website, "ChildPending") {
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
            Readiness::new(
                Status::False,
                "ChildPending",
                format!("Waiting for ConfigMap {} to appear", child_ref.name),
            )
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
            Readiness::new(Status::False, "ChildConflict", message)
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
            Readiness::new(
                Status::True,
                "ChildReady",
                format!("ConfigMap {} serves the page", child_ref.name),
            )
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
    fn describes_websites_owning_configmaps_with_a_finalizer() {
        let info = Website::describe();
        assert_eq!(info.name, "website");
        let subs: Vec<_> = info
            .subscriptions
            .iter()
            .map(|s| format!("{}/{}/{}", s.group, s.version, s.kind))
            .collect();
        assert_eq!(subs, ["demo.kubewasm.dev/v1alpha1/Website"]);
        assert_eq!(info.owns, [KindRef::new("", "ConfigMap").version("v1")]);
        assert_eq!(
            info.watches,
            [MappedWatch::field_ref(
                KindRef::new("", "ConfigMap").version("v1"),
                GroupKind::new(GROUP, "Website"),
                "spec.configMapRef.name"
            )]
        );
        assert_eq!(info.writes.len(), 2);
        let finalizer = info.finalizer.expect("a finalizer");
        assert_eq!(finalizer.name, "kubewasm.dev/website");
        assert_eq!(finalizer.kinds, [GroupKind::new(GROUP, "Website")]);
    }
}
