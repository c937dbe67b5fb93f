//! Everything the host knows of the cluster, and how it talks to it:
//!
//! - [`client`]: the Kubernetes client with its timeouts, rate limit, retry
//!   hints and the write fence;
//! - [`discovery`]: which kinds the API server serves, kept current as CRDs
//!   and aggregated APIs come and go;
//! - [`informer`]: one list-watch per subscribed kind, feeding events to the
//!   controller and objects to the [`cache`];
//! - [`cache`]: the read side plugins see through `get` and `list`;
//! - [`object`]: the cache's unit, an object as the text plugins receive
//!   with a header of what the host reads;
//! - [`leader`]: the Lease that lets one replica of several write, and the
//!   [`gate`] it opens for the workers and the write fence.

pub mod cache;
pub mod client;
pub mod discovery;
pub mod gate;
pub mod informer;
pub mod leader;
pub mod object;
pub mod shard;
