//! The recording file of `kubewasm record` and `kubewasm replay`: a slice of
//! a cluster's traffic, one JSON document per line (JSON Lines).
//!
//! ```text
//! {"kubewasmRecording":1,"recordedAt":"2026-12-04T23:40:00.120Z","timeMs":1796514000120,
//!  "kinds":[{"apiVersion":"v1","kind":"ConfigMap","plural":"configmaps","namespaced":true}],
//!  "namespaces":["team-a"],"selector":null,"redactions":["data.password"],"secrets":false,
//!  "plugin":{"name":"label-propagator","version":"0.3.0"}}
//! {"type":"initial","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{...},...}}
//! {"type":"added","timeMs":1796514001342,"object":{...}}
//! {"type":"modified","timeMs":1796514002001,"object":{...}}
//! {"type":"deleted","timeMs":1796514002950,"object":{...the last state...}}
//! {"type":"end","timeMs":1796514060120,"events":3,"reason":"signal"}
//! ```
//!
//! - The **header** (line 1) names the format version, when the initial
//!   list completed (`timeMs`, milliseconds since the Unix epoch), every
//!   recorded kind at the version recorded, and what was left out or
//!   changed: the namespaces and label selector recorded (none: all),
//!   the [redaction paths](redact) applied, and whether Secrets were kept.
//! - Then the **initial objects**: what the first list returned, one per
//!   line, ordered by kind (as in the header), namespace and name.
//! - Then the **events** in the order they arrived, each with the time it
//!   arrived (never earlier than the line before): `added` (an object the
//!   recording did not hold), `modified`, `deleted` (with its last state).
//!   An object that stops matching the selector is `deleted`; one that
//!   starts matching is `added`.
//! - The **end** line, written when the recording stops, counts the events.
//!   A recording stopped by a crash or `SIGKILL` has no end line and may end
//!   in a cut line: it is still read (up to its last whole line), and a
//!   replay says it is incomplete.
//!
//! Objects are as plugins see them: `metadata.managedFields` removed,
//! `apiVersion` and `kind` set. Reading ([`read`]) treats the file as
//! hostile input: lines and the file are bounded in size, every name is
//! checked, and every error names the file, the line and what is wrong.

pub mod read;
pub mod redact;

use std::io::Write;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use read::{Limits, RecordedEvent, Recording, RecordingError};
pub use redact::RedactPath;

/// The format version this host writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first line of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Header {
    /// The format version, [`FORMAT_VERSION`].
    pub kubewasm_recording: u32,
    /// `time_ms` as RFC 3339, for people.
    pub recorded_at: String,
    /// When the initial list completed: the instant the initial objects
    /// are replayed at.
    pub time_ms: i64,
    pub kinds: Vec<RecordedKind>,
    /// The namespaces recorded; empty: every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// The label selector objects were recorded with, if any.
    #[serde(default)]
    pub selector: Option<String>,
    /// The redaction paths applied to every object.
    #[serde(default)]
    pub redactions: Vec<String>,
    /// Whether Secrets were recorded (`--include-secrets`).
    #[serde(default)]
    pub secrets: bool,
    /// The plugin whose kinds were recorded (`--plugin`), if one was named.
    #[serde(default)]
    pub plugin: Option<RecordedPlugin>,
}

/// One recorded kind, at the version recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedKind {
    pub api_version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
}

/// The plugin a recording was made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedPlugin {
    pub name: String,
    pub version: String,
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Modified => "modified",
            Change::Deleted => "deleted",
        }
    }
}

/// Why a recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// `--duration` passed.
    Duration,
    /// SIGTERM or SIGINT (Ctrl-C).
    Signal,
    /// The watch could not go on (the error was reported).
    Error,
}

/// A line after the header; `O` is the object (owned when read, borrowed
/// when written).
#[derive(Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub(crate) enum Line<O> {
    Initial {
        object: O,
    },
    Added {
        time_ms: i64,
        object: O,
    },
    Modified {
        time_ms: i64,
        object: O,
    },
    Deleted {
        time_ms: i64,
        object: O,
    },
    End {
        time_ms: i64,
        events: u64,
        reason: StopReason,
    },
}

/// Writes a recording line by line. Each line is written whole; call
/// [`flush`](Self::flush) whenever the stream is idle so a recording cut
/// short still holds everything up to then.
pub struct Writer<W: Write> {
    out: W,
    events: u64,
    last_ms: i64,
}

impl<W: Write> Writer<W> {
    /// Writes the header.
    pub fn start(mut out: W, header: &Header) -> std::io::Result<Self> {
        write_line(&mut out, header)?;
        Ok(Self {
            out,
            events: 0,
            last_ms: header.time_ms,
        })
    }

    /// Writes one initial object.
    pub fn initial(&mut self, object: &Value) -> std::io::Result<()> {
        write_line(&mut self.out, &Line::Initial { object })
    }

    /// Writes one event at `time_ms` (moved up to the previous line's time
    /// if the clock went back, so times never decrease).
    pub fn event(&mut self, change: Change, time_ms: i64, object: &Value) -> std::io::Result<()> {
        let time_ms = time_ms.max(self.last_ms);
        self.last_ms = time_ms;
        self.events += 1;
        let line = match change {
            Change::Added => Line::Added { time_ms, object },
            Change::Modified => Line::Modified { time_ms, object },
            Change::Deleted => Line::Deleted { time_ms, object },
        };
        write_line(&mut self.out, &line)
    }

    /// Events written so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Writes the end line and flushes.
    pub fn finish(mut self, time_ms: i64, reason: StopReason) -> std::io::Result<W> {
        let line: Line<&Value> = Line::End {
            time_ms: time_ms.max(self.last_ms),
            events: self.events,
            reason,
        };
        write_line(&mut self.out, &line)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn write_line<W: Write, T: Serialize>(out: &mut W, value: &T) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)
}

/// `epoch_ms` as RFC 3339 with milliseconds.
pub fn rfc3339(epoch_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(epoch_ms)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_else(|_| epoch_ms.to_string())
}

#[cfg(test)]
mod tests;
