//! Reading a recording: hostile input, so every line and the whole file are
//! bounded, every kind and name is checked, the events must be consistent
//! (no `added` of an object held, no `modified` or `deleted` of one not
//! held), and every error names the file, the line and what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::{Change, FORMAT_VERSION, Header, Line, RedactPath, StopReason};
use crate::cluster::object::CachedObject;
use crate::contract::names;
use crate::contract::selector::LabelSelector;
use crate::contract::{ResourceKind, split_api_version};
use crate::ops::printable;

/// Size bounds of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest line: an object (the API server's own limit is about 1.5 MiB
    /// of etcd storage) with its envelope.
    pub max_line_bytes: usize,
    /// Largest recording read; it is held in memory while replayed.
    pub max_file_bytes: u64,
    /// Most kinds in a header.
    pub max_kinds: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line_bytes: 8 << 20,
            max_file_bytes: 2 << 30,
            max_kinds: 1024,
        }
    }
}

/// Longest problem text a recording error repeats (serde quotes the
/// offending key or value, which is the file's).
const MAX_PROBLEM_CHARS: usize = 1024;

/// A recording that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("failed to read recording {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Invalid {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

/// One recorded event.
#[derive(Clone, Debug)]
pub struct RecordedEvent {
    /// Its line in the file (1-based), to name it in reports.
    pub line: usize,
    pub time_ms: i64,
    pub change: Change,
    /// Index into [`Recording::kinds`].
    pub kind: usize,
    pub object: Arc<CachedObject>,
}

/// A recording read into memory.
#[derive(Debug)]
pub struct Recording {
    pub header: Header,
    /// The header's kinds, in its order.
    pub kinds: Vec<ResourceKind>,
    /// The initial objects as (kind index, object), in file order.
    pub initial: Vec<(usize, Arc<CachedObject>)>,
    pub events: Vec<RecordedEvent>,
    /// The end line's reason; `None` if the recording was cut short.
    pub end: Option<StopReason>,
    /// Whether the last line was cut (not ended by a newline, and not a
    /// whole document); it was ignored.
    pub cut: bool,
}

/// (kind index, namespace, name).
type Key = (usize, Option<String>, String);

impl Recording {
    /// Reads the recording at `path` within `limits`.
    pub fn read(path: &Path, limits: Limits) -> Result<Self, RecordingError> {
        let file = std::fs::File::open(path).map_err(|source| RecordingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_reader(path, file, limits)
    }

    /// Reads a recording from `input`; `path` names it in errors.
    pub fn from_reader(
        path: &Path,
        input: impl Read,
        limits: Limits,
    ) -> Result<Self, RecordingError> {
        let mut reader = Reader {
            path,
            input: BufReader::new(input.take(limits.max_file_bytes.saturating_add(1))),
            limits,
            line: 0,
            total: 0,
        };
        let invalid = |line, problem: String| RecordingError::Invalid {
            path: path.to_path_buf(),
            line,
            problem: printable(&problem, MAX_PROBLEM_CHARS),
        };
        let Some((text, _)) = reader.next_line()? else {
            return Err(invalid(1, "the file is empty (no header)".into()));
        };
        let header = parse_header(&text, limits).map_err(|p| invalid(1, p))?;
        let kinds = header
            .kinds
            .iter()
            .map(|k| {
                let (group, version) = split_api_version(&k.api_version);
                ResourceKind {
                    group: group.into(),
                    version: version.into(),
                    kind: k.kind.clone(),
                    plural: k.plural.clone(),
                    namespaced: k.namespaced,
                }
            })
            .collect::<Vec<_>>();
        let mut recording = Recording {
            header,
            kinds,
            initial: Vec::new(),
            events: Vec::new(),
            end: None,
            cut: false,
        };
        let mut held: BTreeSet<Key> = BTreeSet::new();
        let mut last_ms = recording.header.time_ms;
        while let Some((text, ended)) = reader.next_line()? {
            let line = reader.line;
            if recording.end.is_some() {
                return Err(invalid(line, "a line after the end line".into()));
            }
            let parsed: Line<Value> = match serde_json::from_str(&text) {
                Ok(parsed) => parsed,
                // A recording killed mid-write: its last line is cut.
                Err(_) if !ended => {
                    recording.cut = true;
                    break;
                }
                Err(e) => return Err(invalid(line, format!("not a recording line: {e}"))),
            };
            let (change, time_ms, object) = match parsed {
                Line::Initial { object } => {
                    if !recording.events.is_empty() {
                        return Err(invalid(
                            line,
                            "an initial object after the first event".into(),
                        ));
                    }
                    let (kind, object) = recording.object(object).map_err(|p| invalid(line, p))?;
                    if !held.insert(key(kind, &object)) {
                        return Err(invalid(
                            line,
                            format!(
                                "{} is listed twice",
                                describe(&recording.kinds[kind], &object)
                            ),
                        ));
                    }
                    recording.initial.push((kind, object));
                    continue;
                }
                Line::End {
                    time_ms,
                    events,
                    reason,
                } => {
                    if time_ms < last_ms {
                        return Err(invalid(
                            line,
                            format!("time {time_ms} is before the line above's ({last_ms})"),
                        ));
                    }
                    if events != recording.events.len() as u64 {
                        return Err(invalid(
                            line,
                            format!(
                                "the end line counts {events} events; the recording holds {}",
                                recording.events.len()
                            ),
                        ));
                    }
                    recording.end = Some(reason);
                    continue;
                }
                Line::Added { time_ms, object } => (Change::Added, time_ms, object),
                Line::Modified { time_ms, object } => (Change::Modified, time_ms, object),
                Line::Deleted { time_ms, object } => (Change::Deleted, time_ms, object),
            };
            if time_ms < last_ms {
                return Err(invalid(
                    line,
                    format!(
                        "time {time_ms} is before the line above's ({last_ms}): events must be in order"
                    ),
                ));
            }
            last_ms = time_ms;
            let (kind, object) = recording.object(object).map_err(|p| invalid(line, p))?;
            let k = key(kind, &object);
            let consistent = match change {
                Change::Added => held.insert(k),
                Change::Modified => held.contains(&k),
                Change::Deleted => held.remove(&k),
            };
            if !consistent {
                let what = describe(&recording.kinds[kind], &object);
                return Err(invalid(
                    line,
                    match change {
                        Change::Added => {
                            format!("{what} is added but the recording already holds it")
                        }
                        _ => format!(
                            "{what} is {} but the recording does not hold it",
                            change.as_str()
                        ),
                    },
                ));
            }
            recording.events.push(RecordedEvent {
                line,
                time_ms,
                change,
                kind,
                object,
            });
        }
        Ok(recording)
    }

    /// Checks an object line's object and finds its kind.
    fn object(&self, mut object: Value) -> Result<(usize, Arc<CachedObject>), String> {
        let Value::Object(fields) = &mut object else {
            return Err("the object is not a JSON object".into());
        };
        let api_version = fields
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind_name = fields
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = split_api_version(api_version);
        let Some(index) = self
            .kinds
            .iter()
            .position(|k| k.group == group && k.version == version && k.kind == kind_name)
        else {
            return Err(format!(
                "the object's apiVersion {api_version:?} and kind {kind_name:?} are not a kind of the header"
            ));
        };
        let kind = &self.kinds[index];
        let Some(Value::Object(metadata)) = fields.get_mut("metadata") else {
            return Err("the object has no metadata".into());
        };
        metadata.remove("managedFields");
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .ok_or("the object has no metadata.name")?;
        names::validate_name(&kind.group, &kind.kind, name)
            .map_err(|e| format!("metadata.name {e}"))?;
        match (metadata.get("namespace"), kind.namespaced) {
            (Some(Value::String(ns)), true) => {
                names::validate_namespace(ns).map_err(|e| format!("metadata.namespace {e}"))?
            }
            (_, true) => {
                return Err(format!(
                    "a {} has no metadata.namespace: the kind is namespaced",
                    kind.kind
                ));
            }
            (None, false) => {}
            (Some(_), false) => {
                return Err(format!(
                    "a {} has a metadata.namespace: the kind is cluster-scoped",
                    kind.kind
                ));
            }
        }
        Ok((index, Arc::new(CachedObject::from_value(&object))))
    }
}

fn key(kind: usize, object: &CachedObject) -> Key {
    (
        kind,
        object.namespace().map(str::to_string),
        object.name().to_string(),
    )
}

/// `Kind ns/name` (or `Kind name`).
pub fn describe(kind: &ResourceKind, object: &CachedObject) -> String {
    match object.namespace() {
        Some(ns) => format!("{} {ns}/{}", kind.kind, object.name()),
        None => format!("{} {}", kind.kind, object.name()),
    }
}

fn parse_header(text: &str, limits: Limits) -> Result<Header, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("not a kubewasm recording: the header is not JSON: {e}"))?;
    match value.get("kubewasmRecording") {
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(other) => {
            return Err(format!(
                "format version {other} is not one this kubewasm reads ({FORMAT_VERSION})"
            ));
        }
        None => return Err("not a kubewasm recording: the header has no kubewasmRecording".into()),
    }
    let header: Header = serde_json::from_value(value).map_err(|e| format!("header: {e}"))?;
    if header.kinds.is_empty() {
        return Err("header: no kinds".into());
    }
    if header.kinds.len() > limits.max_kinds {
        return Err(format!(
            "header: {} kinds (at most {})",
            header.kinds.len(),
            limits.max_kinds
        ));
    }
    let mut seen = BTreeMap::new();
    for (i, kind) in header.kinds.iter().enumerate() {
        let (group, version) = split_api_version(&kind.api_version);
        let checks = [
            names::check_group_name(group),
            names::check_version_name(version),
            names::check_kind_name(&kind.kind),
            names::validate_namespace(&kind.plural).map_err(|e| format!("plural {e}")),
        ];
        if let Some(Err(e)) = checks.into_iter().find(Result::is_err) {
            return Err(format!("header: kinds[{i}]: {e}"));
        }
        if let Some(first) = seen.insert((group.to_string(), kind.kind.clone()), i) {
            return Err(format!(
                "header: kinds[{i}] repeats kinds[{first}] ({})",
                kind.kind
            ));
        }
    }
    for (i, ns) in header.namespaces.iter().enumerate() {
        names::validate_namespace(ns).map_err(|e| format!("header: namespaces[{i}] {e}"))?;
    }
    if let Some(selector) = &header.selector {
        LabelSelector::parse(selector).map_err(|e| format!("header: selector: {e}"))?;
    }
    for (i, path) in header.redactions.iter().enumerate() {
        RedactPath::parse(path).map_err(|e| format!("header: redactions[{i}]: {e}"))?;
    }
    Ok(header)
}

struct Reader<'a, R> {
    path: &'a Path,
    input: BufReader<std::io::Take<R>>,
    limits: Limits,
    /// The line last read (1-based).
    line: usize,
    total: u64,
}

impl<R: Read> Reader<'_, R> {
    /// The next line and whether it ended with a newline; `None` at the end.
    fn next_line(&mut self) -> Result<Option<(String, bool)>, RecordingError> {
        let mut bytes = Vec::new();
        let max = self.limits.max_line_bytes;
        let read = (&mut self.input)
            .take(max as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(|source| RecordingError::Read {
                path: self.path.to_path_buf(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.total += read as u64;
        let invalid = |problem: String| RecordingError::Invalid {
            path: self.path.to_path_buf(),
            line: self.line,
            problem: printable(&problem, MAX_PROBLEM_CHARS),
        };
        if self.total > self.limits.max_file_bytes {
            return Err(invalid(format!(
                "the recording is larger than {} bytes",
                self.limits.max_file_bytes
            )));
        }
        let ended = bytes.last() == Some(&b'\n');
        if ended {
            bytes.pop();
        }
        if bytes.len() > max {
            return Err(invalid(format!("a line longer than {max} bytes")));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            invalid(format!(
                "not UTF-8 at byte {}",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok(Some((text, ended)))
    }
}
