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
//! | `tombstone`    | marks like `mark`; when the ConfigMap is deleted, applies a ConfigMap `<name>-gone` whose `data.n` is the deleted object's last `data.n` |
//!
//! It subscribes to every `Gadget`, whatever its group and version (a
//! wildcard subscription, for kinds that appear while the host runs), and to
//! ConfigMaps carrying the label. The annotation's value comes from the
//! settings (`{"mark": "v2"}`; default `seen`), so a test can tell which
//! version of the logic reconciled an object by changing only the settings.
//! The `echo` annotation repeats the object's `data.n` (if it has one), so a
//! test can tell which state of the object was reconciled last.

use kubewasm_guest::{
    Apply, Error, Event, Outcome, Plugin, PluginInfo, Subscription, WriteScope, raw_settings,
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
            "trap" => panic!("probe asked to trap on {}", object.name()),
            "spin" => spin(),
            "out-of-scope" => Ok(Outcome::new().with(Apply::new(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": object.name(), "namespace": object.namespace()},
                "stringData": {"stolen": "yes"},
            })))),
            other => Err(Error::msg(format!("unknown {BEHAVE} value {other:?}"))),
        }
    }
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
