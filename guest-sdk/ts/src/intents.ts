// Builders of the intents a reconcile returns, and the outcome that holds
// them. Each builder produces exactly what the contract expects (kebab-case
// variant tags, lower-case enums, JSON text, a BigInt requeue delay), so the
// shapes that trap inside a component cannot be written.

import { KubewasmError } from './errors.js';
import { isJsonObject, KubeObject, type JsonObject, type JsonValue, type ObjectRef, type OwnerReference } from './object.js';
import { ownerReferenceTo } from './owner.js';
import type { EventSeverity, Intent, PropagationPolicy, WitOutcome } from './wit.js';

/** Anything a reconcile may return among its intents. */
export interface IntentBuilder {
  toWit(): Intent;
}

function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new KubewasmError(`${what} must be a string, not ${JSON.stringify(value) ?? typeof value}`);
  return value;
}

/** A copy of `ref` that is a valid WIT `object-ref` (strings only). */
function checkRef(ref: ObjectRef, what: string): ObjectRef {
  if (!isJsonObject(ref as unknown)) throw new KubewasmError(`${what} must be an object reference`);
  const out: ObjectRef = {
    apiVersion: requireString(ref.apiVersion, `${what}.apiVersion`),
    kind: requireString(ref.kind, `${what}.kind`),
    name: requireString(ref.name, `${what}.name`),
  };
  if (ref.namespace !== undefined && ref.namespace !== null) out.namespace = requireString(ref.namespace, `${what}.namespace`);
  return out;
}

function identity(ref: ObjectRef): JsonObject {
  const metadata: JsonObject = { name: ref.name };
  if (ref.namespace !== undefined) metadata['namespace'] = ref.namespace;
  return { apiVersion: ref.apiVersion, kind: ref.kind, metadata };
}

function withOwner(object: JsonObject, owner: KubeObject | OwnerReference): JsonObject {
  const reference = owner instanceof KubeObject ? ownerReferenceTo(owner) : owner;
  const metadata = isJsonObject(object['metadata']) ? object['metadata'] : {};
  const refs = Array.isArray(metadata['ownerReferences']) ? metadata['ownerReferences'] : [];
  const kept = refs.filter((r) => !(isJsonObject(r) && r['uid'] === reference.uid));
  return { ...object, metadata: { ...metadata, ownerReferences: [...kept, reference as unknown as JsonObject] } };
}

function checkObject(object: JsonObject | KubeObject, what: string): JsonObject {
  const value = object instanceof KubeObject ? object.value : object;
  if (!isJsonObject(value)) throw new KubewasmError(`${what} must be a JSON object`);
  requireString(value['apiVersion'], `${what}.apiVersion`);
  requireString(value['kind'], `${what}.kind`);
  const metadata = value['metadata'];
  requireString(isJsonObject(metadata) ? metadata['name'] : undefined, `${what}.metadata.name`);
  return value;
}

/**
 * A server-side apply of the fields the plugin owns, with its field manager
 * (`kubewasm/<plugin>`). `force` (default true) takes fields over from other
 * managers; `status` applies to the status subresource.
 */
export class Apply implements IntentBuilder {
  private constructor(
    private object: JsonObject,
    private status: boolean,
    private force = true,
  ) {}

  /** Applies `object` as given: it names itself (apiVersion, kind, metadata.name). */
  static object(object: JsonObject | KubeObject): Apply {
    return new Apply(checkObject(object, 'apply object'), false);
  }
  /** Applies `fields` (e.g. `{ metadata: { labels } }`) to the object `ref` names. */
  static fields(ref: ObjectRef, fields: JsonObject): Apply {
    const base = identity(checkRef(ref, 'apply target'));
    const metadata = isJsonObject(fields['metadata']) ? fields['metadata'] : {};
    return new Apply({ ...base, ...fields, apiVersion: ref.apiVersion, kind: ref.kind, metadata: { ...metadata, ...(base['metadata'] as JsonObject) } }, false);
  }
  /** Applies `status` to the status subresource of the object `ref` names. */
  static status(ref: ObjectRef, status: JsonObject): Apply {
    return new Apply({ ...identity(checkRef(ref, 'apply target')), status }, true);
  }
  /** Whether to take conflicting fields over from other managers (default true). */
  withForce(force: boolean): this {
    this.force = force;
    return this;
  }
  /** Adds a controller owner reference to `owner` (an object, or a reference). */
  ownedBy(owner: KubeObject | OwnerReference): this {
    this.object = withOwner(this.object, owner);
    return this;
  }
  toWit(): Intent {
    return { tag: 'apply', val: { object: JSON.stringify(this.object), status: this.status, force: this.force } };
  }
}

export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: JsonValue }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** Escapes one key for a JSON pointer: `~` is `~0`, `/` is `~1`. */
export function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** An RFC 6902 JSON patch, built op by op. */
export class JsonPatch {
  readonly ops: JsonPatchOp[] = [];
  test(path: string, value: JsonValue): this {
    this.ops.push({ op: 'test', path, value });
    return this;
  }
  add(path: string, value: JsonValue): this {
    this.ops.push({ op: 'add', path, value });
    return this;
  }
  replace(path: string, value: JsonValue): this {
    this.ops.push({ op: 'replace', path, value });
    return this;
  }
  remove(path: string): this {
    this.ops.push({ op: 'remove', path });
    return this;
  }
  move(from: string, path: string): this {
    this.ops.push({ op: 'move', from, path });
    return this;
  }
  copy(from: string, path: string): this {
    this.ops.push({ op: 'copy', from, path });
    return this;
  }
}

/** A JSON merge patch or JSON patch of one object. */
export class Patch implements IntentBuilder {
  private status = false;
  private resourceVersion: string | undefined;
  private constructor(
    private readonly json: boolean,
    private readonly target: ObjectRef,
    private readonly patch: JsonValue,
  ) {}

  /** An RFC 7386 merge patch: `null` deletes a key. */
  static merge(target: ObjectRef, patch: JsonObject): Patch {
    if (!isJsonObject(patch)) throw new KubewasmError('merge patch must be a JSON object');
    return new Patch(false, checkRef(target, 'patch target'), patch);
  }
  /** An RFC 6902 JSON patch. */
  static json(target: ObjectRef, patch: JsonPatch | JsonPatchOp[]): Patch {
    const ops = patch instanceof JsonPatch ? patch.ops : patch;
    if (!Array.isArray(ops)) throw new KubewasmError('JSON patch must be a list of operations');
    return new Patch(true, checkRef(target, 'patch target'), ops as unknown as JsonValue);
  }
  /** Patches the status subresource. */
  onStatus(): this {
    this.status = true;
    return this;
  }
  /** Fails with a conflict unless the object is still at this resourceVersion. */
  ifResourceVersion(resourceVersion: string | undefined): this {
    this.resourceVersion = resourceVersion;
    return this;
  }
  toWit(): Intent {
    const val = { target: this.target, patch: JSON.stringify(this.patch), status: this.status, resourceVersion: this.resourceVersion };
    return this.json ? { tag: 'json-patch', val } : { tag: 'merge-patch', val };
  }
}

/** Creates an object (fails if it exists: use `Apply` to converge). */
export class Create implements IntentBuilder {
  private constructor(private object: JsonObject) {}
  static object(object: JsonObject | KubeObject): Create {
    return new Create(checkObject(object, 'create object'));
  }
  /** Adds a controller owner reference to `owner` (an object, or a reference). */
  ownedBy(owner: KubeObject | OwnerReference): this {
    this.object = withOwner(this.object, owner);
    return this;
  }
  toWit(): Intent {
    return { tag: 'create', val: { object: JSON.stringify(this.object) } };
  }
}

const PROPAGATIONS: readonly PropagationPolicy[] = ['background', 'foreground', 'orphan'];

/** Deletes an object (absent already counts as done). */
export class Delete implements IntentBuilder {
  private policy: PropagationPolicy | undefined;
  private constructor(private readonly target: ObjectRef) {}
  static of(target: ObjectRef): Delete {
    return new Delete(checkRef(target, 'delete target'));
  }
  /** How dependents are deleted; Kubernetes' spelling (`Foreground`) is accepted too. */
  propagation(policy: PropagationPolicy | 'Background' | 'Foreground' | 'Orphan'): this {
    const lower = String(policy).toLowerCase() as PropagationPolicy;
    if (!PROPAGATIONS.includes(lower)) {
      throw new KubewasmError(`delete propagation ${JSON.stringify(policy)} is not background, foreground or orphan`);
    }
    this.policy = lower;
    return this;
  }
  toWit(): Intent {
    return { tag: 'delete', val: { target: this.target, propagation: this.policy } };
  }
}

/** Records a Kubernetes Event about an object. */
export class RecordEvent implements IntentBuilder {
  private what = 'Reconcile';
  private constructor(
    private readonly regarding: ObjectRef,
    private readonly severity: EventSeverity,
    private readonly reason: string,
    private readonly note: string,
  ) {}
  /** A `Normal` Event; `reason` is UpperCamelCase (`ContentHashed`). */
  static normal(regarding: ObjectRef, reason: string, note: string): RecordEvent {
    return new RecordEvent(checkRef(regarding, 'event regarding'), 'normal', requireString(reason, 'event reason'), requireString(note, 'event note'));
  }
  /** A `Warning` Event. */
  static warning(regarding: ObjectRef, reason: string, note: string): RecordEvent {
    return new RecordEvent(checkRef(regarding, 'event regarding'), 'warning', requireString(reason, 'event reason'), requireString(note, 'event note'));
  }
  /** What was done or failed (`Validate`); `Reconcile` by default, as in the Rust and Python SDKs. */
  action(action: string): this {
    this.what = requireString(action, 'event action');
    return this;
  }
  toWit(): Intent {
    return {
      tag: 'record-event',
      val: { regarding: this.regarding, severity: this.severity, reason: this.reason, note: this.note, action: this.what },
    };
  }
}

/** What a reconcile returns: intents, applied in order, and an optional requeue. */
export class Outcome {
  readonly intents: IntentBuilder[];
  requeueAfterMs: number | undefined;

  constructor(...intents: (IntentBuilder | undefined)[]) {
    this.intents = intents.filter((i): i is IntentBuilder => i !== undefined);
  }
  static of(...intents: (IntentBuilder | undefined)[]): Outcome {
    return new Outcome(...intents);
  }
  /** Adds intents; `undefined` is skipped (e.g. a `StatusUpdate` with nothing to write). */
  add(...intents: (IntentBuilder | undefined)[]): this {
    for (const i of intents) if (i !== undefined) this.intents.push(i);
    return this;
  }
  /** Reconciles the object again after `ms` milliseconds (a whole number). */
  requeueAfter(ms: number): this {
    if (!Number.isSafeInteger(ms) || ms < 0) {
      throw new KubewasmError(`requeueAfterMs must be a whole number of milliseconds, not ${ms}`);
    }
    this.requeueAfterMs = ms;
    return this;
  }
  toWit(): WitOutcome {
    const intents = this.intents.map((intent, i) => {
      if (typeof (intent as Partial<IntentBuilder>)?.toWit !== 'function') {
        throw new KubewasmError(`intents[${i}] is not an intent built with the SDK (Apply, Patch, Create, Delete, RecordEvent)`);
      }
      return intent.toWit();
    });
    return { intents, requeueAfterMs: this.requeueAfterMs === undefined ? undefined : BigInt(this.requeueAfterMs) };
  }
}
