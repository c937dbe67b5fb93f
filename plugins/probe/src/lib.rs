//! probe: the plugin the end-to-end tests drive. Each object it is called for
//! says, in its `probe.kubewasm.dev/behave` label, how the plugin behaves:
//!
//! | label value    | what the plugin does                                     |
//! |----------------|----------------------------------------------------------|
//! | (none), `mark` | applies the annotations `probe.kubewasm.dev/mark` and `/echo` |
//! | `trap`         | panics, which traps the call                              |
//! | `spin`         | loops forever, until the host's call timeout stops it     |
//! | `out-of-scope` | asks to apply a Secret, a kind it did not declare         |
//! | `slow`         | busy for a fixed amount of work (about 2.5 s), then marks like `mark` |
//! | `requeue`      | writes nothing and asks to be called again in 300 ms      |
//! | `churn`        | bumps the counter in `probe.kubewasm.dev/churn` on every call, so each write causes the next (a reconcile loop) |
//! | `read`         | reads the ConfigMap named `NAMESPACE/NAME` in its `probe.kubewasm.dev/read` annotation from the host's cache and records `found`, `absent` or `error: ...` in `probe.kubewasm.dev/read-result` |
//! | `smuggle`      | returns one intent on a ConfigMap (a kind it declares) whose target namespace and name come from the `probe.kubewasm.dev/smuggle-namespace` and `/smuggle-name` annotations, of the type in `/smuggle-intent` (`merge-patch`, `json-patch`, `delete`, `apply`, `create`, `event`): what a hostile plugin would try |
//! | `tombstone`    | marks like `mark`; when the ConfigMap is deleted, applies a ConfigMap `<name>-gone` whose `data.n` is the deleted object's last `data.n` |
//! | `churn-child`  | applies a child ConfigMap `<name>-child` (controller owner reference to the object) whose `data.n` is one more than the cached child's, so each write to the child wakes the owner (`owns`), which writes it again (an owner/child reconcile loop) |
//! | `clock`        | reads the host clock (`now`) and records it in `probe.kubewasm.dev/now` (RFC 3339) and `/now-ms` (epoch milliseconds), once: nothing if `/now` is already set |
//!
//! It subscribes to every `Gadget`, whatever its group and version (a
//! wildcard subscription, for kinds that appear while the host runs), and to
//! ConfigMaps carrying the label. The annotation's value comes from the
//! settings (`{"mark": "v2"}`; default `seen`), so a test can tell which
//! version of the logic reconciled an object by changing only the settings.
//! The `echo` annotation repeats the object's `data.n` (if it has one), so a
//! test can tell which state of the object was reconciled last.

use kubewasm_guest::{
    Apply, Create, Delete, Error, Event, Intent, JsonPatch, KindRef, ObjectRef, Outcome,
    OwnerReference, Patch, Plugin, PluginInfo, RecordEvent, Subscription, WriteScope, raw_settings,
};
use serde::Deserialize;
use serde_json::json;

/// The label choosing the behaviour.
pub const BEHAVE: &str = "probe.kubewasm.dev/behave";
/// The annotation the well-behaved path applies.
pub const MARK: &str = "probe.kubewasm.dev/mark";
/// The annotation repeating `data.n`.
pub const ECHO: &str = "probe.kubewasm.dev/echo";
/// How soon the `requeue` behaviour asks to be called again.
pub const REQUEUE: std::time::Duration = std::time::Duration::from_millis(300);
/// The counter the `churn` behaviour bumps on every call.
pub const CHURN: &str = "probe.kubewasm.dev/churn";
/// The ConfigMap (`NAMESPACE/NAME`) the `read` behaviour reads.
pub const READ: &str = "probe.kubewasm.dev/read";
/// What the `read` behaviour found: `found`, `absent` or `error: ...`.
pub const READ_RESULT: &str = "probe.kubewasm.dev/read-result";
/// The `smuggle` behaviour's target namespace (absent: the object's own).
pub const SMUGGLE_NAMESPACE: &str = "probe.kubewasm.dev/smuggle-namespace";
/// The `smuggle` behaviour's target name (absent: the object's own).
pub const SMUGGLE_NAME: &str = "probe.kubewasm.dev/smuggle-name";
/// The `smuggle` behaviour's intent type (absent: `merge-patch`).
pub const SMUGGLE_INTENT: &str = "probe.kubewasm.dev/smuggle-intent";
/// The host clock the `clock` behaviour read, RFC 3339.
pub const NOW: &str = "probe.kubewasm.dev/now";
/// The host clock the `clock` behaviour read, epoch milliseconds.
pub const NOW_MS: &str = "probe.kubewasm.dev/now-ms";

/// Settings: the value written to [`MARK`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_mark")]
    pub mark: String,
}

fn default_mark() -> String {
    "seen".into()
}

impl Settings {
    /// Empty settings mean the defaults.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = if text.trim().is_empty() { "{}" } else { text };
        serde_json::from_str(text).map_err(|e| Error::msg(format!("invalid settings: {e}")))
    }
}

/// The plugin.
pub struct Probe;

impl Plugin for Probe {
    fn describe() -> PluginInfo {
        PluginInfo::new("probe", env!("CARGO_PKG_VERSION"))
            .subscribe(Subscription::new("*", "*", "Gadget"))
            .subscribe(Subscription::new("", "v1", "ConfigMap").label_selector(BEHAVE))
            // Children of `churn-child` ConfigMaps wake their owner.
            .owns(KindRef::new("", "ConfigMap").version("v1"))
            .writes(WriteScope::new("*", "Gadget"))
            .writes(WriteScope::new("", "ConfigMap"))
    }

    fn validate_settings(settings: &str) -> Result<(), Error> {
        Settings::parse(settings).map(drop)
    }

    fn reconcile(event: &Event) -> Result<Outcome, Error> {
        let object = &event.object;
        if event.is_deleted() && object.label(BEHAVE) == Some("tombstone") {
            return Ok(Outcome::new().with(Apply::new(tombstone(object))));
        }
        if event.is_deleted() || object.is_being_deleted() {
            return Ok(Outcome::new());
        }
        let behave = object.label(BEHAVE).unwrap_or("mark");
        if behave == "slow" {
            busy(SLOW_STEPS);
        }
        match behave {
            "mark" | "slow" | "tombstone" => {
                let mark = Settings::parse(&raw_settings())?.mark;
                let echo = object.get_str("data.n");
                if object.annotation(MARK) == Some(mark.as_str()) && object.annotation(ECHO) == echo
                {
                    return Ok(Outcome::new());
                }
                let mut annotations = json!({ MARK: mark });
                if let Some(echo) = echo {
                    annotations[ECHO] = json!(echo);
                }
                Ok(Outcome::new().with(Apply::fields(
                    &object.object_ref(),
                    json!({"metadata": {"annotations": annotations}}),
                )))
            }
            "requeue" => Ok(Outcome::new().requeue_after(REQUEUE)),
            "churn" => {
                let count: u64 = object
                    .annotation(CHURN)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                Ok(Outcome::new().with(Apply::fields(
                    &object.object_ref(),
                    json!({"metadata": {"annotations": {CHURN: (count + 1).to_string()}}}),
                )))
            }
            "churn-child" => {
                let name = format!("{}-child", object.name());
                let count: u64 =
                    kubewasm_guest::cache::get("v1", "ConfigMap", object.namespace(), &name)?
                        .and_then(|child| child.get_str("data.n").and_then(|n| n.parse().ok()))
                        .unwrap_or(0);
                let child = ObjectRef::new("v1", "ConfigMap", object.namespace(), name);
                Ok(Outcome::new().with(
                    Apply::fields(&child, json!({"data": {"n": (count + 1).to_string()}}))
                        .owner(OwnerReference::controller(object)?),
                ))
            }
            "trap" => panic!("probe asked to trap on {}", object.name()),
            "spin" => spin(),
            "out-of-scope" => Ok(Outcome::new().with(Apply::new(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": object.name(), "namespace": object.namespace()},
                "stringData": {"stolen": "yes"},
            })))),
            "smuggle" => smuggle(object),
            "clock" => {
                if object.annotation(NOW).is_some() {
                    return Ok(Outcome::new());
                }
                let now = kubewasm_guest::now();
                Ok(Outcome::new().with(Apply::fields(
                    &object.object_ref(),
                    json!({"metadata": {"annotations": {
                        NOW: now.rfc3339(),
                        NOW_MS: now.epoch_ms().to_string(),
                    }}}),
                )))
            }
            "read" => {
                let (namespace, name) = object
                    .annotation(READ)
                    .and_then(|r| r.split_once('/'))
                    .ok_or_else(|| Error::msg(format!("{READ} must be NAMESPACE/NAME")))?;
                let result =
                    match kubewasm_guest::cache::get("v1", "ConfigMap", Some(namespace), name) {
                        Ok(Some(_)) => "found".to_string(),
                        Ok(None) => "absent".to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                if object.annotation(READ_RESULT) == Some(result.as_str()) {
                    return Ok(Outcome::new());
                }
                Ok(Outcome::new().with(Apply::fields(
                    &object.object_ref(),
                    json!({"metadata": {"annotations": {READ_RESULT: result}}}),
                )))
            }
            other => Err(Error::msg(format!("unknown {BEHAVE} value {other:?}"))),
        }
    }
}

/// One intent on a ConfigMap whose namespace and name are whatever the
/// object's annotations say, unchecked: the host must refuse a bad one.
fn smuggle(object: &kubewasm_guest::Object) -> Result<Outcome, Error> {
    let namespace = object
        .annotation(SMUGGLE_NAMESPACE)
        .or(object.namespace())
        .map(str::to_string);
    let name = object
        .annotation(SMUGGLE_NAME)
        .unwrap_or(object.name())
        .to_string();
    let target = ObjectRef::new("v1", "ConfigMap", namespace.as_deref(), name.clone());
    let stolen = json!({"metadata": {"labels": {"probe.kubewasm.dev/smuggled": "yes"}}});
    let intent: Intent = match object.annotation(SMUGGLE_INTENT).unwrap_or("merge-patch") {
        "merge-patch" => Patch::merge(target, stolen).into(),
        "json-patch" => Patch::json(
            target,
            JsonPatch::new().add("/metadata/labels/smuggled", "yes"),
        )
        .into(),
        "delete" => Delete::new(target).into(),
        "apply" => Apply::fields(&target, stolen).into(),
        "create" => Create::new(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
        }))
        .into(),
        "event" => RecordEvent::normal(target, "Smuggled", "an Event elsewhere").into(),
        other => return Err(Error::msg(format!("unknown {SMUGGLE_INTENT} {other:?}"))),
    };
    Ok(Outcome::new().with(intent))
}

/// The ConfigMap that records a `tombstone` object's deletion and the last
/// state the plugin was given.
fn tombstone(object: &kubewasm_guest::Object) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("{}-gone", object.name()), "namespace": object.namespace()},
        "data": {"n": object.get_str("data.n").unwrap_or_default()},
    })
}

/// Steps of [`busy`] the `slow` behaviour takes: about 2.5 s of
/// compiled Wasm on a 2-core CI machine (0.9 s per 10^9 steps measured).
pub const SLOW_STEPS: u64 = 3_000_000_000;

/// A fixed amount of work the optimiser cannot remove.
fn busy(steps: u64) {
    let mut n: u64 = 0;
    for _ in 0..steps {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Never returns: only the host's epoch deadline ends the call.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

kubewasm_guest::export_plugin!(Probe);

#[cfg(test)]
mod tests {
    use super::*;
    use kubewasm_guest::{EventType, Intent, Object};

    fn configmap(behave: Option<&str>, mark: Option<&str>) -> Event {
        let mut object = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "ns", "labels": {}, "annotations": {}}
        });
        if let Some(behave) = behave {
            object["metadata"]["labels"][BEHAVE] = json!(behave);
        }
        if let Some(mark) = mark {
            object["metadata"]["annotations"][MARK] = json!(mark);
        }
        Event::new(
            EventType::Applied,
            Object::parse(&object.to_string()).unwrap(),
        )
    }

    #[test]
    fn marks_objects_once() {
        let outcome = Probe::reconcile(&configmap(None, None)).unwrap();
        assert!(matches!(outcome.intents.as_slice(), [Intent::Apply(_)]));
        let outcome = Probe::reconcile(&configmap(Some("mark"), Some("seen"))).unwrap();
        assert!(outcome.intents.is_empty());
    }

    #[test]
    fn echoes_data_n() {
        let mut event = configmap(None, Some("seen"));
        let mut object = event.object.into_value();
        object["data"] = json!({"n": "7"});
        event.object = Object::parse(&object.to_string()).unwrap();
        let outcome = Probe::reconcile(&event).unwrap();
        let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        assert_eq!(apply.object["metadata"]["annotations"][ECHO], "7");
    }

    #[test]
    fn smuggle_targets_whatever_the_annotations_say() {
        let mut event = configmap(Some("smuggle"), None);
        let mut object = event.object.into_value();
        object["metadata"]["annotations"][SMUGGLE_NAMESPACE] = json!("ns/secrets/victim?x=");
        object["metadata"]["annotations"][SMUGGLE_INTENT] = json!("delete");
        event.object = Object::parse(&object.to_string()).unwrap();
        let outcome = Probe::reconcile(&event).unwrap();
        let [Intent::Delete(delete)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        assert_eq!(
            delete.target.namespace.as_deref(),
            Some("ns/secrets/victim?x=")
        );
        assert_eq!(delete.target.name, "cm");
    }

    #[test]
    fn out_of_scope_asks_for_a_secret() {
        let outcome = Probe::reconcile(&configmap(Some("out-of-scope"), None)).unwrap();
        let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        assert_eq!(apply.object["kind"], "Secret");
    }

    #[test]
    fn tombstone_records_the_last_state_of_a_deleted_object() {
        let mut object = configmap(Some("tombstone"), Some("seen"))
            .object
            .into_value();
        object["data"] = json!({"n": "3"});
        let event = Event::new(
            EventType::Deleted,
            Object::parse(&object.to_string()).unwrap(),
        );
        let outcome = Probe::reconcile(&event).unwrap();
        let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        assert_eq!(apply.object["metadata"]["name"], "cm-gone");
        assert_eq!(apply.object["data"]["n"], "3");
    }

    #[test]
    fn requeue_asks_to_be_called_again_and_writes_nothing() {
        let outcome = Probe::reconcile(&configmap(Some("requeue"), None)).unwrap();
        assert!(outcome.intents.is_empty());
        assert_eq!(outcome.requeue_after_ms, Some(300));
    }

    #[test]
    fn churn_changes_the_object_on_every_call() {
        let mut event = configmap(Some("churn"), None);
        for expected in ["1", "2", "3"] {
            let outcome = Probe::reconcile(&event).unwrap();
            let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
                panic!("{:?}", outcome.intents);
            };
            assert_eq!(apply.object["metadata"]["annotations"][CHURN], expected);
            let mut object = event.object.into_value();
            object["metadata"]["annotations"][CHURN] = json!(expected);
            event.object = Object::parse(&object.to_string()).unwrap();
        }
    }

    #[test]
    fn churn_child_rewrites_its_child_on_every_call() {
        let mut event = configmap(Some("churn-child"), None);
        let mut owner = event.object.into_value();
        owner["metadata"]["uid"] = json!("owner-uid");
        event.object = Object::parse(&owner.to_string()).unwrap();
        let child = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm-child", "namespace": "ns"},
            "data": {"n": "4"}
        });
        kubewasm_guest::testing::TestHost::new()
            .object(Object::parse(&child.to_string()).unwrap())
            .install();
        let outcome = Probe::reconcile(&event).unwrap();
        let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        assert_eq!(apply.object["metadata"]["name"], "cm-child");
        assert_eq!(apply.object["data"]["n"], "5");
        let owner_ref = &apply.object["metadata"]["ownerReferences"][0];
        assert_eq!(owner_ref["uid"], "owner-uid");
        assert_eq!(owner_ref["controller"], true);
    }

    #[test]
    fn clock_records_the_host_clock_once() {
        kubewasm_guest::testing::TestHost::new()
            .now(kubewasm_guest::Timestamp::parse("2026-12-04T03:15:00Z").unwrap())
            .install();
        let outcome = Probe::reconcile(&configmap(Some("clock"), None)).unwrap();
        let [Intent::Apply(apply)] = outcome.intents.as_slice() else {
            panic!("{:?}", outcome.intents);
        };
        let annotations = &apply.object["metadata"]["annotations"];
        assert_eq!(annotations[NOW], "2026-12-04T03:15:00Z");
        assert_eq!(annotations[NOW_MS], "1796354100000");

        let mut object = configmap(Some("clock"), None).object.into_value();
        object["metadata"]["annotations"][NOW] = json!("2026-12-04T03:15:00Z");
        let event = Event::new(EventType::Applied, Object::from(object));
        assert!(Probe::reconcile(&event).unwrap().is_empty());
    }

    #[test]
    fn unknown_behaviour_is_an_error_naming_it() {
        let err = Probe::reconcile(&configmap(Some("dance"), None)).unwrap_err();
        assert!(err.message().contains("\"dance\""), "{err}");
    }

    #[test]
    fn settings_reject_unknown_fields() {
        assert!(Probe::validate_settings(r#"{"mark": "v2"}"#).is_ok());
        assert!(Probe::validate_settings(r#"{"marc": "v2"}"#).is_err());
    }
}
