// The plugin's logic, free of host imports so that it can be unit-tested in
// Node (`npm test`). `index.js` wires it to the kubewasm host.
//
// configmap-hasher stamps every ConfigMap labelled `kubewasm.dev/hash=true`
// with a content hash of its `data` and `binaryData`, so that a workload can
// put the hash in its pod template and roll when the configuration changes.

export const NAME = 'configmap-hasher';
export const VERSION = '0.1.0';
export const LABEL = 'kubewasm.dev/hash';
export const DEFAULTS = Object.freeze({
  // Annotation the hash is written to.
  annotation: 'kubewasm.dev/content-hash',
  // Record a Kubernetes Event each time the hash changes.
  recordEvents: true,
});

/**
 * The `plugin-info` record. Does not depend on settings. `owns` and `watches`
 * must be present even when empty (a missing list traps); `finalizer` is an
 * option and may be left out.
 */
export function describe() {
  return {
    name: NAME,
    version: VERSION,
    subscriptions: [
      {
        group: '',
        version: 'v1',
        kind: 'ConfigMap',
        namespaces: [],
        labelSelector: `${LABEL}=true`,
      },
    ],
    writes: [{ group: '', kind: 'ConfigMap' }],
    owns: [],
    watches: [],
  };
}

/**
 * Parses and checks a settings document. Returns the effective settings
 * (defaults filled in) or throws an `Error` whose message names the
 * offending field.
 */
export function parseSettings(text) {
  let raw;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`settings: not valid JSON: ${e.message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error('settings: must be a JSON object');
  }
  for (const key of Object.keys(raw)) {
    if (!Object.hasOwn(DEFAULTS, key)) {
      throw new Error(
        `settings.${key}: unknown field (known fields: ${Object.keys(DEFAULTS).join(', ')})`,
      );
    }
  }
  const settings = { ...DEFAULTS, ...raw };
  if (typeof settings.annotation !== 'string') {
    throw new Error('settings.annotation: must be a string');
  }
  const problem = annotationKeyProblem(settings.annotation);
  if (problem) {
    throw new Error(
      `settings.annotation: ${JSON.stringify(settings.annotation)} is not a valid annotation key: ${problem}`,
    );
  }
  if (typeof settings.recordEvents !== 'boolean') {
    throw new Error('settings.recordEvents: must be true or false');
  }
  return settings;
}

const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why `key` is not a Kubernetes qualified name, or '' if it is one. */
function annotationKeyProblem(key) {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : '';
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (slash >= 0 && (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return 'the prefix must be a DNS subdomain of at most 253 characters';
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return 'the name must be 1 to 63 alphanumeric characters, -, _ or ., starting and ending alphanumeric';
  }
  return '';
}

/**
 * The content hash of a ConfigMap: SHA-256 over a canonical JSON form of
 * `data` and `binaryData` (entries sorted by key), written `sha256:<hex>`.
 * Labels, annotations and other metadata do not count, so writing the hash
 * does not change it.
 *
 * The digest comes from the engine's Web Crypto (`crypto.subtle`), which is
 * native code. A hash written in JS runs in SpiderMonkey's interpreter inside
 * the component: an FNV-1a loop took 1.4 s for a 900 KB ConfigMap where this
 * takes 60 ms (the component run under Node).
 */
export async function contentHash(configMap) {
  const canonical = JSON.stringify([
    sortedEntries(configMap.data),
    sortedEntries(configMap.binaryData),
  ]);
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical));
  return `sha256:${Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function sortedEntries(map) {
  if (map === null || map === undefined) return [];
  return Object.keys(map)
    .sort()
    .map((key) => [key, String(map[key])]);
}

/**
 * Reconciles one event. `settings` are the parsed settings; `host` holds the
 * host functions it uses: `log(level, message, fields)` and `now()` (the
 * `timestamp` record, `{ epochMs: BigInt, rfc3339 }`). Resolves to the
 * `outcome` record; rejects with an `Error` for a failed reconcile.
 */
export async function reconcile(event, settings, { log, now }) {
  const { group, version, kind } = event.kind;
  if (group !== '' || kind !== 'ConfigMap') {
    throw new Error(
      `unexpected kind ${group || 'core'}/${version} ${kind}: ${NAME} only reconciles ConfigMaps`,
    );
  }
  let cm;
  try {
    cm = JSON.parse(event.object);
  } catch (e) {
    throw new Error(`event object is not valid JSON: ${e.message}`);
  }
  const meta = cm.metadata ?? {};
  const nothing = { intents: [], requeueAfterMs: undefined };

  if (event.eventType === 'deleted') {
    log('debug', 'ConfigMap deleted, nothing to do', []);
    return nothing;
  }
  if (event.eventType === 'finalizing') {
    // Only a plugin that declares a finalizer is called so; writing nothing
    // lets the host remove the finalizer.
    log('debug', 'ConfigMap finalizing, nothing to clean up', []);
    return nothing;
  }
  if (meta.labels?.[LABEL] !== 'true') {
    log('debug', `ConfigMap is not labelled ${LABEL}=true, skipping`, []);
    return nothing;
  }
  if (meta.deletionTimestamp) {
    log('debug', 'ConfigMap is being deleted, skipping', []);
    return nothing;
  }

  const hash = await contentHash(cm);
  const previous = meta.annotations?.[settings.annotation];
  if (previous === hash) {
    log('debug', 'content hash is up to date', [['hash', hash]]);
    return nothing;
  }

  const target = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    namespace: meta.namespace,
    name: meta.name,
  };
  const intents = [
    {
      tag: 'merge-patch',
      val: {
        target,
        patch: JSON.stringify({ metadata: { annotations: { [settings.annotation]: hash } } }),
        status: false,
        // Only write the hash of the content it was computed from.
        resourceVersion: meta.resourceVersion,
      },
    },
  ];
  if (settings.recordEvents) {
    intents.push({
      tag: 'record-event',
      val: {
        regarding: target,
        severity: 'normal',
        reason: 'ContentHashed',
        note:
          previous === undefined
            ? `Set ${settings.annotation} to ${hash}`
            : `Content changed: ${settings.annotation} ${truncate(previous)} -> ${hash}`,
        action: 'Annotate',
      },
    });
  }
  log('info', 'content hash changed', [
    ['annotation', settings.annotation],
    ['previous', previous ?? ''],
    ['hash', hash],
    // The host clock: Date.now() in a component is frozen at build time.
    ['at', now().rfc3339],
  ]);
  return { intents, requeueAfterMs: undefined };
}

// The previous value is whatever was in the annotation; an Event's note is
// limited to 1 KB.
function truncate(text) {
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}
