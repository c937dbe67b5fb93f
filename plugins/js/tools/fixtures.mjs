// Reads a plugin's conformance fixtures and renders outcomes the way the host
// prints them (`kubewasm eval --output json`), for the JavaScript-side tests.
// The authoritative conformance test is the host's; see
// configmap-hasher/fixtures/README.md for the layout.

import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';

/**
 * Every case under `<pluginDir>/fixtures/`, sorted by name. A reconcile case
 * has `event`, `settings` and `expected`; a settings case (no object.yaml)
 * has `settings` and `expectedError`, the message validate-settings gives.
 */
export function loadCases(pluginDir) {
  const root = join(pluginDir, 'fixtures');
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
      return {
        name,
        event: {
          eventType: read('event', 'applied').trim(),
          kind: resourceKind(object),
          object: JSON.stringify(object),
        },
        settings: read('settings.json', '{}'),
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
