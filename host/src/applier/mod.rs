//! The applier: sends the intents a plugin returned to the API server.
//!
//! An outcome is checked whole before anything is sent: the write scope
//! ([`intent::check_scope`]), that the cluster serves each kind, namespaces
//! against each kind's scope, and patch syntax. A refused outcome leaves the
//! cluster untouched. The intents then go out in order, each with the
//! plugin's own field manager (`kubewasm/<plugin>`), and the first failure
//! stops the rest: the key reconciles again and the plugin re-issues them.
//!
//! Writes that would change nothing are not sent, so a reconcile does not
//! trigger itself through its own watch event:
//!
//! - server-side apply is skipped when every field of the apply
//!   configuration (under `status` for the status subresource) already holds
//!   in the cached object *and* this applier already sent the same
//!   configuration to the same object (same uid). The second condition keeps
//!   apply semantics that the cache cannot show, since it strips
//!   `managedFields`: taking ownership of a field someone else set, and
//!   removing a field the plugin stopped applying. After a restart each
//!   object is therefore applied once more; the API server turns an
//!   identical apply into a no-op (no new `resourceVersion`).
//! - merge and JSON patches are applied locally to the cached object and
//!   skipped when the result equals it.
//! - create and delete are always sent (the cache may lag behind a recent
//!   create or delete); `AlreadyExists` and `NotFound` count as done.
//!
//! Throttling (429, honouring the server's `retryAfterSeconds`), 5xx and
//! connection errors are retried with exponential backoff a bounded number
//! of times, then returned so the caller backs the key off. A failed
//! precondition (`resourceVersion`, a JSON patch `test`) is a
//! [`ApplyError::Conflict`], never retried; any other 409 is retried once.
//! With [`ApplierOptions::dry_run`] every write carries `dryRun=All` and is
//! logged at info: the API server validates it and changes nothing.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use kubewasm::applier::{Applier, ApplierOptions};
//! use kubewasm::cluster::cache::StaticObjects;
//! # async fn example(
//! #     plugin: kubewasm::contract::PluginInfo,
//! #     outcome: kubewasm::contract::intent::Outcome,
//! # ) -> anyhow::Result<()> {
//! let client = kube::Client::try_default().await?;
//! let kinds = Arc::new(kube::Discovery::new(client.clone()).run().await?);
//! let cache = Arc::new(StaticObjects::default());
//! let applier = Applier::new(client, kinds, cache, ApplierOptions::default());
//! let report = applier.apply(&plugin, &outcome).await?;
//! for done in &report.intents {
//!     println!("{} {}: {}", done.intent, done.target.name, done.result.metric_label());
//! }
//! # Ok(())
//! # }
//! ```

mod apply;
mod error;
mod events;
mod finalizer;
mod lifecycle;
mod noop;
mod patch;
mod plan;
mod report;
mod retry;
mod written;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;
use tracing::{debug, info, warn};

use crate::cluster::cache::ObjectReader;
use crate::cluster::object::CachedObject;
use crate::contract::GroupKind;
use crate::contract::intent::{ObjectRef, Outcome};
use crate::contract::{PluginInfo, ResourceKind, split_api_version};
use crate::ops::error_chain;
use crate::ops::metrics::Metrics;
use crate::plugins::grant::Grant;
use written::WrittenObject;

pub use error::{ApplyError, IntentSite};
pub use finalizer::{
    FINALIZER_ADD, FINALIZER_REMOVE, add_patch, finalizers, has_finalizer, is_being_deleted,
    remove_patch,
};
pub use report::{ApplyReport, IntentReport, IntentResult};
pub use retry::RetryPolicy;

use error::{Call, classify_failure};
use events::EventSeries;
use noop::SentApplies;
use plan::{Planned, Write};
use report::Written;
use retry::with_retries;

/// Maps an `apiVersion` and kind to the resource the cluster serves.
/// The host's discovery registry implements it; so do [`StaticKinds`] and
/// kube's [`Discovery`](kube::Discovery).
pub trait ResolveKind: Send + Sync {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<ResourceKind>;
}

/// A fixed table of kinds, for tests and offline use.
#[derive(Clone, Debug, Default)]
pub struct StaticKinds {
    kinds: HashMap<(String, String), ResourceKind>,
}

impl StaticKinds {
    pub fn new(kinds: impl IntoIterator<Item = ResourceKind>) -> Self {
        Self {
            kinds: kinds
                .into_iter()
                .map(|k| ((k.api_version(), k.kind.clone()), k))
                .collect(),
        }
    }
}

impl ResolveKind for StaticKinds {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<ResourceKind> {
        self.kinds
            .get(&(api_version.to_string(), kind.to_string()))
            .cloned()
    }
}

impl ResolveKind for kube::Discovery {
    fn resolve(&self, api_version: &str, kind: &str) -> Option<ResourceKind> {
        let (group, version) = split_api_version(api_version);
        let (resource, caps) = self.resolve_gvk(&GroupVersionKind::gvk(group, version, kind))?;
        Some(ResourceKind {
            group: resource.group,
            version: resource.version,
            kind: resource.kind,
            plural: resource.plural,
            namespaced: caps.scope == Scope::Namespaced,
        })
    }
}

/// Settings of an [`Applier`].
#[derive(Clone, Debug)]
pub struct ApplierOptions {
    /// Send every write with `dryRun=All` and log it at info.
    pub dry_run: bool,
    pub retry: RetryPolicy,
    /// Events name `<reporting_controller>/<plugin>` as their
    /// `reportingController` (a qualified name, so a DNS prefix).
    pub reporting_controller: String,
    /// Events' `reportingInstance`: which replica wrote them (e.g. the pod name).
    pub reporting_instance: String,
    /// Where retries are counted (`kubewasm_write_retries_total`); the
    /// default is a registry of its own.
    pub metrics: Arc<Metrics>,
}

impl Default for ApplierOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            retry: RetryPolicy::default(),
            reporting_controller: "kubewasm.dev".into(),
            reporting_instance: "kubewasm".into(),
            metrics: Arc::default(),
        }
    }
}

/// Sends plugins' intents to the API server. Share one per host: it
/// remembers the apply configurations it sent (for no-op detection) and the
/// Events it recorded (repeats become a series on one Event).
pub struct Applier {
    client: Client,
    kinds: Arc<dyn ResolveKind>,
    reader: Arc<dyn ObjectReader>,
    options: ApplierOptions,
    sent_applies: Mutex<SentApplies>,
    event_series: Mutex<EventSeries>,
}

impl Applier {
    pub fn new(
        client: Client,
        kinds: Arc<dyn ResolveKind>,
        reader: Arc<dyn ObjectReader>,
        options: ApplierOptions,
    ) -> Self {
        Self {
            client,
            kinds,
            reader,
            options,
            sent_applies: Mutex::default(),
            event_series: Mutex::default(),
        }
    }

    /// Whether [`Applier::apply_within`] would refuse `outcome` before
    /// sending anything (scope, grant, kinds, malformed intents); sends
    /// nothing and logs nothing.
    pub fn refuses(&self, plugin: &PluginInfo, grant: &Grant, outcome: &Outcome) -> bool {
        self.plan(&plugin.name, plugin, grant, outcome).is_err()
    }

    /// Whether every write is sent as a dry run (`dryRun=All`).
    pub fn dry_run(&self) -> bool {
        self.options.dry_run
    }

    /// Applies `outcome`'s intents for `plugin`, in order. Refuses the whole
    /// outcome before sending anything if any intent is outside the write
    /// scope, names a kind the cluster does not serve, or is malformed; stops
    /// at the first intent that fails.
    pub async fn apply(
        &self,
        plugin: &PluginInfo,
        outcome: &Outcome,
    ) -> Result<ApplyReport, ApplyError> {
        self.apply_within(plugin, &Grant::unconfined(), outcome)
            .await
    }

    /// [`Applier::apply`] for a plugin the operator confined with `grant`:
    /// a write outside it refuses the whole outcome, like a write outside
    /// the declared scope.
    pub async fn apply_within(
        &self,
        plugin: &PluginInfo,
        grant: &Grant,
        outcome: &Outcome,
    ) -> Result<ApplyReport, ApplyError> {
        self.apply_as(&plugin.name, plugin, grant, outcome).await
    }

    /// [`Applier::apply_within`] for the plugin the host knows as `id`
    /// ([`LoadedPlugin::id`](crate::plugins::LoadedPlugin::id)): its field
    /// manager is `kubewasm/<id>`, and its logs and Events name `id`.
    pub async fn apply_as(
        &self,
        id: &str,
        plugin: &PluginInfo,
        grant: &Grant,
        outcome: &Outcome,
    ) -> Result<ApplyReport, ApplyError> {
        let planned = self.plan(id, plugin, grant, outcome).inspect_err(|e| {
            warn!(plugin = %id, error = %error_chain(e), "refused a plugin's intents");
        })?;
        let mut report = ApplyReport {
            dry_run: self.options.dry_run,
            intents: Vec::with_capacity(planned.len()),
        };
        let manager = crate::contract::field_manager(id);
        for p in planned {
            let written = match self.execute(&manager, &p).await {
                Ok(written) => written,
                Err(e) => {
                    if e.is_conflict() {
                        debug!(plugin = %id, error = %error_chain(&e), "write conflicted");
                    } else {
                        warn!(plugin = %id, error = %error_chain(&e), "write failed");
                    }
                    return Err(e);
                }
            };
            debug!(
                plugin = %id,
                intent = p.site.intent,
                object = %p.site.object,
                result = written.result.metric_label(),
                "intent done"
            );
            report.intents.push(IntentReport {
                index: p.site.index,
                intent: p.site.intent,
                target: written.target,
                result: written.result,
                resource_version: written.resource_version,
            });
        }
        Ok(report)
    }

    /// Sends one planned write, unless it would change nothing.
    async fn execute(&self, manager: &str, p: &Planned<'_>) -> Result<Written, ApplyError> {
        match &p.write {
            Write::Apply(write) => self.server_side_apply(manager, p, write).await,
            Write::MergePatch(write) => self.merge_patch(manager, p, write).await,
            Write::JsonPatch(write) => self.json_patch(manager, p, write).await,
            Write::Create { kind, object } => self.create(manager, p, kind, object).await,
            Write::Delete { kind, propagation } => self.delete(p, kind, *propagation).await,
            Write::RecordEvent(event) => {
                self.log_dry_run(p);
                let resource_version = self.record_event(manager, p, event).await?;
                Ok(Written::applied(p.target.clone(), resource_version))
            }
        }
    }

    fn api(&self, kind: &ResourceKind, target: &ObjectRef) -> Api<DynamicObject> {
        self.api_of(kind, target)
    }

    /// [`Applier::api`] for writes whose answer only its `uid` and
    /// `resourceVersion` are read from ([`written`]).
    fn written_api(&self, kind: &ResourceKind, target: &ObjectRef) -> Api<WrittenObject> {
        self.api_of(kind, target)
    }

    fn api_of<K>(&self, kind: &ResourceKind, target: &ObjectRef) -> Api<K>
    where
        K: kube::Resource<DynamicType = ApiResource, Scope = kube::core::DynamicResourceScope>,
    {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        match &target.namespace {
            Some(ns) if kind.namespaced => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// The object as the host cache has it; `None` if it is not cached or
    /// its kind is not watched (then the write is sent).
    fn cached(&self, target: &ObjectRef) -> Option<Arc<CachedObject>> {
        let kind = GroupKind::from_api_version(&target.api_version, &target.kind);
        self.reader
            .get(&kind, target.namespace.as_deref(), &target.name)
            .ok()
            .flatten()
    }

    fn log_dry_run(&self, p: &Planned<'_>) {
        if self.options.dry_run {
            info!(
                plugin = %p.site.plugin,
                intent = p.site.intent,
                object = %p.site.object,
                "dry run: sending with dryRun=All, the cluster is not changed"
            );
        }
    }

    /// Sends one request, retrying throttling, unavailability and
    /// connection errors, and (if `retry_conflict`) one conflict.
    async fn send<T, F, Fut>(
        &self,
        site: &IntentSite,
        call: &Call,
        retry_conflict: bool,
        op: F,
    ) -> Result<T, ApplyError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = kube::Result<T>>,
    {
        let sleep = |delay, reason| {
            debug!(%site, ?delay, reason, "retrying a write");
            tokio::time::sleep(delay)
        };
        with_retries(
            &self.options.retry,
            &self.options.metrics,
            retry_conflict,
            op,
            sleep,
        )
        .await
        .map_err(|failure| classify_failure(site, call, failure))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps hold no invariant a panic could break.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
