// Runs a plugin's fixture cases natively in Node, the same files `kubewasm
// test` runs against the component (layout:
// plugins/label-propagator/fixtures/README.md):
//
//   import { parseAllDocuments } from 'yaml';
//   import { runFixtures } from '@kubewasm/sdk/fixtures';
//   it('fixtures', async () => {
//     const yaml = (text: string) => parseAllDocuments(text).map((d) => d.toJSON());
//     assert.deepEqual(await runFixtures(plugin, 'fixtures', yaml), []);
//   });
//
// Node has no YAML parser and the SDK takes no dependency, so the caller
// passes one (`yaml` from npm). Each case goes through the same bridge the
// component exports (`reconcilerOf`), with a `FakeHost` holding the case's
// settings, cache and clock and refusing reads outside the plugin's scope.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { errorMessage } from './errors.js';
import { reconcilerOf, type Plugin } from './export.js';
import { isJsonObject, KubeObject, type JsonObject, type JsonValue } from './object.js';
import { Event, type EventType } from './plugin.js';
import { expectedOf, FakeHost } from './testing.js';

/** Every YAML document in `text`, as JSON values. */
export type ParseYaml = (text: string) => unknown[];

const EVENT_TYPES: readonly EventType[] = ['applied', 'deleted', 'resync', 'finalizing'];

const read = (path: string): string | undefined => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
const isDir = (path: string) => existsSync(path) && statSync(path).isDirectory();

function documents(path: string, parseYaml: ParseYaml): JsonObject[] {
  return parseYaml(readFileSync(path, 'utf8')).filter(isJsonObject) as JsonObject[];
}

function cache(dir: string, parseYaml: ParseYaml): KubeObject[] {
  if (!isDir(dir)) return [];
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .flatMap((f) => documents(join(dir, f), parseYaml).map((d) => new KubeObject(d)));
}

/** `[expected, actual]` of one case, as JSON values. */
export async function runCase<S>(plugin: Plugin<S>, fixtures: string, name: string, parseYaml: ParseYaml): Promise<[JsonValue, JsonValue]> {
  const here = join(fixtures, name);
  const pick = (file: string) => read(join(here, file)) ?? read(join(fixtures, file));
  const settings = pick('settings.json') ?? '{}';
  const reconciler = reconcilerOf(plugin);
  if (!existsSync(join(here, 'object.yaml'))) {
    const wanted = (read(join(here, 'expected-error.txt')) ?? '').trim();
    try {
      reconciler.validateSettings(settings);
    } catch (e) {
      const message = errorMessage(e);
      return [wanted, message.includes(wanted) ? wanted : message];
    }
    return [wanted, 'settings were accepted'];
  }
  const objects = cache(isDir(join(here, 'cache')) ? join(here, 'cache') : join(fixtures, 'cache'), parseYaml);
  new FakeHost({ settings, objects, now: pick('now')?.trim() || 0, info: plugin.describe() }).install();
  const [object] = documents(join(here, 'object.yaml'), parseYaml);
  const type = (read(join(here, 'event'))?.trim() || 'applied') as EventType;
  if (object === undefined) throw new Error(`${here}/object.yaml holds no object`);
  if (!EVENT_TYPES.includes(type)) throw new Error(`${here}/event: ${JSON.stringify(type)} is not ${EVENT_TYPES.join(', ')}`);
  const event = Event.of(object, type);
  const expected = JSON.parse(read(join(here, 'expected.json')) ?? 'null') as JsonValue;
  try {
    const outcome = await reconciler.reconcile({ eventType: type, kind: event.kind, object: JSON.stringify(object) });
    return [expected, expectedOf(outcome)];
  } catch (e) {
    return [expected, { error: errorMessage(e) }];
  }
}

/**
 * Runs every case under `fixtures` natively; returns a line per failed case
 * (an empty list when all pass).
 */
export async function runFixtures<S>(plugin: Plugin<S>, fixtures: string, parseYaml: ParseYaml): Promise<string[]> {
  const failures: string[] = [];
  const cases = readdirSync(fixtures)
    .filter((d) => d !== 'cache' && isDir(join(fixtures, d)))
    .sort();
  for (const name of cases) {
    const [expected, actual] = await runCase(plugin, fixtures, name, parseYaml);
    if (expected === null) {
      failures.push(`${name}: no expected.json (write it with \`kubewasm test --bless\`, then review it)`);
    } else if (!isDeepStrictEqual(expected, actual)) {
      failures.push(`${name}: expected ${JSON.stringify(expected)}, actual ${JSON.stringify(actual)}`);
    }
  }
  return failures;
}
