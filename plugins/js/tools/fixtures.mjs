// Reads a plugin's conformance fixtures and renders outcomes the way the host
// prints them (`kubewasm eval --output json`), for the JavaScript-side tests.
// The authoritative conformance test is the host's; see
// configmap-hasher/fixtures/README.md for the layout.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/** The event types a fixture's `event` file may name (WIT `event-type`). */
export const EVENT_TYPES = ['applied', 'deleted', 'resync', 'finalizing'];

/** The clock when a fixture sets none, as the SDK's and the host's runners. */
export const DEFAULT_NOW = '1970-01-01T00:00:00Z';

/**
 * The WIT `timestamp` record for an RFC 3339 time, as the host's `now`
 * returns it: `epochMs` a BigInt (WIT `s64`), `rfc3339` in UTC with second
 * precision.
 */
export function timestamp(text) {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(text) || Number.isNaN(ms)) {
    throw new Error(`${JSON.stringify(text)} is not an RFC 3339 time`);
  }
  return {
    epochMs: BigInt(ms),
    rfc3339: new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
  };
}

/**
 * Every case under `<pluginDir>/fixtures/`, sorted by name. A reconcile case
 * has `event`, `settings`, `now` (the `timestamp` the host's `now` returns:
 * the case's `now` file, else the shared one, else 1970-01-01T00:00:00Z) and
 * `expected`; a settings case (no object.yaml) has `settings` and
 * `expectedError`, the message validate-settings gives.
 */
export function loadCases(pluginDir) {
  const root = join(pluginDir, 'fixtures');
  const shared = (file) => (existsSync(join(root, file)) ? readFileSync(join(root, file), 'utf8') : undefined);
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const dir = join(root, name);
      const read = (file, fallback) =>
        existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : fallback;
      if (!existsSync(join(dir, 'object.yaml'))) {
        return {
          name,
          settings: read('settings.json'),
          expectedError: read('expected-error.txt').trim(),
        };
      }
      const object = parseYaml(read('object.yaml'));
      const eventType = read('event', 'applied').trim();
      if (!EVENT_TYPES.includes(eventType)) {
        throw new Error(`${dir}/event: unknown event type ${JSON.stringify(eventType)}`);
      }
      return {
        name,
        now: timestamp(read('now', shared('now') ?? DEFAULT_NOW).trim()),
        event: {
          eventType,
          kind: resourceKind(object),
          object: JSON.stringify(object),
        },
        settings: read('settings.json', shared('settings.json') ?? '{}'),
        expected: JSON.parse(read('expected.json')),
      };
    });
}

/** The `resource-kind` record for an object (plural by the common rule). */
export function resourceKind(object) {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['', object.apiVersion];
  return {
    group,
    version,
    kind: object.kind,
    plural: `${object.kind.toLowerCase()}s`,
    namespaced: object.metadata?.namespace !== undefined,
  };
}

const capitalized = (s) => (s === undefined ? null : s[0].toUpperCase() + s.slice(1));
const ref = (r) => ({
  apiVersion: r.apiVersion,
  kind: r.kind,
  namespace: r.namespace ?? null,
  name: r.name,
});

/** An `outcome` record as the host prints it in JSON. */
export function hostJson(outcome) {
  return {
    intents: outcome.intents.map(({ tag, val }) => {
      switch (tag) {
        case 'apply':
          return { type: tag, object: JSON.parse(val.object), status: val.status, force: val.force };
        case 'merge-patch':
        case 'json-patch':
          return {
            type: tag,
            target: ref(val.target),
            patch: JSON.parse(val.patch),
            status: val.status,
            resourceVersion: val.resourceVersion ?? null,
          };
        case 'create':
          return { type: tag, object: JSON.parse(val.object) };
        case 'delete':
          return { type: tag, target: ref(val.target), propagation: capitalized(val.propagation) };
        case 'record-event':
          return {
            type: tag,
            regarding: ref(val.regarding),
            severity: capitalized(val.severity),
            reason: val.reason,
            note: val.note,
            action: val.action,
          };
        default:
          throw new Error(`unknown intent tag ${JSON.stringify(tag)}`);
      }
    }),
    requeueAfterMs: outcome.requeueAfterMs === undefined ? null : Number(outcome.requeueAfterMs),
  };
}
