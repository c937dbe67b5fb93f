// Unit tests of the conformance plugin's logic in Node (`npm test` in
// plugins/js). The component runs the whole suite, conformance/fixtures,
// through `kubewasm test` in the host's conformance tests.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import * as conformance from '../src/conformance.js';

test('settings are refused with the messages the specification fixes', () => {
  const cases = [
    ['{', 'settings: not valid JSON'],
    ['[]', 'settings: must be a JSON object'],
    ['{"zeta": 1, "alpha": 2}', 'settings.alpha: unknown field (known: reason, requeueAfterMs)'],
    ['{"reason": 7}', 'settings.reason: must be a string'],
    ['{"reason": "not ok"}', 'settings.reason: "not ok" is not UpperCamelCase'],
    ['{"requeueAfterMs": 0}', 'settings.requeueAfterMs: must be a whole number from 1 to 3600000'],
    ['{"requeueAfterMs": 1.5}', 'settings.requeueAfterMs: must be a whole number from 1 to 3600000'],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => conformance.parseSettings(text), { message }, text);
  }
  assert.deepEqual(conformance.parseSettings('{}'), { reason: 'Conformance', requeueAfterMs: 1500 });
  assert.deepEqual(conformance.parseSettings('{"requeueAfterMs": 2.0}').requeueAfterMs, 2);
});

test('a refused cache read becomes a Warning Event', () => {
  const host = {
    log: () => {},
    getObject: () => {
      throw new Error('plugin conformance may not read Secret (v1)');
    },
  };
  const object = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 's', namespace: 'n', labels: { 'conformance.kubewasm.dev/do': 'get-secret' } },
  };
  const result = conformance.reconcile({ eventType: 'applied', object: JSON.stringify(object) }, conformance.parseSettings('{}'), host);
  assert.equal(result.intents[0].tag, 'record-event');
  assert.equal(result.intents[0].val.note, 'reading Secret n/s was refused');
});
