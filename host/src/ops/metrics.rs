//! Prometheus metrics, in one explicit registry (not the `prometheus`
//! crate's default one), served by the admin server at `/metrics`.
//!
//! Labels are bounded: plugin names, kinds, intent types and results, plugin
//! file names, never object names or namespaces. The series (see
//! `deploy/monitoring/` for alerts and a dashboard):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `kubewasm_events_received_total` | counter | `group`, `kind`, `type` |
//! | `kubewasm_queue_depth` | gauge | `plugin` |
//! | `kubewasm_queue_latency_seconds` | histogram | `plugin` |
//! | `kubewasm_reconcile_duration_seconds` | histogram | `plugin` |
//! | `kubewasm_reconciles_total` | counter | `plugin`, `result` |
//! | `kubewasm_intents_total` | counter | `plugin`, `type`, `result` |
//! | `kubewasm_watch_restarts_total` | counter | `group`, `kind` |
//! | `kubewasm_watch_errors_total` | counter | `group`, `kind`, `reason` |
//! | `kubewasm_relists_total` | counter | `group`, `kind` |
//! | `kubewasm_objects_undecodable_total` | counter | `group`, `kind` |
//! | `kubewasm_subscription_unserved` | gauge | `plugin`, `group`, `kind`, `version` |
//! | `kubewasm_cached_objects` | gauge | `group`, `kind` |
//! | `kubewasm_plugin_loads_total` | counter | `result` |
//! | `kubewasm_plugin_load_failing` | gauge | `file` |
//! | `kubewasm_plugin_info` | gauge | `plugin`, `version`, `digest` |
//! | `kubewasm_leader` | gauge | |
//! | `kubewasm_compile_cache_rejected_total` | counter | |
//! | `kubewasm_write_retries_total` | counter | `reason` |
//! | `kubewasm_apiserver_answering` | gauge | |
//! | `kubewasm_reconciles_abandoned_total` | counter | |
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
//! `kind_removed` (the kind's CRD was deleted before its queued key ran) or
//! `unloaded` (the plugin was removed before its queued key ran).
//! `kubewasm_watch_errors_total{reason}` is `gone` (410, a re-list
//! follows), `unreachable`, `forbidden`, `throttled`, `server_error`,
//! `api_error` or `decode`. `kubewasm_subscription_unserved` is 1 while a
//! plugin subscribes to a version of a kind that the cluster serves only in
//! other versions (the plugin receives none of its objects).
//! `kubewasm_intents_total{result}` is `applied`, `unchanged` (not sent:
//! nothing would change), `dry_run`, `refused` or `failed`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric of the host.
pub struct Metrics {
    registry: Registry,
    pub events_received: IntCounterVec,
    pub queue_depth: IntGaugeVec,
    pub queue_latency: HistogramVec,
    pub reconcile_duration: HistogramVec,
    pub reconciles: IntCounterVec,
    pub intents: IntCounterVec,
    pub watch_restarts: IntCounterVec,
    pub watch_errors: IntCounterVec,
    pub subscription_unserved: IntGaugeVec,
    pub relists: IntCounterVec,
    pub objects_undecodable: IntCounterVec,
    pub cached_objects: IntGaugeVec,
    pub plugin_loads: IntCounterVec,
    pub plugin_load_failing: IntGaugeVec,
    pub plugin_info: IntGaugeVec,
    pub leader: IntGauge,
    pub compile_cache_rejected: IntCounter,
    pub write_retries: IntCounterVec,
    pub apiserver_answering: IntGauge,
    pub reconciles_abandoned: IntCounter,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The host's metrics (one set per process).
pub fn get() -> &'static Metrics {
    &METRICS
}

/// Buckets for plugin calls and queue waits: 1 ms to about 30 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let opts = HistogramOpts::new(name, help).buckets(SECONDS.to_vec());
            let metric = HistogramVec::new(opts, labels).expect("valid metric");
            registry
                .register(Box::new(metric.clone()))
                .expect("registered once");
            metric
        };
        let events_received = counter(
            "kubewasm_events_received_total",
            "Object changes received from the informers, by kind and event type.",
            &["group", "kind", "type"],
        );
        let queue_depth = gauge(
            "kubewasm_queue_depth",
            "Keys waiting in the work queue (ready, delayed or backing off), by plugin.",
            &["plugin"],
        );
        let queue_latency = histogram(
            "kubewasm_queue_latency_seconds",
            "Time a key waited in the queue after it became due, by plugin.",
            &["plugin"],
        );
        let reconcile_duration = histogram(
            "kubewasm_reconcile_duration_seconds",
            "Time of one reconcile: the plugin call and applying its intents.",
            &["plugin"],
        );
        let reconciles = counter(
            "kubewasm_reconciles_total",
            "Reconciles by plugin and result.",
            &["plugin", "result"],
        );
        let intents = counter(
            "kubewasm_intents_total",
            "Intents by plugin, type (apply, merge-patch, json-patch, create, delete, record-event) and result.",
            &["plugin", "type", "result"],
        );
        let watch_restarts = counter(
            "kubewasm_watch_restarts_total",
            "Watch errors after which the informer reconnects with backoff, by kind.",
            &["group", "kind"],
        );
        let watch_errors = counter(
            "kubewasm_watch_errors_total",
            "Watch and list errors of the informers, by kind and reason.",
            &["group", "kind", "reason"],
        );
        let subscription_unserved = gauge(
            "kubewasm_subscription_unserved",
            "1 while a plugin subscribes to a version of a kind that the cluster no longer serves.",
            &["plugin", "group", "kind", "version"],
        );
        let relists = counter(
            "kubewasm_relists_total",
            "Full lists by an informer (the first one and each after 410 Gone), by kind.",
            &["group", "kind"],
        );
        let objects_undecodable = counter(
            "kubewasm_objects_undecodable_total",
            "Object versions an informer received but could not decode (skipped; the rest of the kind is unaffected), by kind.",
            &["group", "kind"],
        );
        let cached_objects = gauge(
            "kubewasm_cached_objects",
            "Objects in the informer caches, by kind.",
            &["group", "kind"],
        );
        let plugin_loads = counter(
            "kubewasm_plugin_loads_total",
            "Plugin (re)loads by result: ok or the reason it failed.",
            &["result"],
        );
        let plugin_load_failing = gauge(
            "kubewasm_plugin_load_failing",
            "1 while a plugin file's current content fails to load (an older version may still serve).",
            &["file"],
        );
        let plugin_info = gauge(
            "kubewasm_plugin_info",
            "1 for each plugin served: its name, version and content digest.",
            &["plugin", "version", "digest"],
        );
        let leader = IntGauge::new(
            "kubewasm_leader",
            "1 while this host holds the leader lease (or runs without leader election).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(leader.clone()))
            .expect("registered once");
        let compile_cache_rejected = IntCounter::new(
            "kubewasm_compile_cache_rejected_total",
            "Compile cache entries refused because their HMAC did not verify (tampered, or copied from another entry); each was recompiled.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(compile_cache_rejected.clone()))
            .expect("registered once");
        let write_retries = counter(
            "kubewasm_write_retries_total",
            "Writes retried by the applier, by reason (throttled, unavailable, server_error, timeout, connection, conflict).",
            &["reason"],
        );
        let apiserver_answering = IntGauge::new(
            "kubewasm_apiserver_answering",
            "1 while the API server answers the host's probe of its /readyz in time.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(apiserver_answering.clone()))
            .expect("registered once");
        let reconciles_abandoned = IntCounter::new(
            "kubewasm_reconciles_abandoned_total",
            "Reconciles still running when the shutdown grace period ended, abandoned unfinished.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(reconciles_abandoned.clone()))
            .expect("registered once");
        Self {
            registry,
            events_received,
            queue_depth,
            queue_latency,
            reconcile_duration,
            reconciles,
            intents,
            watch_restarts,
            watch_errors,
            subscription_unserved,
            relists,
            objects_undecodable,
            cached_objects,
            plugin_loads,
            plugin_load_failing,
            plugin_info,
            leader,
            compile_cache_rejected,
            write_retries,
            apiserver_answering,
            reconciles_abandoned,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_exposed_in_text_format() {
        let metrics = get();
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
}
