// The Rust website plugin's fixtures, natively, and the page rendering.

import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runFixtures } from '@kubewasm/sdk/fixtures';
import { parseAllDocuments } from 'yaml';
import { invalid, render } from '../src/page.js';
import { plugin } from '../src/website.js';

// build/test/website-ts/test/ -> the repository
const repo = join(dirname(fileURLToPath(import.meta.url)), '../../../../../..');
const yaml = (text: string) => parseAllDocuments(text).map((d) => d.toJSON());

it('passes the Rust website plugin\'s fixtures natively', async () => {
  assert.deepEqual(await runFixtures(plugin, join(repo, 'plugins/website/fixtures'), yaml), []);
});

it('renders escaped paragraphs, the referenced text after the content', () => {
  const html = render({ title: '<T>', content: 'a & b\nsame\n\n\nsecond', configMapRef: undefined }, "it's");
  assert.ok(html.includes('<title>&lt;T&gt;</title>'), html);
  assert.ok(html.includes('<p>a &amp; b same</p>\n<p>second</p>\n<p>it&#39;s</p>\n'), html);
});

it('refuses a blank title and a reference to its own child', () => {
  assert.equal(invalid({ title: '  ', content: '', configMapRef: undefined }, 'blog'), 'spec.title is blank');
  assert.equal(
    invalid({ title: 'x', content: '', configMapRef: { name: 'blog', key: 'content' } }, 'blog'),
    'spec.configMapRef.name: blog is the ConfigMap the page is written to',
  );
});
