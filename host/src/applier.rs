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

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ObjectMeta, Patch,
    PatchParams, PostParams, PropagationPolicy,
};
use kube::core::Status;
use kube::discovery::Scope;
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::cache::{GroupKind, ObjectReader};
use crate::intent::{self, Intent, ObjectRef, Outcome, Propagation, Severity};
use crate::plugin::{PluginInfo, ResourceKind, split_api_version};

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

/// How often and how long a failed request is retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// The first delay; each next one doubles (with jitter) up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The most time spent waiting across the retries of one request; a
    /// retry that would pass it (e.g. a long `Retry-After`) is not made.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_delay: Duration::from_secs(10),
        }
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
}

impl Default for ApplierOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            retry: RetryPolicy::default(),
            reporting_controller: "kubewasm.dev".into(),
            reporting_instance: "kubewasm".into(),
        }
    }
}

/// What happened to one intent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentResult {
    /// Sent and accepted (in a dry run: accepted, not persisted).
    Applied,
    /// Not sent: the cached object already is what the write would make it.
    SkippedNoop,
    /// A create whose object already exists. Counts as done: create means
    /// "make sure it exists"; use apply to converge its content.
    AlreadyExists,
    /// A delete whose object is already gone. Counts as done.
    AlreadyGone,
}

impl IntentResult {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            IntentResult::Applied => "applied",
            IntentResult::SkippedNoop => "skipped_noop",
            IntentResult::AlreadyExists => "already_exists",
            IntentResult::AlreadyGone => "already_gone",
        }
    }
}

/// One intent's result. `target` is the object written (for an Event: the
/// object it is about); for a create with `generateName` it carries the name
/// the server chose.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntentReport {
    pub index: usize,
    pub intent: &'static str,
    pub target: ObjectRef,
    pub result: IntentResult,
    /// The object's `resourceVersion` after the write, when the server
    /// returned the object (apply, patch, create; the Event for record-event).
    pub resource_version: Option<String>,
}

/// What [`Applier::apply`] did, intent by intent, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    pub dry_run: bool,
    pub intents: Vec<IntentReport>,
}

impl ApplyReport {
    /// How many intents were sent to the API server.
    pub fn sent(&self) -> usize {
        self.intents
            .iter()
            .filter(|i| i.result != IntentResult::SkippedNoop)
            .count()
    }
}

/// Which intent of which plugin an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentSite {
    pub plugin: String,
    pub index: usize,
    pub intent: &'static str,
    /// The object, e.g. `apps/v1 Deployment team-a/web`.
    pub object: String,
}

impl fmt::Display for IntentSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin {}, intent {} ({}) on {}",
            self.plugin, self.index, self.intent, self.object
        )
    }
}

/// Why an outcome was not (fully) applied. The intents before `site.index`
/// were applied; none after it were sent.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{site}: refused, nothing of this outcome was sent")]
    OutOfScope {
        site: IntentSite,
        #[source]
        source: intent::ScopeViolation,
    },
    #[error(
        "{site}: refused, nothing of this outcome was sent: the API server does not serve {api_version} {kind}"
    )]
    UnknownKind {
        site: IntentSite,
        api_version: String,
        kind: String,
    },
    #[error("{site}: refused, nothing of this outcome was sent: {reason}")]
    Invalid { site: IntentSite, reason: String },
    #[error("{site}: conflict, the object changed since the plugin read it; reconcile again")]
    Conflict {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    #[error("{site}: fields are owned by another field manager and the apply does not force")]
    OwnershipConflict {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    #[error("{site}: forbidden: missing RBAC to {verb} {resource} {scope}")]
    Forbidden {
        site: IntentSite,
        verb: &'static str,
        resource: String,
        scope: String,
        #[source]
        source: Box<Status>,
    },
    #[error("{site}: the object does not exist")]
    NotFound {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    #[error("{site}: rejected by the API server")]
    Rejected {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    #[error("{site}: API server unavailable or throttling; gave up after {attempts} attempts")]
    Unavailable {
        site: IntentSite,
        attempts: usize,
        #[source]
        source: kube::Error,
    },
    #[error("{site}: request failed")]
    Request {
        site: IntentSite,
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApplyError::OutOfScope { .. } => "out_of_scope",
            ApplyError::UnknownKind { .. } => "unknown_kind",
            ApplyError::Invalid { .. } => "invalid",
            ApplyError::Conflict { .. } => "conflict",
            ApplyError::OwnershipConflict { .. } => "ownership_conflict",
            ApplyError::Forbidden { .. } => "forbidden",
            ApplyError::NotFound { .. } => "not_found",
            ApplyError::Rejected { .. } => "rejected",
            ApplyError::Unavailable { .. } => "unavailable",
            ApplyError::Request { .. } => "request",
        }
    }

    /// The intent the error is about.
    pub fn site(&self) -> &IntentSite {
        match self {
            ApplyError::OutOfScope { site, .. }
            | ApplyError::UnknownKind { site, .. }
            | ApplyError::Invalid { site, .. }
            | ApplyError::Conflict { site, .. }
            | ApplyError::OwnershipConflict { site, .. }
            | ApplyError::Forbidden { site, .. }
            | ApplyError::NotFound { site, .. }
            | ApplyError::Rejected { site, .. }
            | ApplyError::Unavailable { site, .. }
            | ApplyError::Request { site, .. } => site,
        }
    }

    /// Whether the outcome was refused before anything was sent.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ApplyError::OutOfScope { .. }
                | ApplyError::UnknownKind { .. }
                | ApplyError::Invalid { .. }
        )
    }

    /// A stale read: the key should reconcile again with the newest state
    /// (soon, not after a long backoff).
    pub fn is_conflict(&self) -> bool {
        matches!(self, ApplyError::Conflict { .. })
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

/// A write ready to send, checked by [`Applier::plan`].
struct Planned<'a> {
    site: IntentSite,
    target: ObjectRef,
    write: Write<'a>,
}

enum Write<'a> {
    Apply {
        kind: ResourceKind,
        object: &'a Value,
        status: bool,
        force: bool,
    },
    MergePatch {
        kind: ResourceKind,
        patch: &'a Value,
        sent: Value,
        status: bool,
        precondition: bool,
    },
    JsonPatch {
        kind: ResourceKind,
        patch: json_patch::Patch,
        sent: json_patch::Patch,
        status: bool,
        precondition: bool,
    },
    Create {
        kind: ResourceKind,
        object: DynamicObject,
    },
    Delete {
        kind: ResourceKind,
        propagation: Option<Propagation>,
    },
    RecordEvent {
        severity: Severity,
        reason: &'a str,
        note: &'a str,
        action: &'a str,
    },
}

/// What a request was, for messages about missing RBAC.
struct Call {
    verb: &'static str,
    resource: String,
    scope: String,
}

impl Call {
    fn new(verb: &'static str, kind: &ResourceKind, status: bool, target: &ObjectRef) -> Self {
        let subresource = if status { "/status" } else { "" };
        Self {
            verb,
            resource: format!("{}{subresource} in group {:?}", kind.plural, kind.group),
            scope: match &target.namespace {
                Some(ns) => format!("in namespace {ns}"),
                None => "at cluster scope".into(),
            },
        }
    }
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
        let planned = self.plan(plugin, outcome).inspect_err(|e| {
            warn!(plugin = %plugin.name, error = %error_chain(e), "refused a plugin's intents");
        })?;
        let mut report = ApplyReport {
            dry_run: self.options.dry_run,
            intents: Vec::with_capacity(planned.len()),
        };
        for p in planned {
            let manager = plugin.field_manager();
            let done = self.execute(plugin, &manager, &p).await;
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

    /// Checks every intent and prepares its request; sends nothing.
    fn plan<'a>(
        &self,
        plugin: &PluginInfo,
        outcome: &'a Outcome,
    ) -> Result<Vec<Planned<'a>>, ApplyError> {
        let sites: Vec<(ObjectRef, IntentSite)> = outcome
            .intents
            .iter()
            .enumerate()
            .map(|(index, intent)| {
                let target = target_of(intent);
                let site = IntentSite {
                    plugin: plugin.name.clone(),
                    index,
                    intent: intent.type_name(),
                    object: describe(&target),
                };
                (target, site)
            })
            .collect();
        intent::check_scope(plugin, outcome).map_err(|source| ApplyError::OutOfScope {
            site: sites[source.index].1.clone(),
            source,
        })?;
        outcome
            .intents
            .iter()
            .zip(sites)
            .map(|(intent, (target, site))| self.plan_one(intent, target, site))
            .collect()
    }

    fn plan_one<'a>(
        &self,
        intent: &'a Intent,
        target: ObjectRef,
        site: IntentSite,
    ) -> Result<Planned<'a>, ApplyError> {
        let invalid = |reason: String| ApplyError::Invalid {
            site: site.clone(),
            reason,
        };
        if let Intent::RecordEvent {
            severity,
            reason,
            note,
            action,
            ..
        } = intent
        {
            if action.is_empty() || action.len() > 128 {
                return Err(invalid(
                    "an Event action must be 1 to 128 characters".into(),
                ));
            }
            let write = Write::RecordEvent {
                severity: *severity,
                reason,
                note,
                action,
            };
            return Ok(Planned {
                site,
                target,
                write,
            });
        }
        let kind = self
            .kinds
            .resolve(&target.api_version, &target.kind)
            .ok_or_else(|| ApplyError::UnknownKind {
                site: site.clone(),
                api_version: target.api_version.clone(),
                kind: target.kind.clone(),
            })?;
        match (kind.namespaced, &target.namespace) {
            (true, None) => {
                return Err(invalid(format!(
                    "{} is namespaced but no namespace is given",
                    kind.kind
                )));
            }
            (false, Some(ns)) => {
                return Err(invalid(format!(
                    "{} is cluster-scoped but namespace {ns:?} is given",
                    kind.kind
                )));
            }
            _ => {}
        }
        let write = match intent {
            Intent::Apply {
                object,
                status,
                force,
            } => Write::Apply {
                kind,
                object,
                status: *status,
                force: *force,
            },
            Intent::MergePatch(p) => {
                let mut sent = p.patch.clone();
                if let Some(rv) = &p.resource_version {
                    match sent["metadata"].as_object_mut() {
                        Some(metadata) => {
                            metadata.insert("resourceVersion".into(), json!(rv));
                        }
                        None => sent["metadata"] = json!({"resourceVersion": rv}),
                    }
                }
                Write::MergePatch {
                    kind,
                    patch: &p.patch,
                    sent,
                    status: p.status,
                    precondition: p.resource_version.is_some(),
                }
            }
            Intent::JsonPatch(p) => {
                let parse = |value: Value| {
                    serde_json::from_value::<json_patch::Patch>(value)
                        .map_err(|e| invalid(format!("the JSON patch does not parse: {e}")))
                };
                let patch = parse(p.patch.clone())?;
                let sent = match &p.resource_version {
                    Some(rv) => {
                        let mut ops = vec![
                            json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}),
                        ];
                        ops.extend(p.patch.as_array().into_iter().flatten().cloned());
                        parse(Value::Array(ops))?
                    }
                    None => patch.clone(),
                };
                let precondition = p.resource_version.is_some()
                    || patch
                        .0
                        .iter()
                        .any(|op| matches!(op, json_patch::PatchOperation::Test(_)));
                Write::JsonPatch {
                    kind,
                    patch,
                    sent,
                    status: p.status,
                    precondition,
                }
            }
            Intent::Create { object } => {
                let object = serde_json::from_value(object.clone())
                    .map_err(|e| invalid(format!("the object is not a Kubernetes object: {e}")))?;
                Write::Create { kind, object }
            }
            Intent::Delete { propagation, .. } => Write::Delete {
                kind,
                propagation: *propagation,
            },
            Intent::RecordEvent { .. } => unreachable!("handled above"),
        };
        Ok(Planned {
            site,
            target,
            write,
        })
    }

    async fn execute(
        &self,
        plugin: &PluginInfo,
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
                    let sent = lock(&self.sent_applies).contains(&key, uid(current), fingerprint);
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
                self.log_dry_run(plugin, p);
                let (api, params, patch, status) = (&api, &params, &patch, *status);
                let applied = self
                    .send(&p.site, &call, false, || async move {
                        if status {
                            api.patch_status(name, params, patch).await
                        } else {
                            api.patch(name, params, patch).await
                        }
                    })
                    .await?;
                if !dry_run {
                    let key = SentKey::new(manager, target, status);
                    lock(&self.sent_applies).insert(
                        key,
                        applied.metadata.uid.clone().unwrap_or_default(),
                        fingerprint,
                    );
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
                    .patch(plugin, manager, p, kind, &patch, *status, *precondition)
                    .await?;
                Ok((IntentResult::Applied, target.clone(), rv(&patched)))
            }
            Write::JsonPatch {
                kind,
                patch,
                sent,
                status,
                precondition,
            } => {
                if let Some(current) = self.cached(target) {
                    let mut after = (*current).clone();
                    if json_patch::patch(&mut after, patch).is_ok() && after == *current {
                        return Ok((IntentResult::SkippedNoop, target.clone(), None));
                    }
                }
                let patch = Patch::<()>::Json(sent.clone());
                let patched = self
                    .patch(plugin, manager, p, kind, &patch, *status, *precondition)
                    .await?;
                Ok((IntentResult::Applied, target.clone(), rv(&patched)))
            }
            Write::Create { kind, object } => {
                let api = self.api(kind, target);
                let params = PostParams {
                    dry_run,
                    field_manager: Some(manager.into()),
                };
                let call = Call::new("create", kind, false, target);
                self.log_dry_run(plugin, p);
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
                self.log_dry_run(plugin, p);
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
                self.log_dry_run(plugin, p);
                let rv = self
                    .record_event(plugin, manager, p, *severity, reason, note, action)
                    .await?;
                Ok((IntentResult::Applied, target.clone(), rv))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn patch<P: Serialize + fmt::Debug + Send + Sync>(
        &self,
        plugin: &PluginInfo,
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
        self.log_dry_run(plugin, p);
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

    /// Creates an Event about `p.target`, or counts a repeat of one recorded
    /// in the last few minutes on that Event's `series`.
    #[allow(clippy::too_many_arguments)]
    async fn record_event(
        &self,
        plugin: &PluginInfo,
        manager: &str,
        p: &Planned<'_>,
        severity: Severity,
        reason: &str,
        note: &str,
        action: &str,
    ) -> Result<Option<String>, ApplyError> {
        let regarding = &p.target;
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let note = truncate(note, 1024);
        let cached = self.cached(regarding);
        let uid = cached.as_deref().map(uid).unwrap_or_default().to_string();
        let controller = format!("{}/{}", self.options.reporting_controller, plugin.name);
        let type_ = match severity {
            Severity::Normal => "Normal",
            Severity::Warning => "Warning",
        };
        let key = EventKey {
            controller: controller.clone(),
            regarding: describe(regarding),
            uid: uid.clone(),
            type_,
            reason: reason.into(),
            action: action.into(),
        };
        let now = Timestamp::now();
        let call = Call {
            verb: "create",
            resource: "events in group \"events.k8s.io\"".into(),
            scope: format!("in namespace {namespace}"),
        };

        // A repeat: count it on the existing Event (not in a dry run, which
        // records nothing to repeat).
        let repeat = (!self.options.dry_run)
            .then(|| lock(&self.event_series).repeat(&key, now))
            .flatten();
        if let Some((name, count)) = repeat {
            let params = PatchParams {
                field_manager: Some(manager.into()),
                ..Default::default()
            };
            let patch = Patch::Merge(json!({
                "series": {"count": count, "lastObservedTime": MicroTime(now)},
                "note": note,
            }));
            let call = Call {
                verb: "patch",
                ..call
            };
            match self
                .send(&p.site, &call, true, || {
                    events.patch(&name, &params, &patch)
                })
                .await
            {
                Ok(event) => return Ok(event.metadata.resource_version),
                // Expired (Events live about an hour): record a new one.
                Err(ApplyError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }

        let cached_rv = cached
            .as_deref()
            .and_then(|o| o["metadata"]["resourceVersion"].as_str())
            .map(String::from);
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name(&regarding.name, now)),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: (!note.is_empty()).then(|| note.to_string()),
            type_: Some(type_.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(ObjectReference {
                api_version: Some(regarding.api_version.clone()),
                kind: Some(regarding.kind.clone()),
                namespace: regarding.namespace.clone(),
                name: Some(regarding.name.clone()),
                uid: (!uid.is_empty()).then_some(uid),
                resource_version: cached_rv,
                field_path: None,
            }),
            reporting_controller: Some(controller),
            reporting_instance: Some(self.options.reporting_instance.clone()),
            ..Default::default()
        };
        let params = PostParams {
            dry_run: self.options.dry_run,
            field_manager: Some(manager.into()),
        };
        let created = match self
            .send(&p.site, &call, false, || events.create(&params, &event))
            .await
        {
            Ok(created) => created,
            // A retry of a create that reached the server the first time.
            Err(ApplyError::Rejected { source, .. }) if source.is_already_exists() => event,
            Err(e) => return Err(e),
        };
        if !self.options.dry_run {
            let name = created.metadata.name.clone().unwrap_or_default();
            lock(&self.event_series).insert(key, name, now);
        }
        Ok(created.metadata.resource_version)
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

    fn log_dry_run(&self, plugin: &PluginInfo, p: &Planned<'_>) {
        if self.options.dry_run {
            info!(
                plugin = %plugin.name,
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
        let sleep = |delay| {
            debug!(%site, ?delay, "retrying a write");
            tokio::time::sleep(delay)
        };
        with_retries(&self.options.retry, retry_conflict, op, sleep)
            .await
            .map_err(|failure| classify_failure(site, call, failure))
    }
}

/// A request that failed for good, and how often it was tried.
#[derive(Debug)]
struct Failure {
    error: kube::Error,
    attempts: usize,
}

enum Retry {
    Transient { retry_after: Option<Duration> },
    Conflict,
    No,
}

fn retry_class(error: &kube::Error) -> Retry {
    match error {
        kube::Error::Api(status) => match status.code {
            429 | 500 | 502 | 503 | 504 => Retry::Transient {
                retry_after: status
                    .details
                    .as_ref()
                    .map(|d| d.retry_after_seconds)
                    .filter(|&s| s > 0)
                    .map(|s| Duration::from_secs(s.into())),
            },
            409 if !status.is_already_exists() && !is_ownership_conflict(status) => Retry::Conflict,
            _ => Retry::No,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            Retry::Transient { retry_after: None }
        }
        _ => Retry::No,
    }
}

/// Runs `op` until it succeeds, fails for good, or the policy is spent.
/// Delays come from `policy` (exponential, with jitter) but are never
/// shorter than the server's `retryAfterSeconds`. `sleep` is a parameter so
/// tests can observe the delays.
async fn with_retries<T, F, Fut, S, SFut>(
    policy: &RetryPolicy,
    retry_conflict: bool,
    mut op: F,
    mut sleep: S,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kube::Result<T>>,
    S: FnMut(Duration) -> SFut,
    SFut: Future<Output = ()>,
{
    let mut delays = ExponentialBuilder::new()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_retries)
        .with_jitter()
        .build();
    let mut conflict_retried = !retry_conflict;
    let mut waited = Duration::ZERO;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match op().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let delay = match retry_class(&error) {
            Retry::Transient { retry_after } => delays
                .next()
                .map(|d| retry_after.map_or(d, |after| after.max(d))),
            Retry::Conflict if !conflict_retried => {
                conflict_retried = true;
                Some(policy.min_delay)
            }
            Retry::Conflict | Retry::No => None,
        };
        match delay {
            Some(delay) if waited + delay <= policy.max_total_delay => {
                sleep(delay).await;
                waited += delay;
            }
            _ => return Err(Failure { error, attempts }),
        }
    }
}

fn is_ownership_conflict(status: &Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
}

/// A JSON patch `test` operation that failed on the server (422).
fn is_failed_test(status: &Status) -> bool {
    status.code == 422 && status.message.contains("test failed")
}

fn classify_failure(site: &IntentSite, call: &Call, failure: Failure) -> ApplyError {
    let site = site.clone();
    let Failure { error, attempts } = failure;
    let status = match error {
        kube::Error::Api(status) => status,
        error @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            return ApplyError::Unavailable {
                site,
                attempts,
                source: error,
            };
        }
        error => {
            return ApplyError::Request {
                site,
                source: error,
            };
        }
    };
    match status.code {
        403 => ApplyError::Forbidden {
            site,
            verb: call.verb,
            resource: call.resource.clone(),
            scope: call.scope.clone(),
            source: status,
        },
        404 => ApplyError::NotFound {
            site,
            source: status,
        },
        409 if is_ownership_conflict(&status) => ApplyError::OwnershipConflict {
            site,
            source: status,
        },
        409 if !status.is_already_exists() => ApplyError::Conflict {
            site,
            source: status,
        },
        422 if is_failed_test(&status) => ApplyError::Conflict {
            site,
            source: status,
        },
        429 | 500 | 502 | 503 | 504 => ApplyError::Unavailable {
            site,
            attempts,
            source: kube::Error::Api(status),
        },
        _ => ApplyError::Rejected {
            site,
            source: status,
        },
    }
}

/// Whether every field of `want` holds in `have`: objects recursively (a
/// `null` in `want` matches a missing field), lists element by element with
/// equal lengths, everything else by equality.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(have), Value::Object(want)) => want.iter().all(|(k, w)| match have.get(k) {
            Some(h) => contains(h, w),
            None => w.is_null(),
        }),
        (Value::Array(have), Value::Array(want)) => {
            have.len() == want.len() && have.iter().zip(want).all(|(h, w)| contains(h, w))
        }
        (have, want) => have == want,
    }
}

fn fingerprint(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

fn uid(object: &Value) -> &str {
    object["metadata"]["uid"].as_str().unwrap_or_default()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded maps hold no invariant a panic could break.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The apply configurations sent, by field manager, object and subresource.
#[derive(Default)]
struct SentApplies {
    entries: HashMap<SentKey, (String, u64)>,
}

#[derive(Hash, PartialEq, Eq)]
struct SentKey {
    manager: String,
    object: String,
    status: bool,
}

impl SentKey {
    fn new(manager: &str, target: &ObjectRef, status: bool) -> Self {
        Self {
            manager: manager.into(),
            object: describe(target),
            status,
        }
    }
}

/// Bounds the memory of [`SentApplies`]; when full it starts over, which
/// costs one extra (no-op) apply per object.
const MAX_SENT_APPLIES: usize = 65_536;

impl SentApplies {
    fn contains(&self, key: &SentKey, uid: &str, fingerprint: u64) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(u, f)| u == uid && *f == fingerprint)
    }

    fn insert(&mut self, key: SentKey, uid: String, fingerprint: u64) {
        if self.entries.len() >= MAX_SENT_APPLIES && !self.entries.contains_key(&key) {
            self.entries.clear();
        }
        self.entries.insert(key, (uid, fingerprint));
    }
}

/// Events recorded recently, so a repeat increments a series instead of
/// creating another Event (as client-go and kube-rs do).
#[derive(Default)]
struct EventSeries {
    entries: HashMap<EventKey, RecordedEvent>,
}

/// Isomorphic Events: same reporter, object, type, reason and action.
#[derive(Hash, PartialEq, Eq)]
struct EventKey {
    controller: String,
    regarding: String,
    uid: String,
    type_: &'static str,
    reason: String,
    action: String,
}

struct RecordedEvent {
    name: String,
    count: i32,
    last: Timestamp,
}

/// How long after its last occurrence an Event is counted on rather than
/// created anew (client-go and kube-rs use the same).
const EVENT_SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
const MAX_EVENT_SERIES: usize = 4096;

impl EventSeries {
    /// For a repeat of a recent Event: its name and the new count.
    fn repeat(&mut self, key: &EventKey, now: Timestamp) -> Option<(String, i32)> {
        let recorded = self.entries.get_mut(key)?;
        if recorded.last + EVENT_SERIES_WINDOW < now {
            self.entries.remove(key);
            return None;
        }
        recorded.count += 1;
        recorded.last = now;
        Some((recorded.name.clone(), recorded.count))
    }

    fn insert(&mut self, key: EventKey, name: String, now: Timestamp) {
        if self.entries.len() >= MAX_EVENT_SERIES {
            self.entries
                .retain(|_, e| e.last + EVENT_SERIES_WINDOW >= now);
            if self.entries.len() >= MAX_EVENT_SERIES {
                self.entries.clear();
            }
        }
        self.entries.insert(
            key,
            RecordedEvent {
                name,
                count: 1,
                last: now,
            },
        );
    }
}

/// A unique Event name: the object's name (made a DNS subdomain) and the
/// time, as kubectl shows them (`web.17d9c0a1b2c3d4e5`), plus a counter.
fn event_name(object_name: &str, now: Timestamp) -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let cleaned: String = object_name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
            _ => '-',
        })
        .take(200)
        .collect();
    let base = match cleaned.trim_matches(|c| c == '-' || c == '.') {
        "" => "object",
        trimmed => trimmed,
    };
    format!("{base}.{:016x}{seq:x}", now.as_nanosecond() as u64)
}

fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The object an intent writes (for an Event, the object it is about).
fn target_of(intent: &Intent) -> ObjectRef {
    match intent {
        Intent::Apply { object, .. } | Intent::Create { object } => {
            let metadata = &object["metadata"];
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            ObjectRef {
                api_version: text(&object["apiVersion"]),
                kind: text(&object["kind"]),
                namespace: metadata["namespace"]
                    .as_str()
                    .filter(|ns| !ns.is_empty())
                    .map(String::from),
                name: metadata["name"]
                    .as_str()
                    .or_else(|| metadata["generateName"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            }
        }
        Intent::MergePatch(p) | Intent::JsonPatch(p) => p.target.clone(),
        Intent::Delete { target, .. } => target.clone(),
        Intent::RecordEvent { regarding, .. } => regarding.clone(),
    }
}

/// `apps/v1 Deployment team-a/web`, or `v1 Namespace team-a`.
fn describe(target: &ObjectRef) -> String {
    match &target.namespace {
        Some(ns) => format!(
            "{} {} {ns}/{}",
            target.api_version, target.kind, target.name
        ),
        None => format!("{} {} {}", target.api_version, target.kind, target.name),
    }
}

/// An error and its causes on one line, for logs.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    fn api_error(code: u16, reason: &str, retry_after_seconds: u32) -> kube::Error {
        kube::Error::Api(Box::new(Status {
            code,
            reason: reason.into(),
            message: format!("{reason} ({code})"),
            details: Some(StatusDetails {
                name: String::new(),
                group: String::new(),
                kind: String::new(),
                uid: String::new(),
                causes: vec![],
                retry_after_seconds,
            }),
            ..Status::failure("", reason)
        }))
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_total_delay: Duration::from_secs(10),
        }
    }

    /// Runs `with_retries` over `errors` (then success), returning the
    /// attempts made, the delays slept and whether it succeeded.
    async fn run(
        policy: &RetryPolicy,
        retry_conflict: bool,
        errors: Vec<kube::Error>,
    ) -> (usize, Vec<Duration>, Result<(), Failure>) {
        let errors = Mutex::new(errors.into_iter());
        let attempts = AtomicU64::new(0);
        let slept = Mutex::new(Vec::new());
        let result = with_retries(
            policy,
            retry_conflict,
            || {
                attempts.fetch_add(1, Ordering::Relaxed);
                let next = errors.lock().unwrap().next();
                async move { next.map_or(Ok(()), Err) }
            },
            |d| {
                slept.lock().unwrap().push(d);
                std::future::ready(())
            },
        )
        .await;
        let attempts = attempts.load(Ordering::Relaxed) as usize;
        (attempts, slept.into_inner().unwrap(), result)
    }

    #[tokio::test]
    async fn throttling_is_retried_with_growing_delays_honouring_retry_after() {
        let errors = vec![
            api_error(429, "TooManyRequests", 0),
            api_error(503, "ServiceUnavailable", 0),
            api_error(429, "TooManyRequests", 3),
        ];
        let (attempts, slept, result) = run(&policy(), false, errors).await;
        assert!(result.is_ok());
        assert_eq!(attempts, 4);
        assert!(slept[0] >= Duration::from_millis(100) && slept[0] < Duration::from_millis(200));
        assert!(slept[1] >= Duration::from_millis(200), "{slept:?}");
        assert_eq!(slept[2], Duration::from_secs(3), "Retry-After is honoured");
    }

    #[tokio::test]
    async fn retries_are_bounded_in_number_and_time() {
        let many = || {
            (0..10)
                .map(|_| api_error(500, "InternalError", 0))
                .collect()
        };
        let (attempts, _, result) = run(&policy(), false, many()).await;
        assert_eq!(attempts, 6, "one attempt and five retries");
        assert_eq!(result.unwrap_err().attempts, 6);

        let budget = RetryPolicy {
            max_total_delay: Duration::from_secs(5),
            ..policy()
        };
        let errors = vec![api_error(429, "TooManyRequests", 30)];
        let (attempts, slept, result) = run(&budget, false, errors).await;
        assert_eq!(
            (attempts, slept.len()),
            (1, 0),
            "a Retry-After past the budget ends it"
        );
        assert!(result.is_err());
    }

    #[tokio::test]
    async fn conflicts_are_retried_once_without_a_precondition_and_never_with_one() {
        let conflicts = || vec![api_error(409, "Conflict", 0), api_error(409, "Conflict", 0)];
        let (attempts, _, result) = run(&policy(), true, conflicts()).await;
        assert_eq!(attempts, 2);
        assert!(result.is_err());
        let (attempts, _, _) = run(&policy(), false, conflicts()).await;
        assert_eq!(attempts, 1);
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried() {
        for error in [
            api_error(403, "Forbidden", 0),
            api_error(404, "NotFound", 0),
            api_error(409, "AlreadyExists", 0),
            api_error(422, "Invalid", 0),
        ] {
            let (attempts, _, result) = run(&policy(), true, vec![error]).await;
            assert_eq!(attempts, 1);
            assert!(result.is_err());
        }
    }

    fn site() -> IntentSite {
        IntentSite {
            plugin: "labels".into(),
            index: 2,
            intent: "merge-patch",
            object: "v1 ConfigMap ns/x".into(),
        }
    }

    #[test]
    fn failures_are_classified_for_the_caller() {
        let call = Call {
            verb: "patch",
            resource: "configmaps in group \"\"".into(),
            scope: "in namespace ns".into(),
        };
        let classify = |error| classify_failure(&site(), &call, Failure { error, attempts: 3 });
        let forbidden = classify(api_error(403, "Forbidden", 0));
        assert_eq!(forbidden.metric_label(), "forbidden");
        assert_eq!(
            forbidden.to_string(),
            "plugin labels, intent 2 (merge-patch) on v1 ConfigMap ns/x: forbidden: missing RBAC to patch configmaps in group \"\" in namespace ns"
        );
        assert!(classify(api_error(409, "Conflict", 0)).is_conflict());
        let mut test_failed = Status::failure(
            "testing value /metadata/resourceVersion failed: test failed",
            "Invalid",
        );
        test_failed.code = 422;
        assert!(classify(kube::Error::Api(Box::new(test_failed))).is_conflict());
        let mut ownership = api_error(409, "Conflict", 0);
        if let kube::Error::Api(s) = &mut ownership {
            s.details.as_mut().unwrap().causes.push(StatusCause {
                reason: "FieldManagerConflict".into(),
                message: "conflict with \"kubewasm/other\"".into(),
                field: ".metadata.labels.a".into(),
            });
        }
        assert_eq!(classify(ownership).metric_label(), "ownership_conflict");
        let unavailable = classify(api_error(503, "ServiceUnavailable", 0));
        assert!(
            unavailable
                .to_string()
                .ends_with("gave up after 3 attempts")
        );
        assert_eq!(
            classify(api_error(422, "Invalid", 0)).metric_label(),
            "rejected"
        );
    }

    #[test]
    fn contains_checks_every_wanted_field() {
        let have = json!({
            "metadata": {"name": "x", "labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "c", "image": "i", "imagePullPolicy": "Always"}]}
        });
        assert!(contains(
            &have,
            &json!({"metadata": {"labels": {"a": "1"}}})
        ));
        assert!(contains(
            &have,
            &json!({"spec": {"containers": [{"name": "c", "image": "i"}]}})
        ));
        assert!(contains(&have, &json!({"metadata": {"annotations": null}})));
        assert!(!contains(
            &have,
            &json!({"metadata": {"labels": {"a": "2"}}})
        ));
        assert!(!contains(
            &have,
            &json!({"metadata": {"labels": {"c": "3"}}})
        ));
        assert!(!contains(&have, &json!({"spec": {"containers": []}})));
        assert!(!contains(&have, &json!({"metadata": {"labels": null}})));
    }

    #[test]
    fn sent_applies_match_uid_and_configuration() {
        let target = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "x".into(),
        };
        let mut sent = SentApplies::default();
        let config = fingerprint(&json!({"metadata": {"labels": {"a": "1"}}}));
        sent.insert(
            SentKey::new("kubewasm/a", &target, false),
            "u1".into(),
            config,
        );
        assert!(sent.contains(&SentKey::new("kubewasm/a", &target, false), "u1", config));
        assert!(!sent.contains(&SentKey::new("kubewasm/a", &target, true), "u1", config));
        assert!(!sent.contains(&SentKey::new("kubewasm/b", &target, false), "u1", config));
        assert!(!sent.contains(&SentKey::new("kubewasm/a", &target, false), "u2", config));
        let other = fingerprint(&json!({"metadata": {"labels": {"a": "2"}}}));
        assert!(!sent.contains(&SentKey::new("kubewasm/a", &target, false), "u1", other));
    }

    #[test]
    fn event_repeats_count_within_the_window() {
        let key = || EventKey {
            controller: "kubewasm.dev/labels".into(),
            regarding: "v1 Namespace a".into(),
            uid: "u".into(),
            type_: "Normal",
            reason: "Labelled".into(),
            action: "Reconcile".into(),
        };
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let mut series = EventSeries::default();
        assert_eq!(series.repeat(&key(), t0), None);
        series.insert(key(), "a.1".into(), t0);
        let t1 = t0 + SignedDuration::from_mins(5);
        assert_eq!(series.repeat(&key(), t1), Some(("a.1".into(), 2)));
        let t2 = t1 + SignedDuration::from_mins(5);
        assert_eq!(series.repeat(&key(), t2), Some(("a.1".into(), 3)));
        let late = t2 + SignedDuration::from_mins(7);
        assert_eq!(
            series.repeat(&key(), late),
            None,
            "an old Event is not reused"
        );
    }

    #[test]
    fn event_names_are_valid_and_unique() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let a = event_name("system:controller:Foo", now);
        let b = event_name("system:controller:Foo", now);
        assert_ne!(a, b);
        assert!(a.starts_with("system-controller-foo."), "{a}");
        assert!(event_name(&"x".repeat(300), now).len() <= 253);
        assert!(event_name(":", now).starts_with("object."));
    }

    #[test]
    fn truncate_respects_characters() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
