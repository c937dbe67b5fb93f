import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { KubeObject, StatusUpdate, type JsonObject } from '../src/index.js';
import { FakeHost } from '../src/testing.js';

const T0 = '2026-01-01T00:00:00Z';
const NOW = '2026-12-04T03:15:00Z';

function site(status?: JsonObject): KubeObject {
  return new KubeObject({ apiVersion: 'demo/v1', kind: 'Site', metadata: { name: 's', namespace: 'ns', generation: 4 }, status: status ?? null });
}

const written = (update: StatusUpdate) => {
  const intent = update.intent()?.toWit();
  assert.ok(intent && intent.tag === 'apply');
  assert.equal(intent.val.status, true);
  return JSON.parse(intent.val.object);
};

describe('StatusUpdate', () => {
  beforeEach(() => new FakeHost({ now: NOW }).install());

  it('writes a new condition with the host clock and the generation', () => {
    const object = written(new StatusUpdate(site()).condition({ type: 'Ready', status: 'False', reason: 'Pending' }).observedGeneration());
    assert.deepEqual(object, {
      apiVersion: 'demo/v1',
      kind: 'Site',
      metadata: { name: 's', namespace: 'ns' },
      status: {
        observedGeneration: 4,
        conditions: [{ type: 'Ready', status: 'False', reason: 'Pending', message: '', lastTransitionTime: NOW, observedGeneration: 4 }],
      },
    });
  });

  it('writes nothing when the status already says it', () => {
    const current = site({
      observedGeneration: 4,
      phase: 'Ready',
      conditions: [{ type: 'Ready', status: 'True', reason: 'Up', message: 'ok', lastTransitionTime: T0, observedGeneration: 4 }],
    });
    const update = new StatusUpdate(current).condition({ type: 'Ready', status: 'True', reason: 'Up', message: 'ok' }).field('phase', 'Ready').observedGeneration();
    assert.equal(update.intent(), undefined);
  });

  it('keeps the transition time while the status stays, and moves it when it changes', () => {
    const current = site({ conditions: [{ type: 'Ready', status: 'True', reason: 'Up', message: '', lastTransitionTime: T0, observedGeneration: 4 }] });
    const sameStatus = written(new StatusUpdate(current).condition({ type: 'Ready', status: 'True', reason: 'StillUp', message: '' }));
    assert.equal(sameStatus.status.conditions[0].lastTransitionTime, T0);
    const flipped = written(new StatusUpdate(current).condition({ type: 'Ready', status: 'False', reason: 'Down' }));
    assert.equal(flipped.status.conditions[0].lastTransitionTime, NOW);
  });
});
