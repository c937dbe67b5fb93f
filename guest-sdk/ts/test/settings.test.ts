import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSettings, schema, SettingsError, type Infer } from '../src/index.js';

const Settings = schema.object({
  reason: schema
    .string()
    .check((r) => (/^[A-Z][A-Za-z0-9]*$/.test(r) ? undefined : `${JSON.stringify(r)} is not UpperCamelCase`))
    .default('Conformance'),
  requeueAfterMs: schema.integer({ min: 1, max: 3_600_000 }).default(1500),
  requiredKeys: schema.array(schema.string()).default(['owner']),
  limits: schema.record(schema.number({ min: 0 })).optional(),
  mode: schema.oneOf('strict', 'lax').default('strict'),
  nested: schema.object({ enabled: schema.boolean() }).optional(),
});
type Settings = Infer<typeof Settings>;

const refused = (text: string) => {
  try {
    parseSettings(text, Settings);
  } catch (e) {
    assert.ok(e instanceof SettingsError, `${e} is a SettingsError`);
    return e.message;
  }
  assert.fail(`${text} was accepted`);
};

describe('settings', () => {
  it('fills in defaults, and gives every call its own copy of them', () => {
    const a: Settings = parseSettings('{}', Settings);
    assert.deepEqual(a, { reason: 'Conformance', requeueAfterMs: 1500, requiredKeys: ['owner'], limits: undefined, mode: 'strict', nested: undefined });
    a.requiredKeys.push('changed');
    assert.deepEqual(parseSettings('{}', Settings).requiredKeys, ['owner']);
  });

  it('parses every type', () => {
    const s = parseSettings(
      '{"reason":"Checked","requeueAfterMs":2.0,"requiredKeys":["a","b"],"limits":{"cpu":0.5},"mode":"lax","nested":{"enabled":true}}',
      Settings,
    );
    assert.deepEqual(s, { reason: 'Checked', requeueAfterMs: 2, requiredKeys: ['a', 'b'], limits: { cpu: 0.5 }, mode: 'lax', nested: { enabled: true } });
  });

  it('names the offending field in every error', () => {
    assert.equal(refused('{'), 'settings: not valid JSON');
    assert.equal(refused('[]'), 'settings: must be a JSON object');
    assert.equal(refused('{"zeta":1,"alpha":2}'), 'settings.alpha: unknown field (known: limits, mode, nested, reason, requeueAfterMs, requiredKeys)');
    assert.equal(refused('{"reason":3}'), 'settings.reason: must be a string');
    assert.equal(refused('{"reason":"lower"}'), 'settings.reason: "lower" is not UpperCamelCase');
    assert.equal(refused('{"requeueAfterMs":2.5}'), 'settings.requeueAfterMs: must be a whole number from 1 to 3600000');
    assert.equal(refused('{"requeueAfterMs":0}'), 'settings.requeueAfterMs: must be a whole number from 1 to 3600000');
    assert.equal(refused('{"requiredKeys":["a",3]}'), 'settings.requiredKeys[1]: must be a string');
    assert.equal(refused('{"limits":{"cpu":-1}}'), 'settings.limits.cpu: must be a number of at least 0');
    assert.equal(refused('{"mode":"loose"}'), 'settings.mode: must be one of strict, lax');
    assert.equal(refused('{"nested":{}}'), 'settings.nested.enabled: missing required field');
    assert.equal(refused('{"nested":{"enabled":"yes"}}'), 'settings.nested.enabled: must be true or false');
    assert.equal(refused('{"nested":[]}'), 'settings.nested: must be an object');
  });

  it('reports the first problem in declaration order', () => {
    assert.equal(refused('{"reason":1,"requeueAfterMs":0}'), 'settings.reason: must be a string');
  });
});
