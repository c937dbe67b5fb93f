//! What each plugin did since its current version was installed, for the
//! `counts` and `lastReconcileTime` of its resource's status. Kept per
//! replica (a failover starts them over); the metrics are the durable
//! record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::result::ReconcileResult;

/// Counts of one plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Reconciles that called the plugin.
    pub reconciles: i64,
    /// Of those, the ones whose call or writes failed.
    pub errors: i64,
    /// Of those, the ones whose intents the host refused.
    pub refused: i64,
    /// Writes sent (intents and finalizer patches that changed something).
    pub writes: i64,
    /// When the plugin last finished a reconcile.
    pub last: Option<jiff::Timestamp>,
}

/// Tallies by plugin id; cheap to clone and share.
#[derive(Clone, Default)]
pub struct Tallies(Arc<Mutex<HashMap<String, Tally>>>);

impl Tallies {
    /// The tally of plugin `id`, if it is installed.
    pub fn get(&self, id: &str) -> Option<Tally> {
        self.lock().get(id).cloned()
    }

    /// Counts writes `id` sent.
    pub(super) fn wrote(&self, id: &str, writes: usize) {
        if let Some(tally) = self.lock().get_mut(id) {
            tally.writes += writes as i64;
        }
    }

    /// Counts one finished reconcile of `id`.
    pub(super) fn record(&self, id: &str, result: ReconcileResult) {
        let called = !matches!(
            result,
            ReconcileResult::Unloaded
                | ReconcileResult::KindRemoved
                | ReconcileResult::Terminating
                | ReconcileResult::NotLeader
                | ReconcileResult::Moved
        );
        let mut tallies = self.lock();
        let Some(tally) = tallies.get_mut(id).filter(|_| called) else {
            return;
        };
        tally.reconciles += 1;
        tally.last = Some(jiff::Timestamp::now());
        match result {
            ReconcileResult::Refused => tally.refused += 1,
            ReconcileResult::CallFailed(_)
            | ReconcileResult::TaskFailed
            | ReconcileResult::ApplyFailed
            | ReconcileResult::Loop => tally.errors += 1,
            _ => {}
        }
    }

    /// A new version of `id` serves: its counts start over.
    pub(super) fn start(&self, id: &str) {
        self.lock().insert(id.to_string(), Tally::default());
    }

    pub(super) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tally>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_reconciles_by_result_only_for_installed_plugins() {
        let tallies = Tallies::default();
        tallies.record("absent", ReconcileResult::Ok);
        tallies.wrote("absent", 1);
        assert_eq!(tallies.get("absent"), None);
        tallies.start("p");
        tallies.record("p", ReconcileResult::Ok);
        tallies.wrote("p", 2);
        tallies.record("p", ReconcileResult::Refused);
        tallies.record("p", ReconcileResult::CallFailed("trap"));
        tallies.record("p", ReconcileResult::Unloaded);
        let tally = tallies.get("p").unwrap();
        assert_eq!(
            (tally.reconciles, tally.errors, tally.refused, tally.writes),
            (3, 1, 1, 2)
        );
        assert!(tally.last.is_some());
        tallies.start("p");
        assert_eq!(tallies.get("p"), Some(Tally::default()));
        tallies.remove("p");
        assert_eq!(tallies.get("p"), None);
    }
}
