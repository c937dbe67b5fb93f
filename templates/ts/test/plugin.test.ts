import assert from 'node:assert/strict';
import { beforeEach, it } from 'node:test';
import { Event, settingsOf } from '@kubewasm/sdk';
import { runFixtures } from '@kubewasm/sdk/fixtures';
import { expected, FakeHost } from '@kubewasm/sdk/testing';
import { parseAllDocuments } from 'yaml';
import { plugin } from '../src/plugin.js';

const web = (labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'web', namespace: 'default', labels },
});

let host: FakeHost;
beforeEach(() => {
  host = new FakeHost({ settings: { greeting: 'hi' } }).install();
});

it('greets a ConfigMap once', () => {
  const settings = settingsOf(plugin, host.settings());
  const outcome = expected(plugin.reconcile(Event.of(web({ hello: 'please' })), settings));
  assert.deepEqual(outcome.intents, [
    {
      type: 'apply',
      object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web', namespace: 'default', labels: { greeted: 'hi' } } },
      status: false,
      force: true,
    },
    {
      type: 'record-event',
      regarding: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'web' },
      severity: 'Normal',
      reason: 'Greeted',
      note: 'greeted web',
      action: 'Greet',
    },
  ]);
  assert.deepEqual(host.logs, [{ level: 'info', message: 'greeting', fields: { name: 'web', greeting: 'hi' } }]);
  assert.equal(plugin.reconcile(Event.of(web({ hello: 'please', greeted: 'hi' })), settings), undefined);
});

it('refuses settings naming the field', () => {
  assert.throws(() => settingsOf(plugin, '{"greeting": "no spaces"}'), {
    message: 'settings.greeting: "no spaces" is not a valid label value',
  });
});

it('passes its fixtures natively (the cases kubewasm test runs against the component)', async () => {
  const yaml = (text: string) => parseAllDocuments(text).map((d) => d.toJSON());
  assert.deepEqual(await runFixtures(plugin, 'fixtures', yaml), []);
});
