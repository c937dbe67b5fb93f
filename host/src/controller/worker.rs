//! The workers: each takes the next key from the queue, calls its plugin,
//! applies the intents, and tells the queue how it went (controller-runtime's
//! `processNextWorkItem`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::Instrument;

use super::Controller;
use super::finalizing;
use super::result::{IntentOutcome, ReconcileResult};
use super::work::{Work, WorkKey};
use crate::applier::{ApplyError, ApplyReport, IntentReport, IntentResult};
use crate::contract::intent::Outcome;
use crate::contract::{Event, EventType, GroupKind};
use crate::ops::metrics::Metrics;
use crate::plugins::LoadedPlugin;
use crate::plugins::grant::GrantedReader;
use crate::queue;
use crate::runtime::{Clock, ReadAccess};
use crate::shadow::capture::CapturingReader;
use crate::shadow::runner::Job;

/// How often work for a plugin whose informers are still listing is retried.
const SYNC_POLL: Duration = Duration::from_millis(100);

/// How one reconcile ended: what the queue does with the key next, and the
/// result the metrics count.
struct Finished {
    next: queue::Outcome,
    result: ReconcileResult,
}

impl Finished {
    /// Nothing more to do for the key (unless the plugin asked for a requeue).
    fn done(result: ReconcileResult, requeue_after: Option<Duration>) -> Self {
        Self {
            next: queue::Outcome::Success { requeue_after },
            result,
        }
    }

    /// The key is retried with backoff.
    fn retry(result: ReconcileResult) -> Self {
        Self {
            next: queue::Outcome::Failure,
            result,
        }
    }
}

impl Controller {
    /// One worker: takes items until the queue shuts down.
    pub async fn work(self) {
        let mut leader = self.leader.clone();
        loop {
            // A standby keeps its queue (and caches) warm but takes no work.
            tokio::select! {
                _ = leader.wait() => {}
                _ = self.queue.closed() => return,
            }
            let Some(item) = self.queue.next().await else {
                return;
            };
            self.process(item).await;
        }
    }

    /// Runs one queued item and hands its outcome back to the queue.
    async fn process(&self, item: queue::Item<WorkKey, Work>) {
        let key = item.key().clone();
        if self.caches_syncing(&key.plugin) {
            // The first events of a kind arrive while the plugin's other
            // kinds may still be listing; it runs once it can read them.
            tracing::trace!(?key, "postponed: the plugin's informers are still listing");
            item.done(queue::Outcome::Postponed { after: SYNC_POLL });
            return;
        }
        let Some(_running) = self.shards.begin(key.shard_hash()) else {
            // Queued before the shard ring moved the key to another replica.
            tracing::trace!(?key, "dropped: the key is another replica's now");
            item.done(queue::Outcome::Success {
                requeue_after: None,
            });
            return;
        };
        let waited = item.waited;
        let (work, lease) = item.into_parts();
        let span = tracing::info_span!(
            "reconcile",
            plugin = %key.plugin,
            kind = %key.kind.kind,
            object = %key.object(),
            reason = ?work.event_type,
            version = tracing::field::Empty,
        );
        span.in_scope(|| {
            tracing::debug!(waited_ms = waited.as_millis() as u64, "reconcile started")
        });
        let metrics = &self.metrics;
        let plugin = [key.plugin.as_str()];
        metrics
            .queue_latency
            .with_label_values(&plugin)
            .observe(waited.as_secs_f64());
        let started = Instant::now();
        let finished = self.reconcile(&key, work).instrument(span.clone()).await;
        metrics
            .reconcile_duration
            .with_label_values(&plugin)
            .observe(started.elapsed().as_secs_f64());
        let result = finished.result.metric_label();
        metrics
            .reconciles
            .with_label_values(&[key.plugin.as_str(), result])
            .inc();
        self.tallies.record(&key.plugin, finished.result);
        span.in_scope(|| tracing::debug!(outcome = ?finished.next, result, "reconcile finished"));
        lease.done(finished.next);
    }

    /// One reconcile: the plugin call, then its intents.
    async fn reconcile(&self, key: &WorkKey, work: Work) -> Finished {
        let Some(loaded) = self.plugins.get(&key.plugin) else {
            return Finished::done(ReconcileResult::Unloaded, None);
        };
        let event_type = work.event_type;
        let answers_change = work.answers_change;
        if event_type != EventType::Deleted && !self.serves(&key.kind) {
            // The kind was removed (a deleted CRD): nothing left to reconcile
            // and nowhere to write; the key is not retried. A delete still
            // reaches the plugin with the object's last state.
            tracing::debug!("kind no longer served; dropped");
            return Finished::done(ReconcileResult::KindRemoved, None);
        }
        let info = loaded.plugin.info();
        let finalizer = info.finalizer.as_ref().filter(|f| f.covers(&key.kind));
        let Some(event_type) = finalizing::event_for(finalizer, event_type, &work.object) else {
            tracing::debug!(
                "deletion started without the plugin's finalizer: nothing to clean up, not called"
            );
            return Finished::done(ReconcileResult::Terminating, None);
        };
        let (kind, object) = (work.kind.clone(), work.object.clone());
        let work = Work { event_type, ..work };
        let outcome = match self.call(&loaded, key, work).await {
            Ok(outcome) => outcome,
            Err(result) => return Finished::retry(result),
        };
        if !self.leader.is_leader() {
            tracing::info!("lost the leader lease during the call; intents not applied");
            return Finished::retry(ReconcileResult::NotLeader);
        }
        if !self.shards.works(key.shard_hash()) {
            tracing::info!("the key moved to another replica during the call; intents not applied");
            return Finished::done(ReconcileResult::Moved, None);
        }
        let requeue_after = outcome.requeue_after_ms.map(Duration::from_millis);
        let applier = match self.appliers.get(&loaded) {
            Ok(applier) => applier,
            Err(error) => {
                tracing::error!(error = %crate::ops::error_chain(&error), "intents not applied");
                return Finished::retry(ReconcileResult::ApplyFailed);
            }
        };
        if let Some(f) = finalizer
            && finalizing::adds(finalizer, event_type, &object, outcome.intents.len())
            && !applier.refuses(info, &loaded.grant, &outcome)
        {
            // Before the first write, so the object cannot go before the
            // plugin cleaned up after it; not for an outcome the applier
            // refuses whole (it reports that below).
            let added = applier
                .add_finalizer(&loaded.id, &kind, &object, &f.name)
                .await;
            if let Err(error) = self.host_write(key, added, applier.dry_run()) {
                return error;
            }
        }
        let report = match applier
            .apply_as(&loaded.id, info, &loaded.grant, &outcome)
            .await
        {
            Ok(report) => report,
            Err(error) => return not_applied(&self.metrics, key, &error),
        };
        if let Some(f) = finalizer
            && finalizing::removes(event_type, requeue_after)
        {
            let removed = applier
                .remove_finalizer(&loaded.id, &kind, &object, &f.name)
                .await;
            if let Err(error) = self.host_write(key, removed, applier.dry_run()) {
                return error;
            }
        }
        self.applied(key, answers_change, &report, requeue_after)
    }

    /// Counts a write the host made for the plugin (its finalizer) like an
    /// intent; a failure is what the reconcile comes to.
    fn host_write(
        &self,
        key: &WorkKey,
        written: Result<IntentReport, ApplyError>,
        dry_run: bool,
    ) -> Result<(), Finished> {
        match written {
            Ok(done) => {
                if done.result == IntentResult::Applied {
                    self.tallies.wrote(&key.plugin, 1);
                }
                let result = IntentOutcome::of(done.result, dry_run);
                self.metrics
                    .intents
                    .with_label_values(&[&key.plugin, done.intent, result.metric_label()])
                    .inc();
                Ok(())
            }
            Err(error) => Err(not_applied(&self.metrics, key, &error)),
        }
    }

    /// Whether the cluster still serves `kind`.
    fn serves(&self, kind: &GroupKind) -> bool {
        self.registry.load().get(&kind.group, &kind.kind).is_some()
    }

    /// Calls the plugin on this async worker, with the object and a cache
    /// reader confined to its grant (the call yields while it runs; see
    /// [`crate::runtime::Plugin::reconcile_async`]).
    async fn call(
        &self,
        loaded: &LoadedPlugin,
        key: &WorkKey,
        work: Work,
    ) -> Result<Outcome, ReconcileResult> {
        // Which build of the plugin runs this call: the first 12 hex digits
        // of its content hash.
        let digest = loaded.plugin.digest();
        tracing::Span::current().record("version", &digest[..digest.len().min(12)]);
        let event = Event {
            event_type: work.event_type,
            kind: work.kind,
            object: work.object,
        };
        let mut access = ReadAccess {
            reader: GrantedReader::wrap(
                Arc::new(self.informers.clone()),
                &loaded.grant,
                &key.plugin,
            ),
            settings: loaded.settings.clone(),
            clock: Default::default(),
        };
        // With a shadow (only then), the call's reads are kept and its
        // clock fixed, so the shadow can be called the same way.
        let shadow = self.shadows.tap(&key.plugin).map(|tap| {
            let now_ms = Clock::System.read();
            let capture = Arc::new(CapturingReader::new(access.reader.clone()));
            access.reader = capture.clone();
            access.clock = Clock::Fixed(now_ms);
            (tap, capture, now_ms)
        });
        // A panic in the host's call path (a host function's bug) fails this
        // reconcile, as it did when the call ran on a thread of its own, and
        // leaves the worker serving.
        let call = std::panic::AssertUnwindSafe(loaded.plugin.reconcile_async(&event, access));
        let outcome = match futures::FutureExt::catch_unwind(call).await {
            Ok(outcome) => outcome,
            Err(panic) => {
                let message = crate::ops::printable(crate::ops::panic_message(&*panic), 1024);
                tracing::error!(error = %message, "reconcile task failed");
                return Err(ReconcileResult::TaskFailed);
            }
        };
        if let (Some((tap, capture, now_ms)), Ok(outcome)) = (shadow, &outcome) {
            tap.offer(Job {
                event,
                now_ms,
                reads: capture.take(),
                serving: outcome.clone(),
                serving_digest: digest.to_string(),
            });
        }
        outcome.map_err(|error| {
            tracing::warn!(error = %crate::ops::error_chain(&error), kind = error.metric_label(), "reconcile failed");
            ReconcileResult::CallFailed(error.metric_label())
        })
    }

    /// Counts the applied intents, and backs the key off if the plugin
    /// changes its object on every call.
    fn applied(
        &self,
        key: &WorkKey,
        answers_change: bool,
        report: &ApplyReport,
        requeue_after: Option<Duration>,
    ) -> Finished {
        let intents = &self.metrics.intents;
        for intent in &report.intents {
            let result = IntentOutcome::of(intent.result, report.dry_run);
            intents
                .with_label_values(&[&key.plugin, intent.intent, result.metric_label()])
                .inc();
        }
        let writes = report
            .intents
            .iter()
            .filter(|i| i.result == IntentResult::Applied)
            .count();
        self.tallies.wrote(&key.plugin, writes);
        let wrote = writes > 0;
        if self.loops.observe(key, wrote, answers_change) {
            tracing::warn!(
                "plugin changes this object on every call (reconcile loop); backing off"
            );
            return Finished::retry(ReconcileResult::Loop);
        }
        tracing::debug!(intents = report.intents.len(), "reconcile done");
        Finished::done(ReconcileResult::Ok, requeue_after)
    }

    /// Whether an informer of a kind the plugin subscribes to is still
    /// doing its first list.
    fn caches_syncing(&self, plugin: &str) -> bool {
        let subscribed = self.subscribed.read().unwrap_or_else(|e| e.into_inner());
        subscribed
            .get(plugin)
            .is_some_and(|kinds| self.informers.syncing(kinds))
    }
}

/// Counts the failed intent and says how the key is retried: at once with
/// the newest state after a conflict, with backoff otherwise.
fn not_applied(metrics: &Metrics, key: &WorkKey, error: &ApplyError) -> Finished {
    let refused = error.is_refusal();
    let outcome = match refused {
        true => IntentOutcome::Refused,
        false => IntentOutcome::Failed,
    };
    metrics
        .intents
        .with_label_values(&[&key.plugin, error.site().intent, outcome.metric_label()])
        .inc();
    if error.is_conflict() {
        tracing::debug!(error = %error, "conflict; reconciling again with the newest state");
        return Finished::retry(ReconcileResult::Conflict);
    }
    tracing::warn!(error = %crate::ops::error_chain(error), kind = error.metric_label(), "intents not applied");
    Finished::retry(match refused {
        true => ReconcileResult::Refused,
        false => ReconcileResult::ApplyFailed,
    })
}
