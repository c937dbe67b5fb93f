import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

// build/test/ -> the package directory
const pkg = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

it('types/ is what jco generates from wit/ today', () => {
  assert.doesNotThrow(() => execFileSync('bash', [join(pkg, 'tools/types.sh'), '--check'], { stdio: 'pipe' }));
});
