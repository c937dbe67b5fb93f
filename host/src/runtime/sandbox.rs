//! What a plugin may touch: the imports it is allowed to have, the inert WASI
//! context it gets, and the per-call resource limiter.
//!
//! The host grants no ambient authority. Ordinary toolchain output (Rust's
//! `wasm32-wasip2` std, for example) imports WASI interfaces for stdio,
//! environment, clocks, random and the filesystem, so those are linked, but
//! against a context with no preopened directories, no environment, no
//! arguments, empty stdin, stdout discarded and stderr captured (its last
//! [`STDERR_TAIL`] bytes are kept and attached to trap errors so a Rust panic
//! message reaches the log; earlier bytes are discarded silently, so a chatty
//! plugin never fails a write). Sockets
//! and HTTP are never linked: a component importing them fails to load, as
//! does one importing anything else the host does not offer.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder};

use super::budget::MemoryBudget;

/// Stderr bytes kept per call (the tail; earlier bytes are discarded).
pub const STDERR_TAIL: usize = 4 * 1024;

/// The WIT package, as a literal for `concat!`.
macro_rules! package {
    () => {
        "kubewasm:plugin"
    };
}
/// The WIT package's version, as a literal for `concat!`.
macro_rules! version {
    () => {
        "0.2.0"
    };
}

/// The WIT package this host implements (`wit/`), and its version. Every
/// name of the contract below is built from these two; the bindings
/// (`bindgen!`, which needs a literal) read the same package from `wit/`.
pub const WORLD_PACKAGE: &str = package!();
pub const WORLD_VERSION: &str = version!();
/// The world a plugin targets.
pub const WORLD: &str = concat!(package!(), "/plugin@", version!());
/// The export every plugin of the current version has.
pub const RECONCILER_EXPORT: &str = concat!(package!(), "/reconciler@", version!());
/// The previous contract version, which the host still loads
/// (`wit/v0.1.0/`).
pub const V0_1: &str = "0.1.0";
/// The export of a plugin built against [`V0_1`].
pub const RECONCILER_EXPORT_V0_1: &str = concat!(package!(), "/reconciler@0.1.0");
/// The prefix of every interface of the package.
const PACKAGE_PREFIX: &str = concat!(package!(), "/");

/// Interfaces a plugin may import, by `namespace:package/` prefix.
const GRANTED: [&str; 6] = [
    PACKAGE_PREFIX,
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
];

/// Why an import is refused, or `None` when it is granted. `version` is the
/// contract version the component exports its reconciler at: its imports of
/// the package must be of that version too.
pub fn refused_import(name: &str, version: &str) -> Option<String> {
    if !GRANTED.iter().any(|prefix| name.starts_with(prefix)) {
        return Some(format!(
            "imports `{name}`, which kubewasm does not grant (plugins may only import \
             {WORLD_PACKAGE}/host and inert WASI cli, io, clocks, random and filesystem)"
        ));
    }
    if let Some(rest) = name.strip_prefix(PACKAGE_PREFIX) {
        let imported = rest.split_once('@').map(|(_, v)| v).unwrap_or("");
        if !same_minor(imported, version) {
            return Some(format!(
                "imports `{name}`, but the component exports its reconciler at {WORLD_PACKAGE}@{version} \
                 (this host implements {WORLD_PACKAGE}@{WORLD_VERSION} and @{V0_1})"
            ));
        }
    }
    None
}

/// Whether two `0.x.y` versions are semver-compatible (same major, and the
/// same minor while the major is 0).
fn same_minor(a: &str, b: &str) -> bool {
    let parts = |v: &str| -> Vec<String> { v.split('.').take(2).map(str::to_string).collect() };
    !a.is_empty() && parts(a) == parts(b)
}

/// A WASI context that grants nothing: no files, no network, no environment.
pub fn inert_wasi(stderr: TailPipe) -> WasiCtx {
    WasiCtxBuilder::new()
        .stderr(stderr)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build()
}

/// An output stream that keeps only the last `capacity` bytes written and
/// accepts every write: a plugin writing megabytes to stderr neither traps
/// nor makes the host hold more than `capacity` bytes.
#[derive(Clone, Debug)]
pub struct TailPipe {
    capacity: usize,
    tail: Arc<Mutex<VecDeque<u8>>>,
}

impl TailPipe {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            tail: Arc::new(Mutex::new(VecDeque::with_capacity(capacity))),
        }
    }

    /// The kept bytes (the end of what was written).
    pub fn contents(&self) -> Vec<u8> {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        tail.iter().copied().collect()
    }

    fn push(&self, bytes: &[u8]) {
        let mut tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = &bytes[bytes.len().saturating_sub(self.capacity)..];
        let overflow = (tail.len() + keep.len()).saturating_sub(self.capacity);
        let len = tail.len();
        tail.drain(..overflow.min(len));
        tail.extend(keep);
    }
}

impl IsTerminal for TailPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TailPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for TailPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for TailPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Any amount may be written; a large permit keeps guests from
        // splitting their output into many small writes.
        Ok(1 << 20)
    }
}

impl tokio::io::AsyncWrite for TailPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Caps the linear memory (summed over a store's memories) and table
/// elements of one call, and remembers whether the memory cap was hit so the
/// failure can be reported as exactly that. Growth is also recorded in the
/// host-wide [`MemoryBudget`], and given back when the call's store drops.
#[derive(Debug)]
pub struct Limiter {
    max_memory: usize,
    max_table_elements: usize,
    memory_in_use: usize,
    budget: Arc<MemoryBudget>,
    /// The total the plugin asked for when it exceeded `max_memory`.
    pub memory_exceeded: Option<usize>,
}

impl Limiter {
    pub fn new(max_memory: usize, max_table_elements: usize, budget: Arc<MemoryBudget>) -> Self {
        Self {
            max_memory,
            max_table_elements,
            memory_in_use: 0,
            budget,
            memory_exceeded: None,
        }
    }
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.budget.record(self.memory_in_use, 0);
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_in_use - current.min(self.memory_in_use) + desired;
        if total > self.max_memory {
            self.memory_exceeded = Some(total);
            // An error (not `Ok(false)`) turns the failed growth into a trap,
            // so a plugin cannot carry on in a half-failed state.
            return Err(wasmtime::format_err!(
                "linear memory limit of {} bytes exceeded",
                self.max_memory
            ));
        }
        self.budget.record(self.memory_in_use, total);
        self.memory_in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.max_table_elements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_only_the_host_and_inert_wasi() {
        assert_eq!(refused_import("kubewasm:plugin/host@0.2.0", "0.2.0"), None);
        assert_eq!(refused_import("kubewasm:plugin/types@0.2.1", "0.2.0"), None);
        assert_eq!(refused_import("kubewasm:plugin/host@0.1.0", "0.1.0"), None);
        assert_eq!(refused_import("wasi:cli/environment@0.2.6", "0.2.0"), None);
        assert_eq!(
            refused_import("wasi:filesystem/preopens@0.2.0", "0.1.0"),
            None
        );
        assert!(
            refused_import("wasi:sockets/tcp@0.2.6", "0.2.0")
                .unwrap()
                .starts_with("imports `wasi:sockets/tcp@0.2.6`, which kubewasm does not grant")
        );
        assert!(refused_import("wasi:http/outgoing-handler@0.2.6", "0.2.0").is_some());
        // A 0.2 export with 0.1 imports (or the reverse) is two contracts at once.
        assert_eq!(
            refused_import("kubewasm:plugin/host@0.1.0", "0.2.0").unwrap(),
            "imports `kubewasm:plugin/host@0.1.0`, but the component exports its reconciler at \
             kubewasm:plugin@0.2.0 (this host implements kubewasm:plugin@0.2.0 and @0.1.0)"
        );
    }

    #[test]
    fn limiter_sums_memories_and_records_the_excess() {
        let budget = MemoryBudget::new(1000, 100).unwrap();
        let mut limiter = Limiter::new(100, 10, budget.clone());
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(limiter.memory_growing(60, 101, None).is_err());
        assert_eq!(limiter.memory_exceeded, Some(131));
        assert!(!limiter.table_growing(0, 11, None).unwrap());
        assert_eq!(budget.stats().in_use, 90);
        drop(limiter);
        assert_eq!(budget.stats().in_use, 0);
    }

    #[test]
    fn the_stderr_pipe_keeps_only_the_tail() {
        let mut pipe = TailPipe::new(8);
        pipe.write(bytes::Bytes::from_static(b"0123456")).unwrap();
        pipe.write(bytes::Bytes::from_static(b"789")).unwrap();
        assert_eq!(pipe.contents(), b"23456789");
        pipe.write(bytes::Bytes::from(vec![b'x'; 1 << 20])).unwrap();
        assert_eq!(pipe.contents(), b"xxxxxxxx");
    }
}
