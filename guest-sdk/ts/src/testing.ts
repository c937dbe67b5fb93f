// Testing plugins in Node, without a component or a cluster:
//
//   const host = new FakeHost({ settings: { reason: 'Checked' }, objects: [secret] }).install();
//   const outcome = plugin.reconcile(Event.of(configMap), settingsOf(plugin, host.settings()));
//   assert.deepEqual(host.logs, [{ level: 'info', message: 'checked', fields: { name: 'web' } }]);
//
// `FakeHost` answers cache reads from its objects (reads of kinds outside
// `readable`, when given, are refused like the host refuses them), returns
// a fixed clock and records log lines. `witOutcome` turns what `reconcile`
// returned into the contract's shape, `expected` into the JSON `kubewasm
// test` writes in a fixture's `expected.json`.

import { HostError, KubewasmError } from './errors.js';
import { outcomeOf, type ReconcileResult } from './export.js';
import { installHost, Timestamp, type Host, type LogLevel } from './host.js';
import { KubeObject, type JsonObject } from './object.js';
import type { PluginInfo } from './plugin.js';
import type { Intent, WitOutcome } from './wit.js';

export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: Record<string, string>;
}

export interface FakeHostOptions {
  /** The settings document: JSON text, or a value to serialize (default `{}`). */
  settings?: string | JsonObject;
  /** The host's cache. */
  objects?: (JsonObject | KubeObject)[];
  /** The clock (default the Unix epoch). */
  now?: Date | string | number;
  /** The kinds reads may name (`{ apiVersion: 'v1', kind: 'ConfigMap' }`). */
  readable?: { apiVersion: string; kind: string }[];
  /**
   * The plugin's description: reads of kinds it neither subscribes to, owns
   * nor watches are refused, as the host refuses them. Without this or
   * `readable`, every kind may be read.
   */
  info?: PluginInfo;
}

/** A label selector requirement: `key op values`. */
type Requirement = { key: string; op: 'in' | 'notin' | 'exists' | '!exists'; values: string[] };

/** Parses a Kubernetes label selector (`a=b,c!=d,e in (f,g),h,!i`). */
export function parseSelector(selector: string): Requirement[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    if (selector[i] === '(') depth++;
    else if (selector[i] === ')') depth--;
    else if (selector[i] === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((part): Requirement => {
      let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
      if (m) return { key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()) };
      m = /^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
      if (m) return { key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] };
      m = /^(!?)\s*([^\s!=]+)$/.exec(part);
      if (m) return { key: m[2]!, op: m[1] ? '!exists' : 'exists', values: [] };
      throw new KubewasmError(`label selector ${JSON.stringify(selector)}: cannot parse ${JSON.stringify(part)}`);
    });
}

/** Whether `labels` match `selector`. */
export function matchesSelector(labels: Record<string, string>, selector: string): boolean {
  return parseSelector(selector).every(({ key, op, values }) => {
    const has = Object.hasOwn(labels, key);
    switch (op) {
      case 'exists':
        return has;
      case '!exists':
        return !has;
      case 'in':
        return has && values.includes(labels[key]!);
      case 'notin':
        return !has || !values.includes(labels[key]!);
    }
  });
}

/** A host for Node tests; `install()` makes the SDK's functions use it. */
export class FakeHost implements Host {
  readonly logs: LogRecord[] = [];
  objects: KubeObject[];
  settingsText: string;
  clock: Date;
  readable: { apiVersion: string; kind: string }[] | undefined;
  /** (group, kind) patterns the plugin may read, `*` matching any, from `options.info`. */
  private readonly scopes: { group: string; kind: string }[] | undefined;
  private readonly pluginName: string | undefined;

  constructor(options: FakeHostOptions = {}) {
    this.objects = (options.objects ?? []).map((o) => (o instanceof KubeObject ? o : new KubeObject(o)));
    this.settingsText = typeof options.settings === 'string' ? options.settings : JSON.stringify(options.settings ?? {});
    this.clock = new Date(options.now ?? 0);
    this.readable = options.readable;
    if (options.info !== undefined) {
      const wit = options.info.toWit();
      this.pluginName = wit.name;
      this.scopes = [...wit.subscriptions, ...wit.owns, ...wit.watches.map((w) => w.source)].map(({ group, kind }) => ({ group, kind }));
    }
  }

  install(): this {
    installHost(this);
    return this;
  }

  log(level: LogLevel, message: string, fields: [string, string][]): void {
    this.logs.push({ level, message, fields: Object.fromEntries(fields) });
  }
  settings(): string {
    return this.settingsText;
  }
  now(): { epochMs: bigint; rfc3339: string } {
    const t = Timestamp.fromEpochMs(this.clock.getTime());
    return { epochMs: BigInt(t.epochMs), rfc3339: t.rfc3339 };
  }

  private scope(apiVersion: string, kind: string): KubeObject[] {
    if (this.readable && !this.readable.some((r) => r.apiVersion === apiVersion && r.kind === kind)) {
      throw new HostError(`${apiVersion} ${kind} is not readable: the plugin neither subscribes to, owns nor watches it`);
    }
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';
    const matches = (pattern: string, value: string) => pattern === '*' || pattern === value;
    if (this.scopes && !this.scopes.some((s) => matches(s.group, group) && matches(s.kind, kind))) {
      throw new HostError(
        `plugin ${this.pluginName} may not read ${kind} (${apiVersion}): it neither subscribes to, owns nor watches that kind`,
      );
    }
    return this.objects.filter((o) => o.apiVersion === apiVersion && o.kind === kind);
  }
  getObject(apiVersion: string, kind: string, namespace: string | undefined, name: string): string | undefined {
    const found = this.scope(apiVersion, kind).find((o) => o.namespace === namespace && o.name === name);
    return found === undefined ? undefined : JSON.stringify(found.value);
  }
  listObjects(apiVersion: string, kind: string, namespace: string | undefined, selector: string | undefined): string[] {
    return this.scope(apiVersion, kind)
      .filter((o) => namespace === undefined || o.namespace === namespace)
      .filter((o) => selector === undefined || matchesSelector(o.labels, selector))
      .map((o) => JSON.stringify(o.value));
  }
}

/** What `reconcile` returned, as `kubewasm test` prints it in `expected.json`. */
export function expected(result: ReconcileResult): JsonObject {
  return expectedOf(outcomeOf(result));
}

/** The contract's outcome as `kubewasm test` prints it in `expected.json`. */
export function expectedOf(outcome: WitOutcome): JsonObject {
  const requeue = outcome.requeueAfterMs;
  return { intents: outcome.intents.map(expectedIntent), requeueAfterMs: requeue === undefined ? null : Number(requeue) };
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function expectedIntent(intent: Intent): JsonObject {
  const val = intent.val as unknown as Record<string, unknown>;
  const out: JsonObject = { type: intent.tag };
  for (const [key, value] of Object.entries(val)) {
    if (value === undefined) out[key] = null;
    else if (key === 'object' || key === 'patch') out[key] = JSON.parse(value as string);
    else if (key === 'severity' || key === 'propagation') out[key] = capital(value as string);
    else if (key === 'target' || key === 'regarding') out[key] = { namespace: null, ...(value as JsonObject) };
    else out[key] = value as JsonObject;
  }
  return out;
}
