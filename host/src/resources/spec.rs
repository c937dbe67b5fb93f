//! What a plugin resource's spec means to the host: whether the plugin's
//! own declaration fits the operator's grants, what content fingerprint a
//! fetched module with its settings has, and how often to fetch again.

use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::contract::{GroupKind, PluginInfo};
use crate::plugins::set::Fingerprint;
use crate::resources::fetch::{FetchError, Fetched};
use crate::resources::object::Spec;
use crate::resources::source::{DEFAULT_POLL, RETRY};
use crate::resources::{Grants, KindGrant, ModuleSource};

/// What the loaded content is, with everything the operator set that the
/// plugin sees: settings, namespaces, grants and dry run.
pub fn fingerprint(fetched: &Fetched, spec: &Spec) -> Fingerprint {
    let mut hash = Sha256::new();
    hash.update(fetched.component_digest.as_bytes());
    hash.update([0]);
    hash.update(
        spec.settings
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    );
    hash.update([0]);
    hash.update(serde_json::to_vec(&spec.namespaces).unwrap_or_default());
    hash.update([0]);
    hash.update(serde_json::to_vec(&spec.grants).unwrap_or_default());
    hash.update([u8::from(spec.dry_run)]);
    if let Some(account) = &spec.account {
        hash.update(account.username());
    }
    hash.finalize().into()
}

/// A fetch failure stands for the content: reported once until it changes.
pub fn fetch_fingerprint(error: &FetchError) -> Fingerprint {
    Sha256::digest(format!("{}\0{}", error.reason, error.message)).into()
}

/// The spec's `pollInterval` for an OCI tag, else [`DEFAULT_POLL`].
pub fn poll_interval(module: &ModuleSource) -> Duration {
    module
        .oci
        .as_ref()
        .and_then(|o| o.poll_interval.as_deref())
        .and_then(|text| text.parse::<kube::core::Duration>().ok())
        .map(|d| Duration::from(d).max(RETRY))
        .unwrap_or(DEFAULT_POLL)
}

/// Whether what the plugin declares fits inside the operator's grants:
/// every kind it writes in `grants.write`, every kind it subscribes to,
/// owns or watches in `grants.read`. The error names the first kind that
/// does not.
pub fn fits(info: &PluginInfo, grants: &Grants) -> Result<(), String> {
    let covered = |list: &[KindGrant], kind: &GroupKind| {
        list.iter().any(|g| {
            (g.group == "*" || g.group == kind.group) && (g.kind == "*" || g.kind == kind.kind)
        })
    };
    let show = |kind: &GroupKind| {
        if kind.group.is_empty() {
            kind.kind.clone()
        } else {
            format!("{}/{}", kind.group, kind.kind)
        }
    };
    if let Some(kind) = info.writes.iter().find(|k| !covered(&grants.write, k)) {
        return Err(format!(
            "plugin {} writes {}, which spec.grants.write does not grant",
            info.name,
            show(kind)
        ));
    }
    let read = info
        .subscriptions
        .iter()
        .map(|s| GroupKind::new(&s.group, &s.kind))
        .chain(info.watched().map(|k| k.group_kind()));
    for kind in read {
        if !covered(&grants.read, &kind) {
            return Err(format!(
                "plugin {} reads {}, which spec.grants.read does not grant",
                info.name,
                show(&kind)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{KindRef, Subscription};

    fn kind(group: &str, kind: &str) -> KindGrant {
        KindGrant {
            group: group.into(),
            kind: kind.into(),
        }
    }

    fn info() -> PluginInfo {
        PluginInfo {
            name: "labeller".into(),
            version: "1.0.0".into(),
            subscriptions: vec![Subscription {
                group: "apps".into(),
                version: "v1".into(),
                kind: "Deployment".into(),
                namespaces: vec![],
                label_selector: None,
            }],
            writes: vec![GroupKind::new("", "ConfigMap")],
            owns: vec![KindRef {
                group: "".into(),
                kind: "Secret".into(),
                version: None,
            }],
            watches: vec![],
            finalizer: None,
        }
    }

    #[test]
    fn a_declaration_must_fit_the_grants_naming_what_is_missing() {
        let all = Grants {
            write: vec![kind("", "ConfigMap")],
            read: vec![kind("apps", "Deployment"), kind("", "Secret")],
        };
        assert_eq!(fits(&info(), &all), Ok(()));
        let wildcard = Grants {
            write: vec![kind("*", "*")],
            read: vec![kind("*", "*")],
        };
        assert_eq!(fits(&info(), &wildcard), Ok(()));

        let no_write = Grants {
            write: vec![kind("", "Secret")],
            ..all.clone()
        };
        assert_eq!(
            fits(&info(), &no_write).unwrap_err(),
            "plugin labeller writes ConfigMap, which spec.grants.write does not grant"
        );
        let no_owned = Grants {
            read: vec![kind("apps", "*")],
            ..all.clone()
        };
        assert_eq!(
            fits(&info(), &no_owned).unwrap_err(),
            "plugin labeller reads Secret, which spec.grants.read does not grant"
        );
        let other_group = Grants {
            read: vec![kind("", "Deployment"), kind("", "Secret")],
            ..all
        };
        assert!(
            fits(&info(), &other_group)
                .unwrap_err()
                .contains("apps/Deployment")
        );
    }

    #[test]
    fn a_declared_wildcard_needs_a_wildcard_grant() {
        let mut info = info();
        info.writes = vec![GroupKind::new("*", "*")];
        let exact = Grants {
            write: vec![kind("", "ConfigMap")],
            read: vec![kind("*", "*")],
        };
        assert!(fits(&info, &exact).unwrap_err().contains("writes */*"));
    }

    #[test]
    fn poll_intervals_default_and_have_a_floor() {
        let spec = |poll: Option<&str>| -> crate::resources::ClusterPluginSpec {
            serde_json::from_value(serde_json::json!({
                "module": {"oci": {"reference": "r.example/p:1", "pollInterval": poll}},
                "grants": {"write": [], "read": []},
            }))
            .unwrap()
        };
        assert_eq!(poll_interval(&spec(None).module), DEFAULT_POLL);
        assert_eq!(
            poll_interval(&spec(Some("1m")).module),
            Duration::from_secs(60)
        );
        assert_eq!(poll_interval(&spec(Some("1s")).module), RETRY);
    }
}
