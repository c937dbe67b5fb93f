//! Owned kinds, mapped watches and finalizers: each name a plugin supplies
//! against the rules Kubernetes gives it, and the relations between them (a
//! watch's target and a finalizer's kinds must be subscribed, a finalizer's
//! kinds written).

use kubewasm::contract::selector::LabelSelector;
use kubewasm::contract::{
    Finalizer, GroupKind, KindRef, MapRule, MappedWatch, ParsedRule, PluginInfo, Subscription,
};

use super::parsers::valid_selector;
use super::{Gen, Verdict};
use crate::{SHORT, reference_label, reference_subdomain};

const GROUPS: &[&str] = &[
    "",
    "",
    "apps",
    "demo.kubewasm.dev",
    "*",
    "Apps",
    "a..b",
    "-x.io",
    "x.",
    "a_b.io",
    "a/b",
];
const KINDS: &[&str] = &[
    "ConfigMap",
    "ConfigMap",
    "Website",
    "Secret",
    "*",
    "",
    "Config-Map",
    "Config Map",
    "Ü",
    "a/b",
];

fn group(g: &mut Gen) -> String {
    match g.below(8) {
        0 => g.name(),
        1 => format!("{}.io", "a".repeat(250 + g.below(3))),
        _ => g.pick(GROUPS).to_string(),
    }
}

fn kind(g: &mut Gen) -> String {
    match g.below(8) {
        0 => g.random_text(8),
        1 => "K".repeat(62 + g.below(3)),
        _ => g.pick(KINDS).to_string(),
    }
}

fn kind_ref(g: &mut Gen) -> KindRef {
    KindRef {
        group: group(g),
        kind: kind(g),
        version: match g.below(4) {
            0 => None,
            1 => Some(g.name()),
            _ => Some(
                g.pick(&["v1", "v1beta1", "", "V1", "*", "v1/", "v1 "])
                    .to_string(),
            ),
        },
    }
}

fn group_kind(g: &mut Gen) -> GroupKind {
    GroupKind {
        group: group(g),
        kind: kind(g),
    }
}

fn map_rule(g: &mut Gen) -> MapRule {
    match g.below(3) {
        0 => MapRule::FieldRef(match g.below(4) {
            0 => g.random_text(12),
            1 => vec!["spec"; 52 + g.below(2)].join("."),
            _ => g
                .pick(&[
                    "spec.configMapRef.name",
                    "spec",
                    "",
                    ".",
                    "a..b",
                    "spec.",
                    ".spec",
                    "a.b c.d",
                ])
                .to_string(),
        }),
        1 => MapRule::Label(match g.below(3) {
            0 => g.name(),
            1 => format!("{}/{}", g.name(), g.name()),
            _ => g
                .pick(&[
                    "app",
                    "app.kubernetes.io/instance",
                    "/app",
                    "app/",
                    "a/b/c",
                    "-a",
                    "a_b",
                    "Example.com/x",
                    "a.b/C_d.E",
                ])
                .to_string(),
        }),
        _ => MapRule::Selector(match g.below(3) {
            0 => g.random_text(12),
            _ => valid_selector(g),
        }),
    }
}

fn finalizer(g: &mut Gen) -> Finalizer {
    Finalizer {
        name: match g.below(3) {
            0 => g.name(),
            1 => format!("{}/{}", g.name(), g.name()),
            _ => g
                .pick(&[
                    "kubewasm.dev/website",
                    "website",
                    "kubewasm.dev/",
                    "/x",
                    "a.b/c_d.e",
                    "KUBEWASM.dev/x",
                    "a.b/-x",
                ])
                .to_string(),
        },
        kinds: (0..g.below(3)).map(|_| group_kind(g)).collect(),
    }
}

/// The reference rules: an exact API group and kind.
fn model_group_kind(group: &str, kind: &str) -> bool {
    let group_ok = group.is_empty() || reference_subdomain(group);
    let kind_ok =
        !kind.is_empty() && kind.len() <= 63 && kind.bytes().all(|b| b.is_ascii_alphanumeric());
    group_ok && kind_ok
}

fn model_kind_ref(kind: &KindRef) -> bool {
    model_group_kind(&kind.group, &kind.kind) && kind.version.as_deref().is_none_or(reference_label)
}

/// `[prefix/]name` as Kubernetes validates label keys and finalizers.
fn model_qualified(value: &str, prefix_required: bool) -> bool {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = match prefix {
        None => !prefix_required,
        Some(prefix) => reference_subdomain(prefix),
    };
    name_ok && prefix_ok
}

fn pattern_covers(pattern: &str, value: &str) -> bool {
    pattern == "*" || pattern == value
}

/// Whether the reference rules accept `info`'s owned kinds, watches and
/// finalizer (its subscriptions and write scope are kept valid).
fn model_relations(info: &PluginInfo) -> bool {
    let reconciles = |kind: &GroupKind| {
        info.subscriptions
            .iter()
            .any(|s| pattern_covers(&s.group, &kind.group) && pattern_covers(&s.kind, &kind.kind))
    };
    let writes = |kind: &GroupKind| {
        info.writes
            .iter()
            .any(|w| pattern_covers(&w.group, &kind.group) && pattern_covers(&w.kind, &kind.kind))
    };
    let owns_ok = info.owns.iter().all(model_kind_ref);
    let watches_ok = info.watches.iter().all(|w| {
        let rule_ok = match &w.rule {
            MapRule::FieldRef(path) => path.len() <= 256 && path.split('.').all(|s| !s.is_empty()),
            MapRule::Label(key) => model_qualified(key, false),
            MapRule::Selector(selector) => LabelSelector::parse(selector).is_ok(),
        };
        model_kind_ref(&w.source)
            && model_group_kind(&w.target.group, &w.target.kind)
            && reconciles(&w.target)
            && rule_ok
    });
    let finalizer_ok = info.finalizer.as_ref().is_none_or(|f| {
        model_qualified(&f.name, true)
            && !f.kinds.is_empty()
            && f.kinds
                .iter()
                .all(|k| model_group_kind(&k.group, &k.kind) && reconciles(k) && writes(k))
    });
    owns_ok && watches_ok && finalizer_ok
}

#[test]
fn fuzz_plugin_relations() {
    super::run(
        "plugin_relations",
        super::cases(SHORT * 2),
        |g| {
            // Valid subscriptions and writes, of kinds the relations name
            // often enough to be accepted.
            let pattern = |g: &mut Gen, items: &[&str]| match g.below(4) {
                0 => "*".to_string(),
                _ => g.pick(items).to_string(),
            };
            PluginInfo {
                name: "relations".into(),
                version: "1".into(),
                subscriptions: (0..g.below(3))
                    .map(|_| Subscription {
                        group: pattern(g, &["", "apps", "demo.kubewasm.dev"]),
                        version: pattern(g, &["v1"]),
                        kind: pattern(g, &["ConfigMap", "Website", "Secret"]),
                        namespaces: vec![],
                        label_selector: None,
                    })
                    .collect(),
                writes: (0..g.below(3))
                    .map(|_| GroupKind {
                        group: pattern(g, &["", "apps", "demo.kubewasm.dev"]),
                        kind: pattern(g, &["ConfigMap", "Website", "Secret"]),
                    })
                    .collect(),
                owns: (0..g.below(3)).map(|_| kind_ref(g)).collect(),
                watches: (0..g.below(3))
                    .map(|_| MappedWatch {
                        source: kind_ref(g),
                        target: group_kind(g),
                        rule: map_rule(g),
                    })
                    .collect(),
                finalizer: g.bool().then(|| finalizer(g)),
            }
        },
        |info| {
            let expected = model_relations(info);
            match info.validated() {
                Ok(parsed) if expected => {
                    // Every watch is parsed as declared, and found by its
                    // source kind.
                    for w in &info.watches {
                        let source = w.source.group_kind();
                        let found = parsed
                            .watches_of(&source)
                            .find(|p| p.watch == *w)
                            .ok_or("an accepted watch is not found by its source kind")?;
                        let same = match (&found.rule, &w.rule) {
                            (ParsedRule::FieldRef(segments), MapRule::FieldRef(path)) => {
                                segments.join(".") == *path
                            }
                            (ParsedRule::Label(parsed), MapRule::Label(key)) => parsed == key,
                            (ParsedRule::Selector(_), MapRule::Selector(_)) => true,
                            _ => false,
                        };
                        if !same {
                            return Err(format!("watch parsed as {:?}", found.rule));
                        }
                    }
                    Ok(Verdict::Accepted)
                }
                Ok(_) => Err("an invalid description was accepted".into()),
                Err(e) if expected => Err(format!("a valid description was refused: {e}")),
                Err(_) => Ok(Verdict::Refused),
            }
        },
    );
}
