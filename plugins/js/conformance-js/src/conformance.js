// The conformance behaviour (conformance/README.md), free of host imports so
// that Node can unit-test it: the host functions are passed in. Each
// ConfigMap says in its `conformance.kubewasm.dev/do` label which part of
// the contract to exercise.

export const PREFIX = 'conformance.kubewasm.dev/';
const DO = `${PREFIX}do`;
const FINALIZER = `${PREFIX}cleanup`;
const MAX_REQUEUE_MS = 3_600_000;
const KNOWN = ['reason', 'requeueAfterMs'];

export function describe() {
  return {
    name: 'conformance',
    version: '1.0.0',
    subscriptions: [{ group: '', version: 'v1', kind: 'ConfigMap', namespaces: [], labelSelector: DO }],
    writes: [{ group: '', kind: 'ConfigMap' }],
    owns: [],
    watches: [],
    finalizer: { name: FINALIZER, kinds: [{ group: '', kind: 'ConfigMap' }] },
  };
}

/** The effective settings, or throws an `Error` with the specified message. */
export function parseSettings(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error('settings: not valid JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('settings: must be a JSON object');
  }
  const unknown = Object.keys(raw).sort().find((k) => !KNOWN.includes(k));
  if (unknown !== undefined) {
    throw new Error(`settings.${unknown}: unknown field (known: ${KNOWN.join(', ')})`);
  }
  let reason = 'Conformance';
  if (Object.hasOwn(raw, 'reason')) {
    if (typeof raw.reason !== 'string') throw new Error('settings.reason: must be a string');
    if (!/^[A-Z][A-Za-z0-9]*$/.test(raw.reason)) {
      throw new Error(`settings.reason: ${JSON.stringify(raw.reason)} is not UpperCamelCase`);
    }
    reason = raw.reason;
  }
  let requeueAfterMs = 1500;
  if (Object.hasOwn(raw, 'requeueAfterMs')) {
    const ms = raw.requeueAfterMs;
    if (!Number.isInteger(ms) || ms < 1 || ms > MAX_REQUEUE_MS) {
      throw new Error(`settings.requeueAfterMs: must be a whole number from 1 to ${MAX_REQUEUE_MS}`);
    }
    requeueAfterMs = ms;
  }
  return { reason, requeueAfterMs };
}

const outcome = (intents = [], requeueAfterMs = undefined) => ({ intents, requeueAfterMs });

/** The `object-ref` of `object`. */
function refOf(object) {
  return {
    apiVersion: object.apiVersion,
    kind: object.kind,
    namespace: object.metadata?.namespace,
    name: object.metadata?.name,
  };
}

/** A ConfigMap named `name` in `object`'s namespace. */
function sibling(object, name) {
  return { apiVersion: 'v1', kind: 'ConfigMap', namespace: object.metadata?.namespace, name };
}

/** The identity of `ref` as an object to apply, merged with `fields`. */
function skeleton(ref, fields = {}) {
  const metadata = { name: ref.name };
  if (ref.namespace !== undefined) metadata.namespace = ref.namespace;
  return { apiVersion: ref.apiVersion, kind: ref.kind, ...fields, metadata: { ...metadata, ...(fields.metadata ?? {}) } };
}

function apply(object, { status = false, force = true } = {}) {
  return { tag: 'apply', val: { object: JSON.stringify(object), status, force } };
}

function annotate(ref, annotations, options) {
  return apply(skeleton(ref, { metadata: { annotations } }), options);
}

function recordEvent(regarding, severity, reason, note, action) {
  return { tag: 'record-event', val: { regarding, severity, reason, note, action } };
}

const annotation = (object, name) => object.metadata?.annotations?.[`${PREFIX}${name}`];
const dataValue = (object) => object.data?.value;

function applied(object, options) {
  return annotate(refOf(object), { [`${PREFIX}applied`]: dataValue(object) ?? 'yes' }, options);
}

function eventAbout(object, settings) {
  const severity = annotation(object, 'severity') === 'Warning' ? 'warning' : 'normal';
  return recordEvent(refOf(object), severity, settings.reason, `conformance event for ${object.metadata?.name}`, 'Test');
}

const PROPAGATIONS = { Background: 'background', Foreground: 'foreground', Orphan: 'orphan' };

/**
 * One reconcile. `host` holds the host imports: `getObject`, `listObjects`
 * (which throw on an `err`), `log` and `now`.
 */
export function reconcile(event, settings, host) {
  const object = JSON.parse(event.object);
  const self = refOf(object);
  const name = object.metadata?.name;
  const namespace = object.metadata?.namespace;
  const action = object.metadata?.labels?.[DO] ?? '';
  host.log('info', 'conformance reconcile', [['do', action]]);

  if (event.eventType === 'deleted') {
    return outcome([
      apply({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${name}-tombstone`, namespace },
        data: { last: dataValue(object) ?? '' },
      }),
    ]);
  }
  if (event.eventType === 'finalizing') {
    const child = `${name}-child`;
    return outcome([
      { tag: 'delete', val: { target: sibling(object, child), propagation: 'foreground' } },
      recordEvent(self, 'normal', settings.reason, `cleaned up ${child}`, 'Finalize'),
    ]);
  }
  if (object.metadata?.deletionTimestamp) return outcome();

  switch (action) {
    case 'nothing':
      return outcome();
    case 'apply':
      return outcome([applied(object)]);
    case 'apply-unforced':
      return outcome([applied(object, { force: false })]);
    case 'apply-status': {
      const status = { phase: 'Reconciled' };
      if (object.metadata?.generation !== undefined) status.observedGeneration = object.metadata.generation;
      return outcome([apply(skeleton(self, { status }), { status: true })]);
    }
    case 'merge-patch':
      return outcome([
        {
          tag: 'merge-patch',
          val: {
            target: self,
            patch: JSON.stringify({ metadata: { labels: { [`${PREFIX}patched`]: 'merge' } } }),
            status: false,
            resourceVersion: object.metadata?.resourceVersion,
          },
        },
      ]);
    case 'merge-patch-status':
      return outcome([
        {
          tag: 'merge-patch',
          val: { target: self, patch: JSON.stringify({ status: { phase: 'Patched' } }), status: true },
        },
      ]);
    case 'json-patch': {
      const value = dataValue(object);
      if (typeof value !== 'string') throw new Error('json-patch needs data.value');
      const ops = [
        { op: 'test', path: '/data/value', value },
        { op: 'replace', path: '/data/value', value: `${value}!` },
        { op: 'add', path: '/metadata/labels/conformance.kubewasm.dev~1patched', value: 'json' },
      ];
      return outcome([{ tag: 'json-patch', val: { target: self, patch: JSON.stringify(ops), status: false } }]);
    }
    case 'create': {
      const uid = object.metadata?.uid;
      if (!uid) throw new Error(`${namespace}/${name} has no metadata.uid to own a child`);
      const child = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: `${name}-child`,
          namespace,
          labels: { [`${PREFIX}parent`]: name },
          ownerReferences: [
            { apiVersion: object.apiVersion, kind: object.kind, name, uid, controller: true, blockOwnerDeletion: true },
          ],
        },
        data: { value: dataValue(object) ?? '' },
      };
      return outcome([{ tag: 'create', val: { object: JSON.stringify(child) } }]);
    }
    case 'delete': {
      const target = annotation(object, 'target') ?? `${name}-child`;
      const given = annotation(object, 'propagation');
      if (given !== undefined && !Object.hasOwn(PROPAGATIONS, given)) {
        throw new Error(
          `annotation ${PREFIX}propagation: ${JSON.stringify(given)} is not Background, Foreground or Orphan`,
        );
      }
      return outcome([{ tag: 'delete', val: { target: sibling(object, target), propagation: PROPAGATIONS[given] } }]);
    }
    case 'event':
      return outcome([eventAbout(object, settings)]);
    case 'apply-and-event':
      return outcome([applied(object), eventAbout(object, settings)], BigInt(settings.requeueAfterMs));
    case 'get': {
      const found = host.getObject('v1', 'ConfigMap', namespace, annotation(object, 'target') ?? '');
      const annotations =
        found === undefined || found === null
          ? { [`${PREFIX}read`]: 'absent' }
          : { [`${PREFIX}read`]: 'found', [`${PREFIX}read-value`]: dataValue(JSON.parse(found)) ?? '' };
      return outcome([annotate(self, annotations)]);
    }
    case 'get-secret': {
      const target = annotation(object, 'target') ?? name;
      try {
        host.getObject('v1', 'Secret', namespace, target);
      } catch {
        return outcome([
          recordEvent(self, 'warning', 'ReadRefused', `reading Secret ${namespace ?? ''}/${target} was refused`, 'Read'),
        ]);
      }
      return outcome([annotate(self, { [`${PREFIX}read`]: 'allowed' })]);
    }
    case 'list': {
      const given = annotation(object, 'namespace');
      const scope = given === '*' ? undefined : (given ?? namespace);
      const names = host
        .listObjects('v1', 'ConfigMap', scope, annotation(object, 'selector'))
        .map((text) => JSON.parse(text))
        .map((o) => `${o.metadata?.namespace ?? ''}/${o.metadata?.name}`)
        .sort();
      return outcome([annotate(self, { [`${PREFIX}listed`]: names.join(',') })]);
    }
    case 'now': {
      const time = host.now();
      return outcome([
        annotate(self, { [`${PREFIX}now`]: time.rfc3339, [`${PREFIX}now-ms`]: time.epochMs.toString() }),
      ]);
    }
    case 'requeue': {
      const text = annotation(object, 'after-ms');
      if (text !== undefined && !/^[0-9]+$/.test(text)) {
        throw new Error(`annotation ${PREFIX}after-ms: ${JSON.stringify(text)} is not a whole number of milliseconds`);
      }
      return outcome([], text === undefined ? BigInt(settings.requeueAfterMs) : BigInt(text));
    }
    case 'fail':
      throw new Error(`asked to fail on ${namespace ?? ''}/${name}`);
    default:
      throw new Error(`unknown ${DO} ${JSON.stringify(action)}`);
  }
}
