//! Server-side apply of an object or its status, skipped when it would
//! change nothing (see the module docs of [`crate::applier`]).

use kube::api::Patch;

use super::error::ApplyError;
use serde_json::json;

use super::noop::{SentKey, fingerprint};
use super::patch::PatchTarget;
use super::plan::{ApplyWrite, Planned};
use super::report::{IntentResult, Written};
use super::{Applier, lock};
use crate::cluster::object::read::contains_json;

impl Applier {
    /// Applies `write` with the field manager `manager`, unless the cached
    /// object holds it already and this applier sent it before.
    pub(super) async fn server_side_apply(
        &self,
        manager: &str,
        p: &Planned<'_>,
        write: &ApplyWrite<'_>,
    ) -> Result<Written, ApplyError> {
        let target = &p.target;
        let key = SentKey::new(manager, target, write.status);
        let fingerprint = fingerprint(write.object);
        if self.holds_already(key, fingerprint, write, p) {
            return Ok(Written::unchanged(IntentResult::Unchanged, target));
        }
        let to = PatchTarget {
            kind: &write.kind,
            status: write.status,
            precondition: false,
            force: write.force,
        };
        let applied = self
            .patch(manager, p, &to, &Patch::Apply(write.object))
            .await?;
        if !self.options.dry_run {
            let uid = applied.metadata.uid.as_deref().unwrap_or_default();
            lock(&self.sent_applies).insert(key, uid, fingerprint);
        }
        Ok(Written::applied(
            target.clone(),
            applied.metadata.resource_version,
        ))
    }

    /// Whether the cached object already holds every field of the apply
    /// configuration (under `status` for the status subresource) and this
    /// applier sent the same configuration to the same object.
    fn holds_already(
        &self,
        key: SentKey,
        fingerprint: u64,
        write: &ApplyWrite<'_>,
        p: &Planned<'_>,
    ) -> bool {
        let Some(current) = self.cached(&p.target) else {
            return false;
        };
        let sent = lock(&self.sent_applies).contains(key, current.uid(), fingerprint);
        // Read from the cached text: no tree of the object is built.
        sent && match write.status {
            true => contains_json(current.json(), &json!({"status": write.object["status"]})),
            false => contains_json(current.json(), write.object),
        }
    }
}
