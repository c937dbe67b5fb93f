use std::path::Path;

use serde_json::{Value, json};

use super::*;

fn header() -> Header {
    Header {
        kubewasm_recording: FORMAT_VERSION,
        recorded_at: rfc3339(1_000),
        time_ms: 1_000,
        kinds: vec![
            RecordedKind {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
                namespaced: true,
            },
            RecordedKind {
                api_version: "v1".into(),
                kind: "Namespace".into(),
                plural: "namespaces".into(),
                namespaced: false,
            },
        ],
        namespaces: vec!["shop".into()],
        selector: Some("app=web".into()),
        redactions: vec!["data.password".into()],
        secrets: false,
        plugin: Some(RecordedPlugin {
            name: "label-propagator".into(),
            version: "0.1.0".into(),
        }),
    }
}

fn cm(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                        "managedFields": [{"manager": "kubectl"}]},
           "data": {"k": value}})
}

fn written(lines: impl FnOnce(&mut Writer<&mut Vec<u8>>)) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = Writer::start(&mut bytes, &header()).unwrap();
    lines(&mut writer);
    writer.finish(9_000, StopReason::Signal).unwrap();
    bytes
}

fn read(bytes: &[u8]) -> Result<Recording, RecordingError> {
    read_with(bytes, Limits::default())
}

fn read_with(bytes: &[u8], limits: Limits) -> Result<Recording, RecordingError> {
    Recording::from_reader(Path::new("rec.jsonl"), bytes, limits)
}

/// The error of reading `text`, as printed.
fn error(text: &str) -> String {
    read(text.as_bytes()).unwrap_err().to_string()
}

fn header_line() -> String {
    serde_json::to_string(&header()).unwrap()
}

#[test]
fn a_recording_round_trips() {
    let bytes = written(|w| {
        w.initial(&cm("a", "1")).unwrap();
        w.initial(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}))
            .unwrap();
        w.event(Change::Added, 2_000, &cm("b", "1")).unwrap();
        w.event(Change::Modified, 3_000, &cm("a", "2")).unwrap();
        // The clock went back: the time is moved up to the line before's.
        w.event(Change::Deleted, 2_500, &cm("b", "1")).unwrap();
    });
    let recording = read(&bytes).unwrap();
    assert_eq!(recording.header, header());
    assert_eq!(recording.kinds[0].plural, "configmaps");
    assert!(!recording.kinds[1].namespaced);
    assert_eq!(recording.initial.len(), 2);
    assert_eq!(recording.initial[1].0, 1);
    let events: Vec<(usize, i64, Change, &str)> = recording
        .events
        .iter()
        .map(|e| (e.line, e.time_ms, e.change, e.object.name()))
        .collect();
    assert_eq!(
        events,
        [
            (4, 2_000, Change::Added, "b"),
            (5, 3_000, Change::Modified, "a"),
            (6, 3_000, Change::Deleted, "b"),
        ]
    );
    assert_eq!(recording.end, Some(StopReason::Signal));
    assert!(!recording.cut);
    // managedFields never reach a plugin, whoever wrote the file.
    assert!(!recording.initial[0].1.json().contains("managedFields"));
    assert_eq!(recording.events[1].object.parse()["data"]["k"], "2");
    // Every line is one JSON document ending in a newline.
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.lines().count(), 7);
    assert!(
        text.ends_with("{\"type\":\"end\",\"timeMs\":9000,\"events\":3,\"reason\":\"signal\"}\n")
    );
}

#[test]
fn a_recording_cut_short_is_read_up_to_its_last_whole_line() {
    let whole = written(|w| {
        w.initial(&cm("a", "1")).unwrap();
        w.event(Change::Modified, 2_000, &cm("a", "2")).unwrap();
        w.event(Change::Modified, 2_100, &cm("a", "3")).unwrap();
    });
    let text = String::from_utf8(whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Killed before the end line.
    let no_end = lines[..4].join("\n") + "\n";
    let recording = read(no_end.as_bytes()).unwrap();
    assert_eq!(
        (recording.events.len(), recording.end, recording.cut),
        (2, None, false)
    );
    // Killed in the middle of a line.
    let cut = format!("{}\n{}", lines[..3].join("\n"), &lines[3][..20]);
    let recording = read(cut.as_bytes()).unwrap();
    assert_eq!((recording.events.len(), recording.cut), (1, true));
}

#[test]
fn every_malformed_line_is_named_by_file_line_and_problem() {
    let h = header_line();
    let i = |v: Value| json!({"type": "initial", "object": v}).to_string();
    let e = |t: &str, ms: i64, v: Value| json!({"type": t, "timeMs": ms, "object": v}).to_string();
    let ns =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "rec.jsonl:1: the file is empty (no header)"),
        (
            "hello\n".into(),
            "rec.jsonl:1: not a kubewasm recording: the header is not JSON",
        ),
        (
            "{\"kinds\":[]}\n".into(),
            "rec.jsonl:1: not a kubewasm recording: the header has no kubewasmRecording",
        ),
        (
            h.replace("\"kubewasmRecording\":1", "\"kubewasmRecording\":2") + "\n",
            "rec.jsonl:1: format version 2 is not one this kubewasm reads (1)",
        ),
        (
            h.replace("\"secrets\"", "\"extra\":1,\"secrets\"") + "\n",
            "rec.jsonl:1: header: unknown field `extra`",
        ),
        (
            h.replace("\"kind\":\"ConfigMap\"", "\"kind\":\"Config/Map\"") + "\n",
            "rec.jsonl:1: header: kinds[0]:",
        ),
        (
            h.replace("\"plural\":\"namespaces\"", "\"plural\":\"configmaps\"")
                .replace("\"kind\":\"Namespace\"", "\"kind\":\"ConfigMap\"")
                + "\n",
            "rec.jsonl:1: header: kinds[1] repeats kinds[0] (ConfigMap)",
        ),
        (
            h.replace("[\"shop\"]", "[\"a/b\"]") + "\n",
            "rec.jsonl:1: header: namespaces[0] \"a/b\" contains '/'",
        ),
        (
            h.replace("app=web", "app in (") + "\n",
            "rec.jsonl:1: header: selector:",
        ),
        (
            h.replace("data.password", "data..x") + "\n",
            "rec.jsonl:1: header: redactions[0]: an empty field name",
        ),
        (
            format!("{h}\nnot json\n"),
            "rec.jsonl:2: not a recording line:",
        ),
        (
            format!("{h}\n{{\"type\":\"renamed\",\"object\":{{}}}}\n"),
            "rec.jsonl:2: not a recording line: unknown variant `renamed`",
        ),
        (
            format!(
                "{h}\n{}\n",
                json!({"type": "initial", "object": {}, "extra": 1})
            ),
            "rec.jsonl:2: not a recording line: unknown field `extra`",
        ),
        (
            format!("{h}\n{}\n", i(json!([1]))),
            "rec.jsonl:2: the object is not a JSON object",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"}})
                )
            ),
            "rec.jsonl:2: the object's apiVersion \"v1\" and kind \"Secret\" are not a kind of the header",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(json!({"apiVersion": "v1", "kind": "Namespace"}))
            ),
            "rec.jsonl:2: the object has no metadata",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}))
            ),
            "rec.jsonl:2: the object has no metadata.name",
        ),
        (
            format!("{h}\n{}\n", i(ns("../etc"))),
            "rec.jsonl:2: metadata.name \"../etc\" contains '/'",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}))
            ),
            "rec.jsonl:2: a ConfigMap has no metadata.namespace: the kind is namespaced",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "Bad_NS"}})
                )
            ),
            "rec.jsonl:2: metadata.namespace \"Bad_NS\" is not a DNS-1123 label",
        ),
        (
            format!(
                "{h}\n{}\n",
                i(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "namespace": "b"}})
                )
            ),
            "rec.jsonl:2: a Namespace has a metadata.namespace: the kind is cluster-scoped",
        ),
        (
            format!("{h}\n{}\n{}\n", i(ns("a")), i(ns("a"))),
            "rec.jsonl:3: Namespace a is listed twice",
        ),
        (
            format!("{h}\n{}\n{}\n", e("added", 2_000, ns("a")), i(ns("b"))),
            "rec.jsonl:3: an initial object after the first event",
        ),
        (
            format!("{h}\n{}\n{}\n", i(ns("a")), e("added", 2_000, ns("a"))),
            "rec.jsonl:3: Namespace a is added but the recording already holds it",
        ),
        (
            format!("{h}\n{}\n", e("modified", 2_000, ns("a"))),
            "rec.jsonl:2: Namespace a is modified but the recording does not hold it",
        ),
        (
            format!("{h}\n{}\n", e("deleted", 2_000, ns("a"))),
            "rec.jsonl:2: Namespace a is deleted but the recording does not hold it",
        ),
        (
            format!("{h}\n{}\n", e("added", 999, ns("a"))),
            "rec.jsonl:2: time 999 is before the line above's (1000): events must be in order",
        ),
        (
            format!(
                "{h}\n{}\n{}\n",
                e("added", 3_000, ns("a")),
                e("added", 2_000, ns("b"))
            ),
            "rec.jsonl:3: time 2000 is before the line above's (3000)",
        ),
        (
            format!(
                "{h}\n{}\n",
                json!({"type": "end", "timeMs": 2_000, "events": 4, "reason": "signal"})
            ),
            "rec.jsonl:2: the end line counts 4 events; the recording holds 0",
        ),
        (
            format!(
                "{h}\n{}\n{}\n",
                json!({"type": "end", "timeMs": 2_000, "events": 0, "reason": "signal"}),
                i(ns("a"))
            ),
            "rec.jsonl:3: a line after the end line",
        ),
    ];
    for (text, expected) in cases {
        let got = error(&text);
        assert!(
            got.starts_with(expected),
            "expected {expected:?}\n     got {got:?}"
        );
    }
    let mut not_utf8 = format!("{h}\n").into_bytes();
    not_utf8.extend_from_slice(b"{\"a\":\"\xff\"}\n");
    assert_eq!(
        read(&not_utf8).unwrap_err().to_string(),
        "rec.jsonl:2: not UTF-8 at byte 6"
    );
}

#[test]
fn lines_files_and_kinds_are_bounded() {
    let bytes = written(|w| {
        w.initial(&cm("a", &"x".repeat(600))).unwrap();
        for n in 0..10 {
            w.event(Change::Modified, 2_000 + n, &cm("a", &n.to_string()))
                .unwrap();
        }
    });
    let small = Limits {
        max_line_bytes: 512,
        ..Limits::default()
    };
    assert_eq!(
        read_with(&bytes, small).unwrap_err().to_string(),
        "rec.jsonl:2: a line longer than 512 bytes"
    );
    let file = Limits {
        max_file_bytes: 1_500,
        ..Limits::default()
    };
    let got = read_with(&bytes, file).unwrap_err().to_string();
    assert!(
        got.ends_with(": the recording is larger than 1500 bytes"),
        "{got}"
    );
    let kinds = Limits {
        max_kinds: 1,
        ..Limits::default()
    };
    assert_eq!(
        read_with(&bytes, kinds).unwrap_err().to_string(),
        "rec.jsonl:1: header: 2 kinds (at most 1)"
    );
    // An endless line is refused at the bound, not read whole.
    let endless = std::io::repeat(b'x');
    let got = Recording::from_reader(Path::new("rec.jsonl"), endless, small)
        .unwrap_err()
        .to_string();
    assert_eq!(got, "rec.jsonl:1: a line longer than 512 bytes");
    assert!(read(&bytes).is_ok());
}

#[test]
fn a_missing_file_names_its_path() {
    let err = Recording::read(Path::new("/nonexistent/rec.jsonl"), Limits::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to read recording /nonexistent/rec.jsonl")
    );
}

#[test]
fn a_line_cannot_forge_output_through_the_error_it_causes() {
    // serde quotes the unknown variant, which is the file's text.
    let forged = json!({"type": "x\nINFO kubewasm: all clear\u{1b}[2J"}).to_string();
    let text = error(&format!("{}\n{forged}\n", header_line()));
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(text.starts_with("rec.jsonl:2: "), "{text}");
    assert!(text.contains("x\\nINFO kubewasm"), "{text}");
}
