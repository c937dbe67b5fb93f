import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Apply,
  getObject,
  info,
  MappedWatch,
  now,
  Outcome,
  PluginInfo,
  reconcilerOf,
  schema,
  SettingsError,
  Subscription,
  type Plugin,
} from '../src/index.js';
import { expected, FakeHost } from '../src/testing.js';
import type { WitEvent } from '../src/wit.js';

const Settings = schema.object({ greeting: schema.string().default('hello') });

const plugin: Plugin<{ greeting: string }> = {
  describe: () =>
    new PluginInfo('hello', '0.1.0')
      .subscribe(Subscription.of('', 'v1', 'ConfigMap').selector('hello').inNamespaces('a', 'b'))
      .writes('', 'ConfigMap')
      .owns('', 'Secret')
      .watches(MappedWatch.fieldRef({ group: '', kind: 'Secret' }, { group: '', kind: 'ConfigMap' }, 'data.secret'))
      .finalizer('kubewasm.dev/hello', { group: '', kind: 'ConfigMap' }),
  settings: Settings,
  validateSettings(s) {
    if (s.greeting === '') throw new SettingsError('settings.greeting', 'must not be empty');
  },
  reconcile(event, settings) {
    const cm = event.object;
    info('greeting', { name: cm.name, at: now() });
    if (cm.label('hello') === 'fail') throw new Error(`cannot greet ${cm.name}`);
    if (cm.label('hello') === 'read') getObject('v1', 'Secret', cm.namespace, 'x');
    return Outcome.of(Apply.fields(cm.ref(), { metadata: { annotations: { greeting: settings.greeting } } })).requeueAfter(1000);
  },
};

function event(labels: Record<string, string>, eventType: WitEvent['eventType'] = 'applied'): WitEvent {
  const object = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web', namespace: 'a', labels } };
  return { eventType, kind: { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true }, object: JSON.stringify(object) };
}

/** What a call threw, so its exact value (not only its message) is checked. */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (e) {
    return e;
  }
  return assert.fail('no error was thrown');
}

describe('reconcilerOf', () => {
  const reconciler = reconcilerOf(plugin);

  it('describes the plugin with every list the contract requires', () => {
    assert.deepEqual(reconciler.describe(), {
      name: 'hello',
      version: '0.1.0',
      subscriptions: [{ group: '', version: 'v1', kind: 'ConfigMap', namespaces: ['a', 'b'], labelSelector: 'hello' }],
      writes: [{ group: '', kind: 'ConfigMap' }],
      owns: [{ group: '', kind: 'Secret' }],
      watches: [{ source: { group: '', kind: 'Secret' }, target: { group: '', kind: 'ConfigMap' }, rule: { tag: 'field-ref', val: 'data.secret' } }],
      finalizer: { name: 'kubewasm.dev/hello', kinds: [{ group: '', kind: 'ConfigMap' }] },
    });
    const bare = reconcilerOf({ describe: () => new PluginInfo('bare', '1.0.0'), reconcile: () => undefined }).describe();
    assert.deepEqual([bare.owns, bare.watches, bare.finalizer], [[], [], undefined]);
  });

  it('validateSettings throws the message as a string (an Error would trap)', () => {
    assert.equal(reconciler.validateSettings('{"greeting":"hi"}'), undefined);
    assert.equal(thrown(() => reconciler.validateSettings('{"greeting":1}')), 'settings.greeting: must be a string');
    assert.equal(thrown(() => reconciler.validateSettings('{"greeting":""}')), 'settings.greeting: must not be empty');
    const none = reconcilerOf({ describe: () => new PluginInfo('n', '1'), reconcile: () => undefined });
    assert.equal(none.validateSettings(' {} '), undefined);
    assert.equal(thrown(() => none.validateSettings('{"a":1}')), 'settings: this plugin takes no settings (expected {})');
  });

  it('reconcile passes parsed settings and returns the contract outcome', () => {
    const host = new FakeHost({ settings: { greeting: 'hi' }, now: '2026-12-04T03:15:00.250Z' }).install();
    const outcome = reconciler.reconcile(event({ hello: 'yes' }));
    assert.ok(!(outcome instanceof Promise));
    assert.equal(outcome.requeueAfterMs, 1000n);
    assert.deepEqual(JSON.parse((outcome.intents[0]!.val as { object: string }).object).metadata.annotations, { greeting: 'hi' });
    assert.deepEqual(host.logs, [{ level: 'info', message: 'greeting', fields: { name: 'web', at: '2026-12-04T03:15:00Z' } }]);
  });

  it('reconcile throws a reconcile-error record (a string would trap)', () => {
    new FakeHost().install();
    assert.deepEqual(thrown(() => reconciler.reconcile(event({ hello: 'fail' }))), { message: 'cannot greet web' });
    new FakeHost({ settings: '{"greeting":2}' }).install();
    assert.deepEqual(thrown(() => reconciler.reconcile(event({}))), { message: 'settings.greeting: must be a string' });
  });

  it('a refused read becomes the reconcile error, with the host message', () => {
    new FakeHost({ readable: [{ apiVersion: 'v1', kind: 'ConfigMap' }] }).install();
    assert.deepEqual(thrown(() => reconciler.reconcile(event({ hello: 'read' }))), {
      message: 'v1 Secret is not readable: the plugin neither subscribes to, owns nor watches it',
    });
  });

  it('an async reconcile resolves to the outcome, and a rejection to the error record', async () => {
    new FakeHost().install();
    const asyncPlugin: Plugin = {
      describe: () => new PluginInfo('a', '1'),
      async reconcile(e) {
        if (e.isDeleted) throw new Error('gone');
        return [Apply.fields(e.object.ref(), {})];
      },
    };
    const r = reconcilerOf(asyncPlugin);
    const outcome = await r.reconcile(event({}));
    assert.deepEqual(outcome.intents.map((i) => i.tag), ['apply']);
    await assert.rejects(async () => r.reconcile(event({}, 'deleted')), (e) => assert.deepEqual(e, { message: 'gone' }) === undefined);
  });

  it('expected() prints an outcome as kubewasm test does', () => {
    assert.deepEqual(expected(Outcome.of(Apply.fields({ apiVersion: 'v1', kind: 'ConfigMap', name: 'a' }, {})).requeueAfter(5)), {
      intents: [{ type: 'apply', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } }, status: false, force: true }],
      requeueAfterMs: 5,
    });
  });
});
