//! The plugin runtime: compiles components, checks they target the kubewasm
//! world and ask for nothing the host does not grant, and runs `describe`,
//! `validate-settings` and `reconcile` inside per-call limits.
//!
//! Wasmtime types stay inside this module; the rest of the host talks in
//! [`PluginInfo`], [`Event`] and [`Outcome`].
//!
//! # Instances
//!
//! A component is compiled once and pre-instantiated once ([`Plugin`] holds
//! the `InstancePre`). Every call gets a cheap new `Store` and a fresh
//! instance, so nothing a plugin keeps in its globals or heap survives from
//! one object to the next: isolation between objects holds by construction.
//! With the pooling allocator (memory kept resident between uses) a fresh
//! instance costs a few microseconds more than reusing one; see
//! `host/benches/README.md` for the measurements behind this choice.
//! [`Session`] reuses one instance and exists for that comparison.
//!
//! # Two ways to call
//!
//! [`Plugin::reconcile_async`] is how the host serves: the call runs on the
//! async worker that took the object from the queue (on a fiber of its own,
//! yielding every epoch tick while it runs), with WASI bound asynchronously.
//! Handing each call to a blocking thread instead cost about a fifth of the
//! host's CPU in thread wake-ups (docs/benchmarks.md, 2026-12-05). The
//! synchronous calls ([`Plugin::reconcile`], `describe`,
//! `validate-settings`) are for threads that may block: loading, offline
//! commands, tests. They use a second linker with wasmtime-wasi's
//! synchronous bindings, which enter the ambient tokio runtime for every
//! WASI call and so must never run on an async worker.
//!
//! # Limits
//!
//! Per call ([`RuntimeConfig`], flags in `host/src/cmd/cli.rs`):
//!
//! | limit | default | flag | error |
//! |---|---|---|---|
//! | linear memory | 128 MiB | `--max-memory-mib` | [`CallError::MemoryLimit`] |
//! | wall time, host calls included | 2 s | `--call-timeout-ms` | [`CallError::Timeout`] |
//! | bytes of intents returned | 4 MiB | `--max-result-kib` | [`CallError::ResultTooLarge`] |
//! | intents returned | 1000 | `--max-intents` | [`CallError::TooManyIntents`] |
//! | bytes host reads hand to the guest | 64 MiB | `--max-host-read-mib` | [`CallError::HostReadBudget`] |
//! | log records / message / fields / key or value | 256 / 8 KiB / 32 / 1 KiB | | dropped or cut |
//! | stderr kept | last 4 KiB | | earlier bytes discarded, never a trap |
//!
//! Across calls: linear memory of all calls in flight together is bounded by
//! the plugin memory budget (`--plugin-memory-budget-mib`, default 1 GiB): a
//! call waits for one of `budget / max-memory` permits before it is
//! instantiated (see [`budget`]); [`Runtime::memory_stats`] reports use and
//! peak. Plugin files are read by [`crate::plugins::loader`] within
//! `--max-plugin-file-mib` (default 64 MiB). Compiled artefacts are cached
//! tamper-evidently (see [`compile_cache`]).

mod bindings;
pub mod budget;
pub mod compile_cache;
mod error;
mod host_functions;
mod plugin;
mod sandbox;
mod tier;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

pub use budget::MemoryStats;
pub use error::{CallError, LoadError, RuntimeError, WasmtimeError};
pub use host_functions::{
    Clock, MAX_LOG_BYTES, MAX_LOG_FIELD_BYTES, MAX_LOG_FIELDS, MAX_LOG_RECORDS, ReadAccess,
};
pub use plugin::{ComponentInterfaces, Plugin, Session};
pub use sandbox::{
    RECONCILER_EXPORT, RECONCILER_EXPORT_V0_1, STDERR_TAIL, V0_1, WORLD, WORLD_PACKAGE,
    WORLD_VERSION,
};

use crate::contract::PluginInfo;
use crate::ops::error_chain;
use crate::ops::metrics::Metrics;
use bindings::{v0_1, v0_2};
use budget::MemoryBudget;
pub use compile_cache::CacheStats;
use compile_cache::CompileCache;
use host_functions::CallState;
use plugin::{PluginPre, ServingPre};
pub use tier::Tier;
use tier::{Code, Compiled, InFlight};

/// How often the epoch advances; the granularity of call time limits.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Table elements a call may grow to.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;
/// Bytes of a serving call's fiber stack kept mapped when the pool reuses
/// it, so the next call does not fault its top pages in again.
const ASYNC_STACK_KEEP_RESIDENT: usize = 64 << 10;

/// Limits and tuning of the runtime.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Linear memory one call may use, in bytes (all memories summed).
    pub max_memory_bytes: usize,
    /// Wall time one call may take, instantiation included.
    pub call_timeout: Duration,
    /// Bytes of text (objects, patches, messages) one outcome may carry.
    pub max_result_bytes: usize,
    /// Intents one outcome may carry.
    pub max_intents: usize,
    /// Bytes host reads (`get-object`, `list-objects`, `settings`) may hand
    /// to the guest in one call.
    pub max_host_read_bytes: usize,
    /// Linear memory all calls in flight may use together; bounds concurrent
    /// calls to `memory_budget_bytes / max_memory_bytes`.
    pub memory_budget_bytes: usize,
    /// Largest plugin file (`NAME.wasm`) the loader reads.
    pub max_plugin_file_bytes: u64,
    /// Where compiled artefacts are cached by content hash and engine
    /// configuration; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once with the pooling allocator (bounds
    /// concurrent calls). `0` disables pooling (on-demand allocation). The
    /// default, 64, is 8 times the calls the default memory budget lets run
    /// at once (1 GiB / 128 MiB), so a larger budget or smaller
    /// `--max-memory-mib` is not capped by the pool first.
    pub pool_instances: u32,
    /// Enforce `call_timeout` by epoch interruption. Only the runtime
    /// benchmark turns this off, to measure its cost: without it a looping
    /// plugin is never stopped.
    pub epoch_interruption: bool,
    /// Linear memory a pool slot keeps mapped when it is reused, reset by
    /// copying back the pages the last call dirtied instead of unmapping
    /// (so the next call does not fault them in again). Memory of a larger
    /// instance is reset by unmapping.
    pub pool_keep_resident_bytes: usize,
    /// The compiler that turns components into machine code.
    pub strategy: CompilerStrategy,
    /// Components at least this many bytes long that miss the compile cache
    /// are compiled by Winch first, served, and replaced by Cranelift's code
    /// when it is ready (see [`tier`]); `None` compiles every component with
    /// `strategy` only. Off by default; the host turns it on
    /// (`--baseline-compile`).
    pub baseline_min_bytes: Option<usize>,
}

/// Which of wasmtime's compilers the runtime uses.
///
/// Not a CLI flag yet: Winch is measured as the first tier of large
/// components (docs/design/performance.md §5.3, `host/benches/README.md`).
/// Artefacts of the two never share a compile-cache entry: the engine's
/// compatibility hash, part of every entry's name, covers wasmtime's
/// `Tunables`, whose `winch_callable` is set only under Winch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompilerStrategy {
    /// The optimizing compiler: slower to compile, faster code.
    #[default]
    Cranelift,
    /// The baseline compiler (x86_64 only in wasmtime 48): one pass, fast
    /// to compile, slower code; no tail calls, exceptions or GC.
    Winch,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_memory_bytes: 128 << 20,
            call_timeout: Duration::from_secs(2),
            max_result_bytes: 4 << 20,
            max_intents: 1000,
            max_host_read_bytes: 64 << 20,
            memory_budget_bytes: 1 << 30,
            max_plugin_file_bytes: 64 << 20,
            cache_dir: None,
            pool_instances: 64,
            epoch_interruption: true,
            pool_keep_resident_bytes: 1 << 20,
            strategy: CompilerStrategy::Cranelift,
            baseline_min_bytes: None,
        }
    }
}

/// The shared Wasm engine, linker and limits. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    /// Synchronous WASI: for calls on threads that may block.
    linker: Linker<CallState>,
    /// Asynchronous WASI: for serving calls on async workers.
    serving_linker: Linker<CallState>,
    config: RuntimeConfig,
    pooling: bool,
    cache: Option<CompileCache>,
    budget: Arc<MemoryBudget>,
    /// Winch's runtime, with the same limits and budget, when large
    /// components are compiled by it first.
    baseline: Option<Runtime>,
    /// Held by the one optimizing compile that runs at a time.
    optimizing: Mutex<()>,
    /// The baseline runtime's components whose optimizing compile runs.
    in_flight: InFlight,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        tracing::debug!("wasm runtime dropped");
    }
}

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut cfg = Config::new();
    cfg.wasm_component_model(true)
        .epoch_interruption(config.epoch_interruption)
        .strategy(match config.strategy {
            CompilerStrategy::Cranelift => wasmtime::Strategy::Cranelift,
            CompilerStrategy::Winch => wasmtime::Strategy::Winch,
        });
    if pooling {
        let n = config.pool_instances;
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // A component is several core instances (the program, the WASI
        // preview1 adapter, the shims wit-component adds), each with a table
        // and up to two linear memories between them (the program's and the
        // adapter's); 8, 2 and 8 per component leave room for the JS and
        // Python toolchains' components. Slots are virtual address space
        // reserved once; only pages a call touches become resident.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .max_memory_size(config.max_memory_bytes)
            .table_elements(MAX_TABLE_ELEMENTS)
            // The instance metadata (globals, function references) of one
            // core module; wasmtime's 1 MiB default is too small for the
            // 12-18 MB interpreters of JS and Python plugins.
            .max_core_instance_size(8 << 20)
            // One fiber stack per serving call in flight.
            .total_stacks(n)
            .async_stack_keep_resident(ASYNC_STACK_KEEP_RESIDENT)
            // Pages kept mapped when a slot is reused, so a small plugin's
            // next call does not fault its memory in again; larger memories
            // are reset by unmapping.
            .linear_memory_keep_resident(config.pool_keep_resident_bytes)
            .table_keep_resident(1 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto);
        cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    }
    cfg
}

impl Runtime {
    /// Builds the engine (pooling allocator, falling back to on-demand
    /// allocation where the pool cannot be reserved) and starts the epoch
    /// ticker that enforces call time limits. What it counts goes to a
    /// registry of its own, read by nobody: offline commands and tests use
    /// this; a host that serves its metrics uses [`Runtime::with_metrics`].
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        Self::with_metrics(config, Arc::default())
    }

    /// Like [`Runtime::new`], counting into the host's `metrics`
    /// (`kubewasm_compile_cache_rejected_total`).
    pub fn with_metrics(
        config: RuntimeConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RuntimeError> {
        let budget = MemoryBudget::new(config.memory_budget_bytes, config.max_memory_bytes).ok_or(
            RuntimeError::MemoryBudget {
                budget: config.memory_budget_bytes,
                per_call: config.max_memory_bytes,
            },
        )?;
        let baseline = match config.baseline_min_bytes {
            Some(_) if config.strategy == CompilerStrategy::Cranelift => {
                // Same limits and budget; nothing of it is cached (the
                // optimized artefact replaces it).
                let winch = RuntimeConfig {
                    strategy: CompilerStrategy::Winch,
                    cache_dir: None,
                    baseline_min_bytes: None,
                    ..config.clone()
                };
                match Self::build(winch, metrics.clone(), budget.clone(), None, false) {
                    Ok(runtime) => Some(runtime),
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "baseline compiler unavailable; every component is compiled optimized before it serves");
                        None
                    }
                }
            }
            _ => None,
        };
        Self::build(config, metrics, budget, baseline, true)
    }

    /// A runtime of `config`'s compiler; `tick` starts the epoch ticker,
    /// which also ticks the `baseline` runtime's engine.
    fn build(
        config: RuntimeConfig,
        metrics: Arc<Metrics>,
        budget: Arc<MemoryBudget>,
        baseline: Option<Runtime>,
        tick: bool,
    ) -> Result<Self, RuntimeError> {
        let pooling_wanted = config.pool_instances > 0;
        let (engine, pooling) = match Engine::new(&engine_config(&config, pooling_wanted)) {
            Ok(engine) => (engine, pooling_wanted),
            Err(e) if pooling_wanted => {
                tracing::warn!(error = %format!("{e:#}"), "pooling allocator unavailable, using on-demand allocation");
                let engine = Engine::new(&engine_config(&config, false))
                    .map_err(|e| RuntimeError::Engine(e.into()))?;
                (engine, false)
            }
            Err(e) => return Err(RuntimeError::Engine(e.into())),
        };
        let cache = match &config.cache_dir {
            Some(dir) => Some(CompileCache::open(dir, &engine, metrics)?),
            None => None,
        };
        let engine_error = |e: wasmtime::Error| RuntimeError::Engine(e.into());
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        add_contract(&mut linker).map_err(engine_error)?;
        let mut serving_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut serving_linker).map_err(engine_error)?;
        add_contract(&mut serving_linker).map_err(engine_error)?;
        if config.epoch_interruption && tick {
            let mut engines = vec![engine.weak()];
            engines.extend(baseline.as_ref().map(|b| b.inner.engine.weak()));
            spawn_epoch_ticker(engines);
        }
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                serving_linker,
                config,
                pooling,
                cache,
                budget,
                baseline,
                optimizing: Mutex::new(()),
                in_flight: InFlight::default(),
            }),
        })
    }

    /// Whether instances come from the pooling allocator.
    pub fn is_pooling(&self) -> bool {
        self.inner.pooling
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Loads served from the compiled-artefact cache, and loads that had to
    /// compile, since the runtime started (both 0 without a cache).
    pub fn compile_cache_stats(&self) -> CacheStats {
        self.inner
            .cache
            .as_ref()
            .map_or(CacheStats::default(), CompileCache::stats)
    }

    /// Cache entries refused since the runtime started because they were not
    /// written by this host for that component (each was recompiled).
    pub fn compile_cache_rejections(&self) -> usize {
        self.inner.cache.as_ref().map_or(0, CompileCache::rejected)
    }

    /// Linear memory of plugin calls against the host budget.
    pub fn memory_stats(&self) -> MemoryStats {
        self.inner.budget.stats()
    }

    /// Compiles, validates and describes a component. `origin` names it in
    /// errors (usually its path). CPU-heavy on a cache miss: call it off the
    /// async runtime (`spawn_blocking`).
    pub fn load(&self, origin: &str, bytes: &[u8]) -> Result<Plugin, LoadError> {
        check_header(origin, bytes)?;
        // Hashed once: the cache entry's name and the plugin's digest.
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let compiled = match self.baseline_for(bytes.len(), &digest) {
            Some(baseline) => match baseline.compile(origin, bytes, &digest, Tier::Baseline) {
                Ok(compiled) => compiled,
                // Only the compiler's own failure (a proposal Winch lacks)
                // is worth a second compile; a component of another world
                // or asking for too much is refused by either.
                Err(e @ LoadError::Compile { .. }) => {
                    tracing::debug!(plugin = origin, error = %error_chain(&e), "the baseline compiler cannot compile this component; compiling it optimized");
                    self.compile(origin, bytes, &digest, Tier::Optimized)?
                }
                Err(e) => return Err(e),
            },
            None => self.compile(origin, bytes, &digest, Tier::Optimized)?,
        };
        let tier = compiled.code.tier;
        let mut plugin = Plugin {
            runtime: self.clone(),
            code: Arc::new(RwLock::new(Arc::new(compiled.code))),
            version: compiled.version,
            info: Arc::new(PluginInfo {
                name: origin.to_string(),
                ..PluginInfo::default()
            }),
            subscriptions: Arc::default(),
            digest: hex::encode(digest),
            interfaces: Arc::new(compiled.interfaces),
        };
        let info = plugin.describe().map_err(|source| LoadError::Describe {
            origin: origin.to_string(),
            source,
        })?;
        let subscriptions = info
            .validated()
            .map_err(|reason| LoadError::InvalidDescription {
                origin: origin.to_string(),
                reason,
            })?;
        plugin.info = Arc::new(info);
        plugin.subscriptions = Arc::new(subscriptions);
        if tier == Tier::Baseline {
            tracing::info!(plugin = %plugin.info.name, "serving the baseline compiler's code while the optimizing compiler runs");
            self.optimize_later(&plugin, bytes.to_vec(), digest);
        }
        Ok(plugin)
    }

    /// Compiles (or takes from the compile cache) a component with this
    /// runtime's compiler, checks what it imports and exports, and
    /// pre-instantiates it for both ways of calling.
    fn compile(
        &self,
        origin: &str,
        bytes: &[u8],
        digest: &[u8; 32],
        tier: Tier,
    ) -> Result<Compiled, LoadError> {
        let engine = &self.inner.engine;
        let compile = || Component::new(engine, bytes);
        let component = match &self.inner.cache {
            Some(cache) => cache.get_or_compile(engine, origin, digest, compile),
            None if tier == Tier::Baseline => self.inner.in_flight.get_or_compile(digest, compile),
            None => compile(),
        }
        .map_err(|e| LoadError::Compile {
            origin: origin.to_string(),
            source: e.into(),
        })?;
        let version = self.check_imports_and_exports(origin, &component)?;
        let ty = component.component_type();
        let interfaces = ComponentInterfaces {
            imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(),
            exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect(),
        };
        let link = |e: wasmtime::Error| LoadError::Link {
            origin: origin.to_string(),
            source: e.into(),
        };
        let blocking = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(link)?;
        let serving = self
            .inner
            .serving_linker
            .instantiate_pre(&component)
            .map_err(link)?;
        let (pre, serving) = match version {
            V0_1 => (
                PluginPre::V0_1(v0_1::PluginPre::new(blocking).map_err(link)?),
                ServingPre::V0_1(v0_1::serving::PluginPre::new(serving).map_err(link)?),
            ),
            _ => (
                PluginPre::V0_2(v0_2::PluginPre::new(blocking).map_err(link)?),
                ServingPre::V0_2(v0_2::serving::PluginPre::new(serving).map_err(link)?),
            ),
        };
        Ok(Compiled {
            code: Code {
                runtime: self.clone(),
                pre,
                serving,
                tier,
            },
            interfaces,
            version,
        })
    }

    /// Finds the contract version the component targets (by the reconciler
    /// it exports) and checks every import is granted and of that version.
    fn check_imports_and_exports(
        &self,
        origin: &str,
        component: &Component,
    ) -> Result<&'static str, LoadError> {
        let ty = component.component_type();
        let exports: Vec<&str> = ty.exports(&self.inner.engine).map(|(n, _)| n).collect();
        let version = if exports.contains(&RECONCILER_EXPORT) {
            WORLD_VERSION
        } else if exports.contains(&RECONCILER_EXPORT_V0_1) {
            V0_1
        } else {
            return Err(LoadError::WrongWorld {
                origin: origin.to_string(),
                exports: if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                },
            });
        };
        for (name, _) in ty.imports(&self.inner.engine) {
            if let Some(reason) = sandbox::refused_import(name, version) {
                return Err(LoadError::NotGranted {
                    origin: origin.to_string(),
                    reason,
                });
            }
        }
        Ok(version)
    }
}

/// Both contract versions' host interfaces, side by side: each component
/// links against the one it imports.
fn add_contract(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v0_2::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)?;
    v0_1::Plugin::add_to_linker::<CallState, HasSelf<CallState>>(linker, |s| s)
}

/// Tells a non-Wasm file and a core module apart from a component before
/// handing bytes to the compiler, for clearer errors.
fn check_header(origin: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm {
            origin: origin.to_string(),
        });
    }
    // Bytes 4..8: a core module has version 1 and layer 0; a component has layer 1.
    if bytes.len() >= 8 && bytes[6..8] == [0, 0] {
        return Err(LoadError::NotComponent {
            origin: origin.to_string(),
        });
    }
    Ok(())
}

/// Advances the engines' epoch every [`EPOCH_TICK`] until the first (the
/// runtime's own) is gone.
fn spawn_epoch_ticker(engines: Vec<wasmtime::EngineWeak>) {
    let spawned = std::thread::Builder::new()
        .name("kubewasm-epoch".into())
        .spawn(move || {
            while engines[0].upgrade().is_some() {
                for engine in engines.iter().filter_map(wasmtime::EngineWeak::upgrade) {
                    engine.increment_epoch();
                }
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(e) = spawned {
        // Without the ticker a looping plugin would never be interrupted.
        tracing::error!(error = %e, "failed to start the epoch ticker; call time limits are not enforced");
    }
}
