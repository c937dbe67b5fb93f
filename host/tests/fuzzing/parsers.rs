//! The operator's and the plugin's small documents: label selectors,
//! plugin descriptions, scope files and settings.

use std::collections::BTreeMap;

use kubewasm::contract::names;
use kubewasm::contract::selector::LabelSelector;
use kubewasm::contract::{GroupKind, PluginInfo, Subscription};
use kubewasm::plugins::grant::Grant;
use serde_json::{Map, Value, json};

use super::{Gen, Verdict};
use crate::{SHORT, reference_label, url_segment_safe};

const LABEL_KEYS: &[&str] = &[
    "app",
    "tier",
    "env",
    "a",
    "x_y",
    "k-1",
    "example.com/team",
    "b.c/d",
];
const LABEL_VALUES: &[&str] = &["", "web", "prod", "x", "A.b_c-1", "9"];

/// A requirement as Kubernetes documents it: the model the parser's
/// matching is compared against.
#[derive(Clone, Debug)]
enum Model {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl Model {
    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Model::Equals(k, v) => labels.get(k) == Some(v),
            Model::NotEquals(k, v) => labels.get(k) != Some(v),
            Model::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Model::NotIn(k, vs) => !labels.get(k).is_some_and(|l| vs.contains(l)),
            Model::Exists(k) => labels.contains_key(k),
            Model::NotExists(k) => !labels.contains_key(k),
        }
    }
}

fn spaces(g: &mut Gen) -> &'static str {
    g.pick(&["", "", " ", "  ", "\t"])
}

fn model(g: &mut Gen) -> (Model, String) {
    let key = g.pick(LABEL_KEYS).to_string();
    let value = |g: &mut Gen| g.pick(LABEL_VALUES).to_string();
    let (s1, s2) = (spaces(g), spaces(g));
    match g.below(6) {
        0 => {
            let v = value(g);
            let op = g.pick(&["=", "=="]);
            (
                Model::Equals(key.clone(), v.clone()),
                format!("{key}{s1}{op}{s2}{v}"),
            )
        }
        1 => {
            let v = value(g);
            (
                Model::NotEquals(key.clone(), v.clone()),
                format!("{key}{s1}!={s2}{v}"),
            )
        }
        2 | 3 => {
            let values: Vec<String> = (0..1 + g.below(3)).map(|_| value(g)).collect();
            let sep = format!("{},{}", spaces(g), spaces(g));
            let list = values.join(&sep);
            let (op, model) = if g.bool() {
                ("in", Model::In(key.clone(), values))
            } else {
                ("notin", Model::NotIn(key.clone(), values))
            };
            (model, format!("{key} {s1}{op}{s2}({list})"))
        }
        4 => (Model::Exists(key.clone()), key),
        _ => (Model::NotExists(key.clone()), format!("!{s2}{key}")),
    }
}

/// A label selector that parses (built from [`model`]).
pub(super) fn valid_selector(g: &mut Gen) -> String {
    model(g).1
}

fn labels(g: &mut Gen) -> BTreeMap<String, String> {
    (0..g.below(5))
        .map(|_| {
            (
                g.pick(LABEL_KEYS).to_string(),
                g.pick(LABEL_VALUES).to_string(),
            )
        })
        .collect()
}

/// A selector string: one built from the model (must parse and match as
/// the model says), or a damaged or random one (must not panic).
#[derive(Debug)]
struct SelectorCase {
    text: String,
    model: Option<Vec<Model>>,
    label_sets: Vec<BTreeMap<String, String>>,
}

const SELECTOR_TOKENS: &[&str] = &[
    "(", ")", ",", "!", "=", "==", "!=", " ", " in ", " notin ", "in", "(,)", "()", "é", "\u{0}",
    "\u{3000}", "a", "/", ".", "-",
];

#[test]
fn fuzz_label_selectors() {
    super::run(
        "label_selectors",
        super::cases(SHORT),
        |g| {
            let n = g.below(4);
            let (models, terms): (Vec<Model>, Vec<String>) = (0..n).map(|_| model(g)).unzip();
            let sep = format!("{},{}", spaces(g), spaces(g));
            let mut text = format!("{}{}{}", spaces(g), terms.join(&sep), spaces(g));
            let mut model = Some(models);
            match g.below(4) {
                0 => {
                    for _ in 0..1 + g.below(3) {
                        let at = g.char_boundary(&text);
                        let token = g.pick(SELECTOR_TOKENS);
                        text.insert_str(at, token);
                    }
                    model = None;
                }
                1 => {
                    text = g.random_text(30);
                    model = None;
                }
                _ => {}
            }
            let label_sets = (0..4).map(|_| labels(g)).collect();
            SelectorCase {
                text,
                model,
                label_sets,
            }
        },
        |case| {
            let parsed = LabelSelector::parse(&case.text);
            let selector = match (&parsed, &case.model) {
                (Ok(s), _) => s,
                (Err(e), Some(_)) => return Err(format!("a valid selector was refused: {e}")),
                (Err(e), None) => {
                    if !e.to_string().contains(&format!("{:?}", case.text)) {
                        return Err(format!("error does not name the selector: {e}"));
                    }
                    return Ok(Verdict::Refused);
                }
            };
            // Padding terms with whitespace does not change the meaning.
            let padded = LabelSelector::parse(&format!(" {} ", case.text.replace(',', " , ")));
            if padded.as_ref().ok() != Some(selector) {
                return Err(format!(
                    "padding commas with spaces changes the selector: {padded:?}"
                ));
            }
            for labels in &case.label_sets {
                let matched = selector.matches(labels);
                if let Some(model) = &case.model
                    && matched != model.iter().all(|m| m.holds(labels))
                {
                    return Err(format!(
                        "matches({labels:?}) = {matched}, the model disagrees"
                    ));
                }
                // Labels of an object as JSON; non-string values are not labels.
                let mut object_labels: Map<String, Value> =
                    labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                object_labels.insert("zz-number".into(), json!(1));
                let object = json!({"metadata": {"labels": object_labels}});
                if selector.matches_object(&object) != matched && !case.text.contains("zz-number") {
                    return Err("matches_object differs from matches on the same labels".into());
                }
            }
            Ok(Verdict::Accepted)
        },
    );
}

#[test]
fn fuzz_plugin_descriptions() {
    super::run(
        "plugin_descriptions",
        super::cases(SHORT * 2),
        |g| {
            let selector = |g: &mut Gen| match g.below(4) {
                0 => None,
                1 => Some(model(g).1),
                2 => Some(g.random_text(12)),
                _ => Some(format!("{},{}", model(g).1, g.name())),
            };
            let pattern = |g: &mut Gen| {
                g.pick(&["*", "", "v1", "apps", "ConfigMap", "a/b", " "])
                    .to_string()
            };
            PluginInfo {
                name: g.name(),
                version: g.pick(&["1.0.0", "", " ", "\t", "v2", "é"]).to_string(),
                subscriptions: (0..g.below(3))
                    .map(|_| Subscription {
                        group: pattern(g),
                        version: pattern(g),
                        kind: pattern(g),
                        namespaces: (0..g.below(3)).map(|_| g.name()).collect(),
                        label_selector: selector(g),
                    })
                    .collect(),
                writes: (0..g.below(3))
                    .map(|_| GroupKind {
                        group: pattern(g),
                        kind: pattern(g),
                    })
                    .collect(),
                ..PluginInfo::default()
            }
        },
        |info| {
            let expected = reference_label(&info.name)
                && !info.version.trim().is_empty()
                && info.subscriptions.iter().all(|s| {
                    !s.version.is_empty()
                        && !s.kind.is_empty()
                        && s.label_selector
                            .as_deref()
                            .is_none_or(|sel| LabelSelector::parse(sel).is_ok())
                })
                && info.writes.iter().all(|w| !w.kind.is_empty());
            match info.validate() {
                Ok(()) if expected => {
                    // The name reaches the field manager query parameter.
                    url_segment_safe(&info.field_manager()["kubewasm/".len()..])?;
                    Ok(Verdict::Accepted)
                }
                Ok(()) => Err("an invalid description was accepted".into()),
                Err(e) if expected => Err(format!("a valid description was refused: {e}")),
                Err(_) => Ok(Verdict::Refused),
            }
        },
    );
}

/// A scope file: the text and, when it was built from known parts, the
/// grant it must give.
#[derive(Debug)]
pub struct GrantCase {
    pub text: String,
    expected: Option<Result<Grant, ()>>,
    probe: String,
}

pub fn grant_case(g: &mut Gen) -> GrantCase {
    let mut doc = Map::new();
    let mut valid = true;
    let mut namespaces: Option<Vec<String>> = None;
    let mut cluster = Vec::new();
    if g.chance(3, 4) {
        let list: Vec<String> = (0..g.below(4)).map(|_| g.name()).collect();
        valid &= list.iter().all(|ns| reference_label(ns));
        doc.insert("namespaces".into(), json!(list));
        namespaces = Some(list);
    }
    if g.bool() {
        let kinds: Vec<(String, String)> = (0..g.below(3))
            .map(|_| {
                let group = g.pick(&["", "rbac.authorization.k8s.io", "*"]).to_string();
                let kind = g.pick(&["Namespace", "*", "", "ClusterRole"]).to_string();
                (group, kind)
            })
            .collect();
        valid &= kinds.iter().all(|(_, k)| !k.is_empty());
        doc.insert(
            "clusterScoped".into(),
            kinds
                .iter()
                .map(|(group, kind)| json!({"group": group, "kind": kind}))
                .collect(),
        );
        cluster = kinds;
    }
    let structured = Value::Object(doc);
    let probe = g.name();
    let expected = || {
        let base = match &namespaces {
            Some(list) => Grant::namespaces(list.iter().cloned()),
            None => Grant::unconfined(),
        };
        cluster.iter().fold(base, |grant, (group, kind)| {
            grant.with_cluster_scoped(group, kind)
        })
    };
    match g.below(4) {
        0 => GrantCase {
            text: g.json_text(&structured),
            expected: None,
            probe,
        },
        1 => {
            // Unknown fields, wrong types, random values.
            let mut value = structured;
            let field = g.pick(&["namespaces", "clusterScoped", "namespace", "extra"]);
            value[field] = g.value(3);
            GrantCase {
                text: value.to_string(),
                expected: None,
                probe,
            }
        }
        _ => GrantCase {
            text: structured.to_string(),
            expected: Some(if valid { Ok(expected()) } else { Err(()) }),
            probe,
        },
    }
}

#[test]
fn fuzz_scope_files() {
    super::run("scope_files", super::cases(SHORT), grant_case, |case| {
        let grant = match (Grant::parse(&case.text), &case.expected) {
            (Err(_), None | Some(Err(()))) => return Ok(Verdict::Refused),
            (Err(e), Some(Ok(_))) => return Err(format!("a valid scope file was refused: {e}")),
            (Ok(_), Some(Err(()))) => return Err("an invalid scope file was accepted".into()),
            (Ok(grant), Some(Ok(expected))) if grant != *expected => {
                return Err(format!("parsed {grant:?}, expected {expected:?}"));
            }
            (Ok(grant), _) => grant,
        };
        for ns in grant.namespace_list().unwrap_or_default() {
            url_segment_safe(ns)?;
            names::validate_namespace(ns).map_err(|e| format!("granted namespace {e}"))?;
        }
        // `--namespace` only ever narrows the grant.
        let narrowed = grant.clone().within(Some(case.probe.as_str()));
        let kept = narrowed.namespace_list().unwrap_or_default();
        if kept.len() > 1 || kept.iter().any(|ns| *ns != case.probe) {
            return Err(format!("--namespace {:?} kept {kept:?}", case.probe));
        }
        if narrowed.allows_namespace(&case.probe) != grant.allows_namespace(&case.probe) {
            return Err("--namespace widened or dropped the probed namespace".into());
        }
        if grant
            .check_write("", "ConfigMap", Some(case.probe.as_str()))
            .is_ok()
            != grant.allows_namespace(&case.probe)
        {
            return Err("check_write disagrees with allows_namespace".into());
        }
        Ok(Verdict::Accepted)
    });
}

/// Equal JSON, except that floating-point numbers may differ in their last
/// bits: serde_json (without its `float_roundtrip` feature) does not round
/// every decimal correctly, so a float can move by a few ULP between the
/// operator's file and what the plugin parses (see `tests/FUZZING.md`,
/// "Findings").
pub fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn fuzz_settings() {
    super::run(
        "settings",
        super::cases(SHORT),
        |g| {
            let value = g.value(4);
            g.json_text(&value)
        },
        |text| {
            // What the loader does with a settings file before handing it
            // to the plugin: the plugin must see the operator's document.
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                return Ok(Verdict::Refused);
            };
            let handed = value.to_string();
            let seen: Value = serde_json::from_str(&handed)
                .map_err(|e| format!("re-serialized settings do not parse: {e}"))?;
            if !same_json(&seen, &value) {
                return Err(format!("the plugin would see {handed}"));
            }
            Ok(Verdict::Accepted)
        },
    );
}
