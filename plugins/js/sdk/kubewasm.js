// Helpers for kubewasm plugins in JavaScript, the counterparts of the Rust
// SDK's `cache::list_owned` and `StatusUpdate`. Free of host imports: pass
// the host functions in (`listObjects`, `now`), so Node can test code that
// uses them. A plugin imports it relatively, e.g. from
// `<name>/src/index.js`: `import { statusApply } from '../../sdk/kubewasm.js';`
// (build.sh componentizes from plugins/js, so the import resolves).

/** The owner reference marked `controller: true` on `object`, if any. */
export function controllerOf(object) {
  const refs = object?.metadata?.ownerReferences;
  return Array.isArray(refs) ? refs.find((r) => r?.controller === true) : undefined;
}

/** Whether `owner` (matched by `metadata.uid`) is `child`'s controller. */
export function isControlledBy(child, owner) {
  const uid = owner?.metadata?.uid;
  return Boolean(uid) && controllerOf(child)?.uid === uid;
}

/**
 * The children of `owner` of one kind from the host's cache: objects in the
 * owner's namespace (every namespace for a cluster-scoped owner) whose
 * controller reference carries the owner's uid, parsed and sorted by
 * namespace and name. `listObjects` is the host import. Declare the kind in
 * `owns` so the host caches it and reconciles the owner when a child changes.
 */
export function listOwned(listObjects, apiVersion, kind, owner) {
  const { namespace, name, uid } = owner?.metadata ?? {};
  if (!uid) {
    throw new Error(`${owner?.kind} ${namespace ? `${namespace}/` : ''}${name} has no metadata.uid to find its children by`);
  }
  const key = (o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
  return listObjects(apiVersion, kind, namespace, undefined)
    .map((text) => JSON.parse(text))
    .filter((child) => isControlledBy(child, owner))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** The condition of one type in `object.status.conditions`, if any. */
export function conditionOf(object, type) {
  const conditions = object?.status?.conditions;
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === type) : undefined;
}

/**
 * The `apply` intent of `object`'s status subresource that sets `conditions`
 * (each `{ type, status: 'True' | 'False' | 'Unknown', reason, message }`)
 * and the other status `fields`, or `undefined` if the object's status
 * already says all that, so repeated reconciles write nothing. Like the Rust
 * SDK's `StatusUpdate`:
 *
 * - a condition's `observedGeneration` defaults to `metadata.generation`;
 * - its `lastTransitionTime` is kept from the current condition of that type
 *   when the status is the same, and is `now().rfc3339` otherwise (`now` is
 *   the host import, called only then);
 * - `observedGeneration: true` also sets `status.observedGeneration`;
 * - only the conditions given are applied: other managers' conditions stay
 *   theirs when the CRD makes `status.conditions` a map list keyed by `type`.
 */
export function statusApply(object, { conditions = [], fields = {}, observedGeneration = false }, now) {
  const { apiVersion, kind, metadata = {} } = object;
  const status = { ...fields };
  if (observedGeneration) status.observedGeneration = metadata.generation;
  let changed = Object.entries(status).some(
    ([key, value]) => JSON.stringify(object.status?.[key]) !== JSON.stringify(value),
  );
  const applied = conditions.map((wanted) => {
    const current = conditionOf(object, wanted.type);
    const condition = {
      type: wanted.type,
      status: wanted.status,
      reason: wanted.reason,
      message: wanted.message ?? '',
      lastTransitionTime:
        current?.status === wanted.status && current.lastTransitionTime
          ? current.lastTransitionTime
          : now().rfc3339,
    };
    const generation = wanted.observedGeneration ?? metadata.generation;
    if (generation !== undefined) condition.observedGeneration = generation;
    const same =
      current !== undefined &&
      Object.keys(condition).every((k) => JSON.stringify(current[k]) === JSON.stringify(condition[k])) &&
      (current.observedGeneration ?? undefined) === condition.observedGeneration;
    changed ||= !same;
    return condition;
  });
  if (!changed) return undefined;
  if (applied.length > 0) status.conditions = applied;
  const identity = { name: metadata.name };
  if (metadata.namespace !== undefined) identity.namespace = metadata.namespace;
  return {
    tag: 'apply',
    val: { object: JSON.stringify({ apiVersion, kind, metadata: identity, status }), status: true, force: true },
  };
}
