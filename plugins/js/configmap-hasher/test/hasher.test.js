// Unit tests of the plugin's logic in Node, without building the component:
// `npm test` in plugins/js. The component itself is checked by the host's
// conformance tests on the same fixtures (and by `npm run smoke`).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

import { createHash } from 'node:crypto';

import * as hasher from '../src/hasher.js';
import { loadCases, hostJson } from '../../tools/fixtures.mjs';

const pluginDir = dirname(dirname(fileURLToPath(import.meta.url)));

// The documented hash, computed with Node's own crypto rather than the
// plugin's code path (Web Crypto). Fixture hashes were made with this.
function referenceHash(configMap) {
  const entries = (m) => Object.keys(m ?? {}).sort().map((k) => [k, m[k]]);
  const canonical = JSON.stringify([entries(configMap.data), entries(configMap.binaryData)]);
  return `sha256:${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
}

test('the hash is SHA-256 of the sorted data and binaryData entries', async () => {
  const samples = [
    {},
    { data: { a: '1' } },
    { data: { greeting: 'Grüße ✓ 😀', 'b.txt': 'x'.repeat(100_000) }, binaryData: { 'logo.png': 'iVBORw0KGgo=' } },
  ];
  for (const cm of samples) assert.equal(await hasher.contentHash(cm), referenceHash(cm));
  // printf '[[],[]]' | sha256sum; printf '[[["a","1"]],[]]' | sha256sum
  assert.equal(
    await hasher.contentHash({}),
    'sha256:643d5437104296e21d906ecb15b2c96ad278f20cfc4af53b12bb6069bd853726',
  );
  assert.equal(
    await hasher.contentHash({ data: { a: '1' } }),
    'sha256:ce70f3f92f07eb642e6e960139713de29b04b6c008615ebebe419fd6ba0ceaf0',
  );
});

test('describe subscribes to labelled ConfigMaps and writes only ConfigMaps', () => {
  assert.deepEqual(hasher.describe(), {
    name: 'configmap-hasher',
    version: '0.1.0',
    subscriptions: [
      {
        group: '',
        version: 'v1',
        kind: 'ConfigMap',
        namespaces: [],
        labelSelector: 'kubewasm.dev/hash=true',
      },
    ],
    writes: [{ group: '', kind: 'ConfigMap' }],
    owns: [],
    watches: [],
  });
});

test('empty settings give the defaults', () => {
  assert.deepEqual(hasher.parseSettings('{}'), {
    annotation: 'kubewasm.dev/content-hash',
    recordEvents: true,
  });
});

test('invalid settings are refused with a message naming the field', () => {
  const cases = [
    ['{', /^settings: not valid JSON/],
    ['[]', /^settings: must be a JSON object$/],
    ['{"annotations": "a"}', /^settings\.annotations: unknown field \(known fields: annotation, recordEvents\)$/],
    ['{"annotation": 3}', /^settings\.annotation: must be a string$/],
    ['{"annotation": ""}', /^settings\.annotation: "" is not a valid annotation key: the name/],
    ['{"annotation": "has space"}', /^settings\.annotation: "has space" is not a valid annotation key/],
    ['{"annotation": "Example.com/x"}', /^settings\.annotation: .*the prefix must be a DNS subdomain/],
    [`{"annotation": "${'a'.repeat(64)}"}`, /^settings\.annotation: .*1 to 63/],
    ['{"recordEvents": "yes"}', /^settings\.recordEvents: must be true or false$/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => hasher.parseSettings(text), { message }, text);
  }
  assert.doesNotThrow(() => hasher.parseSettings('{"annotation": "example.com/my_hash-1.v2"}'));
});

test('the hash covers data and binaryData, not metadata', async () => {
  const hash = (cm) => hasher.contentHash(cm);
  const cm = { metadata: { name: 'a' }, data: { b: '2', a: '1' }, binaryData: { z: 'AA==' } };
  const h = await hash(cm);
  assert.match(h, /^sha256:[0-9a-f]{64}$/);
  assert.equal(await hash({ ...cm, metadata: { annotations: { x: h } } }), h);
  assert.equal(await hash({ ...cm, data: { a: '1', b: '2' } }), h, 'key order');
  assert.notEqual(await hash({ ...cm, data: { a: '1', b: '3' } }), h);
  // A value moved from data to binaryData is a different ConfigMap.
  assert.notEqual(await hash({ data: { k: 'v' } }), await hash({ binaryData: { k: 'v' } }));
  assert.equal(await hash({}), await hash({ data: {}, binaryData: {} }));
});

const stubHost = { log: () => {}, now: () => ({ epochMs: 0n, rfc3339: '1970-01-01T00:00:00Z' }) };

for (const c of loadCases(pluginDir)) {
  test(`fixture ${c.name}`, async () => {
    if (c.expectedError !== undefined) {
      assert.throws(() => hasher.parseSettings(c.settings), { message: c.expectedError });
      return;
    }
    const logs = [];
    const log = (level, message, fields) => logs.push({ level, message, fields });
    const now = () => c.now;
    const outcome = await hasher.reconcile(c.event, hasher.parseSettings(c.settings), { log, now });
    assert.deepEqual(hostJson(outcome), c.expected);
    assert.ok(logs.length > 0, 'every reconcile logs what it decided');
    const changed = logs.find((l) => l.message === 'content hash changed');
    if (changed) assert.deepEqual(changed.fields.at(-1), ['at', c.now.rfc3339], 'the host clock');
    for (const { level, fields } of logs) {
      assert.ok(['trace', 'debug', 'info', 'warn', 'error'].includes(level));
      for (const field of fields) assert.ok(field.length === 2 && field.every((s) => typeof s === 'string'));
    }
  });
}

test('an object that is not JSON fails the reconcile', async () => {
  const event = { eventType: 'applied', kind: { group: '', version: 'v1', kind: 'ConfigMap' }, object: '{' };
  await assert.rejects(hasher.reconcile(event, hasher.parseSettings('{}'), stubHost), {
    message: /^event object is not valid JSON/,
  });
});

test('a kind other than ConfigMap fails the reconcile', async () => {
  const event = { eventType: 'applied', kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, object: '{}' };
  await assert.rejects(hasher.reconcile(event, hasher.parseSettings('{}'), stubHost), {
    message: 'unexpected kind apps/v1 Deployment: configmap-hasher only reconciles ConfigMaps',
  });
});
