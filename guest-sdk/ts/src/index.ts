// @kubewasm/sdk: write kubewasm reconcile plugins in TypeScript or
// JavaScript. This module has no host imports, so Node can test plugins
// written with it (see `@kubewasm/sdk/testing`); a component's entry point
// exports the plugin with `exportPlugin` from `@kubewasm/sdk/component`.

export { StatusUpdate, type Condition, type ConditionStatus } from './conditions.js';
export { errorMessage, HostError, KubewasmError, SettingsError } from './errors.js';
export { outcomeOf, reconcilerOf, settingsOf, type Plugin, type Reconciler, type ReconcileResult } from './export.js';
export {
  debug,
  error,
  getObject,
  getRef,
  info,
  installHost,
  listObjects,
  listOwned,
  log,
  now,
  rawSettings,
  Timestamp,
  trace,
  warn,
  type Host,
  type ListOptions,
  type LogFields,
  type LogLevel,
} from './host.js';
export { Apply, Create, Delete, escapePointer, JsonPatch, Outcome, Patch, RecordEvent, type IntentBuilder, type JsonPatchOp } from './intents.js';
export {
  getPath,
  KubeObject,
  parsePath,
  type ConditionValue,
  type JsonObject,
  type JsonValue,
  type ObjectRef,
  type OwnerReference,
} from './object.js';
export { ownerReferenceTo } from './owner.js';
export { Event, MappedWatch, PluginInfo, Subscription, type EventType, type GroupKind, type KindRef, type ResourceKind } from './plugin.js';
export { parseSettings, readSettings, Schema, schema, type Infer } from './settings.js';
export type { Intent, PropagationPolicy, WitOutcome } from './wit.js';
