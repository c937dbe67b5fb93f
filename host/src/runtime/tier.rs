//! Compiled code, and its two tiers.
//!
//! Cranelift (the optimizing compiler) takes 6-11 s for the 12-19 MB
//! components the JavaScript and Python toolchains produce; wasmtime's Winch
//! (the baseline compiler) takes 1.3-2.7 s for them and its code runs
//! 1.0-2.1× slower per call (`host/benches/README.md`, "Winch vs
//! Cranelift"). So a large component that misses the compile cache is
//! compiled by Winch first and serves at once, and Cranelift compiles it on
//! a thread of its own; when it is done, its code replaces Winch's in the
//! same [`Plugin`] (every clone shares one [`CodeCell`]) without a reload
//! or a resync: the component, its description and settings are the same.
//! Only the Cranelift artefact is cached, so the next start loads it.
//!
//! Under Winch a plugin has the same limits: epoch interruption stops a
//! loop and the memory limiter holds (`host/tests/winch.rs`). A component
//! Winch cannot compile (a proposal it lacks, or a platform it does not
//! support) is compiled by Cranelift at once.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use super::plugin::{PluginPre, ServingPre};
use wasmtime::component::Component;

use super::{ComponentInterfaces, Plugin, Runtime};

/// Which compiler made the code a plugin runs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Cranelift's code: what every plugin runs in the end.
    Optimized,
    /// Winch's code, serving until Cranelift's is ready.
    Baseline,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Optimized => "optimized",
            Tier::Baseline => "baseline",
        }
    }
}

/// A component's code, pre-instantiated for both ways of calling, with the
/// runtime (engine, linkers) of the tier that compiled it.
pub(super) struct Code {
    pub(super) runtime: Runtime,
    pub(super) pre: PluginPre,
    pub(super) serving: ServingPre,
    pub(super) tier: Tier,
}

/// The code every clone of one plugin runs; swapped once when the
/// optimized code replaces the baseline.
pub(super) type CodeCell = Arc<RwLock<Arc<Code>>>;

/// Reads the code a call should run.
pub(super) fn current(cell: &CodeCell) -> Arc<Code> {
    cell.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A component compiled by one tier, and the interfaces it has.
pub(super) struct Compiled {
    pub(super) code: Code,
    pub(super) interfaces: ComponentInterfaces,
    pub(super) version: &'static str,
}

impl Runtime {
    /// The baseline runtime, when `bytes` should be compiled by it first:
    /// baseline compilation is on, the component is at least
    /// `baseline_min_bytes` long, and no optimized artefact of it is cached.
    pub(super) fn baseline_for(&self, len: usize, digest: &[u8; 32]) -> Option<&Runtime> {
        let baseline = self.inner.baseline.as_ref()?;
        let min = self.inner.config.baseline_min_bytes?;
        let cached = self.inner.cache.as_ref().is_some_and(|c| c.holds(digest));
        (len >= min && !cached).then_some(baseline)
    }

    /// Compiles the optimized code of `plugin`'s component on a thread of
    /// its own (one such compile at a time per host) and puts it in place
    /// of the baseline code, if the plugin is still in use by then.
    pub(super) fn optimize_later(&self, plugin: &Plugin, bytes: Vec<u8>, digest: [u8; 32]) {
        let cell = Arc::downgrade(&plugin.code);
        let runtime = self.clone();
        let name = plugin.info.name.clone();
        let spawned = std::thread::Builder::new()
            .name("kubewasm-optimize".into())
            .spawn(move || {
                let _one_at_a_time = runtime
                    .inner
                    .optimizing
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let forget = || {
                    if let Some(baseline) = &runtime.inner.baseline {
                        baseline.inner.in_flight.forget(&digest);
                    }
                };
                if cell.strong_count() == 0 {
                    forget();
                    tracing::debug!(plugin = %name, "plugin replaced before its optimizing compile began");
                    return;
                }
                let started = Instant::now();
                let compile = || runtime.compile(&name, &bytes, &digest, Tier::Optimized);
                let compiled = match optimizer_pool() {
                    Some(pool) => pool.install(compile),
                    None => compile(),
                };
                let seconds = started.elapsed().as_secs_f64();
                // The optimized artefact is cached now (or failed): a load of
                // the same bytes no longer needs the baseline code kept.
                forget();
                match (compiled, cell.upgrade()) {
                    (Ok(compiled), Some(cell)) => {
                        *cell.write().unwrap_or_else(PoisonError::into_inner) =
                            Arc::new(compiled.code);
                        tracing::info!(plugin = %name, seconds, "optimized code now serves (it replaced the baseline compiler's)");
                    }
                    (Err(e), Some(_)) => tracing::warn!(
                        plugin = %name,
                        error = %crate::ops::error_chain(&e),
                        "optimizing compile failed; the baseline compiler's code keeps serving"
                    ),
                    (_, None) => {
                        tracing::debug!(plugin = %name, "plugin replaced before its optimized code was ready")
                    }
                }
            });
        if let Err(e) = spawned {
            if let Some(baseline) = &self.inner.baseline {
                baseline.inner.in_flight.forget(&digest);
            }
            tracing::warn!(plugin = %plugin.info.name, error = %e, "cannot start the optimizing compile; the baseline compiler's code keeps serving");
        }
    }
}

/// Baseline-compiled components whose optimizing compile has not ended,
/// by content hash: a load of the same bytes meanwhile (the plugin's
/// settings changed, a shadow of the same build) reuses Winch's code
/// instead of compiling it again next to the running Cranelift compile.
/// Only the baseline runtime fills it; an entry leaves when its optimizing
/// compile ends, so what it holds is bounded by the compiles queued.
#[derive(Default)]
pub(super) struct InFlight(Mutex<Vec<([u8; 32], Component)>>);

impl InFlight {
    pub(super) fn get_or_compile(
        &self,
        digest: &[u8; 32],
        compile: impl FnOnce() -> wasmtime::Result<Component>,
    ) -> wasmtime::Result<Component> {
        if let Some(component) = self.entries().iter().find(|(d, _)| d == digest) {
            return Ok(component.1.clone());
        }
        let component = compile()?;
        self.entries().push((*digest, component.clone()));
        Ok(component)
    }

    fn forget(&self, digest: &[u8; 32]) {
        self.entries().retain(|(d, _)| d != digest);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<([u8; 32], Component)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The threads optimizing compiles run on: half the machine's (at least
/// one). wasmtime compiles a component's functions in parallel on the
/// rayon pool of the calling thread; on the global pool a baseline compile
/// started meanwhile queued behind every function of a running Cranelift
/// compile (a JavaScript plugin's 1.3 s Winch compile took 8.5 s).
fn optimizer_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kubewasm-optimize-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no thread pool for optimizing compiles; they share the global one"))
            .ok()
    })
    .as_ref()
}
