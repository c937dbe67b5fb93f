import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Apply, Create, Delete, escapePointer, JsonPatch, KubeObject, Outcome, Patch, RecordEvent } from '../src/index.js';

const ref = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'web' };
const owner = new KubeObject({ apiVersion: 'demo/v1', kind: 'Site', metadata: { name: 'site', namespace: 'default', uid: 'u1' } });

const body = (text: string) => JSON.parse(text);

describe('intents', () => {
  it('apply of fields names the object and keeps the given metadata', () => {
    const intent = Apply.fields(ref, { metadata: { labels: { a: 'b' } }, data: { k: 'v' } }).toWit();
    assert.equal(intent.tag, 'apply');
    assert.equal(intent.val.status, false);
    assert.equal(intent.val.force, true);
    assert.deepEqual(body(intent.val.object), {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { labels: { a: 'b' }, name: 'web', namespace: 'default' },
      data: { k: 'v' },
    });
  });

  it('apply of a status goes to the status subresource; force can be turned off', () => {
    const intent = Apply.status(ref, { phase: 'Ready' }).withForce(false).toWit();
    assert.equal(intent.tag, 'apply');
    assert.deepEqual([intent.val.status, intent.val.force], [true, false]);
    assert.deepEqual(body(intent.val.object).status, { phase: 'Ready' });
  });

  it('an owned child carries a controller reference to its owner', () => {
    const child = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site-page', namespace: 'default' } };
    for (const intent of [Apply.object(child).ownedBy(owner).toWit(), Create.object(child).ownedBy(owner).toWit()]) {
      assert.deepEqual(body((intent.val as { object: string }).object).metadata.ownerReferences, [
        { apiVersion: 'demo/v1', kind: 'Site', name: 'site', uid: 'u1', controller: true, blockOwnerDeletion: true },
      ]);
    }
    assert.throws(() => Create.object(child).ownedBy(new KubeObject({ kind: 'Site', metadata: { name: 'x' } })), /has no metadata.uid/);
  });

  it('refuses objects that do not name themselves, naming the missing field', () => {
    assert.throws(() => Apply.object({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} }), {
      message: 'apply object.metadata.name must be a string, not undefined',
    });
    assert.throws(() => Delete.of({ apiVersion: 'v1', kind: 'ConfigMap', name: 3 } as never), /delete target.name must be a string/);
  });

  it('merge and JSON patches, with status and resourceVersion', () => {
    const merge = Patch.merge(ref, { metadata: { labels: { a: null } } }).ifResourceVersion('42').toWit();
    assert.equal(merge.tag, 'merge-patch');
    assert.deepEqual({ ...merge.val, patch: body(merge.val.patch) }, {
      target: ref,
      patch: { metadata: { labels: { a: null } } },
      status: false,
      resourceVersion: '42',
    });
    const ops = new JsonPatch().test('/data/v', 'x').replace('/data/v', 'y').add(`/metadata/labels/${escapePointer('a/b~c')}`, 'z').remove('/data/w');
    const json = Patch.json(ref, ops).onStatus().toWit();
    assert.equal(json.tag, 'json-patch');
    assert.equal(json.val.status, true);
    assert.deepEqual(body(json.val.patch), [
      { op: 'test', path: '/data/v', value: 'x' },
      { op: 'replace', path: '/data/v', value: 'y' },
      { op: 'add', path: '/metadata/labels/a~1b~0c', value: 'z' },
      { op: 'remove', path: '/data/w' },
    ]);
  });

  it('delete propagation accepts both spellings and refuses others', () => {
    assert.deepEqual(Delete.of(ref).propagation('Foreground').toWit(), { tag: 'delete', val: { target: ref, propagation: 'foreground' } });
    assert.equal((Delete.of(ref).toWit().val as { propagation?: string }).propagation, undefined);
    assert.throws(() => Delete.of(ref).propagation('Later' as never), {
      message: 'delete propagation "Later" is not background, foreground or orphan',
    });
  });

  it('events use the contract enum spelling', () => {
    assert.deepEqual(RecordEvent.warning(ref, 'MissingKeys', 'no owner').action('Validate').toWit(), {
      tag: 'record-event',
      val: { regarding: ref, severity: 'warning', reason: 'MissingKeys', note: 'no owner', action: 'Validate' },
    });
    assert.deepEqual(RecordEvent.normal(ref, 'Done', 'ok').toWit().val, {
      regarding: ref,
      severity: 'normal',
      reason: 'Done',
      note: 'ok',
      action: 'Reconcile',
    });
  });

  it('an outcome keeps intents in order, skips undefined and requeues with a BigInt', () => {
    const outcome = Outcome.of(Apply.fields(ref, {}), undefined).add(Delete.of(ref)).requeueAfter(30_000).toWit();
    assert.deepEqual(outcome.intents.map((i) => i.tag), ['apply', 'delete']);
    assert.equal(outcome.requeueAfterMs, 30_000n);
    assert.equal(new Outcome().toWit().requeueAfterMs, undefined);
    assert.throws(() => new Outcome().requeueAfter(1.5), { message: 'requeueAfterMs must be a whole number of milliseconds, not 1.5' });
  });
});
