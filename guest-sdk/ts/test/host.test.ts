import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getObject, HostError, installHost, KubeObject, KubewasmError, listObjects, listOwned, log, now, Timestamp, type Host } from '../src/index.js';
import { FakeHost, matchesSelector } from '../src/testing.js';

const cm = (namespace: string, name: string, labels: Record<string, string> = {}, owner?: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name,
    namespace,
    labels,
    ownerReferences: owner ? [{ apiVersion: 'demo/v1', kind: 'Site', name: 'site', uid: owner, controller: true }] : [],
  },
});

describe('host functions', () => {
  it('fail clearly without a host', () => {
    installHost(undefined);
    assert.throws(() => now(), (e) => e instanceof KubewasmError && /no kubewasm host/.test(e.message));
  });

  it('log fields become text', () => {
    const host = new FakeHost().install();
    log('warn', 'm', { n: 3, b: true, big: 5n, o: { a: 1 }, obj: new KubeObject(cm('ns', 'x')), none: undefined });
    assert.deepEqual(host.logs, [{ level: 'warn', message: 'm', fields: { n: '3', b: 'true', big: '5', o: '{"a":1}', obj: 'ConfigMap ns/x', none: '' } }]);
  });

  it('now() is a Timestamp with a number of milliseconds', () => {
    new FakeHost({ now: '2026-12-04T03:15:00.750Z' }).install();
    const t = now();
    assert.equal(t.epochMs, Date.parse('2026-12-04T03:15:00.750Z'));
    assert.equal(t.rfc3339, '2026-12-04T03:15:00Z');
    assert.equal(t.toDate().getUTCFullYear(), 2026);
  });

  it('Timestamps parse RFC 3339, measure and add', () => {
    const created = Timestamp.parse('2026-12-04T03:15:00.5+01:00');
    assert.equal(created.rfc3339, '2026-12-04T02:15:00Z');
    const later = created.plus(90_000);
    assert.equal(later.rfc3339, '2026-12-04T02:16:30Z');
    assert.equal(later.since(created), 90_000);
    assert.throws(() => Timestamp.parse('yesterday'), { message: 'timestamp "yesterday" is not an RFC 3339 time' });
    assert.throws(() => Timestamp.parse('2026-12-04'), KubewasmError);
  });

  it('reads objects from the cache, by namespace and label selector', () => {
    new FakeHost({ objects: [cm('a', 'web', { tier: 'web' }), cm('a', 'db', { tier: 'db', legacy: 'x' }), cm('b', 'web', { tier: 'web' })] }).install();
    assert.equal(getObject('v1', 'ConfigMap', 'a', 'db')?.label('tier'), 'db');
    assert.equal(getObject('v1', 'ConfigMap', 'a', 'nope'), undefined);
    const names = (objects: KubeObject[]) => objects.map((o) => `${o.namespace}/${o.name}`);
    assert.deepEqual(names(listObjects('v1', 'ConfigMap', { namespace: 'a' })), ['a/web', 'a/db']);
    assert.deepEqual(names(listObjects('v1', 'ConfigMap', { selector: 'tier=web' })), ['a/web', 'b/web']);
    assert.deepEqual(names(listObjects('v1', 'ConfigMap', { selector: 'tier in (web,db),!legacy' })), ['a/web', 'b/web']);
  });

  it('turns an error thrown by a host import into a HostError with the host message', () => {
    const failing = { ...new FakeHost(), getObject: () => { throw Object.assign(new Error('ComponentError'), { payload: 'Secret is not readable' }); } };
    installHost(failing as unknown as Host);
    assert.throws(() => getObject('v1', 'Secret', 'a', 'x'), (e) => e instanceof HostError && e.message === 'Secret is not readable');
  });

  it('listOwned keeps the owner\'s children, sorted', () => {
    const site = new KubeObject({ apiVersion: 'demo/v1', kind: 'Site', metadata: { name: 'site', namespace: 'a', uid: 'u1' } });
    new FakeHost({ objects: [cm('a', 'z', {}, 'u1'), cm('a', 'other', {}, 'u2'), cm('a', 'b', {}, 'u1'), cm('b', 'c', {}, 'u1')] }).install();
    assert.deepEqual(listOwned('v1', 'ConfigMap', site).map((o) => o.name), ['b', 'z']);
    assert.throws(() => listOwned('v1', 'ConfigMap', new KubeObject({ kind: 'Site', metadata: { name: 's' } })), /has no metadata.uid/);
  });

  it('matches label selectors like the API server', () => {
    const labels = { app: 'web', tier: 'front' };
    assert.equal(matchesSelector(labels, 'app=web'), true);
    assert.equal(matchesSelector(labels, 'app==web,tier!=back'), true);
    assert.equal(matchesSelector(labels, 'app notin (web)'), false);
    assert.equal(matchesSelector(labels, 'missing'), false);
    assert.equal(matchesSelector(labels, '!missing,app'), true);
    assert.equal(matchesSelector(labels, ''), true);
  });
});
