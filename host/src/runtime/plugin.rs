//! A loaded plugin and its calls: each call a fresh instance in a fresh
//! store, with its deadline, memory limit and read access.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, Trap, UpdateDeadline};

use super::bindings::{v0_1, v0_2};
use super::budget::Permit;
use super::host_functions::{CallLimits, CallState, MAX_LOG_RECORDS};
use super::tier::{self, Code, CodeCell, Tier};
use super::{CallError, Clock, ReadAccess, Runtime};
use super::{EPOCH_TICK, MAX_TABLE_ELEMENTS, sandbox};
use crate::contract::intent::Outcome;
use crate::contract::{Event, ParsedSubscriptions, PluginInfo};

/// A component pre-instantiated against the contract version it targets.
#[derive(Clone)]
pub(super) enum PluginPre {
    V0_1(v0_1::PluginPre<CallState>),
    V0_2(v0_2::PluginPre<CallState>),
}

/// The same component pre-instantiated for serving calls (asynchronous
/// WASI, see the module documentation of [`super`]).
#[derive(Clone)]
pub(super) enum ServingPre {
    V0_1(v0_1::serving::PluginPre<CallState>),
    V0_2(v0_2::serving::PluginPre<CallState>),
}

/// How a call's store runs: on a thread that may block, or on an async
/// worker, where it must yield while it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Calling {
    Blocking,
    Serving,
}

/// An instance of a plugin, of the version its component targets.
enum Instance {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

/// An outcome as the plugin returned it, before any check.
enum RawOutcome {
    V0_1(v0_1::wit::Outcome),
    V0_2(v0_2::wit::Outcome),
}

impl RawOutcome {
    fn intents(&self) -> usize {
        match self {
            RawOutcome::V0_1(o) => o.intents.len(),
            RawOutcome::V0_2(o) => o.intents.len(),
        }
    }

    fn size(&self) -> usize {
        match self {
            RawOutcome::V0_1(o) => v0_1::outcome_size(o),
            RawOutcome::V0_2(o) => v0_2::outcome_size(o),
        }
    }

    fn parse(self) -> Result<Outcome, crate::contract::intent::IntentError> {
        match self {
            RawOutcome::V0_1(o) => v0_1::outcome_from_wit(o),
            RawOutcome::V0_2(o) => v0_2::outcome_from_wit(o),
        }
    }
}

/// A compiled, validated plugin ready to be called. Cheap to clone; clones
/// share the compiled code.
#[derive(Clone)]
pub struct Plugin {
    pub(super) runtime: Runtime,
    /// The code calls run: the baseline compiler's until the optimized
    /// code replaces it (see [`super::tier`]); shared by every clone.
    pub(super) code: CodeCell,
    /// The contract version the component targets.
    pub(super) version: &'static str,
    pub(super) info: Arc<PluginInfo>,
    /// `info`'s subscriptions with their label selectors parsed at load.
    pub(super) subscriptions: Arc<ParsedSubscriptions>,
    pub(super) digest: String,
    pub(super) interfaces: Arc<ComponentInterfaces>,
}

/// The names a component imports and exports (`wasi:io/streams@0.2.0`,
/// `kubewasm:plugin/reconciler@0.2.0`), as the OCI artifact's config
/// records them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentInterfaces {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// An instance of a plugin, reused across calls. Only for measuring the cost
/// of fresh instances; the host never shares an instance between objects.
pub struct Session {
    plugin: Plugin,
    store: Store<CallState>,
    instance: Instance,
}

impl Plugin {
    /// What the plugin said about itself at load time.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The subscriptions, parsed once at load, that route events to it.
    pub fn subscriptions(&self) -> &ParsedSubscriptions {
        &self.subscriptions
    }

    /// SHA-256 of the component's bytes, hex encoded.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The interfaces the component imports and exports.
    pub fn interfaces(&self) -> &ComponentInterfaces {
        &self.interfaces
    }

    /// The version of the contract (`kubewasm:plugin@…`) the component
    /// targets, e.g. `0.2.0`.
    pub fn contract_version(&self) -> &'static str {
        self.version
    }

    /// Which compiler made the code calls run now.
    pub fn tier(&self) -> Tier {
        tier::current(&self.code).tier
    }

    /// A store for one call on a thread that may block. Waits for a permit
    /// of the host memory budget first (the wait is not part of the call's
    /// time).
    fn new_store(&self, code: &Code, access: ReadAccess) -> Store<CallState> {
        let permit = self.runtime.inner.budget.acquire();
        self.store_with(code, access, permit, Calling::Blocking)
    }

    /// A store of the engine that compiled `code`.
    fn store_with(
        &self,
        code: &Code,
        access: ReadAccess,
        permit: Permit,
        calling: Calling,
    ) -> Store<CallState> {
        let inner = &self.runtime.inner;
        let config = &inner.config;
        let limits = CallLimits {
            limiter: sandbox::Limiter::new(
                config.max_memory_bytes,
                MAX_TABLE_ELEMENTS,
                inner.budget.clone(),
            ),
            max_read_bytes: config.max_host_read_bytes,
            permit,
        };
        let state = CallState::new(self.info.clone(), access, limits);
        let mut store = Store::new(&code.runtime.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        if config.epoch_interruption {
            self.arm_deadline(&mut store, config.call_timeout);
            if calling == Calling::Serving {
                // Every tick: stop the call past its deadline, else let the
                // worker run other tasks for a moment.
                store.epoch_deadline_callback(|mut store| {
                    let state = store.data_mut();
                    if state.deadline.is_none_or(|d| Instant::now() >= d) {
                        state.deadline_exceeded = true;
                        return Ok(UpdateDeadline::Interrupt);
                    }
                    Ok(UpdateDeadline::YieldCustom(
                        1,
                        Box::pin(tokio::task::yield_now()),
                    ))
                });
                store.set_epoch_deadline(1);
            } else {
                store.epoch_deadline_trap();
            }
        }
        store
    }

    /// Starts the call's clock: the epoch deadline for Wasm code and the
    /// wall-clock deadline host functions check.
    fn arm_deadline(&self, store: &mut Store<CallState>, timeout: Duration) {
        let ticks = timeout.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64;
        store.set_epoch_deadline(ticks.max(1) + 1);
        let state = store.data_mut();
        state.deadline = Some(Instant::now() + timeout);
        state.deadline_exceeded = false;
        state.read_bytes = 0;
        state.now = None;
    }

    fn call_error(&self, store: &Store<CallState>, error: wasmtime::Error) -> CallError {
        let plugin = self.info.name.clone();
        let state = store.data();
        let config = &self.runtime.inner.config;
        if let Some(requested) = state.limiter.memory_exceeded {
            return CallError::MemoryLimit {
                plugin,
                limit: config.max_memory_bytes,
                requested,
            };
        }
        if let Some(requested) = state.read_budget_exceeded {
            return CallError::HostReadBudget {
                plugin,
                limit: config.max_host_read_bytes,
                requested,
            };
        }
        if state.deadline_exceeded || error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            return CallError::Timeout {
                plugin,
                limit: self.runtime.inner.config.call_timeout,
            };
        }
        let message = match error.downcast_ref::<Trap>() {
            Some(trap) => {
                let text = trap.to_string();
                text.strip_prefix("wasm trap: ")
                    .unwrap_or(&text)
                    .to_string()
            }
            None => format!("{error:#}"),
        };
        CallError::Trap {
            plugin,
            message,
            stderr: state.stderr(),
        }
    }

    fn instantiate(
        &self,
        code: &Code,
        store: &mut Store<CallState>,
    ) -> Result<Instance, CallError> {
        let instance = match &code.pre {
            PluginPre::V0_1(pre) => pre.instantiate(&mut *store).map(Instance::V0_1),
            PluginPre::V0_2(pre) => pre.instantiate(&mut *store).map(Instance::V0_2),
        };
        instance.map_err(|e| self.call_error(store, e))
    }

    pub(super) fn describe(&self) -> Result<PluginInfo, CallError> {
        let code = tier::current(&self.code);
        let mut store = self.new_store(&code, ReadAccess::offline("{}"));
        let info = match self.instantiate(&code, &mut store)? {
            Instance::V0_1(i) => i
                .kubewasm_plugin_reconciler()
                .call_describe(&mut store)
                .map(PluginInfo::from),
            Instance::V0_2(i) => i
                .kubewasm_plugin_reconciler()
                .call_describe(&mut store)
                .map(PluginInfo::from),
        };
        info.map_err(|e| self.call_error(&store, e))
    }

    /// Asks the plugin whether `settings` (JSON) are acceptable.
    pub fn validate_settings(&self, settings: &str) -> Result<(), CallError> {
        let code = tier::current(&self.code);
        let mut store = self.new_store(&code, ReadAccess::offline(settings));
        let verdict = match self.instantiate(&code, &mut store)? {
            Instance::V0_1(i) => i
                .kubewasm_plugin_reconciler()
                .call_validate_settings(&mut store, settings),
            Instance::V0_2(i) => i
                .kubewasm_plugin_reconciler()
                .call_validate_settings(&mut store, settings),
        };
        verdict
            .map_err(|e| self.call_error(&store, e))?
            .map_err(|message| CallError::Failed {
                plugin: self.info.name.clone(),
                message,
            })
    }

    /// Reconciles one event in a fresh instance.
    pub fn reconcile(&self, event: &Event, access: ReadAccess) -> Result<Outcome, CallError> {
        let code = tier::current(&self.code);
        let mut store = self.new_store(&code, access);
        let instance = self.instantiate(&code, &mut store)?;
        self.reconcile_in(&mut store, &instance, event)
    }

    fn reconcile_in(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        event: &Event,
    ) -> Result<Outcome, CallError> {
        let result = match instance {
            Instance::V0_1(i) => i
                .kubewasm_plugin_reconciler()
                .call_reconcile(&mut *store, &v0_1::event_to_wit(event))
                .map(|r| r.map(RawOutcome::V0_1).map_err(|e| e.message)),
            Instance::V0_2(i) => i
                .kubewasm_plugin_reconciler()
                .call_reconcile(&mut *store, &v0_2::event_to_wit(event))
                .map(|r| r.map(RawOutcome::V0_2).map_err(|e| e.message)),
        };
        self.checked(store, result)
    }

    /// Reconciles one event in a fresh instance on this async worker: the
    /// call yields every epoch tick while it runs, and waits for a permit
    /// of the host memory budget without blocking the thread. How the host
    /// serves; the same checks and errors as [`Plugin::reconcile`].
    pub async fn reconcile_async(
        &self,
        event: &Event,
        access: ReadAccess,
    ) -> Result<Outcome, CallError> {
        let code = tier::current(&self.code);
        let permit = self.runtime.inner.budget.acquire_async().await;
        let mut store = self.store_with(&code, access, permit, Calling::Serving);
        let result = match &code.serving {
            ServingPre::V0_1(pre) => match pre.instantiate_async(&mut store).await {
                Ok(i) => i
                    .kubewasm_plugin_reconciler()
                    .call_reconcile(&mut store, &v0_1::event_to_wit(event))
                    .await
                    .map(|r| r.map(RawOutcome::V0_1).map_err(|e| e.message)),
                Err(e) => Err(e),
            },
            ServingPre::V0_2(pre) => match pre.instantiate_async(&mut store).await {
                Ok(i) => i
                    .kubewasm_plugin_reconciler()
                    .call_reconcile(&mut store, &v0_2::event_to_wit(event))
                    .await
                    .map(|r| r.map(RawOutcome::V0_2).map_err(|e| e.message)),
                Err(e) => Err(e),
            },
        };
        self.checked(&store, result)
    }

    /// The plugin's answer, or the error that stopped the call; then the
    /// limits on what it returned, and its intents parsed and validated.
    fn checked(
        &self,
        store: &Store<CallState>,
        result: Result<Result<RawOutcome, String>, wasmtime::Error>,
    ) -> Result<Outcome, CallError> {
        let plugin = || self.info.name.clone();
        let result = result.map_err(|e| self.call_error(store, e))?;
        if store.data().logs_dropped > 0 {
            tracing::warn!(
                plugin = %self.info.name,
                dropped = store.data().logs_dropped,
                "plugin exceeded {MAX_LOG_RECORDS} log records in one call; the rest were dropped"
            );
        }
        let outcome = result.map_err(|message| CallError::Failed {
            plugin: plugin(),
            message,
        })?;
        let max_intents = self.runtime.inner.config.max_intents;
        if outcome.intents() > max_intents {
            return Err(CallError::TooManyIntents {
                plugin: plugin(),
                count: outcome.intents(),
                limit: max_intents,
            });
        }
        let size = outcome.size();
        let limit = self.runtime.inner.config.max_result_bytes;
        if size > limit {
            return Err(CallError::ResultTooLarge {
                plugin: plugin(),
                size,
                limit,
            });
        }
        outcome
            .parse()
            .map_err(|source| CallError::MalformedIntent {
                plugin: plugin(),
                source,
            })
    }

    /// Creates one instance to be reused across calls (see [`Session`]).
    pub fn session(&self, access: ReadAccess) -> Result<Session, CallError> {
        let code = tier::current(&self.code);
        let mut store = self.new_store(&code, access);
        let instance = self.instantiate(&code, &mut store)?;
        Ok(Session {
            plugin: self.clone(),
            store,
            instance,
        })
    }
}

impl Session {
    /// Reconciles one event in this session's instance.
    pub fn reconcile(&mut self, event: &Event) -> Result<Outcome, CallError> {
        let config = &self.plugin.runtime.inner.config;
        if config.epoch_interruption {
            self.plugin
                .arm_deadline(&mut self.store, config.call_timeout);
        }
        self.plugin
            .reconcile_in(&mut self.store, &self.instance, event)
    }
}

impl ReadAccess {
    /// Access with no objects to read and the given settings.
    pub fn offline(settings: &str) -> Self {
        Self {
            reader: Arc::new(crate::cluster::cache::StaticObjects::default()),
            settings: settings.into(),
            clock: Clock::default(),
        }
    }
}
