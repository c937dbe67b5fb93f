import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Event, KubeObject, KubewasmError, parsePath, schema, SettingsError } from '../src/index.js';
import { pluralOf } from '../src/plugin.js';

const web = new KubeObject({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'shop',
    uid: 'u-web',
    generation: 3,
    resourceVersion: '17',
    labels: { app: 'web', 'app.kubernetes.io/name': 'shop' },
    annotations: { note: 'hi' },
    ownerReferences: [
      { apiVersion: 'v1', kind: 'Thing', name: 'other', uid: 'u-other' },
      { apiVersion: 'demo/v1', kind: 'Site', name: 'site', uid: 'u-site', controller: true },
    ],
  },
  spec: { replicas: 2, paused: false, template: { spec: { containers: [{ name: 'app', ports: [{ containerPort: 80 }] }] } } },
  status: { conditions: [{ type: 'Available', status: 'True', reason: 'Up', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
});

describe('KubeObject', () => {
  it('reads identity and metadata', () => {
    assert.equal(web.name, 'web');
    assert.equal(web.namespace, 'shop');
    assert.equal(web.uid, 'u-web');
    assert.equal(web.generation, 3);
    assert.equal(web.resourceVersion, '17');
    assert.equal(web.label('app.kubernetes.io/name'), 'shop');
    assert.equal(web.annotation('note'), 'hi');
    assert.equal(web.annotation('absent'), undefined);
    assert.equal(web.isBeingDeleted, false);
    assert.deepEqual(web.ref(), { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'web' });
    assert.equal(web.describe(), 'Deployment shop/web');
  });

  it('leaves the namespace out of the reference of a cluster-scoped object', () => {
    const ns = new KubeObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
    assert.deepEqual(ns.ref(), { apiVersion: 'v1', kind: 'Namespace', name: 'shop' });
    assert.equal('namespace' in ns.ref(), false);
  });

  it('reads field paths with indexes and quoted keys', () => {
    assert.equal(web.get('spec.template.spec.containers[0].ports[0].containerPort'), 80);
    assert.equal(web.get('metadata.labels["app.kubernetes.io/name"]'), 'shop');
    assert.equal(web.get('spec.template.spec.containers[3].name'), undefined);
    assert.equal(web.get('spec.replicas.nested'), undefined);
    assert.equal(web.getNumber('spec.replicas'), 2);
    assert.equal(web.getBoolean('spec.paused'), false);
    assert.deepEqual(parsePath('a.b[2]["c.d"].e'), ['a', 'b', 2, 'c.d', 'e']);
  });

  it('names the path and the expected type when a value has the wrong type', () => {
    assert.throws(() => web.getString('spec.replicas'), { message: 'Deployment shop/web: spec.replicas must be a string' });
    assert.throws(() => parsePath('spec.'), KubewasmError);
    assert.throws(() => parsePath('a[x]'), /\[x\] is neither an index nor a quoted key/);
  });

  it('parses a part of the object with a schema, naming the path in errors', () => {
    const Spec = schema.object({ replicas: schema.integer({ min: 0 }), paused: schema.boolean(), template: schema.any() });
    assert.deepEqual(web.getAs('spec', Spec)?.replicas, 2);
    assert.equal(web.getAs('spec.absent', Spec), undefined);
    assert.throws(() => web.getAs('spec', schema.object({ replicas: schema.string() })), (e) =>
      e instanceof SettingsError && e.message === 'spec.paused: unknown field (known: replicas)');
    assert.throws(() => web.getAs('spec.replicas', schema.string()), { message: 'spec.replicas: must be a string' });
  });

  it('finds the controller and matches owners by uid', () => {
    assert.equal(web.controller()?.name, 'site');
    const site = new KubeObject({ apiVersion: 'demo/v1', kind: 'Site', metadata: { name: 'site', uid: 'u-site' } });
    const other = new KubeObject({ apiVersion: 'v1', kind: 'Thing', metadata: { name: 'other', uid: 'u-other' } });
    assert.equal(web.isControlledBy(site), true);
    assert.equal(web.isControlledBy(other), false, 'an owner that is not the controller');
  });

  it('reads conditions', () => {
    assert.equal(web.condition('Available')?.status, 'True');
    assert.equal(web.condition('Progressing'), undefined);
  });

  it('parses the text the host delivers, refusing what is not an object', () => {
    assert.equal(KubeObject.parse('{"kind":"ConfigMap","metadata":{"name":"a"}}').name, 'a');
    assert.throws(() => KubeObject.parse('[1]'), { message: 'object: not a JSON object' });
    assert.throws(() => KubeObject.parse('{'), { message: 'object: not valid JSON' });
  });
});

describe('Event.of', () => {
  it('guesses the kind of a test event from the object', () => {
    const e = Event.of({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: 'a' } }, 'resync');
    assert.deepEqual(e.kind, { group: 'networking.k8s.io', version: 'v1', kind: 'NetworkPolicy', plural: 'networkpolicies', namespaced: true });
    assert.equal(e.isResync, true);
    assert.deepEqual(['Ingress', 'Box', 'Gateway', 'Pod'].map(pluralOf), ['ingresses', 'boxes', 'gateways', 'pods']);
    assert.equal(Event.of({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } }).kind.namespaced, false);
  });
});
