// The host's functions (logging, settings, cache reads, the clock) behind an
// installable backend: in a component, export.ts installs the WIT imports;
// in Node tests, `FakeHost` from `@kubewasm/sdk/testing` stands in.

import { HostError, KubewasmError } from './errors.js';
import { KubeObject, type ObjectRef } from './object.js';
import type { LogLevel } from './wit.js';

export type { LogLevel };

/** What the SDK needs from the host; errors of cache reads are `HostError`s. */
export interface Host {
  log(level: LogLevel, message: string, fields: [string, string][]): void;
  settings(): string;
  getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): string | undefined;
  listObjects(apiVersion: string, kind: string, namespace: string | undefined, selector: string | undefined): string[];
  now(): { epochMs: bigint | number; rfc3339: string };
}

let current: Host | undefined;

/** Makes `host` the backend of every function below; returns the previous one. */
export function installHost(host: Host | undefined): Host | undefined {
  const previous = current;
  current = host;
  return previous;
}

function host(): Host {
  if (current === undefined) {
    throw new KubewasmError(
      'no kubewasm host: in a component, export the plugin with exportPlugin from @kubewasm/sdk/component; ' +
        'in tests, install a FakeHost from @kubewasm/sdk/testing',
    );
  }
  return current;
}

// --- logging ---------------------------------------------------------------

/** Log fields: values are turned into text (objects as JSON). */
export type LogFields = Record<string, unknown>;

function fieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return '';
  if (value instanceof KubeObject) return value.describe();
  if (value instanceof Timestamp) return value.rfc3339;
  if (value instanceof Date) return value.toISOString();
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/**
 * A structured log record; the host adds the plugin and the object being
 * reconciled. (`console.log` prints nothing in a component.)
 */
export function log(level: LogLevel, message: string, fields: LogFields = {}): void {
  host().log(level, message, Object.entries(fields).map(([k, v]): [string, string] => [k, fieldText(v)]));
}
export const trace = (message: string, fields?: LogFields) => log('trace', message, fields);
export const debug = (message: string, fields?: LogFields) => log('debug', message, fields);
export const info = (message: string, fields?: LogFields) => log('info', message, fields);
export const warn = (message: string, fields?: LogFields) => log('warn', message, fields);
export const error = (message: string, fields?: LogFields) => log('error', message, fields);

// --- clock -----------------------------------------------------------------

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** An instant of the host's clock. */
export class Timestamp {
  constructor(
    /** Milliseconds since the Unix epoch (a `number`, not the WIT's BigInt). */
    readonly epochMs: number,
    /** UTC, second precision: `2026-12-04T03:15:00Z`, what `lastTransitionTime` wants. */
    readonly rfc3339: string,
  ) {}

  static fromEpochMs(epochMs: number): Timestamp {
    if (!Number.isSafeInteger(epochMs)) throw new KubewasmError(`timestamp: ${epochMs} is not a whole number of milliseconds`);
    const seconds = new Date(Math.floor(epochMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    return new Timestamp(epochMs, seconds);
  }
  /** An RFC 3339 time, as Kubernetes writes them (`metadata.creationTimestamp`). */
  static parse(text: string): Timestamp {
    const ms = RFC3339.test(text) ? Date.parse(text) : NaN;
    if (Number.isNaN(ms)) throw new KubewasmError(`timestamp ${JSON.stringify(text)} is not an RFC 3339 time`);
    return Timestamp.fromEpochMs(ms);
  }
  /** Milliseconds from `earlier` to this instant (negative if `earlier` is later). */
  since(earlier: Timestamp): number {
    return this.epochMs - earlier.epochMs;
  }
  /** This instant `ms` milliseconds later. */
  plus(ms: number): Timestamp {
    return Timestamp.fromEpochMs(this.epochMs + ms);
  }
  toDate(): Date {
    return new Date(this.epochMs);
  }
  toString(): string {
    return this.rfc3339;
  }
}

/**
 * The host's clock: the same instant for every call in one reconcile, and the
 * fixture's `now` in `kubewasm test`. (`Date.now()` is frozen at build time
 * in a component.)
 */
export function now(): Timestamp {
  const t = host().now();
  return new Timestamp(Number(t.epochMs), t.rfc3339);
}

// --- settings and cache reads --------------------------------------------

/** The operator's settings document as JSON text (`{}` if none). */
export function rawSettings(): string {
  return host().settings();
}

function read<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    if (e instanceof HostError) throw e;
    // componentize-js throws an import's `err` as an Error whose payload is the host's string.
    const payload = (e as { payload?: unknown })?.payload;
    throw new HostError(typeof payload === 'string' ? payload : `${what}: ${(e as Error)?.message ?? String(e)}`);
  }
}

/**
 * One object from the host's cache, or `undefined` if it does not exist. The
 * kind must be one the plugin subscribes to, owns or watches; otherwise the
 * host refuses and this throws a `HostError`.
 */
export function getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined {
  const text = read(`get ${kind} ${name}`, () => host().getObject(apiVersion, kind, namespace ?? undefined, name));
  return text === undefined || text === null ? undefined : KubeObject.parse(text);
}

/** The object `ref` names, from the host's cache (see `getObject`). */
export function getRef(ref: ObjectRef): KubeObject | undefined {
  return getObject(ref.apiVersion, ref.kind, ref.namespace, ref.name);
}

export interface ListOptions {
  /** Only this namespace (default: every namespace). */
  namespace?: string | undefined;
  /** A label selector, `tier=web,env in (a,b),!legacy`. */
  selector?: string | undefined;
}

/** Objects of a kind from the host's cache (same kind rules as `getObject`). */
export function listObjects(apiVersion: string, kind: string, options: ListOptions = {}): KubeObject[] {
  return read(`list ${kind}`, () =>
    host().listObjects(apiVersion, kind, options.namespace ?? undefined, options.selector ?? undefined),
  ).map((text) => KubeObject.parse(text));
}

/**
 * `owner`'s children of one kind: objects in the owner's namespace (every
 * namespace for a cluster-scoped owner) whose controller reference carries
 * the owner's uid, sorted by namespace and name. Declare the kind in `owns`.
 */
export function listOwned(apiVersion: string, kind: string, owner: KubeObject): KubeObject[] {
  if (!owner.uid) throw new KubewasmError(`${owner.describe()} has no metadata.uid to find its children by`);
  const key = (o: KubeObject) => `${o.namespace ?? ''}/${o.name}`;
  return listObjects(apiVersion, kind, { namespace: owner.namespace })
    .filter((child) => child.isControlledBy(owner))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
