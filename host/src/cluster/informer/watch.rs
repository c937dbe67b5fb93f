//! One kind's watch: kube-runtime's watcher stream turned into cache
//! changes and [`KindEvent`]s, with errors backed off and reported as
//! [`backoff`] decides.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::mpsc;

use super::backoff::{self, WatchFailure};
use super::cache::{Cache, Change, Objects};
use super::{KindEvent, WireObject};
use crate::cluster::object::CachedObject;
use crate::cluster::shard::{Listing, ShardGate, key_hash};
use crate::contract::{EventType, ResourceKind};
use crate::ops::metrics::Metrics;

/// An object the host could not decode: its identity alone (apiVersion,
/// kind, name, namespace, uid, resourceVersion) and why.
#[derive(Debug)]
pub(super) struct Undecodable {
    pub(super) identity: Value,
    pub(super) reason: Arc<str>,
}

/// The state of one kind's watch between stream items.
pub(super) struct Watch {
    kind: ResourceKind,
    cache: Arc<RwLock<Cache>>,
    events: mpsc::UnboundedSender<KindEvent>,
    metrics: Arc<Metrics>,
    backoff: backoff::WatchBackoff,
    outage: backoff::Outage,
    /// Keys seen during a re-list, to find objects deleted while disconnected.
    relisted: Option<Objects>,
    /// With sharding, which namespaces this replica caches.
    shard: ShardGate,
    /// Held until a re-list for a new share completes.
    listing: Option<Listing>,
}

impl Watch {
    pub(super) fn new(
        kind: ResourceKind,
        cache: Arc<RwLock<Cache>>,
        events: mpsc::UnboundedSender<KindEvent>,
        metrics: Arc<Metrics>,
        shard: ShardGate,
    ) -> Self {
        Self {
            kind,
            cache,
            events,
            metrics,
            backoff: backoff::WatchBackoff::default(),
            outage: backoff::Outage::default(),
            relisted: None,
            shard,
            listing: None,
        }
    }

    /// Tells the shard gate when this watch's first list is complete.
    pub(super) fn holding(mut self, listing: Option<Listing>) -> Self {
        self.listing = listing;
        self
    }

    /// Runs the kind's watcher until aborted, updating the cache and
    /// sending events.
    pub(super) async fn run(mut self, api: Api<WireObject>) {
        let config = watcher::Config::default().any_semantic();
        // No `default_backoff()`: the delay after an error depends on the
        // error (see `backoff`), and the stream is simply polled again
        // after it.
        let mut stream = watcher(api, config).boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => self.on_event(event),
                Err(error) => self.on_error(&error).await,
            }
        }
    }

    fn labels(&self) -> [&str; 2] {
        [self.kind.group.as_str(), self.kind.kind.as_str()]
    }

    /// Counts and reports a watch error, then waits as long as it asks.
    async fn on_error(&mut self, error: &watcher::Error) {
        let failure = WatchFailure::of(error);
        let metrics = &self.metrics;
        let [group, kind] = self.labels();
        metrics
            .watch_restarts
            .with_label_values(&[group, kind])
            .inc();
        metrics
            .watch_errors
            .with_label_values(&[group, kind, failure.metric_label()])
            .inc();
        let delay = backoff::jittered(self.backoff.next_delay(failure))
            .max(backoff::server_delay(error).unwrap_or_default());
        report_error(
            &self.kind,
            &self.cache,
            &mut self.outage,
            failure,
            error,
            delay,
        );
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// Applies one watcher event to the cache and sends what it yields.
    fn on_event(&mut self, event: watcher::Event<WireObject>) {
        self.backoff.reset();
        if let backoff::Report::Recovered { errors, after } = self.outage.on_success(Instant::now())
        {
            let kind = &self.kind;
            tracing::info!(
                group = %kind.group, version = %kind.version, kind = %kind.kind, errors, after = ?after,
                "watch recovered"
            );
        }
        if self.outside_shard(&event) {
            return;
        }
        let change = self.change_of(event);
        let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
        let was_synced = c.synced;
        let events = c.update(&mut self.relisted, change);
        let first_sync = c.synced && !was_synced;
        drop(c);
        for (event_type, object) in events {
            self.send(event_type, object);
        }
        if first_sync {
            tracing::debug!(kind = %self.kind.kind, group = %self.kind.group, "informer synced");
        }
    }

    /// With sharding, drops an object of another replica's namespace (and
    /// its cached copy, if the namespace was this replica's before), never
    /// as a deletion; before a re-list completes, evicts every such object,
    /// so the re-list does not report them deleted either. True if the
    /// event is dropped.
    fn outside_shard(&mut self, event: &watcher::Event<WireObject>) -> bool {
        if !self.kind.namespaced || !self.shard.is_sharded() {
            return false;
        }
        let object = match event {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
                o
            }
            watcher::Event::InitDone => {
                let shard = &self.shard;
                let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
                c.objects
                    .retain(|(ns, name), _| shard.caches(key_hash(ns.as_deref(), name)));
                // The listed objects are in the cache already (each was
                // applied as it arrived): the share is warm.
                drop(c);
                self.listing = None;
                return false;
            }
            watcher::Event::Init => return false,
        };
        let meta = kube::Resource::meta(object);
        let (namespace, name) = (
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        );
        if self.shard.caches(key_hash(namespace, name)) {
            return false;
        }
        let key = (namespace.map(str::to_string), name.to_string());
        let mut c = self.cache.write().unwrap_or_else(|e| e.into_inner());
        c.objects.remove(&key);
        true
    }

    /// The cache change a watcher event stands for.
    fn change_of(&self, event: watcher::Event<WireObject>) -> Change {
        let kind = &self.kind;
        match event {
            watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
                match to_cached(object, kind) {
                    Ok(object) => Change::Apply(Arc::new(object)),
                    Err(undecodable) => {
                        report_undecodable(&self.metrics, kind, &undecodable, "skipped");
                        Change::Undecodable(Arc::new(undecodable.identity.into()))
                    }
                }
            }
            watcher::Event::Delete(object) => match to_cached(object, kind) {
                Ok(object) => Change::Delete(Arc::new(object)),
                Err(undecodable) => {
                    report_undecodable(
                        &self.metrics,
                        kind,
                        &undecodable,
                        "deletion delivered with its last decoded state",
                    );
                    Change::DeleteUndecodable(Arc::new(undecodable.identity.into()))
                }
            },
            watcher::Event::Init => {
                self.metrics.relists.with_label_values(&self.labels()).inc();
                Change::Init
            }
            watcher::Event::InitDone => Change::InitDone,
        }
    }

    fn send(&self, event_type: EventType, object: Arc<CachedObject>) {
        let [group, kind] = self.labels();
        self.metrics
            .events_received
            .with_label_values(&[group, kind, event_type.as_str()])
            .inc();
        let _ = self.events.send(KindEvent {
            kind: self.kind.clone(),
            event_type,
            object,
        });
    }
}

/// Objects as plugins see them: JSON, without `managedFields`, and always
/// with `apiVersion` and `kind` (items of a list response carry neither).
/// An object the host could not decode is returned as [`Undecodable`].
fn to_cached(object: WireObject, kind: &ResourceKind) -> Result<CachedObject, Undecodable> {
    let identity = |object: &WireObject| {
        let meta = kube::Resource::meta(object);
        let mut metadata = serde_json::Map::new();
        for (field, value) in [
            ("name", &meta.name),
            ("namespace", &meta.namespace),
            ("uid", &meta.uid),
            ("resourceVersion", &meta.resource_version),
        ] {
            if let Some(value) = value {
                metadata.insert(field.into(), Value::String(value.clone()));
            }
        }
        serde_json::json!({
            "apiVersion": kind.api_version(),
            "kind": kind.kind,
            "metadata": metadata,
        })
    };
    if let Some(reason) = object.undecodable() {
        let reason: Arc<str> = reason.into();
        return Err(Undecodable {
            identity: identity(&object),
            reason,
        });
    }
    match object.into_content() {
        Ok(value) => Ok(CachedObject::from_wire(kind, value)),
        Err(reason) => Err(Undecodable {
            identity: Value::Null,
            reason,
        }),
    }
}

/// Reports an object the host could not decode (e.g. nested deeper than
/// the JSON parser allows): a WARN naming it and
/// `kubewasm_objects_undecodable_total`. The rest of its kind is unaffected.
fn report_undecodable(
    metrics: &Metrics,
    kind: &ResourceKind,
    undecodable: &Undecodable,
    outcome: &str,
) {
    let Undecodable { identity, reason } = undecodable;
    metrics
        .objects_undecodable
        .with_label_values(&[kind.group.as_str(), kind.kind.as_str()])
        .inc();
    let metadata = &identity["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default();
    let object = match metadata["namespace"].as_str() {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    };
    tracing::warn!(
        group = %kind.group, version = %kind.version, kind = %kind.kind,
        object = %object.escape_debug(),
        resource_version = identity["metadata"]["resourceVersion"].as_str().unwrap_or_default(),
        %reason, %outcome,
        "object cannot be decoded; plugins do not see this version of it"
    );
}

/// Logs a watch error the way an operator wants it: `410 Gone` at INFO (a
/// routine re-list), missing RBAC once at WARN, any other failure at WARN
/// when it starts and every 30 s while it lasts.
fn report_error(
    kind: &ResourceKind,
    cache: &RwLock<Cache>,
    outage: &mut backoff::Outage,
    failure: WatchFailure,
    error: &watcher::Error,
    retry_in: Duration,
) {
    let (group, version, kind) = (&kind.group, &kind.version, &kind.kind);
    match failure {
        WatchFailure::Gone => {
            tracing::info!(%group, %version, %kind, "watch expired (410 Gone); re-listing");
        }
        WatchFailure::Forbidden => {
            let mut c = cache.write().unwrap_or_else(|e| e.into_inner());
            if !c.forbidden {
                tracing::warn!(
                    %group, %version, %kind, %error,
                    "missing RBAC to list/watch this kind; it is skipped until access is granted"
                );
            }
            c.forbidden = true;
        }
        _ => match outage.on_error(Instant::now()) {
            backoff::Report::Failing { errors, for_ } => tracing::warn!(
                %group, %version, %kind, reason = failure.metric_label(), %error,
                errors, failing_for = ?for_, retry_in = ?retry_in,
                "watch failing; retrying (repeated every 30 s while it lasts)"
            ),
            _ => {
                tracing::debug!(%group, %version, %kind, %error, retry_in = ?retry_in, "watch error; retrying")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_reach_plugins_with_their_kind_and_without_managed_fields() {
        let kind = ResourceKind {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            plural: "deployments".into(),
            namespaced: true,
        };
        let wire = WireObject::decode(
            r#"{"metadata":{"name":"d","namespace":"ns","managedFields":[{"manager":"m"}]},"spec":{"replicas":2}}"#,
        );
        let value = to_cached(wire, &kind).unwrap().parse();
        assert_eq!(value["apiVersion"], "apps/v1");
        assert_eq!(value["kind"], "Deployment");
        assert_eq!(value["spec"]["replicas"], 2);
        assert!(value["metadata"].get("managedFields").is_none());

        let deep = format!(
            r#"{{"metadata":{{"name":"x","namespace":"ns","resourceVersion":"3"}},"spec":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let Undecodable { identity, reason } =
            to_cached(WireObject::decode(&deep), &kind).unwrap_err();
        assert!(reason.contains("recursion limit"), "{reason}");
        assert_eq!(
            identity,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "x", "namespace": "ns", "resourceVersion": "3"}})
        );
    }
}
