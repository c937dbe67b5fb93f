//! `kubewasm record`: captures a slice of a live cluster into a
//! [recording](crate::recording): the objects of some kinds as the first
//! list finds them, then every change the watch reports, until
//! `--duration` passes or SIGTERM/SIGINT arrives.
//!
//! The watching is the host's own: one [`InformerRegistry`] per namespace
//! asked for (one for all if none), so relists after `410 Gone`, dropped
//! connections and throttling are handled as `kubewasm run` handles them,
//! and an object deleted while the watch was down is recorded as deleted.
//! The kinds are a plugin's (what it subscribes to, owns and watches,
//! resolved against discovery as `run` resolves them) and/or those named
//! with `--kind`. Secrets are left out unless `--include-secrets`.
//!
//! The initial list is folded into one snapshot: every event the
//! informers send before all of them have listed is part of it. Then each
//! event is written as it arrives and the file is flushed whenever the
//! stream is idle, so a recording stopped any way holds everything up to
//! then; a signal or the duration writes the end line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::cluster::client::{ClientOptions, Connection, FenceLayer};
use crate::cluster::discovery::{self, KindRegistry};
use crate::cluster::informer::{InformerRegistry, KindEvent};
use crate::cluster::object::CachedObject;
use crate::contract::selector::LabelSelector;
use crate::contract::{EventType, PluginInfo, ResourceKind};
use crate::ops::metrics::Metrics;
use crate::recording::redact::LAST_APPLIED;
use crate::recording::{
    FORMAT_VERSION, Header, RecordedKind, RecordedPlugin, RedactPath, StopReason, Writer, rfc3339,
};

mod slice;

use slice::Slice;
pub use slice::select_kinds;

/// What to record.
#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub output: PathBuf,
    /// The plugin whose kinds to record, described (`--plugin`).
    pub plugin: Option<PluginInfo>,
    /// Kinds named with `--kind` (`Kind.group`, or the plural).
    pub kinds: Vec<String>,
    pub namespaces: Vec<String>,
    pub selector: Option<String>,
    pub redactions: Vec<RedactPath>,
    pub include_secrets: bool,
    pub duration: Option<Duration>,
    pub client: ClientOptions,
}

/// Why nothing (or not everything) was recorded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Usage(String),
    #[error("failed to configure the Kubernetes client (kubeconfig or in-cluster)")]
    Client(#[source] kube::Error),
    #[error("failed to discover the API server's kinds")]
    Discovery(#[source] discovery::DiscoveryError),
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("may not list {0}: the API server refused (403); nothing recorded")]
    Forbidden(String),
    #[error("the first list of {0} did not complete within {1:?}; nothing recorded")]
    NotSynced(String, Duration),
    #[error("stopped before the first list completed; nothing recorded")]
    Interrupted,
    /// `--plugin` could not be loaded.
    #[error(transparent)]
    Plugin(Box<crate::cmd::check::OfflineError>),
}

impl RecordError {
    /// 2 for input at fault, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RecordError::Usage(_) => 2,
            RecordError::Plugin(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// What a recording holds, for the closing message.
#[derive(Debug)]
pub struct RecordSummary {
    pub kinds: usize,
    pub initial: usize,
    pub events: u64,
    pub bytes: u64,
    pub reason: StopReason,
}

impl RecordSummary {
    /// The closing line.
    pub fn render(&self, output: &std::path::Path) -> String {
        format!(
            "recorded {} initial objects and {} events of {} kinds ({} bytes) to {}; stopped by {}",
            self.initial,
            self.events,
            self.kinds,
            self.bytes,
            output.display(),
            match self.reason {
                StopReason::Duration => "--duration",
                StopReason::Signal => "a signal",
                StopReason::Error => "the watch ending",
            }
        )
    }
}

/// `kubewasm record` with its flags: loads `--plugin` (for its kinds), then
/// [`record`]s.
pub async fn command(
    args: &crate::cmd::cli::RecordArgs,
    notes: &mut dyn FnMut(&str),
) -> Result<RecordSummary, RecordError> {
    let plugin = match &args.plugin {
        None => None,
        Some(path) => {
            let runtime = crate::cmd::check::new_runtime(&args.runtime)
                .map_err(|e| RecordError::Plugin(Box::new(e)))?;
            let plugin = crate::cmd::check::load_plugin(&runtime, path)
                .map_err(|e| RecordError::Plugin(Box::new(e)))?;
            Some(plugin.info().clone())
        }
    };
    let options = RecordOptions {
        output: args.output.clone(),
        plugin,
        kinds: args.kinds.clone(),
        namespaces: args.namespaces.clone(),
        selector: args.selector.clone(),
        redactions: args.redactions.clone(),
        include_secrets: args.include_secrets,
        duration: args.duration,
        client: args.kube.client_options(),
    };
    record(options, notes).await
}

/// Runs the command: the summary, or why it recorded nothing.
pub async fn record(
    options: RecordOptions,
    notes: &mut dyn FnMut(&str),
) -> Result<RecordSummary, RecordError> {
    let write_err = |source| RecordError::Write {
        path: options.output.clone(),
        source,
    };
    // Before connecting: a bad path is found at once.
    let file = File::create(&options.output).map_err(write_err)?;
    let result = record_into(&options, file, notes).await;
    if matches!(
        result,
        Err(RecordError::Interrupted | RecordError::NotSynced(..) | RecordError::Forbidden(_))
    ) {
        let _ = std::fs::remove_file(&options.output);
    }
    result
}

async fn record_into(
    options: &RecordOptions,
    file: File,
    notes: &mut dyn FnMut(&str),
) -> Result<RecordSummary, RecordError> {
    let write_err = |source| RecordError::Write {
        path: options.output.clone(),
        source,
    };
    let client = Connection::infer(options.client)
        .await
        .and_then(|c| c.client(FenceLayer::open()))
        .map_err(RecordError::Client)?;
    let registry = KindRegistry::from(
        discovery::discover(&client)
            .await
            .map_err(RecordError::Discovery)?,
    );
    let mut said = Vec::new();
    let kinds = select_kinds(&registry, options, &mut said)?;
    for note in &said {
        notes(note);
    }
    let mut redactions = options.redactions.clone();
    if !redactions.is_empty() && !redactions.iter().any(|r| r.to_string() == LAST_APPLIED) {
        redactions.push(RedactPath::parse(LAST_APPLIED).map_err(RecordError::Usage)?);
    }
    let mut slice = Slice {
        index: kinds
            .iter()
            .enumerate()
            .map(|(i, k)| ((k.group.clone(), k.kind.clone(), k.version.clone()), i))
            .collect(),
        kinds,
        namespaces: options.namespaces.iter().cloned().collect(),
        selector: match &options.selector {
            Some(s) => LabelSelector::parse(s)
                .map_err(|e| RecordError::Usage(format!("--selector {s:?}: {e}")))?,
            None => LabelSelector::default(),
        },
        redactions,
        held: BTreeSet::new(),
    };
    let (informers, mut events) = watch(&client, &slice.kinds, &options.namespaces);
    let stop = stop_signal(options.duration);
    tokio::pin!(stop);

    // The first list, folded into one snapshot.
    let mut snapshot: BTreeMap<(usize, Option<String>, String), Arc<CachedObject>> =
        BTreeMap::new();
    let sync_limit = (options.client.request_timeout * 2).max(Duration::from_secs(60));
    let sync_deadline = tokio::time::Instant::now() + sync_limit;
    let fold = |event: KindEvent, snapshot: &mut BTreeMap<_, _>| {
        if let Some(kind) = slice.kind_index(&event.kind) {
            let key = (
                kind,
                event.object.namespace().map(str::to_string),
                event.object.name().to_string(),
            );
            if event.event_type == EventType::Deleted || !slice.wants(&event.kind, &event.object) {
                snapshot.remove(&key);
            } else {
                snapshot.insert(key, event.object);
            }
        }
    };
    loop {
        while let Some(event) = events.try_recv() {
            fold(event, &mut snapshot);
        }
        if informers.iter().all(InformerRegistry::all_synced) {
            while let Some(event) = events.try_recv() {
                fold(event, &mut snapshot);
            }
            break;
        }
        tokio::select! {
            Some(event) = events.recv() => fold(event, &mut snapshot),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = tokio::time::sleep_until(sync_deadline) => {
                return Err(RecordError::NotSynced(unsynced(&informers), sync_limit));
            }
            _ = &mut stop => return Err(RecordError::Interrupted),
        }
    }
    if let Some(kind) = informers.iter().flat_map(|i| i.forbidden()).next() {
        return Err(RecordError::Forbidden(kind.plural));
    }
    let started = jiff::Timestamp::now().as_millisecond();
    let header = Header {
        kubewasm_recording: FORMAT_VERSION,
        recorded_at: rfc3339(started),
        time_ms: started,
        kinds: slice
            .kinds
            .iter()
            .map(|k| RecordedKind {
                api_version: k.api_version(),
                kind: k.kind.clone(),
                plural: k.plural.clone(),
                namespaced: k.namespaced,
            })
            .collect(),
        namespaces: options.namespaces.clone(),
        selector: options.selector.clone(),
        redactions: slice.redactions.iter().map(ToString::to_string).collect(),
        secrets: options.include_secrets,
        plugin: options.plugin.as_ref().map(|p| RecordedPlugin {
            name: p.name.clone(),
            version: p.version.clone(),
        }),
    };
    let mut writer =
        Writer::start(Counting::new(BufWriter::new(file)), &header).map_err(write_err)?;
    for (key, object) in &snapshot {
        writer.initial(&slice.written(object)).map_err(write_err)?;
        slice.held.insert(key.clone());
    }
    let initial = snapshot.len();
    drop(snapshot);
    writer.flush().map_err(write_err)?;
    notes(&format!(
        "recording {initial} objects of {} kinds, then their changes, to {}",
        slice.kinds.len(),
        options.output.display()
    ));

    let reason = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break StopReason::Error };
                let mut next = Some(event);
                // A burst is written whole, then flushed once.
                while let Some(event) = next.take() {
                    if let Some((_, change)) = slice.change(&event) {
                        let now = jiff::Timestamp::now().as_millisecond();
                        writer.event(change, now, &slice.written(&event.object)).map_err(write_err)?;
                    }
                    next = events.try_recv();
                }
                writer.flush().map_err(write_err)?;
            }
            reason = &mut stop => break reason,
        }
    };
    drop(informers);
    let events_written = writer.events();
    let out = writer
        .finish(jiff::Timestamp::now().as_millisecond(), reason)
        .map_err(write_err)?;
    Ok(RecordSummary {
        kinds: slice.kinds.len(),
        initial,
        events: events_written,
        bytes: out.written,
        reason,
    })
}

/// Waits for the duration to pass or a signal.
async fn stop_signal(duration: Option<Duration>) -> StopReason {
    let elapsed = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = elapsed => StopReason::Duration,
        _ = crate::cmd::run::shutdown_signal() => StopReason::Signal,
    }
}

/// Starts the informers: one registry per namespace (namespaced kinds
/// only, cluster-scoped ones in the first), or one for all.
fn watch(
    client: &kube::Client,
    kinds: &[ResourceKind],
    namespaces: &[String],
) -> (Vec<InformerRegistry>, Events) {
    let metrics = Arc::new(Metrics::new());
    let scopes: Vec<Option<String>> = match namespaces {
        [] => vec![None],
        list => list.iter().cloned().map(Some).collect(),
    };
    let mut informers = Vec::new();
    let mut receivers = Vec::new();
    for (i, scope) in scopes.into_iter().enumerate() {
        let namespaced_only = scope.is_some() && i > 0;
        let (registry, events) = InformerRegistry::new(client.clone(), scope, metrics.clone());
        for kind in kinds.iter().filter(|k| k.namespaced || !namespaced_only) {
            registry.subscribe(kind);
        }
        informers.push(registry);
        receivers.push(events);
    }
    (informers, Events(receivers))
}

/// The informers' events, read straight from each registry (no task in
/// between), so that once every informer reports its first list done,
/// every event of that list can be taken at once.
struct Events(Vec<mpsc::UnboundedReceiver<KindEvent>>);

impl Events {
    /// An event already sent, if any.
    fn try_recv(&mut self) -> Option<KindEvent> {
        self.0.iter_mut().find_map(|r| r.try_recv().ok())
    }

    /// The next event; `None` once every registry is gone.
    async fn recv(&mut self) -> Option<KindEvent> {
        std::future::poll_fn(|cx| {
            let mut open = false;
            for receiver in &mut self.0 {
                match receiver.poll_recv(cx) {
                    std::task::Poll::Ready(Some(event)) => {
                        return std::task::Poll::Ready(Some(event));
                    }
                    std::task::Poll::Ready(None) => {}
                    std::task::Poll::Pending => open = true,
                }
            }
            match open {
                true => std::task::Poll::Pending,
                false => std::task::Poll::Ready(None),
            }
        })
        .await
    }
}

fn unsynced(informers: &[InformerRegistry]) -> String {
    let mut kinds: Vec<String> = informers
        .iter()
        .flat_map(|i| i.watched())
        .map(|(k, _)| k.plural)
        .collect();
    kinds.dedup();
    kinds.join(", ")
}

/// A writer that counts the bytes written.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W> Counting<W> {
    fn new(inner: W) -> Self {
        Self { inner, written: 0 }
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
