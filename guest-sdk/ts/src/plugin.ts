// What a plugin declares (`describe`) and what it is given (`Event`).

import { KubewasmError } from './errors.js';
import { KubeObject, type JsonObject } from './object.js';
import type { EventType, GroupKind, KindRef, MapRule, ResourceKind, WitEvent, WitPluginInfo, WitSubscription, WriteScope } from './wit.js';

export type { EventType, GroupKind, KindRef, ResourceKind };

/** Objects of one kind pattern the plugin reconciles (`"*"` matches any group, version or kind). */
export class Subscription {
  private namespaces: string[] = [];
  private labelSelector: string | undefined;
  private constructor(
    private readonly group: string,
    private readonly version: string,
    private readonly kind: string,
  ) {}

  /** `group` is `""` for the core group: `Subscription.of('', 'v1', 'ConfigMap')`. */
  static of(group: string, version: string, kind: string): Subscription {
    for (const [what, v] of Object.entries({ group, version, kind })) {
      if (typeof v !== 'string') throw new KubewasmError(`subscription ${what} must be a string`);
    }
    return new Subscription(group, version, kind);
  }
  /** Only objects matching this label selector (`app=web,tier!=cache`). */
  selector(labelSelector: string): this {
    this.labelSelector = labelSelector;
    return this;
  }
  /** Only objects in these namespaces (cluster-scoped objects are delivered regardless). */
  inNamespaces(...namespaces: string[]): this {
    this.namespaces.push(...namespaces);
    return this;
  }
  toWit(): WitSubscription {
    return { group: this.group, version: this.version, kind: this.kind, namespaces: [...this.namespaces], labelSelector: this.labelSelector };
  }
}

/** Changes of `source` objects reconcile `target` objects chosen by a rule. */
export class MappedWatch {
  private constructor(
    readonly source: KindRef,
    readonly target: GroupKind,
    readonly rule: MapRule,
  ) {}
  /** Targets whose field at `path` (`spec.configMapRef.name`) is the source's name. */
  static fieldRef(source: KindRef, target: GroupKind, path: string): MappedWatch {
    return new MappedWatch(source, target, { tag: 'field-ref', val: path });
  }
  /** The target named by the value of this label on the source. */
  static label(source: KindRef, target: GroupKind, key: string): MappedWatch {
    return new MappedWatch(source, target, { tag: 'label', val: key });
  }
  /** Every target in the namespace matching this label selector. */
  static selector(source: KindRef, target: GroupKind, selector: string): MappedWatch {
    return new MappedWatch(source, target, { tag: 'selector', val: selector });
  }
}

const groupKind = ({ group, kind }: GroupKind): GroupKind => ({ group, kind });
const kindRef = ({ group, kind, version }: KindRef): KindRef => (version === undefined ? { group, kind } : { group, kind, version });

/** What `describe` returns: identity, subscriptions, write scope, owned kinds, watches, finalizer. */
export class PluginInfo {
  private readonly subscriptions: Subscription[] = [];
  private readonly scopes: WriteScope[] = [];
  private readonly owned: KindRef[] = [];
  private readonly watched: MappedWatch[] = [];
  private finalizerDecl: { name: string; kinds: GroupKind[] } | undefined;

  constructor(
    readonly name: string,
    readonly version: string,
  ) {
    if (typeof name !== 'string' || name === '') throw new KubewasmError('plugin name must be a non-empty string');
    if (typeof version !== 'string' || version === '') throw new KubewasmError('plugin version must be a non-empty string');
  }

  subscribe(...subscriptions: Subscription[]): this {
    this.subscriptions.push(...subscriptions);
    return this;
  }
  /** Kinds the plugin may write (`"*"` allowed); Events about its objects are always allowed. */
  writes(group: string, kind: string): this {
    this.scopes.push({ group, kind });
    return this;
  }
  /** A kind of children: a child's change reconciles its controller. The host caches it. */
  owns(group: string, kind: string, version?: string): this {
    this.owned.push(kindRef({ group, kind, version }));
    return this;
  }
  watches(...watches: MappedWatch[]): this {
    this.watched.push(...watches);
    return this;
  }
  /** A finalizer the host adds to objects of `kinds` and removes once `finalizing` succeeds. */
  finalizer(name: string, ...kinds: GroupKind[]): this {
    if (kinds.length === 0) throw new KubewasmError(`finalizer ${name}: name at least one kind`);
    this.finalizerDecl = { name, kinds: kinds.map(groupKind) };
    return this;
  }
  toWit(): WitPluginInfo {
    return {
      name: this.name,
      version: this.version,
      subscriptions: this.subscriptions.map((s) => s.toWit()),
      writes: this.scopes.map((w) => ({ ...w })),
      owns: this.owned.map(kindRef),
      watches: this.watched.map((w) => ({ source: kindRef(w.source), target: groupKind(w.target), rule: { ...w.rule } })),
      finalizer: this.finalizerDecl,
    };
  }
}

/** The plural resource name of `kind`, guessed (for tests): `Policy` is `policies`. */
export function pluralOf(kind: string): string {
  const lower = kind.toLowerCase();
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return /(s|x|ch|sh)$/.test(lower) ? `${lower}es` : `${lower}s`;
}

/** One reconcile's event: what happened, to which object, of which kind. */
export class Event {
  constructor(
    readonly type: EventType,
    readonly object: KubeObject,
    readonly kind: ResourceKind,
  ) {}

  static fromWit(event: WitEvent): Event {
    return new Event(event.eventType, KubeObject.parse(event.object), event.kind);
  }
  /** An event for tests: `Event.of(configMap)` is an `applied` event of it. */
  static of(object: JsonObject | KubeObject, type: EventType = 'applied'): Event {
    const o = object instanceof KubeObject ? object : new KubeObject(object);
    const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/', 2) : ['', o.apiVersion];
    const kind: ResourceKind = { group: group ?? '', version: version ?? '', kind: o.kind, plural: pluralOf(o.kind), namespaced: o.namespace !== undefined };
    return new Event(type, o, kind);
  }

  /** The object was deleted (it is its last known state). */
  get isDeleted(): boolean {
    return this.type === 'deleted';
  }
  /** The object carries the plugin's finalizer and is being deleted: clean up. */
  get isFinalizing(): boolean {
    return this.type === 'finalizing';
  }
  get isResync(): boolean {
    return this.type === 'resync';
  }
}
