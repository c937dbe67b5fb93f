//! Write [kubewasm](https://github.com/kubewasm/kubewasm) reconcile plugins
//! in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` against the
//! `kubewasm:plugin@0.2.0` WIT world. With this crate it is one [`Plugin`]
//! impl and one [`export_plugin!`] line: the host calls
//! [`Plugin::reconcile`] for every change of an object the plugin subscribes
//! to, and makes the writes ([`Intent`]s) it returns with the plugin's own
//! field manager.
//!
//! ```
//! use kubewasm_guest::{Apply, Error, Event, Outcome, Plugin, PluginInfo, Subscription, WriteScope};
//! use serde_json::json;
//!
//! struct Stamp;
//!
//! impl Plugin for Stamp {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("stamp", "0.1.0")
//!             .subscribe(Subscription::new("", "v1", "ConfigMap"))
//!             .writes(WriteScope::new("", "ConfigMap"))
//!     }
//!
//!     fn reconcile(event: &Event) -> Result<Outcome, Error> {
//!         if event.is_deleted() || event.object.label("stamped") == Some("yes") {
//!             return Ok(Outcome::new());
//!         }
//!         let labels = json!({"metadata": {"labels": {"stamped": "yes"}}});
//!         Ok(Outcome::new().with(Apply::fields(&event.object.object_ref(), labels)))
//!     }
//! }
//!
//! kubewasm_guest::export_plugin!(Stamp);
//! # fn main() {}
//! ```
//!
//! A controller with a child, a finalizer and a status condition: it owns
//! ConfigMaps (a change or deletion of a child reconciles its owner), lets
//! the host hold its objects until the cleanup of a `finalizing` event is
//! done, and reports `Ready` stamped with the host's clock.
//!
//! ```
//! use kubewasm_guest::{
//!     cache, Apply, Condition, Delete, Error, Event, GroupKind, KindRef, Object, ObjectRef,
//!     Outcome, OwnerReference, Plugin, PluginInfo, Status, StatusUpdate, Subscription, WriteScope,
//! };
//! use serde_json::json;
//!
//! struct Pages;
//!
//! impl Plugin for Pages {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("pages", "0.1.0")
//!             .subscribe(Subscription::new("demo.kubewasm.dev", "v1alpha1", "Website"))
//!             .owns(KindRef::new("", "ConfigMap"))
//!             .writes(WriteScope::new("demo.kubewasm.dev", "Website"))
//!             .writes(WriteScope::new("", "ConfigMap"))
//!             .finalizer([GroupKind::new("demo.kubewasm.dev", "Website")]) // kubewasm.dev/pages
//!     }
//!
//!     fn reconcile(event: &Event) -> Result<Outcome, Error> {
//!         let site = &event.object;
//!         let children = cache::list_owned("v1", "ConfigMap", site)?;
//!         if event.is_finalizing() {
//!             // Cleanup; the host removes the finalizer once it is applied.
//!             let mut cleanup = Outcome::new();
//!             cleanup.extend(children.iter().map(|c| Delete::new(c.object_ref())));
//!             return Ok(cleanup);
//!         }
//!         if event.is_deleted() || site.is_being_deleted() {
//!             return Ok(Outcome::new());
//!         }
//!         let mut outcome = Outcome::new();
//!         let ready = if children.is_empty() {
//!             let child = ObjectRef::new("v1", "ConfigMap", site.namespace(), site.name());
//!             outcome.push(Apply::fields(&child, json!({"data": {"title": site.get_str("spec.title")}}))
//!                 .owner(OwnerReference::controller(site)?));
//!             Condition::new("Ready", Status::False, "ChildPending", "creating the ConfigMap")
//!         } else {
//!             Condition::new("Ready", Status::True, "ChildReady", "the ConfigMap exists")
//!         };
//!         // observedGeneration from the object, lastTransitionTime = now() on change only.
//!         outcome.extend(StatusUpdate::new(site).condition(ready).observed_generation().into_apply());
//!         Ok(outcome)
//!     }
//! }
//!
//! kubewasm_guest::export_plugin!(Pages);
//! # fn main() {}
//! ```
//!
//! What the SDK offers:
//!
//! - reading the object: [`Object`] accessors (`name`, `namespace`, `uid`,
//!   `labels`, `annotations`, `generation`, nested fields with
//!   [`Object::get_path`]), typed access with [`Event::object_as`] and, with
//!   the default `k8s-openapi` feature, kind-checked k8s-openapi types
//!   (`Object::to_resource`);
//! - building intents: [`Apply`], [`Patch`] and [`JsonPatch`], [`Create`],
//!   [`Delete`], [`RecordEvent`], collected in an [`Outcome`];
//! - children: [`PluginInfo::owns`] (a child's change reconciles its
//!   owner), [`OwnerReference::controller`] on what the plugin creates, and
//!   [`cache::list_owned`] to read the current children;
//! - other kinds that wake the plugin: [`PluginInfo::watches`] with a
//!   [`MappedWatch`] (field reference, label or selector);
//! - cleanup before deletion: [`PluginInfo::finalizer`], then
//!   [`Event::is_finalizing`] in `reconcile`;
//! - status: [`StatusUpdate`] with [`Condition`]s (`observedGeneration`,
//!   `lastTransitionTime` only on change);
//! - the host: [`log`](mod@log) and its macros ([`info!`] ...),
//!   [`settings()`], the [`cache`], the clock [`now()`];
//! - offline tests: [`testing`] answers the host calls on native targets and
//!   runs conformance fixtures.
//!
//! Build a plugin crate (`crate-type = ["cdylib"]`) with
//! `cargo build --release --target wasm32-wasip2`; the output `.wasm` is the
//! component. Keep plugins free of files, environment, network and the
//! system clock: the host grants none of them (read the time with [`now()`]).

pub mod cache;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

mod apply;
#[doc(hidden)]
pub mod bindings;
mod condition;
mod error;
mod event;
#[doc(hidden)]
pub mod export;
mod host;
mod object;
mod outcome;
mod owner;
mod patch;
mod path;
mod plugin;
mod record;
mod settings;
mod time;
#[cfg(feature = "k8s-openapi")]
mod typed;
mod watch;

pub use apply::{Apply, Create, Delete, Propagation};
pub use condition::{Condition, Status, StatusUpdate, set_condition};
pub use error::Error;
pub use event::{Event, EventType, ResourceKind};
#[cfg(feature = "k8s-openapi")]
pub use k8s_openapi;
pub use object::{Object, ObjectRef};
pub use outcome::{Intent, Outcome};
pub use owner::OwnerReference;
pub use patch::{JsonPatch, Patch};
pub use path::{escape_pointer, get_path};
pub use plugin::{Plugin, PluginInfo, Subscription, WriteScope};
pub use record::{RecordEvent, Severity};
pub use settings::{parse_settings, raw_settings, settings};
pub use time::{Timestamp, now};
pub use watch::{Finalizer, GroupKind, KindRef, MapRule, MappedWatch};

/// Exports a [`Plugin`] as the component's `reconciler` interface. Use it
/// once, at the top level of the plugin crate.
///
/// ```
/// use kubewasm_guest::{Error, Event, Outcome, Plugin, PluginInfo};
///
/// struct Noop;
///
/// impl Plugin for Noop {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("noop", "0.1.0")
///     }
///
///     fn reconcile(_event: &Event) -> Result<Outcome, Error> {
///         Ok(Outcome::new())
///     }
/// }
///
/// kubewasm_guest::export_plugin!(Noop);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        // The generated exports are `extern "C"` functions with
        // `#[unsafe(export_name)]`: unsafe by construction, so allowed here
        // even in crates that deny unsafe code. They exist only in the
        // component: native linkers reject their names (`ns:pkg/iface#func`).
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type KubewasmPluginAdapter = $crate::export::Adapter<$plugin>;
    $crate::bindings::export_world!(KubewasmPluginAdapter with_types_in $crate::bindings);
        };
        // On native targets (tests, clippy) still check that the type is a
        // plugin.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() = $crate::export::assert_plugin::<$plugin>;
    };
}
