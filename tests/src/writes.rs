//! The API server's own record of who wrote what: a watch on ConfigMaps
//! the probe plugin reconciles, noting each change of its mark or echo
//! annotation with the new resourceVersion. Every host runs the probe with
//! its own mark, so the log says which host wrote, in the API server's
//! order, whatever the hosts' clocks say (the leader election and sharding
//! tests judge overlap on it).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::eventually;
use crate::probe::{self, ECHO, MARK};

/// A write the API server recorded.
#[derive(Clone, Debug)]
pub struct Write {
    /// `namespace/name` of the ConfigMap.
    pub object: String,
    /// Its resourceVersion after the write.
    pub version: u64,
    /// The mark of the host that wrote it.
    pub writer: String,
    /// When the test's watch received it.
    pub seen: Instant,
}

/// Every change of a watched ConfigMap's mark or echo, from a watch
/// started before any host.
#[derive(Clone, Default)]
pub struct WriteLog(Arc<Mutex<Vec<Write>>>);

impl WriteLog {
    /// Starts recording the changes `configmaps` sees.
    pub fn record(configmaps: Api<ConfigMap>) -> (Self, tokio::task::JoinHandle<()>) {
        let log = WriteLog::default();
        let writes = log.clone();
        let task = tokio::spawn(async move {
            let mut last: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
            let mut stream = std::pin::pin!(
                watcher(configmaps, watcher::Config::default())
                    .default_backoff()
                    .applied_objects()
            );
            while let Some(event) = stream.next().await {
                let Ok(cm) = event else { continue };
                let state = (probe::annotation(&cm, MARK), probe::annotation(&cm, ECHO));
                let object = format!(
                    "{}/{}",
                    cm.metadata.namespace.as_deref().unwrap_or_default(),
                    cm.metadata.name.as_deref().unwrap_or_default()
                );
                if last.get(&object) == Some(&state) {
                    continue;
                }
                last.insert(object.clone(), state.clone());
                let version = cm
                    .metadata
                    .resource_version
                    .as_deref()
                    .and_then(|v| v.parse().ok());
                if let (Some(writer), Some(version)) = (state.0, version) {
                    writes.0.lock().unwrap().push(Write {
                        object,
                        version,
                        writer,
                        seen: Instant::now(),
                    });
                }
            }
        });
        (log, task)
    }

    /// Writes the watch received since `since`, in the API server's order.
    pub fn since(&self, since: Instant) -> Vec<Write> {
        let mut writes: Vec<Write> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.seen >= since)
            .cloned()
            .collect();
        writes.sort_by_key(|w| w.version);
        writes
    }

    /// Waits (at most `wait`) for a write by `writer` since `since`;
    /// panics with `logs()` if none comes.
    pub async fn wait_for_writer(
        &self,
        writer: &str,
        since: Instant,
        wait: Duration,
        logs: impl Fn() -> String,
    ) {
        eventually(wait, || async {
            anyhow::ensure!(
                self.since(since).iter().any(|w| w.writer == writer),
                "no write by {writer} yet"
            );
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e:#}\n{}", logs()));
    }

    /// Per object, a writer that wrote it again after another host had,
    /// among the writes the watch received in `window`: `object: a b a`.
    /// Judge windows in which keys can only move one way (members only
    /// join, or only leave): across a join and a later leave a key may
    /// rightly go back (`a b a` when b joined and then died).
    pub fn returns(&self, window: std::ops::Range<Instant>) -> Vec<String> {
        let mut writes = self.since(window.start);
        writes.retain(|w| w.seen < window.end);
        let mut by_object: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for write in &writes {
            by_object
                .entry(&write.object)
                .or_default()
                .push(&write.writer);
        }
        let mut returns = Vec::new();
        for (object, writers) in by_object {
            let mut done: BTreeSet<&str> = BTreeSet::new();
            for pair in writers.windows(2) {
                if pair[0] != pair[1] {
                    done.insert(pair[0]);
                    if done.contains(pair[1]) {
                        returns.push(format!("{object}: {}", writers.join(" ")));
                        break;
                    }
                }
            }
        }
        returns
    }

    /// The hosts that wrote anything.
    pub fn writers(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|w| w.writer.clone())
            .collect()
    }

    /// How many writes were recorded.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
