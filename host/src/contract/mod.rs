//! The contract between the host and its plugins, in the host's own terms:
//! what a plugin declares ([`PluginInfo`]), the events it is called with
//! ([`Event`]), the kinds both sides name ([`GroupKind`], [`ResourceKind`])
//! and what it returns ([`intent`]), with the checks every plugin-supplied
//! name ([`names`]) and selector ([`selector`]) passes.
//!
//! These types mirror the WIT records in `wit/plugin.wit` but carry no
//! wasmtime types and do no I/O, so every other part of the host can depend
//! on them and on nothing else of the runtime.

pub mod compare;
pub mod intent;
mod kind;
pub mod names;
mod plugin;

pub use kubewasm_selector as selector;

pub use kind::{GroupKind, ResourceKind, WILDCARD, api_version, offline_plural, split_api_version};
pub use plugin::{
    Event, EventType, Finalizer, KindRef, MapRule, MappedWatch, ParsedRule, ParsedSubscriptions,
    ParsedWatch, PluginInfo, Subscription, field_manager,
};
