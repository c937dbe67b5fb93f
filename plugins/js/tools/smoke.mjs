// DEV SMOKE TEST, not the authoritative one: the host's conformance tests run
// the same fixtures through wasmtime. This runs the built components in Node
// (jco transpiles them to JS + core Wasm) with a stub host, to check a build
// quickly without the Rust host:
//
//   node tools/smoke.mjs [DIST_DIR]      (npm run smoke; after build.sh)
//
// For every plugin it checks that the component imports nothing but
// kubewasm:plugin (no WASI), calls describe, validates each fixture's
// settings and compares reconcile's outcome with the fixture's expected.json
// (or validate-settings' refusal with expected-error.txt).

import { readFile, readdir, mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { transpile, componentWit } from '@bytecodealliance/jco';

import { loadCases, hostJson, timestamp, DEFAULT_NOW } from './fixtures.mjs';

const jsRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const dist = resolve(process.argv[2] ?? process.env.KUBEWASM_PLUGIN_OUT ?? join(jsRoot, '../dist'));

let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`ok   ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}${detail ? `\n${detail}` : ''}`);
  }
}

const plugins = (await readdir(jsRoot, { withFileTypes: true }))
  .filter((d) => d.isDirectory() && existsSync(join(jsRoot, d.name, 'src/index.js')))
  .map((d) => d.name);

for (const name of plugins) {
  const wasm = join(dist, `${name}.wasm`);
  if (!existsSync(wasm)) {
    check(false, `${name}: ${wasm} exists (run build.sh first)`);
    continue;
  }
  const component = await readFile(wasm);
  const wit = await componentWit(component);
  const imports = [...wit.matchAll(/^\s*import ([^;]+);/gm)].map((m) => m[1]);
  check(
    imports.length > 0 && imports.every((i) => i.startsWith('kubewasm:plugin/')),
    `${name}: imports only kubewasm:plugin (${imports.join(', ')})`,
  );

  const dir = await mkdtemp(join(tmpdir(), `kubewasm-smoke-${name}-`));
  try {
    const { files } = await transpile(component, { name, instantiation: 'async' });
    for (const [file, bytes] of Object.entries(files)) {
      await mkdir(dirname(join(dir, file)), { recursive: true });
      await writeFile(join(dir, file), bytes);
    }
    const mod = await import(pathToFileURL(join(dir, `${name}.js`)).href);
    const modules = new Map();
    const getCoreModule = (file) => {
      if (!modules.has(file)) modules.set(file, readFile(join(dir, file)).then(WebAssembly.compile));
      return modules.get(file);
    };
    // A fresh instance per call, as a trap leaves an instance unusable.
    const instantiate = async (settings, logs, now = timestamp(DEFAULT_NOW)) => {
      const host = {
        log: (level, message, fields) => logs.push({ level, message, fields }),
        settings: () => settings,
        now: () => now,
        getObject: () => undefined,
        listObjects: () => [],
      };
      const instance = await mod.instantiate(getCoreModule, { 'kubewasm:plugin/host': host });
      return instance.reconciler;
    };

    const info = (await instantiate('{}', [])).describe();
    check(info.name === name, `${name}: describe names the plugin`, JSON.stringify(info, bigints));

    for (const c of loadCases(join(jsRoot, name))) {
      const logs = [];
      const plugin = await instantiate(c.settings, logs, c.now);
      try {
        if (c.expectedError !== undefined) {
          let error;
          try {
            plugin.validateSettings(c.settings);
          } catch (e) {
            error = e.payload ?? e;
          }
          check(error === c.expectedError, `${name}: fixture ${c.name}`, `refused with ${JSON.stringify(error)}`);
          continue;
        }
        plugin.validateSettings(c.settings);
        const actual = hostJson(plugin.reconcile(c.event));
        check(
          isDeepStrictEqual(actual, c.expected),
          `${name}: fixture ${c.name}`,
          `expected ${JSON.stringify(c.expected)}\nactual   ${JSON.stringify(actual)}`,
        );
      } catch (e) {
        check(false, `${name}: fixture ${c.name}`, `threw ${JSON.stringify(e.payload ?? String(e))}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function bigints(_key, value) {
  return typeof value === 'bigint' ? `${value}n` : value;
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
