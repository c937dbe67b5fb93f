//! Running a shadow: each reconcile of its plugin hands it a [`Job`] on a
//! bounded queue of its own, which one task works through, one call at a
//! time, on the blocking pool. The serving worker only offers the job: a
//! full queue drops it (counted), so a slow shadow never holds up the
//! serving queue. The shadow's intents are compared and reported, never
//! applied: this module holds no client that could write them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::capture::{Reads, ReplayReader};
use super::state::{self, Next, Sample, Verdict};
use super::{Context, Shadow};
use crate::contract::Event;
use crate::contract::compare::{self, Change, Comparison};
use crate::contract::intent::Outcome;
use crate::ops::{error_chain, printable};
use crate::plugins::grant::GrantedReader;
use crate::runtime::{Clock, ReadAccess};

/// Jobs a shadow's queue holds before it drops new ones.
pub const QUEUE: usize = 256;
/// Intent differences kept per reconcile.
const DIFFERENCES: usize = 16;
/// Differences logged per shadow at most this often; the others are only
/// counted and sampled.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// What the serving call saw and did, for its shadow to do again.
pub struct Job {
    pub event: Event,
    /// The instant the serving call's `now` returned (or would have).
    pub now_ms: i64,
    pub reads: Reads,
    pub serving: Outcome,
    /// The serving version's content digest.
    pub serving_digest: String,
}

/// The sending side of a shadow's queue.
#[derive(Clone)]
pub struct Queue(mpsc::Sender<Job>);

impl Queue {
    pub fn bounded(capacity: usize) -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Self(tx), rx)
    }

    /// Queues `job` if there is room; `false` when it was dropped.
    pub fn offer(&self, job: Job) -> bool {
        self.0.try_send(job).is_ok()
    }
}

/// Works through `jobs` until the shadow is replaced or removed (its queue
/// closes).
pub async fn run(shadow: Arc<Shadow>, mut jobs: mpsc::Receiver<Job>, context: Context) {
    let mut last_logged: Option<Instant> = None;
    let mut unlogged = 0u64;
    while let Some(job) = jobs.recv().await {
        if !shadow.is_running() {
            continue;
        }
        let object = describe_object(&job.event);
        let serving = job.serving_digest.clone();
        let verdict = reconcile(&shadow, job, &context).await;
        let label = verdict.metric_label();
        context
            .metrics
            .shadow_reconciles
            .with_label_values(&[&shadow.loaded.id, label])
            .inc();
        if let Verdict::Different(sample) = &verdict {
            if last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                tracing::info!(
                    plugin = %shadow.loaded.id,
                    object = %object,
                    not_logged_since = unlogged,
                    differences = %sample.summary.replace('\n', "; "),
                    "shadow differs from the serving version"
                );
                last_logged = Some(Instant::now());
                unlogged = 0;
            } else {
                unlogged += 1;
            }
        }
        let reason = match &verdict {
            Verdict::Failed(_, reason) => reason.clone(),
            _ => String::new(),
        };
        match shadow.record(&serving, verdict) {
            Next::Continue => {}
            Next::Abort => {
                shadow.stopped(&context.metrics);
                tracing::warn!(
                    plugin = %shadow.loaded.id,
                    object = %object,
                    error = %reason,
                    "shadow aborted: it stays stopped until its file or settings change"
                );
            }
            Next::Promote => {
                shadow.stopped(&context.metrics);
                promote(&shadow).await;
            }
        }
    }
}

/// Renames the shadow's files over the serving ones; the directory's hot
/// reload then serves it.
async fn promote(shadow: &Shadow) {
    let id = shadow.loaded.id.clone();
    let Some(source) = shadow.source.clone() else {
        // A plugin resource's shadow: its task patches the resource's spec
        // when it reads `promoted` in the report.
        tracing::info!(plugin = %id, streak = shadow.streak(), "shadow promoted: the plugin resource's spec is patched next");
        return;
    };
    let compared = shadow.loaded.plugin.digest().to_string();
    let renamed =
        tokio::task::spawn_blocking(move || super::files::promote_compared(&source, &compared))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    match renamed {
        Ok(serving) => tracing::info!(
            plugin = %id,
            streak = shadow.streak(),
            file = %serving.display(),
            "shadow promoted: its files now serve"
        ),
        Err(error) => {
            let reason = format!("renaming the shadow's files into place failed: {error}");
            tracing::error!(plugin = %id, error = %reason, "shadow not promoted");
            shadow.promotion_failed(reason);
        }
    }
}

/// Runs the shadow on one job and compares its outcome with the serving one.
async fn reconcile(shadow: &Arc<Shadow>, job: Job, context: &Context) -> Verdict {
    let loaded = &shadow.loaded;
    if !loaded
        .plugin
        .subscriptions()
        .cover(&job.event.kind, &job.event.object)
    {
        return Verdict::Skipped;
    }
    let reads = Arc::new(job.reads);
    let kind = job.event.kind.group_kind();
    let seed = Some((kind, job.event.object.clone()));
    let live = GrantedReader::wrap(context.live.clone(), &loaded.grant, &loaded.id);
    let replay = Arc::new(ReplayReader::new(reads.clone(), seed.clone(), live.clone()));
    let access = ReadAccess {
        reader: replay.clone(),
        settings: loaded.settings.clone(),
        clock: Clock::Fixed(job.now_ms),
    };
    let event = job.event;
    let call = std::panic::AssertUnwindSafe(loaded.plugin.reconcile_async(&event, access));
    let called = futures::FutureExt::catch_unwind(call).await;
    let fell_through = replay.fell_through();
    if fell_through > 0 {
        shadow.uncaptured(fell_through);
        context
            .metrics
            .shadow_reads_uncaptured
            .with_label_values(&[&loaded.id])
            .inc_by(fell_through);
    }
    let outcome = match called {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => {
            let reason = printable(&error_chain(&error), state::MAX_SUMMARY_CHARS);
            return Verdict::Failed(error.metric_label(), reason);
        }
        Err(panic) => {
            let reason = printable(crate::ops::panic_message(&*panic), state::MAX_SUMMARY_CHARS);
            return Verdict::Failed("task_failed", reason);
        }
    };
    if (context.refuses)(loaded.plugin.info(), &loaded.grant, &outcome) {
        return Verdict::Failed(
            "refused",
            "the shadow's outcome would be refused: an intent outside its declared write scope \
             or its grant, on a kind the cluster does not serve, or malformed"
                .into(),
        );
    }
    // No-op writes are judged against what both versions saw: the event's
    // object and the serving call's reads, else the live cache.
    let snapshot = ReplayReader::new(reads, seed, live);
    let comparison = compare::compare(
        &job.serving,
        &outcome,
        |intent| compare::changes_nothing(&snapshot, intent),
        DIFFERENCES,
    );
    if comparison.is_equal() {
        return Verdict::Equal;
    }
    let outcomes = [&job.serving, &outcome];
    Verdict::Different(sample(&event, &job.serving_digest, &comparison, outcomes))
}

/// A differing reconcile as the report keeps it: an intent only one side
/// makes is shown whole (truncated), since no field of it is compared.
fn sample(
    event: &Event,
    serving: &str,
    comparison: &Comparison,
    outcomes: [&Outcome; 2],
) -> Sample {
    let mut differences = serde_json::to_value(comparison).unwrap_or_default();
    state::truncate_strings(&mut differences, state::MAX_VALUE_CHARS);
    let differences = state::bounded(differences, state::MAX_SAMPLE_JSON_CHARS);
    let mut summary = String::new();
    let mut unmatched = Vec::new();
    let mut listed = comparison.differences.iter();
    for line in comparison.to_string().lines() {
        summary.push_str(line);
        summary.push('\n');
        if line.starts_with(' ') {
            continue;
        }
        let Some(d) = listed.next() else { continue };
        let (side, outcome) = match d.change {
            Change::Added => ("shadow", outcomes[1]),
            Change::Missing => ("serving", outcomes[0]),
            Change::Fields(_) => continue,
        };
        let Some(intent) = outcome
            .intents
            .iter()
            .find(|i| i.type_name() == d.intent && i.target().describe() == d.target)
        else {
            continue;
        };
        let mut json = serde_json::to_value(intent).unwrap_or_default();
        state::truncate_strings(&mut json, state::MAX_VALUE_CHARS);
        let text = state::truncated(&json.to_string(), state::MAX_VALUE_CHARS);
        summary.push_str(&format!("    {side} writes {text}\n"));
        let json = state::bounded(json, state::MAX_SAMPLE_JSON_CHARS);
        unmatched.push(serde_json::json!({"side": side, "intent": json}));
    }
    Sample {
        at: format!("{:.3}", jiff::Timestamp::now()),
        object: describe_object(event),
        event: event.event_type.as_str().to_string(),
        serving: serving.chars().take(12).collect(),
        summary: state::truncated(summary.trim_end(), state::MAX_SUMMARY_CHARS),
        differences,
        unmatched,
    }
}

fn describe_object(event: &Event) -> String {
    let object = &event.object;
    format!(
        "{} {}/{}",
        event.kind.kind,
        object.namespace().unwrap_or(""),
        object.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{EventType, ResourceKind};

    fn job(n: u64) -> Job {
        let object = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("o{n}"), "namespace": "ns"}});
        Job {
            event: Event {
                event_type: EventType::Applied,
                kind: ResourceKind {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                    plural: "configmaps".into(),
                    namespaced: true,
                },
                object: Arc::new(crate::cluster::object::CachedObject::from_value(&object)),
            },
            now_ms: 0,
            reads: Vec::new(),
            serving: Outcome::default(),
            serving_digest: String::new(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_waiting() {
        let (queue, mut jobs) = Queue::bounded(2);
        assert!(queue.offer(job(1)));
        assert!(queue.offer(job(2)));
        assert!(!queue.offer(job(3)), "dropped, not waited for");
        assert_eq!(jobs.recv().await.unwrap().event.object.name(), "o1");
        assert!(queue.offer(job(4)), "room again once one is taken");
        assert_eq!(jobs.recv().await.unwrap().event.object.name(), "o2");
        assert_eq!(jobs.recv().await.unwrap().event.object.name(), "o4");
        drop(queue);
        assert!(
            jobs.recv().await.is_none(),
            "the runner ends with its queue"
        );
    }
}
