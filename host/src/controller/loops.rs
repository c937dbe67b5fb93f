//! Reconcile-loop detection: a plugin that writes the object it is called
//! for on every call, each write answering the change the previous one made.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::contract::EventType;

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
    /// Counts a reconcile of `key` that wrote (or not) in answer to an
    /// `event_type` change; true once the writes in a row form a loop.
    pub(super) fn observe(&self, key: &WorkKey, wrote: bool, event_type: EventType) -> bool {
        let mut writes = self.writes.write().unwrap_or_else(|e| e.into_inner());
        if !wrote || event_type != EventType::Applied {
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
