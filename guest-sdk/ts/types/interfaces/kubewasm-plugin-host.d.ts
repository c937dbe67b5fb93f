/// <reference path="./kubewasm-plugin-types.d.ts" />
declare module 'kubewasm:plugin/host@0.2.0' {
  /**
   * Emit a structured log record; the host adds the plugin name and the
   * object being reconciled.
   */
  export function log(level: LogLevel, message: string, fields: Array<[string, string]>): void;
  /**
   * The operator-supplied settings for this plugin as JSON (`{}` if none).
   */
  export function settings(): string;
  /**
   * Read one object from the host's cache. `api-version` and `kind` name
   * the kind (the object comes back in the version the host watches); the
   * kind must be one the plugin subscribes to, owns or watches. Returns none if the object
   * does not exist, an error if the kind cannot be read.
   */
  export function getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): string | undefined;
  /**
   * List objects of a kind from the host's cache, optionally in one
   * namespace and filtered by a label selector. Same kind rules as `get`.
   */
  export function listObjects(apiVersion: string, kind: string, namespace: string | undefined, labelSelector: string | undefined): Array<string>;
  /**
   * The wall clock, read once per call: every `now` in one reconcile
   * returns the same instant, so a reconcile is a function of its event,
   * its cache reads and this time. Offline runs (`kubewasm eval`, `test`)
   * take it from the fixture, which keeps them reproducible.
   */
  export function now(): Timestamp;
  export type LogLevel = import('kubewasm:plugin/types@0.2.0').LogLevel;
  export type Timestamp = import('kubewasm:plugin/types@0.2.0').Timestamp;
}
