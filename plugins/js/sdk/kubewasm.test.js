// Unit tests of the shared helpers (npm test runs every *.test.js).

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { controllerOf, isControlledBy, listOwned, statusApply } from './kubewasm.js';

const T0 = '2026-03-01T10:00:00Z';
const NOW = { epochMs: 1772704800000n, rfc3339: '2026-03-05T10:00:00Z' };
const now = () => NOW;
const never = () => {
  throw new Error('now() called although no status changed');
};

const website = (status) => ({
  apiVersion: 'demo.kubewasm.dev/v1alpha1',
  kind: 'Website',
  metadata: { name: 'blog', namespace: 'web', uid: 'u-1', generation: 2 },
  status,
});
const ready = { type: 'Ready', status: 'True', reason: 'ChildReady', message: 'ConfigMap blog serves the page' };

test('a new condition gets now and the generation; the apply names only the object and its status', () => {
  const intent = statusApply(website(undefined), { conditions: [ready], observedGeneration: true }, now);
  assert.equal(intent.tag, 'apply');
  assert.equal(intent.val.status, true);
  assert.deepEqual(JSON.parse(intent.val.object), {
    apiVersion: 'demo.kubewasm.dev/v1alpha1',
    kind: 'Website',
    metadata: { name: 'blog', namespace: 'web' },
    status: { observedGeneration: 2, conditions: [{ ...ready, lastTransitionTime: NOW.rfc3339, observedGeneration: 2 }] },
  });
});

test('an unchanged status writes nothing and does not read the clock', () => {
  const current = website({
    observedGeneration: 2,
    conditions: [{ ...ready, lastTransitionTime: T0, observedGeneration: 2 }],
  });
  assert.equal(statusApply(current, { conditions: [ready], observedGeneration: true }, never), undefined);
});

test('the transition time moves only when the status changes', () => {
  const current = website({ conditions: [{ ...ready, lastTransitionTime: T0, observedGeneration: 1 }] });
  const sameStatus = JSON.parse(statusApply(current, { conditions: [ready] }, never).val.object);
  assert.equal(sameStatus.status.conditions[0].lastTransitionTime, T0, 'new generation, same status');
  assert.equal(sameStatus.status.conditions[0].observedGeneration, 2);
  const flipped = { ...ready, status: 'False', reason: 'ChildPending' };
  const changed = JSON.parse(statusApply(current, { conditions: [flipped] }, now).val.object);
  assert.equal(changed.status.conditions[0].lastTransitionTime, NOW.rfc3339);
});

test('other status fields count as changes', () => {
  const current = website({ url: 'http://a' });
  assert.equal(statusApply(current, { fields: { url: 'http://a' } }, never), undefined);
  assert.deepEqual(JSON.parse(statusApply(current, { fields: { url: 'http://b' } }, never).val.object).status, {
    url: 'http://b',
  });
});

const child = (name, uid, controller = true, namespace = 'web') => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace, ownerReferences: [{ apiVersion: 'demo.kubewasm.dev/v1alpha1', kind: 'Website', name: 'blog', uid, controller }] },
});

test('listOwned keeps the controlled children of this owner, sorted, from the namespace asked', () => {
  const asked = [];
  const listObjects = (apiVersion, kind, namespace, selector) => {
    asked.push([apiVersion, kind, namespace, selector]);
    return [child('z', 'u-1'), child('a', 'u-1'), child('not-controller', 'u-1', false), child('old', 'u-0')].map((o) =>
      JSON.stringify(o),
    );
  };
  const owned = listOwned(listObjects, 'v1', 'ConfigMap', website(undefined));
  assert.deepEqual(owned.map((o) => o.metadata.name), ['a', 'z']);
  assert.deepEqual(asked, [['v1', 'ConfigMap', 'web', undefined]]);
  assert.equal(controllerOf(owned[0]).uid, 'u-1');
  assert.ok(isControlledBy(owned[0], website(undefined)));
});

test('listOwned needs the owner uid', () => {
  const unsaved = { kind: 'Website', metadata: { name: 'blog', namespace: 'web' } };
  assert.throws(() => listOwned(() => [], 'v1', 'ConfigMap', unsaved), {
    message: 'Website web/blog has no metadata.uid to find its children by',
  });
});
