//! Merge and JSON patches of an object or its status, skipped when the
//! patch applied to the cached object changes nothing.

use std::fmt;

use kube::api::{Patch, PatchParams};
use kube::core::Status;
use serde::Serialize;

use super::Applier;
use super::error::{ApplyError, Call, IntentSite, is_unexplained_invalid};
use super::plan::{JsonPatchWrite, MergePatchWrite, Planned};
use super::report::{IntentResult, Written};
use super::written::WrittenObject;
use crate::contract::ResourceKind;
use crate::contract::intent::ObjectRef;

/// Where a patch goes, and how it is sent.
pub(super) struct PatchTarget<'w> {
    pub(super) kind: &'w ResourceKind,
    /// To the status subresource.
    pub(super) status: bool,
    /// The patch carries a precondition: a conflict is the answer, not
    /// something to retry.
    pub(super) precondition: bool,
    /// Take fields other managers own (server-side apply only).
    pub(super) force: bool,
}

impl<'w> PatchTarget<'w> {
    /// A merge or JSON patch (never forced) of `kind`.
    fn patch(kind: &'w ResourceKind, status: bool, precondition: bool) -> Self {
        Self {
            kind,
            status,
            precondition,
            force: false,
        }
    }
}

impl Applier {
    pub(super) async fn merge_patch(
        &self,
        manager: &str,
        p: &Planned<'_>,
        write: &MergePatchWrite<'_>,
    ) -> Result<Written, ApplyError> {
        // A tree of the cached object, once per patch intent (server-side
        // apply, the common write, checks the text without one).
        if let Some(current) = self.cached(&p.target).map(|c| c.parse()) {
            let mut after = current.clone();
            json_patch::merge(&mut after, write.patch);
            if after == current {
                return Ok(Written::unchanged(IntentResult::Unchanged, &p.target));
            }
        }
        let to = PatchTarget::patch(&write.kind, write.status, write.precondition);
        let patched = self
            .patch(manager, p, &to, &Patch::Merge(&write.sent))
            .await?;
        Ok(Written::applied(
            p.target.clone(),
            patched.metadata.resource_version,
        ))
    }

    pub(super) async fn json_patch(
        &self,
        manager: &str,
        p: &Planned<'_>,
        write: &JsonPatchWrite,
    ) -> Result<Written, ApplyError> {
        if let Some(current) = self.cached(&p.target).map(|c| c.parse()) {
            let mut after = current.clone();
            if json_patch::patch(&mut after, &write.patch).is_ok() && after == current {
                return Ok(Written::unchanged(IntentResult::Unchanged, &p.target));
            }
        }
        let to = PatchTarget::patch(&write.kind, write.status, write.precondition);
        let json = Patch::<()>::Json(write.sent.clone());
        let patched = match self.patch(manager, p, &to, &json).await {
            Err(ApplyError::Rejected { site, source, .. }) if is_unexplained_invalid(&source) => {
                return Err(self
                    .explain_json_patch(write, &p.target, site, source)
                    .await);
            }
            result => result?,
        };
        Ok(Written::applied(
            p.target.clone(),
            patched.metadata.resource_version,
        ))
    }

    /// Sends `patch` to the object or its status subresource, retrying a
    /// conflict once unless the patch has a precondition.
    pub(super) async fn patch<P: Serialize + fmt::Debug + Send + Sync>(
        &self,
        manager: &str,
        p: &Planned<'_>,
        to: &PatchTarget<'_>,
        patch: &Patch<P>,
    ) -> Result<WrittenObject, ApplyError> {
        let api = self.written_api(to.kind, &p.target);
        let params = PatchParams {
            dry_run: self.options.dry_run,
            force: to.force,
            field_manager: Some(manager.into()),
            ..Default::default()
        };
        let name = p.target.name.as_str();
        let call = Call::new("patch", to.kind, to.status, &p.target);
        self.log_dry_run(p);
        let (api, params, status) = (&api, &params, to.status);
        self.send(&p.site, &call, !to.precondition, || async move {
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
        write: &JsonPatchWrite,
        target: &ObjectRef,
        site: IntentSite,
        source: Box<Status>,
    ) -> ApplyError {
        let mut current = match self.api(&write.kind, target).get(&target.name).await {
            Ok(current) => serde_json::to_value(current).unwrap_or_default(),
            Err(_) => {
                return ApplyError::Rejected {
                    site,
                    detail: String::new(),
                    source,
                };
            }
        };
        match json_patch::patch(&mut current, &write.sent) {
            Err(e) if !matches!(e.kind, json_patch::PatchErrorKind::TestFailed) => {
                let detail = match e.operation.checked_sub(write.offset) {
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
}
