//! Discovery: which kinds the API server serves, and keeping that answer
//! current while the host runs.
//!
//! [`discover`] asks the server for every group, version and resource and
//! keeps, per group and resource, one version (the group's preferred one, or
//! else the newest that serves it) of the resources that support both `list`
//! and `watch`. It uses aggregated discovery (two requests) and falls back to
//! one request per group version on servers without it. A group whose
//! discovery fails, typically an aggregated API whose backing Service is
//! down, is logged and reported in [`Discovered::failures`]; the other groups
//! are unaffected.
//!
//! The answer is a [`KindRegistry`], shared through a [`SharedRegistry`] that
//! is swapped whole when discovery re-runs. [`kind_changes`] watches
//! CustomResourceDefinitions and APIServices, and [`run_rediscovery`] turns
//! those changes into fresh registries and [`RegistryDiff`]s for the
//! informers.
//!
//! ```no_run
//! use futures::StreamExt;
//! use kubewasm::cluster::discovery::{self, KindRegistry, SharedRegistry};
//!
//! # async fn run(client: kube::Client) -> Result<(), discovery::DiscoveryError> {
//! let registry = SharedRegistry::new(KindRegistry::from(discovery::discover(&client).await?));
//! let changes = discovery::kind_changes(client.clone());
//! let mut diffs = std::pin::pin!(discovery::run_rediscovery(
//!     client,
//!     registry.clone(),
//!     changes,
//!     Default::default(),
//! ));
//! while let Some(diff) = diffs.next().await {
//!     println!("{} kinds added, {} removed", diff.added.len(), diff.removed.len());
//! }
//! # Ok(())
//! # }
//! ```

mod rediscovery;
mod registry;
mod watch;

pub use rediscovery::{RediscoveryOptions, run_rediscovery};
pub use registry::{KindInfo, KindRegistry, RegistryDiff, SharedRegistry, render_table};
pub use watch::{KindChange, kind_changes};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryFutureExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList, APIVersions};
use kube::core::Version;
use kube::core::discovery::v2::APIGroupDiscovery;
use tracing::{debug, warn};

use crate::contract::ResourceKind;

/// How many group versions the per-group fallback queries at once: a
/// cluster serves a few dozen, so discovery takes a few round trips without
/// opening a burst of requests on an API server that lacks aggregated
/// discovery (older or strained servers are why the fallback runs).
const PARALLEL_QUERIES: usize = 8;
/// How long the per-group fallback waits for one group version. kube's
/// client retries `503 Service Unavailable` (what an aggregated API whose
/// Service is gone answers) with backoff for minutes; discovery reports the
/// group as failing instead and lets re-discovery try again later.
const GROUP_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why discovery, or watching for new kinds, failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("failed to list the API groups the server serves ({path})")]
    ListGroups {
        path: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("failed to list the resources of {group_version}")]
    ListResources {
        group_version: String,
        #[source]
        source: kube::Error,
    },
    #[error("no answer listing the resources of {group_version} within {after:?}")]
    Timeout {
        group_version: String,
        after: Duration,
    },
    #[error("failed to watch {resource} for kinds appearing and disappearing")]
    Watch {
        resource: &'static str,
        #[source]
        source: kube::runtime::watcher::Error,
    },
}

impl DiscoveryError {
    /// A bounded label for counting failures.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::ListGroups { .. } => "list_groups",
            Self::ListResources { .. } => "list_resources",
            Self::Timeout { .. } => "timeout",
            Self::Watch { .. } => "watch",
        }
    }

    /// The HTTP status the API server answered with, if it answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::ListGroups { source, .. } | Self::ListResources { source, .. } => {
                api_status_code(source)
            }
            Self::Watch { source, .. } => match source {
                kube::runtime::watcher::Error::InitialListFailed(e)
                | kube::runtime::watcher::Error::WatchStartFailed(e)
                | kube::runtime::watcher::Error::WatchFailed(e) => api_status_code(e),
                kube::runtime::watcher::Error::WatchError(status) => Some(status.code),
                kube::runtime::watcher::Error::NoResourceVersion => None,
            },
            Self::Timeout { .. } => None,
        }
    }
}

fn api_status_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// How [`discover`] talked to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryMethod {
    /// Aggregated discovery (`apidiscovery.k8s.io/v2`): two requests.
    Aggregated,
    /// One request per group version, for servers without aggregated discovery.
    PerGroup,
}

/// What one discovery run found.
#[derive(Clone, Debug)]
pub struct Discovered {
    /// Kinds that support `list` and `watch`, one version per group/resource,
    /// sorted by group and plural.
    pub kinds: Vec<KindInfo>,
    /// Group versions whose discovery failed; their kinds are not in `kinds`.
    pub failures: Vec<GroupFailure>,
    pub method: DiscoveryMethod,
}

/// A group version whose resources could not be discovered.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GroupFailure {
    pub group: String,
    pub version: String,
    pub reason: String,
}

/// Discovers every kind the server serves that supports `list` and `watch`.
///
/// Uses aggregated discovery and falls back to per-group queries if the
/// server does not offer it. Fails only if the server cannot list its groups
/// at all; a failing group is logged with `warn!` and reported in
/// [`Discovered::failures`].
pub async fn discover(client: &kube::Client) -> Result<Discovered, DiscoveryError> {
    match discover_aggregated(client).await {
        Ok(Some(discovered)) => Ok(discovered),
        Ok(None) => {
            debug!("the server does not offer aggregated discovery; querying each group");
            discover_per_group(client).await
        }
        Err(error) => {
            debug!(%error, "aggregated discovery failed; querying each group");
            discover_per_group(client).await
        }
    }
}

/// Discovery through `apidiscovery.k8s.io/v2` (`/api` and `/apis`).
///
/// `Ok(None)` if the server does not offer it: such a server answers with a
/// plain `APIVersions`/`APIGroupList`, which reads as an empty list, and the
/// core group is never empty.
pub async fn discover_aggregated(
    client: &kube::Client,
) -> Result<Option<Discovered>, DiscoveryError> {
    let core = client
        .list_core_api_versions_aggregated()
        .map_err(|source| DiscoveryError::ListGroups {
            path: "/api",
            source,
        })
        .await?;
    let apis = client
        .list_api_groups_aggregated()
        .map_err(|source| DiscoveryError::ListGroups {
            path: "/apis",
            source,
        })
        .await?;
    if core.items.is_empty() || apis.items.is_empty() {
        return Ok(None);
    }
    let mut failures = Vec::new();
    let groups = core
        .items
        .into_iter()
        .chain(apis.items)
        .map(|group| served_group_from_aggregated(group, &mut failures))
        .collect();
    Ok(Some(finish(groups, failures, DiscoveryMethod::Aggregated)))
}

/// Discovery with one request per group version (`/api/v1`, `/apis/G/V`),
/// a few at a time, each given up on after 10 s.
pub async fn discover_per_group(client: &kube::Client) -> Result<Discovered, DiscoveryError> {
    let core = client
        .list_core_api_versions()
        .map_err(|source| DiscoveryError::ListGroups {
            path: "/api",
            source,
        })
        .await?;
    let apis = client
        .list_api_groups()
        .map_err(|source| DiscoveryError::ListGroups {
            path: "/apis",
            source,
        })
        .await?;
    let Plan {
        mut groups,
        queries,
    } = plan(core, apis);
    let answers = futures::stream::iter(queries)
        .map(|query| {
            let group = groups[query.group].name.clone();
            async move {
                let answer = list_resources(client, &group, &query.version).await;
                (query, answer)
            }
        })
        .buffer_unordered(PARALLEL_QUERIES)
        .collect::<Vec<_>>()
        .await;
    let mut failures = Vec::new();
    for (query, answer) in answers {
        match answer {
            Ok(list) => groups[query.group]
                .versions
                .push(served_version_from_list(query.version, &list)),
            Err(error) => failures.push(GroupFailure {
                group: groups[query.group].name.clone(),
                version: query.version,
                reason: failure_reason(&error),
            }),
        }
    }
    Ok(finish(groups, failures, DiscoveryMethod::PerGroup))
}

/// One group version to ask for its resources: the index of its group in
/// the list being built, and the version.
struct GroupVersionQuery {
    group: usize,
    version: String,
}

/// What per-group discovery asks: the served groups (versions still empty,
/// the core group first) and the group versions to ask about.
struct Plan {
    groups: Vec<ServedGroup>,
    queries: Vec<GroupVersionQuery>,
}

fn plan(core: APIVersions, apis: APIGroupList) -> Plan {
    let mut groups = vec![ServedGroup {
        name: String::new(),
        preferred: core.versions.first().cloned(),
        versions: Vec::new(),
    }];
    let mut queries: Vec<GroupVersionQuery> = core
        .versions
        .into_iter()
        .map(|version| GroupVersionQuery { group: 0, version })
        .collect();
    for group in apis.groups {
        let index = groups.len();
        queries.extend(group.versions.iter().map(|v| GroupVersionQuery {
            group: index,
            version: v.version.clone(),
        }));
        groups.push(ServedGroup {
            preferred: group.preferred_version.map(|v| v.version),
            name: group.name,
            versions: Vec::new(),
        });
    }
    Plan { groups, queries }
}

/// The resources of one group version, given up on after
/// [`GROUP_QUERY_TIMEOUT`].
async fn list_resources(
    client: &kube::Client,
    group: &str,
    version: &str,
) -> Result<APIResourceList, DiscoveryError> {
    let group_version = crate::contract::api_version(group, version);
    let query = async {
        if group.is_empty() {
            client.list_core_api_resources(version).await
        } else {
            client.list_api_group_resources(&group_version).await
        }
    };
    match tokio::time::timeout(GROUP_QUERY_TIMEOUT, query).await {
        Ok(Ok(list)) => Ok(list),
        Ok(Err(source)) => Err(DiscoveryError::ListResources {
            group_version,
            source,
        }),
        Err(_) => Err(DiscoveryError::Timeout {
            group_version,
            after: GROUP_QUERY_TIMEOUT,
        }),
    }
}

fn finish(
    groups: Vec<ServedGroup>,
    mut failures: Vec<GroupFailure>,
    method: DiscoveryMethod,
) -> Discovered {
    failures.sort_by(|a, b| (&a.group, &a.version).cmp(&(&b.group, &b.version)));
    for failure in &failures {
        warn!(
            group = %failure.group,
            version = %failure.version,
            reason = %failure.reason,
            "discovery of an API group version failed; its kinds are skipped"
        );
    }
    let kinds = select_kinds(groups);
    debug!(
        kinds = kinds.len(),
        failures = failures.len(),
        ?method,
        "discovery finished"
    );
    Discovered {
        kinds,
        failures,
        method,
    }
}

/// "503 ServiceUnavailable: the server is currently unable to handle the request"
fn failure_reason(error: &DiscoveryError) -> String {
    let source = match error {
        DiscoveryError::ListResources { source, .. }
        | DiscoveryError::ListGroups { source, .. } => source,
        DiscoveryError::Timeout { .. } | DiscoveryError::Watch { .. } => {
            return error.to_string();
        }
    };
    match source {
        // kube reports a body that is not a `Status` with this reason.
        kube::Error::Api(status) if status.reason == "Failed to parse error data" => {
            format!("{}: {}", status.code, status.message)
        }
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

/// The causes of `error` (not its own message), outermost first, joined
/// with ": ", for the `source` field beside `error` in log lines.
fn causes(error: &dyn std::error::Error) -> String {
    error
        .source()
        .map(crate::ops::error_chain)
        .unwrap_or_default()
}

/// A group as the server describes it, before a version is chosen.
#[derive(Clone, Debug, Default)]
struct ServedGroup {
    name: String,
    preferred: Option<String>,
    versions: Vec<ServedVersion>,
}

#[derive(Clone, Debug, Default)]
struct ServedVersion {
    version: String,
    resources: Vec<ServedResource>,
}

#[derive(Clone, Debug, Default)]
struct ServedResource {
    plural: String,
    kind: String,
    namespaced: bool,
    verbs: Vec<String>,
    has_status: bool,
}

impl ServedResource {
    fn listable(&self) -> bool {
        ["list", "watch"]
            .iter()
            .all(|verb| self.verbs.iter().any(|v| v == verb))
    }
}

fn served_version_from_list(version: String, list: &APIResourceList) -> ServedVersion {
    let with_status: BTreeSet<&str> = list
        .resources
        .iter()
        .filter_map(|r| r.name.strip_suffix("/status"))
        .collect();
    let resources = list
        .resources
        .iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| ServedResource {
            plural: r.name.clone(),
            kind: r.kind.clone(),
            namespaced: r.namespaced,
            verbs: r.verbs.clone(),
            has_status: with_status.contains(r.name.as_str()),
        })
        .collect();
    ServedVersion { version, resources }
}

fn served_group_from_aggregated(
    group: APIGroupDiscovery,
    failures: &mut Vec<GroupFailure>,
) -> ServedGroup {
    let name = group.metadata.and_then(|m| m.name).unwrap_or_default();
    // Versions come in order of preference; the first is the preferred one.
    let preferred = group.versions.first().and_then(|v| v.version.clone());
    let mut versions = Vec::new();
    for served in group.versions {
        let version = served.version.unwrap_or_default();
        if served.freshness.as_deref() == Some("Stale") {
            failures.push(GroupFailure {
                group: name.clone(),
                version,
                reason: "the aggregated discovery document is stale: the API server behind \
                         this group version did not answer"
                    .to_string(),
            });
            continue;
        }
        let resources = served
            .resources
            .into_iter()
            .filter_map(|r| {
                let plural = r.resource?;
                let kind = r.response_kind.and_then(|k| k.kind)?;
                Some(ServedResource {
                    namespaced: r.scope.as_deref() == Some("Namespaced"),
                    has_status: r
                        .subresources
                        .iter()
                        .any(|s| s.subresource.as_deref() == Some("status")),
                    verbs: r.verbs,
                    plural,
                    kind,
                })
            })
            .collect();
        versions.push(ServedVersion { version, resources });
    }
    ServedGroup {
        name,
        preferred,
        versions,
    }
}

/// Picks one version per group/resource among those supporting `list` and
/// `watch`: the group's preferred version if it serves the resource, else
/// the newest (GA over beta over alpha, higher numbers first).
fn select_kinds(groups: Vec<ServedGroup>) -> Vec<KindInfo> {
    let mut kinds = Vec::new();
    for group in groups {
        let mut by_plural: BTreeMap<String, Vec<(String, ServedResource)>> = BTreeMap::new();
        for served in group.versions {
            for resource in served
                .resources
                .into_iter()
                .filter(ServedResource::listable)
            {
                by_plural
                    .entry(resource.plural.clone())
                    .or_default()
                    .push((served.version.clone(), resource));
            }
        }
        for (_, mut candidates) in by_plural {
            candidates.sort_by_cached_key(|(version, _)| {
                (
                    std::cmp::Reverse(group.preferred.as_deref() == Some(version.as_str())),
                    std::cmp::Reverse(Version::parse(version).priority()),
                )
            });
            let versions = candidates.iter().map(|(v, _)| v.clone()).collect();
            let (version, mut resource) = candidates.swap_remove(0);
            resource.verbs.sort();
            kinds.push(KindInfo {
                resource: ResourceKind {
                    group: group.name.clone(),
                    version,
                    kind: resource.kind,
                    plural: resource.plural,
                    namespaced: resource.namespaced,
                },
                verbs: resource.verbs,
                has_status: resource.has_status,
                versions,
            });
        }
    }
    kinds.sort_by(|a, b| {
        (&a.resource.group, &a.resource.plural).cmp(&(&b.resource.group, &b.resource.plural))
    });
    kinds
}

#[cfg(test)]
mod tests;
