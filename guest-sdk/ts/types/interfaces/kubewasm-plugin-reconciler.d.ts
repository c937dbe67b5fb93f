/// <reference path="./kubewasm-plugin-types.d.ts" />
declare module 'kubewasm:plugin/reconciler@0.2.0' {
  /**
   * Describe the plugin: name, version, subscriptions, write scope, owned
   * kinds, mapped watches and finalizer.
   */
  export function describe(): PluginInfo;
  /**
   * Check an operator-supplied settings document before it is used. An
   * error message should name the offending field.
   */
  export function validateSettings(settings: string): void;
  /**
   * Reconcile one object.
   */
  export function reconcile(event: Event): Outcome;
  export type PluginInfo = import('kubewasm:plugin/types@0.2.0').PluginInfo;
  export type Event = import('kubewasm:plugin/types@0.2.0').Event;
  export type Outcome = import('kubewasm:plugin/types@0.2.0').Outcome;
  export type ReconcileError = import('kubewasm:plugin/types@0.2.0').ReconcileError;
}
