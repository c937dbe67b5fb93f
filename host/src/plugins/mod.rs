//! The plugins a host serves: read from a directory ([`loader`]), each with
//! the operator's [`grant`], kept in the [`Plugins`] set the workers call,
//! and swapped as their files change ([`reload`]).

mod dir_events;
pub mod grant;
mod loaded;
pub mod loader;
pub mod reload;
pub mod set;

pub use loaded::{LoadedPlugin, Plugins};
