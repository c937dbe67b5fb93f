//! Creating and deleting objects. Both are always sent (the cache may lag
//! behind a recent create or delete); `AlreadyExists` and `NotFound` count
//! as done.

use kube::api::{DeleteParams, DynamicObject, PostParams, PropagationPolicy};

use super::Applier;
use super::error::{ApplyError, Call};
use super::plan::Planned;
use super::report::{IntentResult, Written};
use crate::contract::ResourceKind;
use crate::contract::intent::{ObjectRef, Propagation};

impl Applier {
    pub(super) async fn create(
        &self,
        manager: &str,
        p: &Planned<'_>,
        kind: &ResourceKind,
        object: &DynamicObject,
    ) -> Result<Written, ApplyError> {
        let api = self.api(kind, &p.target);
        let params = PostParams {
            dry_run: self.options.dry_run,
            field_manager: Some(manager.into()),
        };
        let call = Call::new("create", kind, false, &p.target);
        self.log_dry_run(p);
        match self
            .send(&p.site, &call, false, || api.create(&params, object))
            .await
        {
            Ok(created) => {
                // With generateName, the name the server chose.
                let target = ObjectRef {
                    name: created.metadata.name.clone().unwrap_or_default(),
                    ..p.target.clone()
                };
                Ok(Written::applied(target, created.metadata.resource_version))
            }
            Err(ApplyError::Rejected { source, .. }) if source.is_already_exists() => {
                Ok(Written::unchanged(IntentResult::AlreadyExists, &p.target))
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn delete(
        &self,
        p: &Planned<'_>,
        kind: &ResourceKind,
        propagation: Option<Propagation>,
    ) -> Result<Written, ApplyError> {
        let api = self.api(kind, &p.target);
        let params = DeleteParams {
            dry_run: self.options.dry_run,
            propagation_policy: propagation.map(|p| match p {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..Default::default()
        };
        let call = Call::new("delete", kind, false, &p.target);
        self.log_dry_run(p);
        match self
            .send(&p.site, &call, false, || {
                api.delete(&p.target.name, &params)
            })
            .await
        {
            Ok(_) => Ok(Written::applied(p.target.clone(), None)),
            Err(ApplyError::NotFound { .. }) => {
                Ok(Written::unchanged(IntentResult::AlreadyGone, &p.target))
            }
            Err(e) => Err(e),
        }
    }
}
