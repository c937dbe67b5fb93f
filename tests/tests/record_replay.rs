//! `kubewasm record` and `kubewasm replay` as an operator runs them: a
//! recording of the control plane's traffic while objects are created,
//! changed and deleted, stopped with SIGTERM; two replays of it that must
//! print the same bytes; and a replay `--against` the serving version that
//! must find, and name, the objects and fields a changed plugin writes
//! differently.
//!
//! The change is one of settings, the kind an operator makes every day:
//! the serving `label-propagator` copies the namespace label `team` onto
//! the objects in it, the new one `team` and `cost-center`. Both are the
//! real component from `plugins/dist`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubewasm_e2e::host::{component, kubewasm_binary};
use kubewasm_e2e::{TestNamespace, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn configmap(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

/// `kubewasm record` running against the control plane.
struct Recorder {
    child: Child,
    stderr: PathBuf,
}

impl Recorder {
    fn start(ns: &TestNamespace, output: &Path, dir: &Path) -> Self {
        let stderr = dir.join("record.stderr");
        let child = Command::new(kubewasm_binary())
            .args(["record", "--plugin"])
            .arg(component("label-propagator"))
            .args(["--namespace", ns.name(), "--redact", "data.password"])
            .arg("--output")
            .arg(output)
            .env("KUBECONFIG", ns.control_plane().kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("kubewasm record starts");
        Self { child, stderr }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("kubewasm record did not stop on SIGTERM\n{}", self.log());
    }
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

/// `(type, kind, name)` of each line after the header.
fn summary(lines: &[Value]) -> Vec<(String, String, String)> {
    lines[1..]
        .iter()
        .map(|l| {
            (
                l["type"].as_str().unwrap().to_string(),
                l["object"]["kind"].as_str().unwrap_or_default().to_string(),
                l["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn replay(recording: &Path, settings: &Path, against: Option<&Path>) -> Output {
    let mut command = Command::new(kubewasm_binary());
    command
        .arg("replay")
        .arg(recording)
        .arg(component("label-propagator"))
        .arg("--settings")
        .arg(settings)
        .args(["--output", "json"]);
    if let Some(old) = against {
        command
            .arg("--against")
            .arg(component("label-propagator"))
            .arg("--against-settings")
            .arg(old);
    }
    command.output().expect("kubewasm replay runs")
}

#[tokio::test]
async fn a_recording_replays_deterministically_and_finds_a_changed_plugin() {
    let ns = TestNamespace::create("record").await.unwrap();
    ns.label(json!({"team": "web", "cost-center": "c42"}))
        .await
        .unwrap();
    let configmaps: Api<ConfigMap> = ns.api();
    let pp = PostParams::default();
    for (name, data) in [
        ("keep", json!({"password": "hunter2", "user": "admin"})),
        ("gone", json!({"k": "v"})),
    ] {
        configmaps
            .create(&pp, &configmap(name, data))
            .await
            .unwrap();
    }
    let secrets: Api<Secret> = ns.api();
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "creds"}, "stringData": {"password": "hunter2"}}),
    )
    .unwrap();
    secrets.create(&pp, &secret).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let recording = dir.path().join("traffic.jsonl");
    let recorder = Recorder::start(&ns, &recording, dir.path());
    eventually(WAIT, || async {
        anyhow::ensure!(recorder.log().contains("recording "), "{}", recorder.log());
        Ok(())
    })
    .await
    .unwrap();

    // The traffic: one object created, one changed twice, one deleted,
    // one Secret changed (not recorded).
    configmaps
        .create(&pp, &configmap("fresh", json!({"password": "s3cret"})))
        .await
        .unwrap();
    let merge = |patch: Value| Patch::Merge(patch);
    let params = PatchParams::default();
    configmaps
        .patch("keep", &params, &merge(json!({"data": {"user": "root"}})))
        .await
        .unwrap();
    configmaps
        .patch(
            "keep",
            &params,
            &merge(json!({"metadata": {"labels": {"tier": "db"}}})),
        )
        .await
        .unwrap();
    configmaps
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    secrets
        .patch(
            "creds",
            &params,
            &merge(json!({"stringData": {"password": "new"}})),
        )
        .await
        .unwrap();
    // Flushed as it goes: the last change is in the file before the end.
    eventually(WAIT, || async {
        let got = summary(&lines(&recording));
        anyhow::ensure!(
            got.iter().any(|l| l.0 == "deleted" && l.2 == "gone"),
            "not recorded yet: {got:?}"
        );
        Ok(())
    })
    .await
    .unwrap();
    let (status, log) = recorder.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("stopped by a signal"), "{log}");

    // What the file holds.
    let recorded = lines(&recording);
    let header = &recorded[0];
    assert_eq!(header["kubewasmRecording"], 1);
    assert_eq!(header["namespaces"], json!([ns.name()]));
    assert_eq!(header["plugin"]["name"], "label-propagator");
    assert_eq!(header["secrets"], false);
    let kinds: Vec<&str> = header["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "Deployment", "Service"]);
    assert_eq!(
        header["redactions"],
        json!([
            "data.password",
            "metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"]"
        ])
    );
    let s = |t: &str, k: &str, n: &str| (t.to_string(), k.to_string(), n.to_string());
    // kube-root-ca.crt is created in every namespace by the controller
    // manager, if the control plane runs one: whenever it gets to it.
    let got: Vec<_> = summary(&recorded)
        .into_iter()
        .filter(|l| l.2 != "kube-root-ca.crt")
        .collect();
    let expected_initial = [
        s("initial", "Namespace", ns.name()),
        s("initial", "ConfigMap", "gone"),
        s("initial", "ConfigMap", "keep"),
    ];
    let initial: Vec<_> = got.iter().filter(|l| l.0 == "initial").cloned().collect();
    assert_eq!(initial, expected_initial, "{got:?}");
    let events: Vec<_> = got.iter().filter(|l| l.0 != "initial").cloned().collect();
    assert_eq!(
        events,
        [
            s("added", "ConfigMap", "fresh"),
            s("modified", "ConfigMap", "keep"),
            s("modified", "ConfigMap", "keep"),
            s("deleted", "ConfigMap", "gone"),
            s("end", "", ""),
        ]
    );
    let text = std::fs::read_to_string(&recording).unwrap();
    assert!(
        !text.contains("\"kind\":\"Secret\"")
            && !text.contains("hunter2")
            && !text.contains("s3cret")
    );
    assert!(!text.contains("managedFields"));
    let keep_last = &recorded
        .iter()
        .rfind(|l| l["type"] == "modified" && l["object"]["metadata"]["name"] == "keep")
        .unwrap()["object"];
    assert_eq!(
        keep_last["data"],
        json!({"password": "<redacted>", "user": "root"})
    );
    assert_eq!(keep_last["metadata"]["labels"]["tier"], "db");
    assert_eq!(recorded.last().unwrap()["reason"], "signal");
    let event_lines = recorded
        .iter()
        .filter(|l| {
            l["type"]
                .as_str()
                .is_some_and(|t| ["added", "modified", "deleted"].contains(&t))
        })
        .count();
    assert_eq!(recorded.last().unwrap()["events"], event_lines);
    let times: Vec<i64> = recorded[1..]
        .iter()
        .filter_map(|l| l["timeMs"].as_i64())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Two replays of the new version: the same bytes, and what it writes.
    let new_settings = dir.path().join("new.json");
    let old_settings = dir.path().join("old.json");
    std::fs::write(&new_settings, r#"{"labels": ["team", "cost-center"]}"#).unwrap();
    std::fs::write(&old_settings, r#"{"labels": ["team"]}"#).unwrap();
    let first = replay(&recording, &new_settings, None);
    let second = replay(&recording, &new_settings, None);
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout, "two replays differ");
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["summary"]["events"], event_lines);
    assert_eq!(report["summary"]["complete"], true);
    assert_eq!(report["summary"]["failures"], 0);
    let fresh = report["reconciles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trigger"] == format!("added ConfigMap {}/fresh", ns.name()))
        .unwrap_or_else(|| panic!("no reconcile of fresh: {report:#}"));
    let labels = &fresh["result"]["outcome"]["intents"][0]["object"]["metadata"]["labels"];
    assert_eq!(
        labels,
        &json!({"team": "web", "cost-center": "c42"}),
        "{fresh:#}"
    );
    // The plugin's clock is the event's recorded time.
    let added_at = recorded.iter().find(|l| l["type"] == "added").unwrap()["timeMs"]
        .as_i64()
        .unwrap();
    let at: jiff::Timestamp = fresh["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at.as_millisecond(), added_at);

    // Against the serving version: the differences, by object and field.
    let compared = replay(&recording, &new_settings, Some(&old_settings));
    let stderr = String::from_utf8_lossy(&compared.stderr).into_owned();
    assert_eq!(compared.status.code(), Some(1), "{stderr}");
    let report: Value = serde_json::from_slice(&compared.stdout).unwrap();
    let differing = report["reconciles"].as_array().unwrap();
    let mut targets: Vec<String> = differing
        .iter()
        .flat_map(|r| {
            r["differences"]["intents"]["differences"]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|d| d["target"].as_str().unwrap().to_string())
        .collect();
    targets.sort();
    targets.dedup();
    let cm = |name: &str| format!("v1 ConfigMap {}/{name}", ns.name());
    // Every object the new version labels, and nothing else: the deleted
    // one is labelled only while it exists, the root CA ConfigMap too.
    for name in ["fresh", "keep", "gone"] {
        assert!(targets.contains(&cm(name)), "{name} not named: {targets:?}");
    }
    assert!(
        targets.iter().all(|t| t.starts_with(&cm(""))),
        "{targets:?}"
    );
    for r in differing {
        for d in r["differences"]["intents"]["differences"]
            .as_array()
            .unwrap()
        {
            let paths: Vec<&str> = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["path"].as_str().unwrap())
                .collect();
            assert!(
                paths.contains(&"$.object.metadata.labels[\"cost-center\"]"),
                "{d:#}"
            );
            let field = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"] == "$.object.metadata.labels[\"cost-center\"]")
                .unwrap();
            assert_eq!(
                (&field["expected"], &field["actual"]),
                (&Value::Null, &json!("c42"))
            );
        }
    }
    let summary = &report["summary"]["compared"];
    assert_eq!(
        summary["differing"].as_u64().unwrap() as usize,
        differing.len()
    );
    assert!(summary["equal"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["newFailures"], 0);

    // The same versions agree with themselves.
    let same = replay(&recording, &old_settings, Some(&old_settings));
    assert_eq!(same.status.code(), Some(0));

    // The recording as a `kubewasm test` fixture: blessed, then passing.
    let case = dir.path().join("fixtures/traffic");
    std::fs::create_dir_all(&case).unwrap();
    std::fs::copy(&recording, case.join("recording.jsonl")).unwrap();
    std::fs::copy(&new_settings, case.join("settings.json")).unwrap();
    let test = |bless: bool| {
        let mut command = Command::new(kubewasm_binary());
        command
            .arg("test")
            .arg(dir.path())
            .arg("--plugin")
            .arg(component("label-propagator"));
        if bless {
            command.arg("--bless");
        }
        command.output().unwrap()
    };
    assert!(test(true).status.success());
    let blessed: Value =
        serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
            .unwrap();
    assert_eq!(
        blessed,
        serde_json::from_slice::<Value>(&first.stdout).unwrap()
    );
    let passed = test(false);
    assert!(
        passed.status.success(),
        "{}",
        String::from_utf8_lossy(&passed.stdout)
    );
    ns.delete().await.unwrap();
}
