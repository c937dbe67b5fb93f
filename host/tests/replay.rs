//! `kubewasm replay` with the real `website` component (built by
//! `plugins/build.sh`): a recording's events reach the plugin as the live
//! host routes them (an owned child's change reconciles its owner, a
//! deletion under the plugin's finalizer is `finalizing`, a deletion is
//! `deleted`), at the recorded time, and two replays are identical.

mod support;

use std::path::{Path, PathBuf};

use kubewasm::cmd::replay::{Answer, Reconcile, Version, load_version, replay};
use kubewasm::recording::{
    Change, FORMAT_VERSION, Header, Limits, RecordedKind, Recording, StopReason, Writer, rfc3339,
};
use serde_json::{Value, json};

fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("KUBEWASM_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run plugins/build.sh",
        path.display()
    );
    path
}

fn runtime() -> kubewasm::Runtime {
    let args = support::runtime_args();
    kubewasm::Runtime::new(args.runtime_config()).unwrap()
}

const T0: i64 = 1_796_400_000_000;

fn website(extra: Value) -> Value {
    let mut site = json!({
        "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
        "metadata": {"name": "blog", "namespace": "web", "uid": "u-1", "generation": 1,
                     "resourceVersion": "1", "finalizers": ["kubewasm.dev/website"]},
        "spec": {"title": "Blog", "content": "Hello"}
    });
    json_merge(&mut site, extra);
    site
}

fn child(content: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "blog", "namespace": "web", "resourceVersion": "2",
                     "ownerReferences": [{"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
                                          "name": "blog", "uid": "u-1", "controller": true}]},
        "data": {"index.html": content}
    })
}

fn json_merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, value) => *slot = value,
    }
}

fn recording(dir: &Path) -> PathBuf {
    let kind = |api_version: &str, kind: &str, plural: &str| RecordedKind {
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced: true,
    };
    let header = Header {
        kubewasm_recording: FORMAT_VERSION,
        recorded_at: rfc3339(T0),
        time_ms: T0,
        kinds: vec![
            kind("demo.kubewasm.dev/v1alpha1", "Website", "websites"),
            kind("v1", "ConfigMap", "configmaps"),
        ],
        namespaces: vec![],
        selector: None,
        redactions: vec![],
        secrets: false,
        plugin: None,
    };
    let path = dir.join("traffic.jsonl");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = Writer::start(file, &header).unwrap();
    w.initial(&website(json!({}))).unwrap();
    w.initial(&child("<h1>Blog</h1>")).unwrap();
    // Someone edits the child; then the Website is deleted.
    w.event(Change::Modified, T0 + 2_000, &child("edited by hand"))
        .unwrap();
    let deleting = website(json!({"metadata": {"deletionTimestamp": "2026-12-04T10:00:05Z"}}));
    w.event(Change::Modified, T0 + 5_000, &deleting).unwrap();
    w.event(Change::Deleted, T0 + 6_000, &deleting).unwrap();
    w.finish(T0 + 7_000, StopReason::Duration).unwrap();
    path
}

fn run(path: &Path) -> (Vec<Reconcile>, String) {
    let recording = Recording::read(path, Limits::default()).unwrap();
    let loaded = load_version(&runtime(), &component("website"), None, &mut |_| {}).unwrap();
    let version = Version::new(loaded, &recording);
    let mut reconciles = Vec::new();
    let summary = replay(&recording, &version, None, 10, &mut |r| {
        reconciles.push(r.clone())
    });
    let document = summary.document(reconciles.clone()).to_string();
    assert_eq!(summary.exit_code(), 0, "{document}");
    (reconciles, document)
}

/// (line, trigger, event, kind, via, at) of a reconcile.
type Seen<'a> = (
    Option<usize>,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    String,
);

#[test]
fn events_reach_the_plugin_as_the_host_routes_them_at_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = recording(dir.path());
    let (reconciles, first) = run(&path);
    let (_, second) = run(&path);
    assert_eq!(first, second, "two replays differ");
    let calls: Vec<Seen<'_>> = reconciles
        .iter()
        .map(|r| {
            (
                r.line,
                r.trigger.as_str(),
                r.event,
                r.kind.as_str(),
                r.via,
                r.at.clone(),
            )
        })
        .collect();
    let website = "demo.kubewasm.dev/v1alpha1 Website";
    assert_eq!(
        calls,
        [
            // The first list: the Website once (its child maps to it: the same key).
            (
                None,
                "initial Website web/blog",
                "applied",
                website,
                None,
                rfc3339(T0)
            ),
            // The child's change reconciles its owner.
            (
                Some(4),
                "modified ConfigMap web/blog",
                "resync",
                website,
                Some("owner"),
                rfc3339(T0 + 2_000)
            ),
            // Deletion under the plugin's finalizer.
            (
                Some(5),
                "modified Website web/blog",
                "finalizing",
                website,
                None,
                rfc3339(T0 + 5_000)
            ),
            (
                Some(6),
                "deleted Website web/blog",
                "deleted",
                website,
                None,
                rfc3339(T0 + 6_000)
            ),
        ]
    );
    // The owner puts its child back as the spec says.
    let Answer::Outcome(outcome) = &reconciles[1].result else {
        panic!("{:?}", reconciles[1].result)
    };
    let text = serde_json::to_string(outcome).unwrap();
    assert!(
        text.contains("Hello") && !text.contains("edited by hand"),
        "{text}"
    );
}
