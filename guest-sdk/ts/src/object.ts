// Kubernetes objects as the host delivers them (JSON), with typed accessors.

import { KubewasmError } from './errors.js';
import type { ObjectRef } from './wit.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
/** A JSON object; a key whose value is `undefined` is left out when serialized. */
export type JsonObject = { [key: string]: JsonValue | undefined };

export type { ObjectRef };

/** An owner reference, as `metadata.ownerReferences` holds them. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** A status condition, as `status.conditions` holds them. */
export interface ConditionValue {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Splits a field path into keys and indexes: `spec.ports[0].port` is
 * `['spec', 'ports', 0, 'port']`; a key holding dots or brackets is quoted,
 * `metadata.labels["app.kubernetes.io/name"]`.
 */
export function parsePath(path: string): (string | number)[] {
  const steps: (string | number)[] = [];
  const bad = (why: string) => new KubewasmError(`field path ${JSON.stringify(path)}: ${why}`);
  let i = 0;
  while (i < path.length) {
    if (path[i] === '[') {
      const end = path.indexOf(']', i);
      if (end < 0) throw bad('unclosed [');
      const inner = path.slice(i + 1, end);
      if (/^[0-9]+$/.test(inner)) {
        steps.push(Number(inner));
      } else if (inner.startsWith('"')) {
        try {
          steps.push(String(JSON.parse(inner)));
        } catch {
          throw bad(`${inner} is not a quoted key`);
        }
      } else {
        throw bad(`[${inner}] is neither an index nor a quoted key`);
      }
      i = end + 1;
      if (path[i] === '.') i += 1;
      continue;
    }
    let end = i;
    while (end < path.length && path[end] !== '.' && path[end] !== '[') end += 1;
    if (end === i) throw bad('empty key');
    steps.push(path.slice(i, end));
    i = path[end] === '.' ? end + 1 : end;
    if (path[end] === '.' && i === path.length) throw bad('ends with a dot');
  }
  if (steps.length === 0) throw bad('empty path');
  return steps;
}

/** The value at `path` (see `parsePath`) in `value`, or `undefined`. */
export function getPath(value: JsonValue | undefined, path: string): JsonValue | undefined {
  let here: JsonValue | undefined = value;
  for (const step of parsePath(path)) {
    if (typeof step === 'number') {
      here = Array.isArray(here) ? here[step] : undefined;
    } else {
      here = isJsonObject(here) && Object.hasOwn(here, step) ? here[step] : undefined;
    }
    if (here === undefined) return undefined;
  }
  return here;
}

function stringMap(value: JsonValue | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (isJsonObject(value)) {
    for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** A Kubernetes object: its JSON (`value`) and accessors for what plugins read. */
export class KubeObject {
  constructor(readonly value: JsonObject) {}

  /** Parses the JSON text the host delivers. */
  static parse(text: string): KubeObject {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new KubewasmError('object: not valid JSON');
    }
    if (!isJsonObject(value)) throw new KubewasmError('object: not a JSON object');
    return new KubeObject(value);
  }

  private get metadata(): JsonObject {
    const m = this.value['metadata'];
    return isJsonObject(m) ? m : {};
  }

  private meta(key: string): string | undefined {
    const v = this.metadata[key];
    return typeof v === 'string' ? v : undefined;
  }

  get apiVersion(): string {
    return typeof this.value['apiVersion'] === 'string' ? this.value['apiVersion'] : '';
  }
  get kind(): string {
    return typeof this.value['kind'] === 'string' ? this.value['kind'] : '';
  }
  get name(): string {
    return this.meta('name') ?? '';
  }
  get namespace(): string | undefined {
    return this.meta('namespace');
  }
  get uid(): string | undefined {
    return this.meta('uid');
  }
  get resourceVersion(): string | undefined {
    return this.meta('resourceVersion');
  }
  get generation(): number | undefined {
    const g = this.metadata['generation'];
    return typeof g === 'number' ? g : undefined;
  }
  get creationTimestamp(): string | undefined {
    return this.meta('creationTimestamp');
  }
  get deletionTimestamp(): string | undefined {
    return this.meta('deletionTimestamp');
  }
  /** Whether the object is terminating (`metadata.deletionTimestamp` is set). */
  get isBeingDeleted(): boolean {
    return this.deletionTimestamp !== undefined;
  }
  get labels(): Record<string, string> {
    return stringMap(this.metadata['labels']);
  }
  get annotations(): Record<string, string> {
    return stringMap(this.metadata['annotations']);
  }
  label(key: string): string | undefined {
    return this.labels[key];
  }
  annotation(key: string): string | undefined {
    return this.annotations[key];
  }
  get finalizers(): string[] {
    const f = this.metadata['finalizers'];
    return Array.isArray(f) ? f.filter((x): x is string => typeof x === 'string') : [];
  }

  /** The value at a field path such as `spec.ports[0].port`, or `undefined`. */
  get(path: string): JsonValue | undefined {
    return getPath(this.value, path);
  }
  /**
   * The value at `path` parsed by a schema (`schema.object({...})` from the
   * settings module), `undefined` if absent; errors name the field
   * (`spec.replicas: must be a whole number`).
   */
  getAs<T>(path: string, schema: { parse(value: unknown, path: string): T }): T | undefined {
    const v = this.get(path);
    return v === undefined || v === null ? undefined : schema.parse(v, path);
  }
  /** The string at `path`; `undefined` if absent, an error if not a string. */
  getString(path: string): string | undefined {
    return this.typed(path, 'a string', (v): v is string => typeof v === 'string');
  }
  /** The number at `path`; `undefined` if absent, an error if not a number. */
  getNumber(path: string): number | undefined {
    return this.typed(path, 'a number', (v): v is number => typeof v === 'number');
  }
  /** The boolean at `path`; `undefined` if absent, an error if not a boolean. */
  getBoolean(path: string): boolean | undefined {
    return this.typed(path, 'true or false', (v): v is boolean => typeof v === 'boolean');
  }

  private typed<T extends JsonValue>(path: string, what: string, is: (v: JsonValue) => v is T): T | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (!is(v)) throw new KubewasmError(`${this.describe()}: ${path} must be ${what}`);
    return v;
  }

  /** The reference intents use to name this object. */
  ref(): ObjectRef {
    const ref: ObjectRef = { apiVersion: this.apiVersion, kind: this.kind, name: this.name };
    if (this.namespace !== undefined) ref.namespace = this.namespace;
    return ref;
  }

  get ownerReferences(): OwnerReference[] {
    const refs = this.metadata['ownerReferences'];
    return Array.isArray(refs) ? (refs.filter(isJsonObject) as unknown as OwnerReference[]) : [];
  }
  /** The owner reference marked `controller: true`, if any. */
  controller(): OwnerReference | undefined {
    return this.ownerReferences.find((r) => r.controller === true);
  }
  /** Whether `owner` (matched by uid) is this object's controller. */
  isControlledBy(owner: KubeObject): boolean {
    const uid = owner.uid;
    return uid !== undefined && uid !== '' && this.controller()?.uid === uid;
  }

  get conditions(): ConditionValue[] {
    const c = getPath(this.value, 'status.conditions');
    return Array.isArray(c) ? (c.filter(isJsonObject) as unknown as ConditionValue[]) : [];
  }
  /** The condition of this type in `status.conditions`, if any. */
  condition(type: string): ConditionValue | undefined {
    return this.conditions.find((c) => c.type === type);
  }

  /** `Kind namespace/name`, for messages. */
  describe(): string {
    return `${this.kind} ${this.namespace !== undefined ? `${this.namespace}/` : ''}${this.name}`;
  }

  toJSON(): JsonObject {
    return this.value;
  }
}
