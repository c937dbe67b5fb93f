//! What a namespaced `Plugin` may read, asked of the API server before it
//! is loaded. The host's informers are shared and see every namespace, so
//! its cache can hold objects the team could not read itself; a Plugin is
//! served only if its ServiceAccount may `list` and `watch` every kind the
//! plugin subscribes to, owns or watches, in the Plugin's namespace.
//!
//! Each question is a `SelfSubjectAccessReview` sent *as the account*
//! (every authenticated user may create one, through `system:basic-user`),
//! so the host needs no permission to review others' access, and a host
//! that may not impersonate the account learns it here (403 "cannot
//! impersonate"), before anything is served.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use crate::cluster::discovery::SharedRegistry;
use crate::contract::{PluginInfo, ResourceKind};
use crate::plugins::set::Failure;
use crate::resources::fetch::{Forbidden, forbidden};

/// Past this many kinds (a wildcard subscription), one review for every
/// resource of the namespace stands for them all.
const MAX_REVIEWS: usize = 32;

/// Why a Plugin may not be served, or the check could not be made.
#[derive(Debug)]
pub enum Denied {
    /// The account may not read what the plugin needs (or the host may not
    /// act as it); the failure names the kind and verb.
    Refused(Failure),
    /// The API server did not answer; try again soon.
    Unanswered(String),
}

/// The declared write kinds the cluster serves as cluster-scoped: a Plugin
/// may write none.
pub fn cluster_scoped_writes(registry: &SharedRegistry, info: &PluginInfo) -> Option<String> {
    let registry = registry.load();
    info.writes.iter().find_map(|kind| {
        let found = registry.get(&kind.group, &kind.kind)?;
        (!found.resource.namespaced).then(|| kind.to_string())
    })
}

/// Asks, as the account `client` acts as, whether it may list and watch
/// each of `kinds` in `namespace` (and get its own Namespace object, if it
/// reads Namespaces). Cluster-scoped kinds other than Namespace are not
/// asked about: a Plugin is never called for them.
pub async fn check_reads(
    client: &kube::Client,
    namespace: &str,
    kinds: &[ResourceKind],
) -> Result<(), Denied> {
    let mut questions: Vec<(String, String, &'static str, Option<String>)> = Vec::new();
    // In a stable order (the core group first), so a denial names the
    // same kind every time.
    let mut namespaced: Vec<&ResourceKind> = kinds.iter().filter(|k| k.namespaced).collect();
    namespaced.sort_by(|a, b| (&a.group, &a.plural).cmp(&(&b.group, &b.plural)));
    if namespaced.len() > MAX_REVIEWS {
        for verb in ["list", "watch"] {
            questions.push(("*".into(), "*".into(), verb, None));
        }
    } else {
        for kind in namespaced {
            for verb in ["list", "watch"] {
                questions.push((kind.group.clone(), kind.plural.clone(), verb, None));
            }
        }
    }
    if kinds
        .iter()
        .any(|k| k.group.is_empty() && k.kind == "Namespace")
    {
        let name = Some(namespace.to_string());
        questions.push((String::new(), "namespaces".into(), "get", name));
    }
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    for (group, resource, verb, name) in questions {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.clone()),
                    resource: Some(resource.clone()),
                    verb: Some(verb.into()),
                    namespace: (resource != "namespaces").then(|| namespace.to_string()),
                    name: name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let what = if group.is_empty() {
            resource.clone()
        } else {
            format!("{resource}.{group}")
        };
        let answer = match api.create(&PostParams::default(), &review).await {
            Ok(answer) => answer,
            Err(error) => return Err(unanswered(&error)),
        };
        let allowed = answer.status.as_ref().is_some_and(|s| s.allowed);
        if !allowed {
            let why = answer
                .status
                .and_then(|s| s.reason)
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            return Err(Denied::Refused(Failure {
                kind: "read_not_permitted",
                message: format!(
                    "the ServiceAccount may not {verb} {what} in namespace {namespace}{why}; the plugin reads them"
                ),
            }));
        }
    }
    Ok(())
}

fn unanswered(error: &kube::Error) -> Denied {
    let message = crate::ops::error_chain(error);
    match forbidden(error) {
        Some(Forbidden::Impersonation) => Denied::Refused(Failure {
            kind: "impersonation_denied",
            message: format!(
                "the host may not act as the ServiceAccount: {message}; bind ClusterRole kubewasm-impersonate in this namespace"
            ),
        }),
        _ => Denied::Unanswered(format!("access review failed: {message}")),
    }
}
