//! Why an outcome was refused or an intent failed.

use std::fmt;

use kube::core::Status;

use super::retry::Failure;
use crate::contract::ResourceKind;
use crate::contract::intent::{self, ObjectRef};

/// Which intent of which plugin an error is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntentSite {
    pub plugin: String,
    pub index: usize,
    pub intent: &'static str,
    /// The object, e.g. `apps/v1 Deployment team-a/web`.
    pub object: String,
}

impl IntentSite {
    /// The `index` of a write the host makes for the plugin rather than
    /// one of its intents (adding or removing its finalizer).
    pub const HOST_WRITE: usize = usize::MAX;
}

impl fmt::Display for IntentSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == Self::HOST_WRITE {
            return write!(
                f,
                "plugin {}, host write ({}) on {}",
                self.plugin, self.intent, self.object
            );
        }
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
    /// An intent outside the plugin's declared write scope.
    #[error("{site}: refused, nothing of this outcome was sent")]
    OutOfScope {
        site: IntentSite,
        #[source]
        source: Box<intent::ScopeViolation>,
    },
    /// A write outside the namespaces or cluster-scoped kinds the operator
    /// granted the plugin ([`crate::plugins::grant`]).
    #[error("{site}: refused, nothing of this outcome was sent: {reason}")]
    OutsideGrant { site: IntentSite, reason: String },
    /// The cluster does not serve the intent's kind in that version.
    #[error(
        "{site}: refused, nothing of this outcome was sent: the API server does not serve {api_version} {kind}"
    )]
    UnknownKind {
        site: IntentSite,
        api_version: String,
        kind: String,
    },
    /// A malformed intent, or a namespace that does not fit its kind.
    #[error("{site}: refused, nothing of this outcome was sent: {reason}")]
    Invalid { site: IntentSite, reason: String },
    /// A failed precondition (`resourceVersion`, a JSON patch `test`) or a
    /// write that conflicted twice: reconcile the key again with fresh
    /// state. Not retried here.
    #[error("{site}: conflict, the object changed since the plugin read it; reconcile again")]
    Conflict {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    /// Server-side apply without force met fields another manager owns (the
    /// source names them). Does not resolve by itself.
    #[error("{site}: fields are owned by another field manager and the apply does not force")]
    OwnershipConflict {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    /// The host's credentials may not make this request. Not retried.
    #[error("{site}: forbidden: missing RBAC to {access}")]
    Forbidden {
        site: IntentSite,
        access: String,
        #[source]
        source: Box<Status>,
    },
    /// A patch of an object that does not exist (a delete of one is done).
    #[error("{site}: the object does not exist")]
    NotFound {
        site: IntentSite,
        #[source]
        source: Box<Status>,
    },
    /// Any other refusal (validation, admission); `detail` adds what the
    /// server's message leaves out.
    #[error("{site}: rejected by the API server{detail}")]
    Rejected {
        site: IntentSite,
        detail: String,
        #[source]
        source: Box<Status>,
    },
    /// Throttling, 5xx or connection errors that outlasted the retry
    /// policy: back the key off.
    #[error("{site}: API server unavailable or throttling; gave up after {attempts} attempts")]
    Unavailable {
        site: IntentSite,
        attempts: usize,
        #[source]
        source: Box<kube::Error>,
    },
    /// The request could not be built or its answer not read.
    #[error("{site}: request failed")]
    Request {
        site: IntentSite,
        #[source]
        source: Box<kube::Error>,
    },
}

impl ApplyError {
    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ApplyError::OutOfScope { .. } => "out_of_scope",
            ApplyError::OutsideGrant { .. } => "outside_grant",
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
            | ApplyError::OutsideGrant { site, .. }
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
                | ApplyError::OutsideGrant { .. }
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

/// A request as RBAC sees it, e.g. `patch configmaps/status in group ""
/// in namespace ns`: what a Forbidden error says is missing.
pub(super) struct Call(pub(super) String);

impl Call {
    pub(super) fn new(
        verb: &'static str,
        kind: &ResourceKind,
        status: bool,
        target: &ObjectRef,
    ) -> Self {
        let subresource = if status { "/status" } else { "" };
        let scope = match &target.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "at cluster scope".into(),
        };
        Self(format!(
            "{verb} {}{subresource} in group {:?} {scope}",
            kind.plural, kind.group
        ))
    }
}

pub(super) fn is_ownership_conflict(status: &Status) -> bool {
    status
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "FieldManagerConflict"))
}

/// A 422 that says nothing but "the server rejected our request": how the
/// API server reports a JSON patch that does not apply (a failed `test`
/// included). Validation errors name the object and their causes.
pub(super) fn is_unexplained_invalid(status: &Status) -> bool {
    status.code == 422
        && status
            .details
            .as_ref()
            .is_none_or(|d| d.causes.is_empty() && d.name.is_empty())
}

/// What the API server said beyond its message: the causes it lists that
/// the message does not already include (e.g. why a JSON patch failed).
pub(super) fn server_detail(status: &Status) -> String {
    let causes = status.details.iter().flat_map(|d| &d.causes);
    causes
        .filter(|c| !c.message.is_empty() && !status.message.contains(&c.message))
        .map(|c| match c.field.as_str() {
            "" => format!("; {}", c.message),
            field => format!("; {field}: {}", c.message),
        })
        .collect()
}

pub(super) fn classify_failure(site: &IntentSite, call: &Call, failure: Failure) -> ApplyError {
    let site = site.clone();
    let Failure { error, attempts } = failure;
    let status = match error {
        kube::Error::Api(status) => status,
        error @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            return ApplyError::Unavailable {
                site,
                attempts,
                source: Box::new(error),
            };
        }
        error => {
            return ApplyError::Request {
                site,
                source: Box::new(error),
            };
        }
    };
    match status.code {
        403 => ApplyError::Forbidden {
            site,
            access: call.0.clone(),
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
        429 | 500 | 502 | 503 | 504 => ApplyError::Unavailable {
            site,
            attempts,
            source: Box::new(kube::Error::Api(status)),
        },
        _ => ApplyError::Rejected {
            site,
            detail: server_detail(&status),
            source: status,
        },
    }
}

/// An API error as kube reports it, for tests.
#[cfg(test)]
pub(super) fn api_error(code: u16, reason: &str, retry_after_seconds: u32) -> kube::Error {
    use kube::core::response::StatusDetails;
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

#[cfg(test)]
mod tests {
    use kube::core::response::{StatusCause, StatusDetails};

    use super::*;

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
        let call = Call("patch configmaps in group \"\" in namespace ns".into());
        let classify = |error| classify_failure(&site(), &call, Failure { error, attempts: 3 });
        let forbidden = classify(api_error(403, "Forbidden", 0));
        assert_eq!(forbidden.metric_label(), "forbidden");
        assert_eq!(
            forbidden.to_string(),
            "plugin labels, intent 2 (merge-patch) on v1 ConfigMap ns/x: forbidden: missing RBAC to patch configmaps in group \"\" in namespace ns"
        );
        assert!(classify(api_error(409, "Conflict", 0)).is_conflict());
        // How the API server answers a JSON patch that does not apply (a
        // failed test included): nothing to go on but the code.
        let unexplained = Status::failure(
            "the server rejected our request due to an error in our request",
            "Invalid",
        )
        .with_code(422);
        assert!(is_unexplained_invalid(&unexplained));
        let mut invalid = Status::failure("ConfigMap \"x\" is invalid", "Invalid").with_code(422);
        invalid.details = Some(StatusDetails {
            name: "x".into(),
            group: String::new(),
            kind: "ConfigMap".into(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"-\"".into(),
                field: "metadata.labels".into(),
            }],
            retry_after_seconds: 0,
        });
        assert!(!is_unexplained_invalid(&invalid));
        let rejected = classify(kube::Error::Api(Box::new(invalid)));
        assert_eq!(rejected.metric_label(), "rejected");
        assert!(
            rejected
                .to_string()
                .ends_with("rejected by the API server; metadata.labels: Invalid value: \"-\""),
            "{rejected}"
        );
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
}
