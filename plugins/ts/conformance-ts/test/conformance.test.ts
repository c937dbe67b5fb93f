// The conformance suite, natively: every case of conformance/fixtures through
// the SDK's export bridge with a fake host, the same files `kubewasm test`
// runs against the component.

import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runFixtures } from '@kubewasm/sdk/fixtures';
import { parseAllDocuments } from 'yaml';
import { plugin } from '../src/conformance.js';

// build/test/conformance-ts/test/ -> the repository
const repo = join(dirname(fileURLToPath(import.meta.url)), '../../../../../..');
const yaml = (text: string) => parseAllDocuments(text).map((d) => d.toJSON());

it('passes the conformance suite natively', async () => {
  assert.deepEqual(await runFixtures(plugin, join(repo, 'conformance/fixtures'), yaml), []);
});
