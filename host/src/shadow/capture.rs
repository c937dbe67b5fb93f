//! The reads of a serving call, captured so its shadow sees the same cache.
//!
//! When a plugin has a shadow, its serving call reads through a
//! [`CapturingReader`], which answers from the live cache as usual and keeps
//! each question with its answer (the cached objects are shared, not
//! copied). The shadow then reads through a [`ReplayReader`]: a question the
//! serving call asked gets the answer the serving call got, whatever the
//! cache holds by then; any other question falls through to the live cache
//! and is counted, because its answer may be newer than what the serving
//! call saw.
//!
//! Without a shadow neither exists: the serving call reads the cache
//! directly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::cluster::cache::{ObjectReader, ReadError};
use crate::cluster::object::CachedObject;
use crate::contract::GroupKind;
use crate::contract::selector::LabelSelector;

/// One question a plugin asked the cache.
#[derive(Clone, Debug, PartialEq)]
pub enum Question {
    Get {
        kind: GroupKind,
        namespace: Option<String>,
        name: String,
    },
    List {
        kind: GroupKind,
        namespace: Option<String>,
        selector: LabelSelector,
    },
}

/// The answer it got.
#[derive(Clone, Debug)]
pub enum Answer {
    Get(Result<Option<Arc<CachedObject>>, ReadError>),
    List(Result<Vec<Arc<CachedObject>>, ReadError>),
}

/// What one serving call read, in order.
pub type Reads = Vec<(Question, Answer)>;

/// Reads through to `inner`, keeping each question and its answer.
pub struct CapturingReader {
    inner: Arc<dyn ObjectReader>,
    reads: Mutex<Reads>,
}

impl CapturingReader {
    pub fn new(inner: Arc<dyn ObjectReader>) -> Self {
        Self {
            inner,
            reads: Mutex::default(),
        }
    }

    /// The reads so far, leaving none.
    pub fn take(&self) -> Reads {
        std::mem::take(&mut *self.reads.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn keep(&self, question: Question, answer: Answer) {
        self.reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((question, answer));
    }
}

impl ObjectReader for CapturingReader {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        let answer = self.inner.get(kind, namespace, name);
        let question = Question::Get {
            kind: kind.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        self.keep(question, Answer::Get(answer.clone()));
        answer
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        let answer = self.inner.list(kind, namespace, selector);
        let question = Question::List {
            kind: kind.clone(),
            namespace: namespace.map(str::to_string),
            selector: selector.clone(),
        };
        self.keep(question, Answer::List(answer.clone()));
        answer
    }
}

/// Answers what the serving call asked as it was answered then; anything
/// else from `live`, counted in [`ReplayReader::fell_through`].
pub struct ReplayReader {
    reads: Arc<Reads>,
    /// The event's object: a get of it that the serving call did not make
    /// is answered with the state both versions were called with.
    seed: Option<(GroupKind, Arc<CachedObject>)>,
    live: Arc<dyn ObjectReader>,
    fell_through: AtomicU64,
}

impl ReplayReader {
    pub fn new(
        reads: Arc<Reads>,
        seed: Option<(GroupKind, Arc<CachedObject>)>,
        live: Arc<dyn ObjectReader>,
    ) -> Self {
        Self {
            reads,
            seed,
            live,
            fell_through: AtomicU64::new(0),
        }
    }

    /// Questions answered from the live cache: the serving call did not
    /// ask them.
    pub fn fell_through(&self) -> u64 {
        self.fell_through.load(Ordering::Relaxed)
    }

    fn recorded(&self, question: &Question) -> Option<&Answer> {
        self.reads
            .iter()
            .find(|(asked, _)| asked == question)
            .map(|(_, answer)| answer)
    }
}

impl ObjectReader for ReplayReader {
    fn get(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Arc<CachedObject>>, ReadError> {
        let question = Question::Get {
            kind: kind.clone(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        };
        if let Some(Answer::Get(answer)) = self.recorded(&question) {
            return answer.clone();
        }
        if let Some((seed_kind, object)) = &self.seed
            && seed_kind == kind
            && object.namespace() == namespace
            && object.name() == name
        {
            return Ok(Some(object.clone()));
        }
        self.fell_through.fetch_add(1, Ordering::Relaxed);
        self.live.get(kind, namespace, name)
    }

    fn list(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
        let question = Question::List {
            kind: kind.clone(),
            namespace: namespace.map(str::to_string),
            selector: selector.clone(),
        };
        if let Some(Answer::List(answer)) = self.recorded(&question) {
            return answer.clone();
        }
        self.fell_through.fetch_add(1, Ordering::Relaxed);
        self.live.list(kind, namespace, selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::cache::StaticObjects;
    use serde_json::json;

    fn configmap(name: &str, n: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": "ns", "labels": {"app": "x"}},
               "data": {"n": n}})
    }

    fn n_of(object: &CachedObject) -> String {
        object.parse()["data"]["n"].as_str().unwrap().to_string()
    }

    #[test]
    fn the_shadow_reads_what_the_serving_call_read_and_counts_the_rest() {
        let kind = GroupKind::new("", "ConfigMap");
        let before = Arc::new(StaticObjects::new([
            configmap("a", "1"),
            configmap("b", "1"),
        ]));
        let capturing = CapturingReader::new(before);
        let all = LabelSelector::parse("app=x").unwrap();
        assert_eq!(
            n_of(&capturing.get(&kind, Some("ns"), "a").unwrap().unwrap()),
            "1"
        );
        assert_eq!(capturing.list(&kind, Some("ns"), &all).unwrap().len(), 2);
        assert!(capturing.get(&kind, Some("ns"), "gone").unwrap().is_none());
        let reads = Arc::new(capturing.take());
        assert_eq!(reads.len(), 3);
        assert!(capturing.take().is_empty(), "take leaves nothing");

        // The cache moved on after the serving call: a changed, b deleted, c new.
        let after = Arc::new(StaticObjects::new([
            configmap("a", "2"),
            configmap("c", "2"),
        ]));
        let replay = ReplayReader::new(reads, None, after);
        assert_eq!(
            n_of(&replay.get(&kind, Some("ns"), "a").unwrap().unwrap()),
            "1"
        );
        let listed = replay.list(&kind, Some("ns"), &all).unwrap();
        let names: Vec<&str> = listed.iter().map(|o| o.name()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(replay.get(&kind, Some("ns"), "gone").unwrap().is_none());
        assert_eq!(replay.fell_through(), 0);

        // Questions the serving call did not ask go to the live cache.
        assert_eq!(
            n_of(&replay.get(&kind, Some("ns"), "c").unwrap().unwrap()),
            "2"
        );
        let other = LabelSelector::parse("app=y").unwrap();
        assert!(replay.list(&kind, Some("ns"), &other).unwrap().is_empty());
        assert!(replay.get(&kind, Some("other"), "a").unwrap().is_none());
        assert_eq!(replay.fell_through(), 3);
    }

    #[test]
    fn errors_replay_and_the_event_object_answers_for_itself() {
        struct Refusing;
        impl ObjectReader for Refusing {
            fn get(
                &self,
                kind: &GroupKind,
                _: Option<&str>,
                _: &str,
            ) -> Result<Option<Arc<CachedObject>>, ReadError> {
                Err(ReadError::NotSynced {
                    group: kind.group.clone(),
                    kind: kind.kind.clone(),
                })
            }
            fn list(
                &self,
                _: &GroupKind,
                _: Option<&str>,
                _: &LabelSelector,
            ) -> Result<Vec<Arc<CachedObject>>, ReadError> {
                Ok(Vec::new())
            }
        }
        let kind = GroupKind::new("", "ConfigMap");
        let capturing = CapturingReader::new(Arc::new(Refusing));
        assert!(capturing.get(&kind, Some("ns"), "a").is_err());
        let live = Arc::new(StaticObjects::new([
            configmap("a", "9"),
            configmap("b", "9"),
        ]));
        let seed = Arc::new(CachedObject::from_value(&configmap("b", "1")));
        let replay =
            ReplayReader::new(Arc::new(capturing.take()), Some((kind.clone(), seed)), live);
        let error = replay.get(&kind, Some("ns"), "a").unwrap_err();
        assert!(matches!(error, ReadError::NotSynced { .. }), "{error}");
        assert_eq!(
            n_of(&replay.get(&kind, Some("ns"), "b").unwrap().unwrap()),
            "1"
        );
        assert_eq!(replay.fell_through(), 0);
    }
}
