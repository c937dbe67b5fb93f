//! A plugin resource's `spec.shadow`: fetched like `spec.module` (same
//! sources, digest checks and limits), loaded with the serving version's
//! grants, checked as it would be (`spec.grants`, a Plugin's access), and
//! run as the serving plugin's shadow through [`crate::shadow`]: the same
//! bounded runner, comparison and report as a `NAME.next.wasm`. A shadow
//! that does not fetch or load is reported and never touches the serving
//! version (a shadow already running keeps running).
//!
//! What it did is summed up in `status.shadow` and the `Shadow` condition
//! at each status write. With `promoteAfter`, once the shadow's report says
//! `promoted` the task patches the resource's spec (module and settings
//! := the shadow's, `shadow` removed) as [`PROMOTER`], guarded by the
//! generation it compared; the spec change then loads the new version as
//! any edit would.

use sha2::{Digest as _, Sha256};

use kube::CustomResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};

use super::follow::Inner;
use crate::plugins::LoadedPlugin;
use crate::plugins::loader;
use crate::plugins::set::{Failure, Fingerprint};
use crate::resources::access::Denied;
use crate::resources::fetch::Place;
use crate::resources::object::PluginObject;
use crate::resources::report::{self, truncate};
use crate::resources::spec::fingerprint;
use crate::resources::{
    ClusterPlugin, Plugin, ShadowCounts, ShadowDifference, ShadowSpec, ShadowStatus,
};
use crate::shadow::ShadowReport;
use crate::shadow::state::State;

/// The field manager of the host's promotions of a resource's shadow.
pub const PROMOTER: &str = "kubewasm.dev/shadow-promotion";
/// Differing reconciles kept in `status.shadow`.
pub const DIFFERENCES: usize = 5;
/// Field paths kept per differing reconcile.
pub const FIELDS: usize = 8;
/// Longest field path (with its intent and target) kept.
pub const MAX_FIELD_CHARS: usize = 256;

/// What one resource's task knows of its shadow between syncs.
#[derive(Default)]
pub(super) struct ShadowTrack {
    /// The plugin id it runs as and the content it was loaded from.
    installed: Option<(String, Fingerprint)>,
    /// The shadow's digest and version, as loaded.
    digest: String,
    version: String,
    /// The newest content that did not fetch or load: its fingerprint,
    /// digest and why.
    failed: Option<(Fingerprint, String, String)>,
    /// Set once the host patched the spec: reported until a new shadow.
    promoted: Option<String>,
    /// Why no shadow is loaded though the spec has one.
    waiting: Option<&'static str>,
}

impl Inner {
    /// Brings the resource's shadow in line with `spec.shadow`; after the
    /// serving version was synced.
    pub(super) async fn sync_shadow(
        &self,
        object: &PluginObject,
        track: &mut ShadowTrack,
        place: Option<&Place>,
    ) {
        let Some(shadows) = self.shadows.clone() else {
            return;
        };
        let spec = &object.spec;
        let serving = self.set.lock().serving(&object.origin).cloned();
        let (Some(shadow), Some(serving), Some(place), false) =
            (&spec.shadow, serving, place, spec.suspend)
        else {
            if let Some((id, _)) = track.installed.take() {
                shadows.remove(&id);
            }
            track.failed = None;
            track.waiting = None;
            shadows.set_failure(&failure_label(&object.origin), None);
            if spec.shadow.is_some() {
                track.promoted = None;
                track.waiting = Some("nothing serves: a shadow runs only beside a serving version");
            }
            return;
        };
        (track.promoted, track.waiting) = (None, None);
        let fetched = match self.fetcher.fetch(&shadow.module, place, None).await {
            Ok(fetched) => fetched,
            Err(error) => {
                let print = Sha256::digest(format!("{}\0{}", error.reason, error.message)).into();
                // The same failure at the next poll is not reported again.
                if track.failed.as_ref().map(|f| f.0) != Some(print) {
                    self.shadow_failed(object, track, print, String::new(), error.message)
                        .await;
                }
                return;
            }
        };
        let settings = shadow.settings.clone().or_else(|| spec.settings.clone());
        let mut as_loaded = spec.clone();
        as_loaded.settings = settings.clone();
        let print: Fingerprint = {
            let mut hash = Sha256::new();
            hash.update(fingerprint(&fetched, &as_loaded));
            hash.update(serving.id.as_bytes());
            hash.update(shadow.promote_after.unwrap_or(0).to_be_bytes());
            hash.finalize().into()
        };
        let current = |t: &Option<(Fingerprint, String, String)>| t.as_ref().map(|f| f.0);
        if track.installed.as_ref().map(|i| i.1) == Some(print)
            || current(&track.failed) == Some(print)
        {
            return;
        }
        let settings = settings
            .unwrap_or_else(|| serde_json::json!({}))
            .to_string();
        let label = format!("{} (shadow)", object.origin);
        let (runtime, component, grant) = (
            self.runtime.clone(),
            fetched.component.clone(),
            spec.grant(),
        );
        let permit = self.loads.acquire().await;
        let loaded = tokio::task::spawn_blocking(move || {
            loader::load_component(&runtime, &label, &component, settings, grant)
        })
        .await;
        drop(permit);
        let loaded = match loaded {
            Ok(Ok(loaded)) => {
                self.admit_shadow(object, place, loaded, &serving.name)
                    .await
            }
            Ok(Err(error)) => Err(crate::ops::error_chain(&error)),
            Err(_) => Err("loading the shadow was interrupted".into()),
        };
        let mut loaded = match loaded {
            Ok(loaded) => loaded,
            Err(message) => {
                self.shadow_failed(object, track, print, fetched.digest, message)
                    .await;
                return;
            }
        };
        loaded.id = serving.id.clone();
        loaded.dry_run = spec.dry_run;
        loaded.identity = spec.account.clone();
        if let Some((old, _)) = &track.installed
            && *old != serving.id
        {
            shadows.remove(old);
        }
        let version = loaded.plugin.info().version.clone();
        let promote_after = promote_after(shadow);
        shadows.install_for_resource(loaded, object.origin.to_string(), promote_after);
        track.installed = Some((serving.id.clone(), print));
        track.failed = None;
        shadows.set_failure(&failure_label(&object.origin), None);
        track.digest = fetched.digest.clone();
        track.version = version.clone();
        let note = format!(
            "shadow {} {version} ({}) runs beside {} {}; it writes nothing",
            serving.name, fetched.digest, serving.name, serving.version
        );
        self.reporting
            .event(object, false, "ShadowLoaded", note)
            .await;
    }

    /// Checks a loaded shadow as the serving version is checked: the same
    /// plugin (by name), inside `spec.grants`, and for a Plugin readable by
    /// its account.
    async fn admit_shadow(
        &self,
        object: &PluginObject,
        place: &Place,
        loaded: LoadedPlugin,
        serving: &str,
    ) -> Result<LoadedPlugin, String> {
        let name = &loaded.plugin.info().name;
        if name != serving {
            return Err(format!(
                "the shadow is plugin {name}, not {serving}: a shadow must be a version of the plugin it shadows"
            ));
        }
        match self.admit(object, place, &loaded).await {
            Ok(_) => Ok(loaded),
            Err(Denied::Refused(Failure { message, .. }) | Denied::Unanswered(message)) => {
                Err(message)
            }
        }
    }

    async fn shadow_failed(
        &self,
        object: &PluginObject,
        track: &mut ShadowTrack,
        print: Fingerprint,
        digest: String,
        message: String,
    ) {
        tracing::warn!(resource = %object.origin, error = %message, "shadow not loaded; the serving version is unaffected");
        let running = if track.installed.is_some() {
            "the previous shadow keeps running"
        } else {
            "no shadow runs"
        };
        let note = format!("{message} (the serving version is unaffected; {running})");
        self.reporting
            .event(object, true, "ShadowLoadFailed", note)
            .await;
        if let Some(shadows) = &self.shadows {
            shadows.set_failure(&failure_label(&object.origin), Some(message.clone()));
        }
        track.failed = Some((print, digest, message));
    }

    /// The status summary and `Shadow` condition (reason, message) of the
    /// resource's shadow; patches the spec if the shadow was promoted.
    pub(super) async fn shadow_status(
        &self,
        object: &PluginObject,
        track: &mut ShadowTrack,
    ) -> Option<(ShadowStatus, String)> {
        if let Some(message) = &track.promoted {
            let status = ShadowStatus {
                state: "Promoted".into(),
                digest: track.digest.clone(),
                version: track.version.clone(),
                ..ShadowStatus::default()
            };
            return Some((status, message.clone()));
        }
        let shadow = object
            .spec
            .shadow
            .as_ref()
            .filter(|_| !object.spec.suspend)?;
        let report = track
            .installed
            .as_ref()
            .and_then(|(id, _)| self.shadows.as_ref()?.report_of(id));
        let (mut status, mut message) = summary(report.as_ref(), track.failed.as_ref());
        if let (None, None, Some(waiting)) = (&report, &track.failed, track.waiting) {
            message = waiting.to_string();
        }
        if report.is_some() {
            // The fetched digest (an OCI manifest's, for one), as `serving`.
            status.digest = track.digest.clone();
        }
        status.promote_after = shadow.promote_after;
        if status.state == "Promoted" {
            match self.promote(object, shadow).await {
                Ok(()) => {
                    let message = format!(
                        "promoted after {} equal reconciles in a row: spec.module and spec.settings are now the shadow's",
                        status.streak
                    );
                    if let (Some((id, _)), Some(shadows)) = (track.installed.take(), &self.shadows)
                    {
                        shadows.remove(&id);
                    }
                    self.reporting
                        .event(object, false, "ShadowPromoted", message.clone())
                        .await;
                    track.promoted = Some(message.clone());
                    return Some((status, message));
                }
                Err(message) => {
                    status.state = "PromotionFailed".into();
                    return Some((status, message));
                }
            }
        }
        Some((status, message))
    }

    /// Sets the resource's module and settings to its shadow's and removes
    /// the shadow, as [`PROMOTER`], only if the spec is still the one the
    /// shadow was compared under.
    async fn promote(&self, object: &PluginObject, shadow: &ShadowSpec) -> Result<(), String> {
        let api: Api<DynamicObject> = match object.namespace() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &Plugin::api_resource()),
            None => Api::all_with(self.client.clone(), &ClusterPlugin::api_resource()),
        };
        let mut patch = vec![
            serde_json::json!({"op": "test", "path": "/metadata/generation", "value": object.generation}),
            serde_json::json!({"op": "replace", "path": "/spec/module", "value": shadow.module}),
            serde_json::json!({"op": "remove", "path": "/spec/shadow"}),
        ];
        if let Some(settings) = &shadow.settings {
            patch.push(
                serde_json::json!({"op": "add", "path": "/spec/settings", "value": settings}),
            );
        }
        let patch: json_patch::Patch =
            serde_json::from_value(serde_json::Value::Array(patch)).map_err(|e| e.to_string())?;
        let params = PatchParams {
            field_manager: Some(PROMOTER.into()),
            ..PatchParams::default()
        };
        match api
            .patch(object.name(), &params, &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => {
                tracing::info!(resource = %object.origin, "shadow promoted: the resource's spec now names the shadow's module");
                Ok(())
            }
            Err(error) if report::fenced(&error) => {
                tracing::debug!(resource = %object.origin, "shadow not promoted here: not the leader");
                Err("promotion is left to the leader".into())
            }
            Err(error) => {
                let message = format!(
                    "promotion by patching the spec failed (the host needs patch on the resource; or promote with kubectl patch): {}",
                    crate::ops::error_chain(&error)
                );
                tracing::warn!(resource = %object.origin, error = %message, "shadow not promoted");
                Err(truncate(message))
            }
        }
    }
}

/// How `GET /shadow` names a resource's shadow that does not load.
pub(super) fn failure_label(origin: &crate::plugins::set::Origin) -> String {
    format!("{origin} spec.shadow")
}

/// `promoteAfter` as the ledger counts it; the schema refuses `< 1`.
fn promote_after(shadow: &ShadowSpec) -> Option<u64> {
    shadow
        .promote_after
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
}

/// `status.shadow` and the `Shadow` condition's message from the shadow's
/// report and the newest failure to load one.
pub fn summary(
    report: Option<&ShadowReport>,
    failed: Option<&(Fingerprint, String, String)>,
) -> (ShadowStatus, String) {
    let Some(report) = report else {
        return match failed {
            Some((_, digest, message)) => (
                ShadowStatus {
                    digest: digest.clone(),
                    state: "LoadFailed".into(),
                    ..ShadowStatus::default()
                },
                message.clone(),
            ),
            None => (
                ShadowStatus {
                    state: "Loading".into(),
                    ..ShadowStatus::default()
                },
                "the shadow is being loaded".into(),
            ),
        };
    };
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let counts = &report.counts;
    let (state, mut message) = match &report.state {
        State::Running => (
            "Running",
            format!(
                "{} {} runs beside the serving version: {} equal, {} different, {} dropped",
                report.plugin, report.version, counts.equal, counts.different, counts.dropped
            ),
        ),
        State::Aborted(reason) => (
            "Aborted",
            format!("the shadow failed and was stopped: {reason}"),
        ),
        State::Promoted => ("Promoted", "promoted".to_string()),
        State::PromotionFailed(reason) => ("PromotionFailed", reason.clone()),
    };
    if let Some((_, digest, failure)) = failed {
        message = format!("{message}; a newer shadow ({digest}) did not load: {failure}");
    }
    let skip = report.recent_differences.len().saturating_sub(DIFFERENCES);
    let recent = report.recent_differences.iter().skip(skip);
    let status = ShadowStatus {
        digest: report.digest.clone(),
        version: report.version.clone(),
        state: state.into(),
        counts: ShadowCounts {
            equal: signed(counts.equal),
            different: signed(counts.different),
            failed: signed(counts.failed),
            dropped: signed(counts.dropped),
            skipped: signed(counts.skipped),
        },
        streak: signed(report.streak),
        promote_after: None,
        recent_differences: recent
            .map(|sample| ShadowDifference {
                object: report::truncate(sample.object.clone()),
                event: sample.event.clone(),
                at: sample.at.clone(),
                fields: fields(&sample.differences),
            })
            .collect(),
    };
    (status, message)
}

/// Where one comparison differs, as `intent target: path` lines (or
/// `intent target: only the serving version` / `only the shadow`).
fn fields(comparison: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let differences = comparison["differences"].as_array().into_iter().flatten();
    for d in differences {
        let head = format!(
            "{} {}",
            d["intent"].as_str().unwrap_or(""),
            d["target"].as_str().unwrap_or("")
        );
        match d["change"].as_str() {
            Some("missing") => out.push(format!("{head}: only the serving version")),
            Some("added") => out.push(format!("{head}: only the shadow")),
            _ => {
                let paths = d["fields"].as_array().into_iter().flatten();
                out.extend(paths.map(|f| format!("{head}: {}", f["path"].as_str().unwrap_or(""))));
            }
        }
    }
    if let Some(requeue) = comparison.get("requeue").filter(|r| !r.is_null()) {
        out.push(format!("requeue: {requeue}"));
    }
    out.truncate(FIELDS);
    out.into_iter()
        .map(|f| crate::shadow::state::truncated(&f, MAX_FIELD_CHARS))
        .collect()
}

#[cfg(test)]
mod tests;
