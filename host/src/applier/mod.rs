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

mod error;
mod events;
mod noop;
mod plan;
mod report;
mod retry;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};

use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, PropagationPolicy,
};
use kube::core::Status;
use kube::discovery::Scope;
use serde::Serialize;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::cluster::cache::ObjectReader;
use crate::contract::GroupKind;
use crate::contract::intent::{ObjectRef, Outcome, Propagation};
use crate::contract::{PluginInfo, ResourceKind, split_api_version};
use crate::ops::error_chain;
use crate::ops::metrics::Metrics;
use crate::plugins::grant::Grant;

pub use error::{ApplyError, IntentSite};
pub use report::{ApplyReport, IntentReport, IntentResult};
pub use retry::RetryPolicy;

use error::{Call, classify_failure, is_unexplained_invalid};
use events::EventSeries;
use noop::{SentApplies, SentKey, contains, fingerprint, uid};
use plan::{Planned, Write};
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
        let planned = self.plan(plugin, grant, outcome).inspect_err(|e| {
            warn!(plugin = %plugin.name, error = %error_chain(e), "refused a plugin's intents");
        })?;
        let mut report = ApplyReport {
            dry_run: self.options.dry_run,
            intents: Vec::with_capacity(planned.len()),
        };
        let manager = plugin.field_manager();
        for p in planned {
            let done = self.execute(&manager, &p).await;
            let (result, target, resource_version) = match done {
                Ok(done) => done,
                Err(e) => {
                    if e.is_conflict() {
                        debug!(plugin = %plugin.name, error = %error_chain(&e), "write conflicted");
                    } else {
                        warn!(plugin = %plugin.name, error = %error_chain(&e), "write failed");
                    }
                    return Err(e);
                }
            };
            debug!(
                plugin = %plugin.name,
                intent = p.site.intent,
                object = %p.site.object,
                result = result.metric_label(),
                "intent done"
            );
            report.intents.push(IntentReport {
                index: p.site.index,
                intent: p.site.intent,
                target,
                result,
                resource_version,
            });
        }
        Ok(report)
    }

    async fn execute(
        &self,
        manager: &str,
        p: &Planned<'_>,
    ) -> Result<(IntentResult, ObjectRef, Option<String>), ApplyError> {
        let dry_run = self.options.dry_run;
        let target = &p.target;
        let name = target.name.as_str();
        let rv = |o: &DynamicObject| o.metadata.resource_version.clone();
        match &p.write {
            Write::Apply {
                kind,
                object,
                status,
                force,
            } => {
                let current = self.cached(target);
                let key = SentKey::new(manager, target, *status);
                let fingerprint = fingerprint(object);
                if let Some(current) = &current {
                    let (have, want) = if *status {
                        (&current["status"], &object["status"])
                    } else {
                        (&**current, *object)
                    };
                    let sent = lock(&self.sent_applies).contains(key, uid(current), fingerprint);
                    if sent && contains(have, want) {
                        return Ok((IntentResult::SkippedNoop, target.clone(), None));
                    }
                }
                let api = self.api(kind, target);
                let params = PatchParams {
                    dry_run,
                    force: *force,
                    field_manager: Some(manager.into()),
                    ..Default::default()
                };
                let patch = Patch::Apply(*object);
                let call = Call::new("patch", kind, *status, target);
                self.log_dry_run(p);
                let (api, params, patch, status) = (&api, &params, &patch, *status);
                let applied = self
                    .send(&p.site, &call, true, || async move {
                        if status {
                            api.patch_status(name, params, patch).await
                        } else {
                            api.patch(name, params, patch).await
                        }
                    })
                    .await?;
                if !dry_run {
                    let uid = applied.metadata.uid.as_deref().unwrap_or_default();
                    lock(&self.sent_applies).insert(key, uid, fingerprint);
                }
                Ok((IntentResult::Applied, target.clone(), rv(&applied)))
            }
            Write::MergePatch {
                kind,
                patch,
                sent,
                status,
                precondition,
            } => {
                if let Some(current) = self.cached(target) {
                    let mut after = (*current).clone();
                    json_patch::merge(&mut after, patch);
                    if after == *current {
                        return Ok((IntentResult::SkippedNoop, target.clone(), None));
                    }
                }
                let patch = Patch::Merge(sent);
                let patched = self
                    .patch(manager, p, kind, &patch, *status, *precondition)
                    .await?;
                Ok((IntentResult::Applied, target.clone(), rv(&patched)))
            }
            Write::JsonPatch {
                kind,
                patch,
                sent,
                status,
                precondition,
                offset,
            } => {
                if let Some(current) = self.cached(target) {
                    let mut after = (*current).clone();
                    if json_patch::patch(&mut after, patch).is_ok() && after == *current {
                        return Ok((IntentResult::SkippedNoop, target.clone(), None));
                    }
                }
                let json = Patch::<()>::Json(sent.clone());
                let patched = match self
                    .patch(manager, p, kind, &json, *status, *precondition)
                    .await
                {
                    Err(ApplyError::Rejected { site, source, .. })
                        if is_unexplained_invalid(&source) =>
                    {
                        return Err(self
                            .explain_json_patch(kind, target, sent, *offset, site, source)
                            .await);
                    }
                    result => result?,
                };
                Ok((IntentResult::Applied, target.clone(), rv(&patched)))
            }
            Write::Create { kind, object } => {
                let api = self.api(kind, target);
                let params = PostParams {
                    dry_run,
                    field_manager: Some(manager.into()),
                };
                let call = Call::new("create", kind, false, target);
                self.log_dry_run(p);
                match self
                    .send(&p.site, &call, false, || api.create(&params, object))
                    .await
                {
                    Ok(created) => {
                        let target = ObjectRef {
                            name: created.metadata.name.clone().unwrap_or_default(),
                            ..target.clone()
                        };
                        Ok((IntentResult::Applied, target, rv(&created)))
                    }
                    Err(ApplyError::Rejected { source, .. }) if source.is_already_exists() => {
                        Ok((IntentResult::AlreadyExists, target.clone(), None))
                    }
                    Err(e) => Err(e),
                }
            }
            Write::Delete { kind, propagation } => {
                let api = self.api(kind, target);
                let params = DeleteParams {
                    dry_run,
                    propagation_policy: propagation.map(|p| match p {
                        Propagation::Background => PropagationPolicy::Background,
                        Propagation::Foreground => PropagationPolicy::Foreground,
                        Propagation::Orphan => PropagationPolicy::Orphan,
                    }),
                    ..Default::default()
                };
                let call = Call::new("delete", kind, false, target);
                self.log_dry_run(p);
                match self
                    .send(&p.site, &call, false, || api.delete(name, &params))
                    .await
                {
                    Ok(_) => Ok((IntentResult::Applied, target.clone(), None)),
                    Err(ApplyError::NotFound { .. }) => {
                        Ok((IntentResult::AlreadyGone, target.clone(), None))
                    }
                    Err(e) => Err(e),
                }
            }
            Write::RecordEvent {
                severity,
                reason,
                note,
                action,
            } => {
                self.log_dry_run(p);
                let rv = self
                    .record_event(manager, p, *severity, reason, note, action)
                    .await?;
                Ok((IntentResult::Applied, target.clone(), rv))
            }
        }
    }

    async fn patch<P: Serialize + fmt::Debug + Send + Sync>(
        &self,
        manager: &str,
        p: &Planned<'_>,
        kind: &ResourceKind,
        patch: &Patch<P>,
        status: bool,
        precondition: bool,
    ) -> Result<DynamicObject, ApplyError> {
        let api = self.api(kind, &p.target);
        let params = PatchParams {
            dry_run: self.options.dry_run,
            field_manager: Some(manager.into()),
            ..Default::default()
        };
        let name = p.target.name.as_str();
        let call = Call::new("patch", kind, status, &p.target);
        self.log_dry_run(p);
        let (api, params) = (&api, &params);
        self.send(&p.site, &call, !precondition, || async move {
            if status {
                api.patch_status(name, params, patch).await
            } else {
                api.patch(name, params, patch).await
            }
        })
        .await
    }

    /// The API server does not say why a JSON patch did not apply; find out
    /// by applying it to the object as it is now. A failed `test` (or a
    /// patch that applies now) means the object changed: a conflict.
    async fn explain_json_patch(
        &self,
        kind: &ResourceKind,
        target: &ObjectRef,
        sent: &json_patch::Patch,
        offset: usize,
        site: IntentSite,
        source: Box<Status>,
    ) -> ApplyError {
        let mut current = match self.api(kind, target).get(&target.name).await {
            Ok(current) => serde_json::to_value(current).unwrap_or_default(),
            Err(_) => {
                return ApplyError::Rejected {
                    site,
                    detail: String::new(),
                    source,
                };
            }
        };
        match json_patch::patch(&mut current, sent) {
            Err(e) if !matches!(e.kind, json_patch::PatchErrorKind::TestFailed) => {
                let detail = match e.operation.checked_sub(offset) {
                    Some(op) => format!("; operation {op} (path {}): {}", e.path, e.kind),
                    None => format!("; {}", e.kind),
                };
                ApplyError::Rejected {
                    site,
                    detail,
                    source,
                }
            }
            _ => ApplyError::Conflict { site, source },
        }
    }

    fn api(&self, kind: &ResourceKind, target: &ObjectRef) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(&kind.group, &kind.version, &kind.kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, &kind.plural);
        match &target.namespace {
            Some(ns) if kind.namespaced => Api::namespaced_with(self.client.clone(), ns, &resource),
            _ => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// The object as the host cache has it; `None` if it is not cached or
    /// its kind is not watched (then the write is sent).
    fn cached(&self, target: &ObjectRef) -> Option<Arc<Value>> {
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
