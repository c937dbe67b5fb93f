//! `kubewasm release-finalizers`: removes a finalizer from every object
//! that carries it, for a plugin that is gone (removed from the plugin
//! directory, or broken) whose objects would otherwise stay terminating.
//!
//! Each removal is the same JSON patch the host sends after a finished
//! `finalizing` reconcile ([`crate::applier::remove_patch`]): it tests the
//! object's `uid` and the exact entry, so a concurrent change of the
//! finalizers is read again and retried, never overwritten. Objects are
//! listed page by page; with `--dry-run` nothing is written and the command
//! prints what it would release.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::Value;

use crate::applier::{has_finalizer, remove_patch};
use crate::cluster::client::{ClientOptions, Connection, FenceLayer};
use crate::cluster::discovery::{self, KindInfo, KindRegistry};

/// The default finalizer of a plugin: `kubewasm.dev/<plugin>`.
pub fn plugin_finalizer(plugin: &str) -> String {
    format!("kubewasm.dev/{plugin}")
}

/// What to release.
#[derive(Clone, Debug)]
pub struct ReleaseOptions {
    /// The finalizer, e.g. `kubewasm.dev/website`.
    pub finalizer: String,
    /// Kinds as `Kind.group` (`Kind` for the core group); empty means every
    /// kind the cluster serves that can be listed and patched.
    pub kinds: Vec<String>,
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    pub dry_run: bool,
    pub client: ClientOptions,
}

/// Why the command could not run (objects it could not release are in the
/// [`ReleaseReport`] instead).
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("failed to configure the Kubernetes client (kubeconfig or in-cluster)")]
    Client(#[source] kube::Error),
    #[error("failed to discover the API server's kinds")]
    Discovery(#[source] discovery::DiscoveryError),
    #[error(
        "--kind {0}: the cluster serves no such kind (write Kind.group, e.g. Website.demo.kubewasm.dev, or Kind for the core group)"
    )]
    UnknownKind(String),
    #[error("--kind {kind}: the cluster does not allow {verb} on {plural}")]
    Unsupported {
        kind: String,
        plural: String,
        verb: &'static str,
    },
}

impl ReleaseError {
    /// 2 for input at fault (a kind the cluster does not serve), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReleaseError::UnknownKind(_) | ReleaseError::Unsupported { .. } => 2,
            ReleaseError::Client(_) | ReleaseError::Discovery(_) => 1,
        }
    }
}

/// What the command did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct ReleaseReport {
    pub finalizer: String,
    pub dry_run: bool,
    /// One line per object released (or to release), in order.
    pub lines: Vec<String>,
    /// Objects released, by kind (`Kind.group`).
    pub released: BTreeMap<String, usize>,
    /// Objects that could not be released, with why.
    pub failed: Vec<String>,
    /// Kinds whose objects could not be listed, with why.
    pub unlisted: Vec<String>,
}

impl ReleaseReport {
    /// Whether everything that carried the finalizer was released.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.unlisted.is_empty()
    }

    /// The lines and a summary, for the terminal.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for line in self.lines.iter().chain(&self.failed).chain(&self.unlisted) {
            let _ = writeln!(text, "{line}");
        }
        let total: usize = self.released.values().sum();
        let by_kind: Vec<String> = self
            .released
            .iter()
            .map(|(kind, n)| format!("{kind}: {n}"))
            .collect();
        let verb = if self.dry_run {
            "would release"
        } else {
            "released"
        };
        let _ = write!(
            text,
            "{verb} finalizer {} from {total} object{}",
            self.finalizer,
            if total == 1 { "" } else { "s" }
        );
        if !by_kind.is_empty() {
            let _ = write!(text, " ({})", by_kind.join(", "));
        }
        let _ = writeln!(
            text,
            "; {} failed, {} kind{} not listed",
            self.failed.len(),
            self.unlisted.len(),
            if self.unlisted.len() == 1 { "" } else { "s" }
        );
        if self.dry_run {
            let _ = writeln!(text, "dry run: nothing was changed");
        }
        text
    }
}

/// `Kind.group` for a kind the cluster serves (`Kind` for the core group).
fn kind_name(info: &KindInfo) -> String {
    match info.resource.group.as_str() {
        "" => info.resource.kind.clone(),
        group => format!("{}.{group}", info.resource.kind),
    }
}

/// The kind `name` names: `Kind.group` (`Kind` for the core group), the
/// kind or its plural, case-insensitive.
pub fn named_kind<'a>(registry: &'a KindRegistry, name: &str) -> Option<&'a KindInfo> {
    let (kind, group) = name.split_once('.').unwrap_or((name, ""));
    registry.iter().find(|k| {
        k.resource.group == group
            && (k.resource.kind.eq_ignore_ascii_case(kind)
                || k.resource.plural.eq_ignore_ascii_case(kind))
    })
}

/// The kinds named by `--kind` (kind or plural, case-insensitive, then
/// `.group`), or every kind that can be listed and patched.
pub fn select_kinds(
    registry: &KindRegistry,
    names: &[String],
) -> Result<Vec<KindInfo>, ReleaseError> {
    if names.is_empty() {
        return Ok(registry
            .iter()
            .filter(|k| k.supports("list") && k.supports("patch"))
            .cloned()
            .collect());
    }
    let mut kinds = Vec::with_capacity(names.len());
    for name in names {
        let info =
            named_kind(registry, name).ok_or_else(|| ReleaseError::UnknownKind(name.clone()))?;
        for verb in ["list", "patch"] {
            if !info.supports(verb) {
                return Err(ReleaseError::Unsupported {
                    kind: name.clone(),
                    plural: info.resource.plural.clone(),
                    verb,
                });
            }
        }
        if !kinds.contains(info) {
            kinds.push(info.clone());
        }
    }
    Ok(kinds)
}

/// Runs the command.
pub async fn release(options: &ReleaseOptions) -> Result<ReleaseReport, ReleaseError> {
    let client = Connection::infer(options.client)
        .await
        .and_then(|c| c.client(FenceLayer::open()))
        .map_err(ReleaseError::Client)?;
    let discovered = discovery::discover(&client)
        .await
        .map_err(ReleaseError::Discovery)?;
    let registry = KindRegistry::from(discovered);
    let kinds = select_kinds(&registry, &options.kinds)?;
    let mut report = ReleaseReport {
        finalizer: options.finalizer.clone(),
        dry_run: options.dry_run,
        ..ReleaseReport::default()
    };
    for kind in &kinds {
        let api: Api<DynamicObject> = match (&options.namespace, kind.resource.namespaced) {
            (Some(ns), true) => Api::namespaced_with(client.clone(), ns, &kind.api_resource()),
            (Some(_), false) => continue,
            (None, _) => Api::all_with(client.clone(), &kind.api_resource()),
        };
        release_kind(&api, kind, options, &mut report).await;
    }
    Ok(report)
}

/// Releases the finalizer from every object of one kind.
async fn release_kind(
    api: &Api<DynamicObject>,
    kind: &KindInfo,
    options: &ReleaseOptions,
    report: &mut ReleaseReport,
) {
    let name = kind_name(kind);
    let mut params = ListParams::default().limit(500);
    loop {
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(e) => {
                report.unlisted.push(format!(
                    "failed to list {name}: {}",
                    crate::ops::error_chain(&e)
                ));
                return;
            }
        };
        for object in &page.items {
            let object = serde_json::to_value(object).unwrap_or_default();
            if !has_finalizer(&object, &options.finalizer) {
                continue;
            }
            let at = describe(&name, &object);
            if options.dry_run {
                report.lines.push(format!("would release {at}"));
                *report.released.entry(name.clone()).or_default() += 1;
                continue;
            }
            match release_one(api, object, &options.finalizer).await {
                Ok(true) => {
                    report.lines.push(format!("released {at}"));
                    *report.released.entry(name.clone()).or_default() += 1;
                }
                Ok(false) => report.lines.push(format!("{at}: already gone or released")),
                Err(e) => report.failed.push(format!(
                    "failed to release {at}: {}",
                    crate::ops::error_chain(&e)
                )),
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return,
        }
    }
}

/// Removes the finalizer from one object; `false` if it is gone or no
/// longer carries it. A failed `test` (the finalizers changed) reads the
/// object again, a few times.
async fn release_one(
    api: &Api<DynamicObject>,
    mut object: Value,
    finalizer: &str,
) -> Result<bool, kube::Error> {
    const ATTEMPTS: usize = 5;
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for attempt in 1..=ATTEMPTS {
        let Some(patch) = remove_patch(&object, finalizer) else {
            return Ok(false);
        };
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
        let params = PatchParams {
            field_manager: Some("kubewasm-release-finalizers".into()),
            ..Default::default()
        };
        match api.patch(&name, &params, &Patch::<()>::Json(patch)).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(kube::Error::Api(status)) if status.code == 422 && attempt < ATTEMPTS => {
                // The finalizers changed since the object was read.
                match api.get_opt(&name).await? {
                    Some(current) => object = serde_json::to_value(current).unwrap_or_default(),
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// `Website.demo.kubewasm.dev web/blog`, names escaped.
fn describe(kind: &str, object: &Value) -> String {
    let metadata = &object["metadata"];
    let name = metadata["name"].as_str().unwrap_or_default().escape_debug();
    match metadata["namespace"].as_str() {
        Some(ns) => format!("{kind} {}/{name}", ns.escape_debug()),
        None => format!("{kind} {name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ResourceKind;

    fn info(group: &str, kind: &str, plural: &str, verbs: &[&str]) -> KindInfo {
        KindInfo {
            resource: ResourceKind {
                group: group.into(),
                version: "v1".into(),
                kind: kind.into(),
                plural: plural.into(),
                namespaced: true,
            },
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            has_status: false,
            versions: vec!["v1".into()],
        }
    }

    fn registry() -> KindRegistry {
        KindRegistry::new([
            info(
                "",
                "ConfigMap",
                "configmaps",
                &["get", "list", "patch", "watch"],
            ),
            info(
                "demo.kubewasm.dev",
                "Website",
                "websites",
                &["list", "patch", "watch"],
            ),
            info(
                "metrics.k8s.io",
                "PodMetrics",
                "pods",
                &["get", "list", "watch"],
            ),
        ])
    }

    #[test]
    fn kinds_are_named_like_kubectl_and_checked() {
        let names = |list: &[&str]| {
            let list: Vec<String> = list.iter().map(|s| s.to_string()).collect();
            select_kinds(&registry(), &list).map(|ks| ks.iter().map(kind_name).collect::<Vec<_>>())
        };
        assert_eq!(
            names(&[
                "Website.demo.kubewasm.dev",
                "configmaps",
                "websites.demo.kubewasm.dev"
            ])
            .unwrap(),
            ["Website.demo.kubewasm.dev", "ConfigMap"]
        );
        // Every kind that can be listed and patched.
        let mut all = names(&[]).unwrap();
        all.sort();
        assert_eq!(all, ["ConfigMap", "Website.demo.kubewasm.dev"]);
        let unknown = names(&["Website"]).unwrap_err();
        assert_eq!(unknown.exit_code(), 2);
        assert!(
            unknown
                .to_string()
                .starts_with("--kind Website: the cluster serves no such kind")
        );
        assert_eq!(
            names(&["PodMetrics.metrics.k8s.io"])
                .unwrap_err()
                .to_string(),
            "--kind PodMetrics.metrics.k8s.io: the cluster does not allow patch on pods"
        );
    }

    #[test]
    fn the_summary_counts_by_kind() {
        let mut report = ReleaseReport {
            finalizer: "kubewasm.dev/website".into(),
            ..Default::default()
        };
        report
            .lines
            .push("released Website.demo.kubewasm.dev web/a".into());
        report
            .released
            .insert("Website.demo.kubewasm.dev".into(), 2);
        report
            .failed
            .push("failed to release Website.demo.kubewasm.dev web/c: forbidden".into());
        assert!(!report.is_complete());
        assert_eq!(
            report.render(),
            "released Website.demo.kubewasm.dev web/a\n\
             failed to release Website.demo.kubewasm.dev web/c: forbidden\n\
             released finalizer kubewasm.dev/website from 2 objects (Website.demo.kubewasm.dev: 2); 1 failed, 0 kinds not listed\n"
        );
        report.dry_run = true;
        assert!(report.render().ends_with("dry run: nothing was changed\n"));
        assert_eq!(plugin_finalizer("website"), "kubewasm.dev/website");
    }
}
