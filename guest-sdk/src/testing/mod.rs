//! An offline stand-in for the host, for `cargo test` on native targets.
//!
//! Outside a component there is no host to answer the imports, so on native
//! targets they are answered by a [`TestHost`] installed for the current
//! thread: it serves settings and cache reads from memory, answers
//! [`now`](crate::now) with a fixed instant, and records log lines. Unless a
//! test installs one, an empty host (settings `{}`, empty cache, the clock
//! at [`DEFAULT_NOW`]) answers.
//!
//! The cache holds whatever objects a test gives it, of any kind: the
//! objects a plugin subscribes to, the children it owns (with their
//! `ownerReferences`, for [`cache::list_owned`](crate::cache::list_owned))
//! and the sources of its mapped watches. Unlike the host, it does not check
//! that the plugin declared the kind it reads.
//!
//! ```
//! use kubewasm_guest::testing::{self, TestHost};
//! use serde_json::json;
//!
//! TestHost::new()
//!     .settings(r#"{"labels": ["team"]}"#)
//!     .object(json!({"apiVersion": "v1", "kind": "Namespace",
//!                    "metadata": {"name": "a", "labels": {"team": "x"}}}))
//!     .install();
//! let ns = kubewasm_guest::cache::get("v1", "Namespace", None, "a")?.unwrap();
//! kubewasm_guest::info!("found"; team = ns.label("team").unwrap());
//! assert_eq!(testing::logs()[0].fields, [("team".to_string(), "x".to_string())]);
//! # Ok::<(), kubewasm_guest::Error>(())
//! ```

mod fixtures;

use std::cell::RefCell;
use std::path::Path;

use serde_json::Value;

pub use fixtures::{assert_fixtures, run_event};

use crate::log::Level;
use crate::{Error, Object, Timestamp};

/// What [`now`](crate::now) returns unless a test or fixture sets the clock:
/// the Unix epoch, `1970-01-01T00:00:00Z`, conspicuous in an outcome.
pub const DEFAULT_NOW: &str = "1970-01-01T00:00:00Z";

/// The settings, cache contents and clock a test runs against.
#[derive(Clone, Debug)]
pub struct TestHost {
    settings: String,
    objects: Vec<Object>,
    now: Timestamp,
    scope: Option<ReadScope>,
}

/// The kinds a plugin may read, as the host decides it: those it subscribes
/// to (wildcards included), owns, or watches.
#[derive(Clone, Debug)]
struct ReadScope {
    plugin: String,
    /// (group, kind), either of which may be `*`.
    kinds: Vec<(String, String)>,
}

impl Default for TestHost {
    fn default() -> Self {
        TestHost {
            settings: "{}".to_string(),
            objects: Vec::new(),
            now: Timestamp::from_epoch_ms(0),
            scope: None,
        }
    }
}

/// One log record a plugin emitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// The record's level.
    pub level: Level,
    /// The message.
    pub message: String,
    /// Key, value pairs in the order given.
    pub fields: Vec<(String, String)>,
}

thread_local! {
    static HOST: RefCell<TestHost> = RefCell::new(TestHost::default());
    static LOGS: RefCell<Vec<LogRecord>> = const { RefCell::new(Vec::new()) };
}

impl TestHost {
    /// Settings `{}` and an empty cache.
    ///
    /// ```
    /// kubewasm_guest::testing::TestHost::new().install();
    /// assert!(kubewasm_guest::cache::list("v1", "Pod", None, None)?.is_empty());
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn new() -> Self {
        TestHost::default()
    }

    /// Refuses reads of kinds `info` does not subscribe to, own or watch,
    /// with the host's message, as the host does; without it every kind is
    /// readable. [`assert_fixtures`] sets it from the plugin's `describe`.
    ///
    /// ```
    /// use kubewasm_guest::{PluginInfo, Subscription, cache, testing::TestHost};
    /// let info = PluginInfo::new("p", "1").subscribe(Subscription::new("", "v1", "ConfigMap"));
    /// TestHost::new().scope(&info).install();
    /// assert!(cache::get("v1", "ConfigMap", Some("a"), "b")?.is_none());
    /// let refused = cache::get("v1", "Secret", Some("a"), "b").unwrap_err();
    /// assert!(refused.message().contains("plugin p may not read Secret (v1)"), "{refused}");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn scope(mut self, info: &crate::PluginInfo) -> Self {
        let subscribed = info
            .subscriptions
            .iter()
            .map(|s| (s.group.clone(), s.kind.clone()));
        let watched = info
            .owns
            .iter()
            .chain(info.watches.iter().map(|w| &w.source))
            .map(|k| (k.group.clone(), k.kind.clone()));
        self.scope = Some(ReadScope {
            plugin: info.name.clone(),
            kinds: subscribed.chain(watched).collect(),
        });
        self
    }

    /// The settings document (JSON text) the plugin reads.
    ///
    /// ```
    /// kubewasm_guest::testing::TestHost::new().settings(r#"{"a": 1}"#).install();
    /// let s: serde_json::Value = kubewasm_guest::settings()?;
    /// assert_eq!(s["a"], 1);
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn settings(mut self, json: impl Into<String>) -> Self {
        self.settings = json.into();
        self
    }

    /// The instant [`now`](crate::now) returns (default [`DEFAULT_NOW`]).
    ///
    /// ```
    /// use kubewasm_guest::{testing::TestHost, Timestamp};
    /// TestHost::new().now(Timestamp::parse("2026-03-01T10:00:00Z")?).install();
    /// assert_eq!(kubewasm_guest::now().rfc3339(), "2026-03-01T10:00:00Z");
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn now(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// Adds an object to the cache.
    ///
    /// ```
    /// use kubewasm_guest::testing::TestHost;
    /// TestHost::new().object(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})).install();
    /// assert!(kubewasm_guest::cache::get("v1", "Namespace", None, "a")?.is_some());
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn object(mut self, object: impl Into<Object>) -> Self {
        self.objects.push(object.into());
        self
    }

    /// Adds every object of every `*.yaml`/`*.yml` file in `dir` (several
    /// documents per file allowed), the layout `kubewasm eval --cache`
    /// reads.
    ///
    /// ```no_run
    /// kubewasm_guest::testing::TestHost::new().objects_from_dir("fixtures/cache")?.install();
    /// # Ok::<(), kubewasm_guest::Error>(())
    /// ```
    pub fn objects_from_dir(mut self, dir: impl AsRef<Path>) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::from(e).context(format!("reading {}", dir.display())))?
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            self.objects.extend(read_yaml_objects(&path)?);
        }
        Ok(self)
    }

    /// Makes this the host for the current thread (tests run on their own
    /// threads, so they do not see each other's hosts) and clears the
    /// recorded logs.
    ///
    /// ```
    /// kubewasm_guest::testing::TestHost::new().install();
    /// ```
    pub fn install(self) {
        HOST.with(|host| *host.borrow_mut() = self);
        LOGS.with(|logs| logs.borrow_mut().clear());
    }
}

/// Takes the log records emitted on this thread since the host was
/// installed or the logs were last taken.
///
/// ```
/// kubewasm_guest::testing::TestHost::new().install();
/// kubewasm_guest::warn!("careful");
/// assert_eq!(kubewasm_guest::testing::logs()[0].message, "careful");
/// assert!(kubewasm_guest::testing::logs().is_empty());
/// ```
pub fn logs() -> Vec<LogRecord> {
    LOGS.with(|logs| std::mem::take(&mut *logs.borrow_mut()))
}

/// Reads every object of one YAML file (documents separated by `---`; empty
/// documents are skipped).
pub(crate) fn read_yaml_objects(path: &Path) -> Result<Vec<Object>, Error> {
    let context = || format!("reading {}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| Error::from(e).context(context()))?;
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, yaml_options())
        .map_err(|e| Error::from(e).context(context()))?;
    let mut objects = Vec::new();
    for value in documents {
        match value {
            Value::Object(_) => objects.push(Object::from(value)),
            _ => return Err(Error::msg("a document is not a Kubernetes object").context(context())),
        }
    }
    Ok(objects)
}

/// YAML 1.2 scalars, as `kubewasm eval` reads object files: `yes`, `on`,
/// `0755` and `1_000` stay strings; a repeated key keeps its last value.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
        underscored_numbers_as_strings: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        // One-line messages: they end up in log lines and error chains.
        with_snippet: false,
    }
}

/// The host imports, answered from the current thread's [`TestHost`].
pub(crate) mod host {
    use kubewasm_selector::LabelSelector;

    use super::{HOST, LOGS, LogRecord};
    use crate::log::Level;
    use crate::{Object, Timestamp};

    pub fn log(level: Level, message: &str, fields: &[(String, String)]) {
        LOGS.with(|logs| {
            logs.borrow_mut().push(LogRecord {
                level,
                message: message.to_string(),
                fields: fields.to_vec(),
            })
        });
    }

    pub fn settings() -> String {
        HOST.with(|host| host.borrow().settings.clone())
    }

    pub fn now() -> Timestamp {
        HOST.with(|host| host.borrow().now.clone())
    }

    pub fn get(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<String>, String> {
        readable(api_version, kind)?;
        HOST.with(|host| {
            Ok(host
                .borrow()
                .objects
                .iter()
                .find(|o| {
                    same_kind(o, api_version, kind)
                        && o.namespace() == namespace
                        && o.name() == name
                })
                .map(|o| o.value().to_string()))
        })
    }

    pub fn list(
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        readable(api_version, kind)?;
        // The host's parser: a test refuses exactly what the host refuses.
        let selector =
            LabelSelector::parse(label_selector.unwrap_or_default()).map_err(|e| e.to_string())?;
        HOST.with(|host| {
            Ok(host
                .borrow()
                .objects
                .iter()
                .filter(|o| same_kind(o, api_version, kind))
                .filter(|o| namespace.is_none() || o.namespace() == namespace)
                .filter(|o| selector.matches_object(o.value()))
                .map(|o| o.value().to_string())
                .collect())
        })
    }

    /// Refuses, with the host's message, a kind outside the scope set by
    /// [`TestHost::scope`](super::TestHost::scope).
    fn readable(api_version: &str, kind: &str) -> Result<(), String> {
        let group = api_version
            .split_once('/')
            .map(|(g, _)| g)
            .unwrap_or_default();
        HOST.with(|host| match &host.borrow().scope {
            Some(scope)
                if !scope
                    .kinds
                    .iter()
                    .any(|(g, k)| (g == "*" || g == group) && (k == "*" || k == kind)) =>
            {
                Err(format!(
                    "plugin {} may not read {kind} ({api_version}): it does not subscribe to, own or watch that kind",
                    scope.plugin
                ))
            }
            _ => Ok(()),
        })
    }

    /// Same group and kind; like the host, the version is not compared.
    fn same_kind(object: &Object, api_version: &str, kind: &str) -> bool {
        let group = |v: &str| {
            v.split_once('/')
                .map(|(g, _)| g.to_string())
                .unwrap_or_default()
        };
        object.kind() == kind && group(object.api_version()) == group(api_version)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::TestHost;
    use crate::{Object, Timestamp, cache};

    fn shop() {
        TestHost::new()
            .object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}}}))
            .object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db"}}}))
            .install();
    }

    fn names(selector: &str) -> Vec<String> {
        let mut names: Vec<String> = cache::list("v1", "ConfigMap", Some("shop"), Some(selector))
            .unwrap()
            .iter()
            .map(|o| o.name().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn list_filters_by_label_selector() {
        shop();
        assert_eq!(names(""), ["db", "web"]);
        assert_eq!(names("app=web"), ["web"]);
        assert_eq!(names("app!=web"), ["db"]);
        assert_eq!(names("app in (db, x),!tier"), ["db"]);
        assert_eq!(names("tier notin (a)"), ["db", "web"]);
    }

    /// The host refuses these selectors in a subscription and in `list`; a
    /// plugin's tests must not pass with them.
    #[test]
    fn list_refuses_what_the_host_refuses() {
        shop();
        for (selector, reason) in [
            ("app=web,,tier=a", "empty requirement"),
            ("app=web,", "empty requirement"),
            ("app=web app", "invalid label value \"web app\""),
            ("app in (web", "unbalanced parentheses"),
        ] {
            let err = cache::list("v1", "ConfigMap", Some("shop"), Some(selector)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("listing ConfigMap in shop: invalid label selector {selector:?}: {reason}")
            );
        }
    }

    #[test]
    fn the_clock_is_fixed_and_defaults_to_the_epoch() {
        TestHost::new().install();
        assert_eq!(crate::now().rfc3339(), super::DEFAULT_NOW);
        let at = Timestamp::parse("2026-12-04T03:15:00Z").unwrap();
        TestHost::new().now(at.clone()).install();
        assert_eq!(crate::now(), at);
        assert_eq!(crate::now(), at, "one instant, however often it is read");
    }

    fn owner(namespace: Option<&str>) -> Object {
        Object::from(
            json!({"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
                            "metadata": {"name": "blog", "namespace": namespace, "uid": "u-1"}}),
        )
    }

    fn child(namespace: &str, name: &str, uid: &str, controller: bool) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": namespace, "ownerReferences": [{
                   "apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website", "name": "blog",
                   "uid": uid, "controller": controller}]}})
    }

    fn qualified_names(objects: &[Object]) -> Vec<String> {
        objects
            .iter()
            .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name()))
            .collect()
    }

    #[test]
    fn list_owned_keeps_controlled_children_of_this_owner() {
        TestHost::new()
            .object(child("web", "z-page", "u-1", true))
            .object(child("web", "a-page", "u-1", true))
            .object(child("web", "not-controller", "u-1", false))
            .object(child("web", "old-owner", "u-0", true))
            .object(child("other", "elsewhere", "u-1", true))
            .install();
        let children = cache::list_owned("v1", "ConfigMap", &owner(Some("web"))).unwrap();
        assert_eq!(qualified_names(&children), ["web/a-page", "web/z-page"]);
        // A cluster-scoped owner's children may live in any namespace.
        let children = cache::list_owned("v1", "ConfigMap", &owner(None)).unwrap();
        assert_eq!(
            qualified_names(&children),
            ["other/elsewhere", "web/a-page", "web/z-page"]
        );
    }

    #[test]
    fn list_owned_needs_the_owners_uid() {
        TestHost::new().install();
        let unsaved = Object::from(json!({"apiVersion": "v1", "kind": "Service",
                                          "metadata": {"name": "web", "namespace": "shop"}}));
        assert_eq!(
            cache::list_owned("v1", "ConfigMap", &unsaved)
                .unwrap_err()
                .message(),
            "v1 Service shop/web has no metadata.uid to find its children by"
        );
    }
}
