//! The component loader: mutated and random component bytes through
//! `Runtime::load`, and whole plugin directory entries (component, settings,
//! scope file) through `loader::load_file`.

use std::sync::OnceLock;
use std::time::Duration;

use kubewasm::contract::{Event, EventType, ResourceKind};
use kubewasm::runtime::{ReadAccess, Runtime, RuntimeConfig};
use serde_json::{Value, json};

use super::{Gen, Verdict};
use crate::support;

/// How each case's bytes were made; read only by `Debug`, for the
/// failure report.
#[derive(Debug)]
#[allow(dead_code)]
pub enum Shape {
    Valid,
    BitFlips(Vec<usize>),
    Overwrite(Vec<(usize, u8)>),
    Insert(usize, usize),
    Delete(usize, usize),
    Truncate(usize),
    Splice(usize, usize),
    HeaderThenRandom(&'static str),
}

pub struct Case {
    pub shape: Shape,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}, {} bytes", self.shape, self.bytes.len())
    }
}

/// Two small valid components: a well-behaved one and one that traps.
fn components() -> &'static (Vec<u8>, Vec<u8>) {
    static COMPONENTS: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    COMPONENTS.get_or_init(|| {
        let ok = format!("(i32.const {})", support::OK_REQUEUE_RET);
        (
            support::plugin("fuzz", &ok),
            support::plugin("other", "unreachable"),
        )
    })
}

const HEADERS: [(&str, &[u8]); 4] = [
    ("component", b"\0asm\x0d\x00\x01\x00"),
    ("core module", b"\0asm\x01\x00\x00\x00"),
    ("magic only", b"\0asm"),
    ("none", b""),
];

pub fn case(g: &mut Gen) -> Case {
    let (valid, other) = components();
    let mut bytes = valid.clone();
    let at = |g: &mut Gen, len: usize| g.below(len);
    let shape = match g.below(8) {
        0 if g.chance(1, 4) => Shape::Valid,
        0 | 1 => {
            let bits: Vec<usize> = (0..1 + g.below(8))
                .map(|_| at(g, bytes.len() * 8))
                .collect();
            for bit in &bits {
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            Shape::BitFlips(bits)
        }
        2 => {
            let edits: Vec<(usize, u8)> = (0..1 + g.below(8))
                .map(|_| {
                    let value = match g.below(3) {
                        0 => *g.pick(&[&0u8, &0xff, &0x7f, &0x80, &0x01, &0x40]),
                        _ => g.u8(),
                    };
                    (at(g, bytes.len()), value)
                })
                .collect();
            for (i, v) in &edits {
                bytes[*i] = *v;
            }
            Shape::Overwrite(edits)
        }
        3 => {
            let (pos, len) = (at(g, bytes.len() + 1), 1 + g.below(64));
            let noise = g.bytes(len);
            bytes.splice(pos..pos, noise.iter().copied());
            Shape::Insert(pos, noise.len())
        }
        4 => {
            let pos = at(g, bytes.len());
            let len = (1 + g.below(256)).min(bytes.len() - pos);
            bytes.drain(pos..pos + len);
            Shape::Delete(pos, len)
        }
        5 => {
            let len = at(g, bytes.len());
            bytes.truncate(len);
            Shape::Truncate(len)
        }
        6 => {
            // The head of one component, the tail of another.
            let (cut, from) = (at(g, bytes.len()), at(g, other.len()));
            bytes.truncate(cut);
            bytes.extend_from_slice(&other[from..]);
            Shape::Splice(cut, from)
        }
        _ => {
            let (name, header) = HEADERS[g.below(HEADERS.len())];
            bytes = header.to_vec();
            bytes.extend(g.bytes(512));
            Shape::HeaderThenRandom(name)
        }
    };
    Case { shape, bytes }
}

fn runtime() -> Runtime {
    // Small limits: a mutated component may loop or grow memory.
    Runtime::new(RuntimeConfig {
        max_memory_bytes: 16 << 20,
        call_timeout: Duration::from_millis(200),
        pool_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// A Namespace event, the simplest thing to call a loaded plugin with.
fn event() -> Event {
    let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fuzz"}});
    let kind = ResourceKind {
        group: String::new(),
        version: "v1".into(),
        kind: "Namespace".into(),
        plural: "namespaces".into(),
        namespaced: false,
    };
    let event_type = EventType::Applied;
    Event {
        event_type,
        kind,
        object: std::sync::Arc::new(kubewasm::cluster::object::CachedObject::from_value(&object)),
    }
}

const ORIGIN: &str = "/plugins/fuzzed.wasm";
const LOAD_LABELS: [&str; 7] = [
    "not_wasm",
    "not_component",
    "compile",
    "not_granted",
    "wrong_world",
    "describe",
    "invalid_description",
];

#[test]
fn fuzz_component_loader() {
    let runtime = runtime();
    super::run(
        "component_loader",
        super::loader_cases(20),
        case,
        |case| match runtime.load(ORIGIN, &case.bytes) {
            Ok(plugin) => {
                plugin
                    .info()
                    .validate()
                    .map_err(|e| format!("loaded an invalid description: {e}"))?;
                // A loaded plugin is callable: whatever it does, the call
                // returns (an outcome or a named error).
                if let Err(e) = plugin.reconcile(&event(), ReadAccess::offline("{}")) {
                    let _ = e.metric_label();
                }
                Ok(Verdict::Accepted)
            }
            Err(e) => {
                let message = kubewasm::error_chain(&e);
                if !message.starts_with(ORIGIN) {
                    return Err(format!("load error does not name the origin: {message}"));
                }
                if !LOAD_LABELS.contains(&e.metric_label()) {
                    return Err(format!("unbounded metric label {}", e.metric_label()));
                }
                Ok(Verdict::Refused)
            }
        },
    );
}

/// A plugin directory entry: the component, its settings and its scope
/// file, each valid, absent or hostile.
#[derive(Debug)]
pub struct FileCase {
    wasm: Case,
    settings: Option<String>,
    scope: Option<String>,
}

#[test]
fn fuzz_plugin_files() {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm_path = dir.path().join("fuzzed.wasm");
    super::run(
        "plugin_files",
        super::loader_cases(20),
        |g| {
            let mut wasm = case(g);
            if g.chance(2, 3) {
                wasm = Case {
                    shape: Shape::Valid,
                    bytes: components().0.clone(),
                };
            }
            let settings = g.bool().then(|| {
                let value = g.value(3);
                g.json_text(&value)
            });
            let scope = g.bool().then(|| super::parsers::grant_case(g).text);
            FileCase {
                wasm,
                settings,
                scope,
            }
        },
        |case| {
            let settings_path = wasm_path.with_extension("settings.json");
            let scope_path = wasm_path.with_extension("scope.json");
            std::fs::write(&wasm_path, &case.wasm.bytes).map_err(|e| e.to_string())?;
            for (path, text) in [(&settings_path, &case.settings), (&scope_path, &case.scope)] {
                match text {
                    Some(text) => std::fs::write(path, text).map_err(|e| e.to_string())?,
                    None => {
                        let _ = std::fs::remove_file(path);
                    }
                }
            }
            match kubewasm::plugins::loader::load_file(&runtime, &wasm_path) {
                Ok(loaded) => {
                    let expected: Value = match &case.settings {
                        Some(text) => serde_json::from_str(text)
                            .map_err(|e| format!("settings that do not parse loaded: {e}"))?,
                        None => json!({}),
                    };
                    let seen: Value = serde_json::from_str(&loaded.settings)
                        .map_err(|e| format!("settings handed over do not parse: {e}"))?;
                    if !super::parsers::same_json(&seen, &expected) {
                        return Err(format!("the plugin sees settings {seen}"));
                    }
                    let grant = match &case.scope {
                        Some(text) => kubewasm::plugins::grant::Grant::parse(text)
                            .map_err(|e| format!("a refused scope file loaded: {e}"))?,
                        None => kubewasm::plugins::grant::Grant::unconfined(),
                    };
                    if *loaded.grant != grant {
                        return Err(format!("loaded grant {:?}", loaded.grant));
                    }
                    Ok(Verdict::Accepted)
                }
                Err(e) => {
                    let message = kubewasm::error_chain(&e);
                    let named = [&wasm_path, &settings_path, &scope_path]
                        .iter()
                        .any(|p| message.contains(&p.display().to_string()));
                    if !named {
                        return Err(format!("error names none of the plugin's files: {message}"));
                    }
                    Ok(Verdict::Refused)
                }
            }
        },
    );
}
