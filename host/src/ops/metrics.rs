//! Prometheus metrics, in one explicit registry (not the `prometheus`
//! crate's default one), served by the admin server at `/metrics`.
//!
//! There is no process-global set: `kubewasm run` builds one [`Metrics`] and
//! hands an `Arc` of it to each part that records (the runtime, the API
//! server probe, the informers, the applier, the controller, the plugin
//! directory, the election) and to the admin server that serves it. A test
//! or an embedder builds its own and reads only what it caused.
//!
//! Labels are bounded: plugin names, kinds, intent types and results, plugin
//! file names, never object names or namespaces. The series (see
//! `deploy/monitoring/` for alerts and a dashboard), by the part that
//! records them:
//!
//! | metric | type | labels | recorded by |
//! |---|---|---|---|
//! | `kubewasm_events_received_total` | counter | `group`, `kind`, `type` | informers |
//! | `kubewasm_watch_restarts_total` | counter | `group`, `kind` | informers |
//! | `kubewasm_watch_errors_total` | counter | `group`, `kind`, `reason` | informers |
//! | `kubewasm_relists_total` | counter | `group`, `kind` | informers |
//! | `kubewasm_objects_undecodable_total` | counter | `group`, `kind` | informers |
//! | `kubewasm_cached_objects` | gauge | `group`, `kind` | informers (on scrape) |
//! | `kubewasm_cache_bytes` | gauge | `group`, `kind` | informers (on scrape) |
//! | `kubewasm_queue_depth` | gauge | `plugin` | controller (on scrape) |
//! | `kubewasm_queue_latency_seconds` | histogram | `plugin` | controller |
//! | `kubewasm_reconcile_duration_seconds` | histogram | `plugin` | controller |
//! | `kubewasm_reconciles_total` | counter | `plugin`, `result` | controller |
//! | `kubewasm_intents_total` | counter | `plugin`, `type`, `result` | controller |
//! | `kubewasm_subscription_unserved` | gauge | `plugin`, `group`, `kind`, `version` | controller |
//! | `kubewasm_reconciles_abandoned_total` | counter | | shutdown drain |
//! | `kubewasm_plugin_loads_total` | counter | `result` | plugin directory |
//! | `kubewasm_plugin_load_failing` | gauge | `file` | plugin directory |
//! | `kubewasm_plugin_info` | gauge | `plugin`, `version`, `digest`, `contract` | plugin directory |
//! | `kubewasm_compile_cache_rejected_total` | counter | | runtime |
//! | `kubewasm_apiserver_answering` | gauge | | API server probe |
//! | `kubewasm_write_retries_total` | counter | `reason` | applier |
//! | `kubewasm_leader` | gauge | | election |
//! | `kubewasm_shard_members` | gauge | | shard ring (`--shard-ring`) |
//! | `kubewasm_shard_share` | gauge | | shard ring |
//! | `kubewasm_shard_handovers_total` | counter | | shard ring |
//! | `kubewasm_shadow_reconciles_total` | counter | `plugin`, `result` | shadow rollout |
//! | `kubewasm_shadow_reads_uncaptured_total` | counter | `plugin` | shadow rollout |
//! | `kubewasm_shadow_running` | gauge | `plugin` | shadow rollout |
//!
//! `kubewasm_write_retries_total{reason}` counts the applier's retries (the
//! only ones: kube's own retry layer is off), by `throttled` (429),
//! `unavailable` (503), `server_error` (other 5xx), `timeout`, `connection`
//! or `conflict`.
//!
//! `kubewasm_reconciles_total{result}` is one of `ok`, `error` (the plugin
//! returned an error), `trap`, `timeout`, `memory_limit`,
//! `result_too_large`, `too_many_intents`, `host_read_budget` (host reads
//! handed the plugin more than `--max-host-read-mib`), `malformed_intent`, `refused` (an intent outside the
//! write scope or malformed), `apply_failed`, `conflict`, `loop`,
//! `not_leader` (the lease was lost during the call; nothing applied),
//! `moved` (with `--shard-ring`, the key moved to another replica during
//! the call; nothing applied),
//! `kind_removed` (the kind's CRD was deleted before its queued key ran),
//! `unloaded` (the plugin was removed before its queued key ran) or
//! `terminating` (the object's deletion started without the plugin's
//! finalizer on it: nothing to clean up, the plugin was not called).
//! `kubewasm_watch_errors_total{reason}` is `gone` (410, a re-list
//! follows), `unreachable`, `forbidden`, `throttled`, `server_error`,
//! `api_error` or `decode`. `kubewasm_subscription_unserved` is 1 while a
//! plugin subscribes to a version of a kind that the cluster serves only in
//! other versions (the plugin receives none of its objects), or owns or
//! watches a kind the cluster does not serve (at the version it names;
//! `version` is `*` when it names none): changes of it wake nothing.
//! `kubewasm_intents_total{result}` is `applied`, `unchanged` (not sent:
//! nothing would change), `dry_run`, `refused` or `failed`; its `type` is
//! the intent's, or `finalizer-add` / `finalizer-remove` for the host's
//! writes of a plugin's finalizer.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Every metric of the host, in a registry of its own. Build one per host
/// and share it (`Arc<Metrics>`) with the parts that record; a test builds
/// its own and reads only what it caused.
pub struct Metrics {
    registry: Registry,
    // Informers (cluster/informer).
    pub events_received: IntCounterVec,
    pub watch_restarts: IntCounterVec,
    pub watch_errors: IntCounterVec,
    pub relists: IntCounterVec,
    pub objects_undecodable: IntCounterVec,
    pub cached_objects: IntGaugeVec,
    pub cache_bytes: IntGaugeVec,
    // The queue and reconciles (controller; the abandoned ones in cmd/run).
    pub queue_depth: IntGaugeVec,
    pub queue_latency: HistogramVec,
    pub reconcile_duration: HistogramVec,
    pub reconciles: IntCounterVec,
    pub intents: IntCounterVec,
    pub subscription_unserved: IntGaugeVec,
    pub reconciles_abandoned: IntCounter,
    // Plugins (plugins/reload, runtime/compile_cache).
    pub plugin_loads: IntCounterVec,
    pub plugin_load_failing: IntGaugeVec,
    pub plugin_info: IntGaugeVec,
    pub compile_cache_rejected: IntCounter,
    // The API server and the lease (cluster/client, applier/retry, cluster/leader).
    pub apiserver_answering: IntGauge,
    pub write_retries: IntCounterVec,
    pub leader: IntGauge,
    // The shard ring (cluster/shard).
    pub shard_members: IntGauge,
    pub shard_share: Gauge,
    pub shard_handovers: IntCounter,
    // Shadow rollout (shadow).
    pub shadow_reconciles: IntCounterVec,
    pub shadow_reads_uncaptured: IntCounterVec,
    pub shadow_running: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Every series, registered in a new registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let add = Register(&registry);
        Self {
            events_received: add.counters(&EVENTS_RECEIVED),
            watch_restarts: add.counters(&WATCH_RESTARTS),
            watch_errors: add.counters(&WATCH_ERRORS),
            relists: add.counters(&RELISTS),
            objects_undecodable: add.counters(&OBJECTS_UNDECODABLE),
            cached_objects: add.gauges(&CACHED_OBJECTS),
            cache_bytes: add.gauges(&CACHE_BYTES),

            queue_depth: add.gauges(&QUEUE_DEPTH),
            queue_latency: add.histograms(&QUEUE_LATENCY),
            reconcile_duration: add.histograms(&RECONCILE_DURATION),
            reconciles: add.counters(&RECONCILES),
            intents: add.counters(&INTENTS),
            subscription_unserved: add.gauges(&SUBSCRIPTION_UNSERVED),
            reconciles_abandoned: add.counter(&RECONCILES_ABANDONED),

            plugin_loads: add.counters(&PLUGIN_LOADS),
            plugin_load_failing: add.gauges(&PLUGIN_LOAD_FAILING),
            plugin_info: add.gauges(&PLUGIN_INFO),
            compile_cache_rejected: add.counter(&COMPILE_CACHE_REJECTED),

            apiserver_answering: add.gauge(&APISERVER_ANSWERING),
            write_retries: add.counters(&WRITE_RETRIES),
            leader: add.gauge(&LEADER),
            shard_members: add.gauge(&SHARD_MEMBERS),
            shard_share: add.add(Gauge::with_opts(SHARD_SHARE.opts())),
            shard_handovers: add.counter(&SHARD_HANDOVERS),
            shadow_reconciles: add.counters(&SHADOW_RECONCILES),
            shadow_reads_uncaptured: add.counters(&SHADOW_READS_UNCAPTURED),
            shadow_running: add.gauges(&SHADOW_RUNNING),
            registry,
        }
    }

    /// The registry in Prometheus' text exposition format.
    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding of gathered metrics");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

/// A series as Prometheus shows it: name, help text and label names.
struct Series {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

impl Series {
    fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }
}

/// Buckets for plugin calls and queue waits: 1 ms to about 30 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Creates series and registers them in one registry. The definitions are
/// the constants below, so a failure here is a bug in them (the unit test
/// builds every series), not something a running host can meet.
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn add<M: Collector + Clone + 'static>(&self, metric: prometheus::Result<M>) -> M {
        let metric = metric.expect("a valid series definition");
        self.0
            .register(Box::new(metric.clone()))
            .expect("each series registered once");
        metric
    }

    fn counters(&self, series: &Series) -> IntCounterVec {
        self.add(IntCounterVec::new(series.opts(), series.labels))
    }

    fn gauges(&self, series: &Series) -> IntGaugeVec {
        self.add(IntGaugeVec::new(series.opts(), series.labels))
    }

    fn histograms(&self, series: &Series) -> HistogramVec {
        let opts = HistogramOpts::from(series.opts()).buckets(SECONDS.to_vec());
        self.add(HistogramVec::new(opts, series.labels))
    }

    fn counter(&self, series: &Series) -> IntCounter {
        self.add(IntCounter::with_opts(series.opts()))
    }

    fn gauge(&self, series: &Series) -> IntGauge {
        self.add(IntGauge::with_opts(series.opts()))
    }
}

// Informers (cluster/informer; the cache sizes refreshed on each scrape).

const EVENTS_RECEIVED: Series = Series {
    name: "kubewasm_events_received_total",
    help: "Object changes received from the informers, by kind and event type.",
    labels: &["group", "kind", "type"],
};
const WATCH_RESTARTS: Series = Series {
    name: "kubewasm_watch_restarts_total",
    help: "Watch errors after which the informer reconnects with backoff, by kind.",
    labels: &["group", "kind"],
};
const WATCH_ERRORS: Series = Series {
    name: "kubewasm_watch_errors_total",
    help: "Watch and list errors of the informers, by kind and reason.",
    labels: &["group", "kind", "reason"],
};
const RELISTS: Series = Series {
    name: "kubewasm_relists_total",
    help: "Full lists by an informer (the first one and each after 410 Gone), by kind.",
    labels: &["group", "kind"],
};
const OBJECTS_UNDECODABLE: Series = Series {
    name: "kubewasm_objects_undecodable_total",
    help: "Object versions an informer received but could not decode (skipped; the rest of the kind is unaffected), by kind.",
    labels: &["group", "kind"],
};
const CACHED_OBJECTS: Series = Series {
    name: "kubewasm_cached_objects",
    help: "Objects in the informer caches, by kind.",
    labels: &["group", "kind"],
};
const CACHE_BYTES: Series = Series {
    name: "kubewasm_cache_bytes",
    help: "Bytes the informer caches hold for their objects (the JSON text plugins receive and its header; allocator overhead and the cache's index not counted), by kind.",
    labels: &["group", "kind"],
};

// The queue and reconciles (controller; the queue depth refreshed on each
// scrape; the abandoned reconciles counted by `kubewasm run`'s drain).

const QUEUE_DEPTH: Series = Series {
    name: "kubewasm_queue_depth",
    help: "Keys waiting in the work queue (ready, delayed or backing off), by plugin.",
    labels: &["plugin"],
};
const QUEUE_LATENCY: Series = Series {
    name: "kubewasm_queue_latency_seconds",
    help: "Time a key waited in the queue after it became due, by plugin.",
    labels: &["plugin"],
};
const RECONCILE_DURATION: Series = Series {
    name: "kubewasm_reconcile_duration_seconds",
    help: "Time of one reconcile: the plugin call and applying its intents.",
    labels: &["plugin"],
};
const RECONCILES: Series = Series {
    name: "kubewasm_reconciles_total",
    help: "Reconciles by plugin and result.",
    labels: &["plugin", "result"],
};
const INTENTS: Series = Series {
    name: "kubewasm_intents_total",
    help: "Intents by plugin, type (apply, merge-patch, json-patch, create, delete, record-event; finalizer-add, finalizer-remove for the host's finalizer writes) and result.",
    labels: &["plugin", "type", "result"],
};
const SUBSCRIPTION_UNSERVED: Series = Series {
    name: "kubewasm_subscription_unserved",
    help: "1 while a plugin subscribes to a version of a kind that the cluster no longer serves, or owns or watches a kind (version * for the preferred one) the cluster does not serve.",
    labels: &["plugin", "group", "kind", "version"],
};
const RECONCILES_ABANDONED: Series = Series {
    name: "kubewasm_reconciles_abandoned_total",
    help: "Reconciles still running when the shutdown grace period ended, abandoned unfinished.",
    labels: &[],
};

// Plugins (plugins/reload; the compile cache in runtime/compile_cache).

const PLUGIN_LOADS: Series = Series {
    name: "kubewasm_plugin_loads_total",
    help: "Plugin (re)loads by result: ok or the reason it failed.",
    labels: &["result"],
};
const PLUGIN_LOAD_FAILING: Series = Series {
    name: "kubewasm_plugin_load_failing",
    help: "1 while a plugin file's current content fails to load (an older version may still serve).",
    labels: &["file"],
};
const PLUGIN_INFO: Series = Series {
    name: "kubewasm_plugin_info",
    help: "1 for each plugin served: its name, version, content digest and the contract version (kubewasm:plugin@…) it targets.",
    labels: &["plugin", "version", "digest", "contract"],
};
const COMPILE_CACHE_REJECTED: Series = Series {
    name: "kubewasm_compile_cache_rejected_total",
    help: "Compile cache entries refused because their HMAC did not verify (tampered, or copied from another entry); each was recompiled.",
    labels: &[],
};

// The API server and the lease (cluster/client/health, applier/retry,
// cluster/leader; `kubewasm run` sets the leader gauge without an election).

const APISERVER_ANSWERING: Series = Series {
    name: "kubewasm_apiserver_answering",
    help: "1 while the API server answers the host's probe of its /readyz in time.",
    labels: &[],
};
const WRITE_RETRIES: Series = Series {
    name: "kubewasm_write_retries_total",
    help: "Writes retried by the applier, by reason (throttled, unavailable, server_error, timeout, connection, conflict).",
    labels: &["reason"],
};
const LEADER: Series = Series {
    name: "kubewasm_leader",
    help: "1 while this host holds the leader lease (or runs without leader election).",
    labels: &[],
};

// The shard ring (cluster/shard, with `--shard-ring`).

const SHARD_MEMBERS: Series = Series {
    name: "kubewasm_shard_members",
    help: "Live members of the shard ring when this replica last took up its share.",
    labels: &[],
};
const SHARD_SHARE: Series = Series {
    name: "kubewasm_shard_share",
    help: "The fraction of the key hash space this replica reconciles (0 while it works none).",
    labels: &[],
};
const SHARD_HANDOVERS: Series = Series {
    name: "kubewasm_shard_handovers_total",
    help: "Times this replica took up a new share of the keys (after a member joined or left).",
    labels: &[],
};

// Shadow rollout (shadow): a new version of a plugin beside the serving one.

const SHADOW_RECONCILES: Series = Series {
    name: "kubewasm_shadow_reconciles_total",
    help: "Reconciles of plugins' shadows, by result: equal or different (to the serving outcome), failed (the shadow is aborted), skipped (not subscribed), dropped (its queue was full).",
    labels: &["plugin", "result"],
};
const SHADOW_READS_UNCAPTURED: Series = Series {
    name: "kubewasm_shadow_reads_uncaptured_total",
    help: "Cache reads of a shadow that the serving call did not make, answered from the live cache.",
    labels: &["plugin"],
};
const SHADOW_RUNNING: Series = Series {
    name: "kubewasm_shadow_running",
    help: "1 while a plugin's shadow runs, 0 once it is aborted or promoted.",
    labels: &["plugin"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_exposed_in_text_format() {
        let metrics = Metrics::new();
        metrics
            .reconciles
            .with_label_values(&["unit-test-plugin", "ok"])
            .inc();
        metrics.leader.set(1);
        let text = metrics.encode();
        assert!(
            text.contains("kubewasm_reconciles_total{plugin=\"unit-test-plugin\",result=\"ok\"} 1"),
            "{text}"
        );
        assert!(text.contains("# TYPE kubewasm_leader gauge"));
        assert!(text.contains("kubewasm_leader 1"));
    }

    #[test]
    fn each_host_records_into_its_own_registry() {
        let (one, other) = (Metrics::new(), Metrics::new());
        one.write_retries.with_label_values(&["throttled"]).inc();
        assert!(
            one.encode()
                .contains("kubewasm_write_retries_total{reason=\"throttled\"} 1")
        );
        assert!(!other.encode().contains("kubewasm_write_retries_total"));
    }
}
