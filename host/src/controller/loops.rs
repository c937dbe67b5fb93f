//! Reconcile-loop detection: a plugin that writes on every call for one
//! object, each write answering the change the previous one made: to the
//! object itself, or to an owned child or mapped watch source whose change
//! queued the object again (an owner rewriting its child on every child
//! event, or two controllers fighting over a child).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::WorkKey;

/// Writes in a row, each answering a change the previous write caused,
/// after which a plugin is considered to be in a reconcile loop.
const LOOP_THRESHOLD: u32 = 10;
/// Writes further apart than this do not count as one loop.
const LOOP_WINDOW: Duration = Duration::from_secs(30);

/// Writes in a row per key, and when the last one was. Cheap to clone;
/// clones share the counts.
#[derive(Clone, Default)]
pub(super) struct LoopDetector {
    writes: Arc<RwLock<HashMap<WorkKey, (u32, Instant)>>>,
}

impl LoopDetector {
    /// Counts a reconcile of `key` that wrote (or not), queued in answer
    /// to a change (`answers_change`, see [`super::Work`]) or not; true once
    /// the writes in a row form a loop.
    pub(super) fn observe(&self, key: &WorkKey, wrote: bool, answers_change: bool) -> bool {
        let mut writes = self.writes.write().unwrap_or_else(|e| e.into_inner());
        if !wrote || !answers_change {
            writes.remove(key);
            return false;
        }
        let now = Instant::now();
        let entry = writes.entry(key.clone()).or_insert((0, now));
        if now.duration_since(entry.1) > LOOP_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.1 = now;
        entry.0 >= LOOP_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::GroupKind;

    fn key() -> WorkKey {
        WorkKey {
            plugin: "website".into(),
            kind: GroupKind::new("demo.kubewasm.dev", "Website"),
            namespace: Some("shop".into()),
            name: "blog".into(),
        }
    }

    #[test]
    fn writes_answering_changes_in_a_row_are_a_loop() {
        let loops = LoopDetector::default();
        for _ in 1..LOOP_THRESHOLD {
            assert!(!loops.observe(&key(), true, true));
        }
        assert!(loops.observe(&key(), true, true));
    }

    #[test]
    fn a_reconcile_that_writes_nothing_ends_the_run() {
        // An owner recreating a deleted child writes once; the new child's
        // event reconciles it again and it writes nothing.
        let loops = LoopDetector::default();
        for _ in 0..3 * LOOP_THRESHOLD {
            assert!(!loops.observe(&key(), true, true));
            assert!(!loops.observe(&key(), false, true));
        }
    }

    #[test]
    fn writes_after_resyncs_and_requeues_are_not_counted() {
        // A plugin asking to be called again and writing each time (a
        // heartbeat) is not answering a change it caused.
        let loops = LoopDetector::default();
        for _ in 0..3 * LOOP_THRESHOLD {
            assert!(!loops.observe(&key(), true, false));
        }
        for _ in 1..LOOP_THRESHOLD {
            assert!(!loops.observe(&key(), true, true));
        }
        assert!(!loops.observe(&key(), true, false));
        assert!(!loops.observe(&key(), true, true));
    }
}
