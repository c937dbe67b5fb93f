//! Host-managed finalizers (`PluginInfo::finalizer`): which event a plugin
//! is called with for an object of a kind its finalizer covers, and what
//! the host writes around that call.
//!
//! | object | plugin called with | host writes |
//! |---|---|---|
//! | not being deleted, finalizer absent | the event as queued | adds the finalizer before the intents, if there are any |
//! | not being deleted, finalizer present | the event as queued | nothing more |
//! | being deleted, finalizer present | `finalizing` | removes the finalizer after the intents applied, unless the plugin asked for `requeue-after` (its cleanup is not finished) |
//! | being deleted, finalizer absent | not called | nothing |
//! | gone (`deleted`) | `deleted`, with its last known state | nothing |
//!
//! An object whose deletion started without the plugin's finalizer has
//! nothing of the plugin's to clean up: the plugin never wrote for it (the
//! finalizer goes on before its first write), or an operator released the
//! finalizer on purpose (`kubewasm release-finalizers`). The API server
//! accepts no new finalizer on it, and anything the plugin would create
//! for it would outlive it, so the plugin is not called (like kube-rs's
//! `finalizer` helper); its `deleted` event still comes once it is gone.
//!
//! Nothing is written for a plugin without a finalizer, or for kinds its
//! finalizer does not cover (0.1.0 plugins never have one).

use crate::cluster::object::CachedObject;
use crate::contract::{EventType, Finalizer, PluginInfo};

/// The event the plugin is called with for `object` (the newest state),
/// queued as `queued`; `None` if it is not called. `finalizer` is the
/// plugin's finalizer if it covers the object's kind.
pub fn event_for(
    finalizer: Option<&Finalizer>,
    queued: EventType,
    object: &CachedObject,
) -> Option<EventType> {
    let Some(finalizer) = finalizer else {
        return Some(queued);
    };
    if queued == EventType::Deleted {
        return Some(queued);
    }
    match (
        object.is_being_deleted(),
        object.has_finalizer(&finalizer.name),
    ) {
        (true, true) => Some(EventType::Finalizing),
        (true, false) => None,
        // Deletion is never undone; a finalizing key whose state says
        // otherwise is reconciled as a resync.
        (false, _) if queued == EventType::Finalizing => Some(EventType::Resync),
        (false, _) => Some(queued),
    }
}

/// Whether the host adds the finalizer before applying the intents of a
/// reconcile called with `event` that returned `intents` intents.
pub(super) fn adds(
    finalizer: Option<&Finalizer>,
    event: EventType,
    object: &CachedObject,
    intents: usize,
) -> bool {
    finalizer.is_some_and(|f| {
        matches!(event, EventType::Applied | EventType::Resync)
            && intents > 0
            && !object.is_being_deleted()
            && !object.has_finalizer(&f.name)
    })
}

/// Whether the host removes the finalizer after a `finalizing` reconcile
/// whose intents all applied: only if the plugin did not ask to be called
/// again (a requeue means its cleanup is not finished).
pub(super) fn removes(event: EventType, requeue_after: Option<std::time::Duration>) -> bool {
    event == EventType::Finalizing && requeue_after.is_none()
}

/// Warns that `previous`'s finalizer is no longer managed, when the plugin
/// is unloaded (`next` is `None`) or replaced by a version without it or
/// with another name: objects carrying it will not finish deleting until
/// the plugin is back or an operator releases it.
pub(super) fn warn_if_orphaned(previous: &PluginInfo, next: Option<&PluginInfo>) {
    let Some(finalizer) = &previous.finalizer else {
        return;
    };
    if next.and_then(|n| n.finalizer.as_ref()).map(|f| &f.name) == Some(&finalizer.name) {
        return;
    }
    let kinds: Vec<String> = finalizer
        .kinds
        .iter()
        .map(|k| match k.group.as_str() {
            "" => k.kind.clone(),
            group => format!("{}.{group}", k.kind),
        })
        .collect();
    let command = format!(
        "kubewasm release-finalizers --finalizer {}{}",
        finalizer.name,
        kinds
            .iter()
            .map(|k| format!(" --kind {k}"))
            .collect::<String>()
    );
    tracing::warn!(
        plugin = %previous.name,
        finalizer = %finalizer.name,
        kinds = %kinds.join(","),
        release = %command,
        "the plugin's finalizer is no longer managed: objects that carry it stay terminating when deleted \
         until the plugin is loaded again or the finalizer is released (see `release`)"
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::contract::GroupKind;

    const NAME: &str = "kubewasm.dev/website";

    fn finalizer() -> Finalizer {
        Finalizer {
            name: NAME.into(),
            kinds: vec![GroupKind::new("demo.kubewasm.dev", "Website")],
        }
    }

    fn object(deleting: bool, present: bool) -> CachedObject {
        let mut o = json!({"metadata": {"name": "blog", "finalizers": ["other.io/x"]}});
        if deleting {
            o["metadata"]["deletionTimestamp"] = json!("2026-12-04T03:00:00Z");
        }
        if present {
            o["metadata"]["finalizers"] = json!(["other.io/x", NAME]);
        }
        CachedObject::from_value(&o)
    }

    #[test]
    fn the_event_follows_deletion_and_the_finalizer() {
        use EventType::*;
        let f = finalizer();
        let f = Some(&f);
        // Deletion started and the finalizer is on the object: finalizing,
        // whatever the change that queued the key.
        for queued in [Applied, Resync, Finalizing] {
            assert_eq!(event_for(f, queued, &object(true, true)), Some(Finalizing));
            // Without it there is nothing to clean up: not called.
            assert_eq!(event_for(f, queued, &object(true, false)), None);
        }
        // Not being deleted: the event as queued.
        for present in [false, true] {
            assert_eq!(
                event_for(f, Applied, &object(false, present)),
                Some(Applied)
            );
            assert_eq!(event_for(f, Resync, &object(false, present)), Some(Resync));
        }
        assert_eq!(event_for(f, Finalizing, &object(false, true)), Some(Resync));
        // A deleted object is delivered as such, finalizer or not.
        for (deleting, present) in [(true, true), (true, false), (false, false)] {
            assert_eq!(
                event_for(f, Deleted, &object(deleting, present)),
                Some(Deleted)
            );
        }
        // No finalizer (or one that does not cover the kind): unchanged.
        for queued in [Applied, Resync, Deleted] {
            assert_eq!(event_for(None, queued, &object(true, true)), Some(queued));
        }
    }

    #[test]
    fn the_finalizer_goes_on_before_the_first_write() {
        use EventType::*;
        let f = finalizer();
        let f = Some(&f);
        assert!(adds(f, Applied, &object(false, false), 1));
        assert!(adds(f, Resync, &object(false, false), 3));
        // No intents, already there, deletion started, a delete event, or
        // no finalizer: nothing to add.
        assert!(!adds(f, Applied, &object(false, false), 0));
        assert!(!adds(f, Applied, &object(false, true), 1));
        assert!(!adds(f, Applied, &object(true, false), 1));
        assert!(!adds(f, Deleted, &object(false, false), 1));
        assert!(!adds(f, Finalizing, &object(true, true), 1));
        assert!(!adds(None, Applied, &object(false, false), 1));
    }

    #[test]
    fn the_finalizer_comes_off_after_a_finished_cleanup() {
        use EventType::*;
        assert!(removes(Finalizing, None));
        // A requeue means the cleanup is not finished.
        assert!(!removes(Finalizing, Some(Duration::from_secs(1))));
        assert!(!removes(Applied, None));
        assert!(!removes(Deleted, None));
    }
}
