// The Website's spec and the HTML page rendered from it.

import { schema, type Infer } from '@kubewasm/sdk';

/** `spec` of a Website (plugins/website/deploy/crd.yaml). */
export const WebsiteSpec = schema.object({
  /** The page title, shown in the tab and as the heading. */
  title: schema.string(),
  /** Plain text; blank lines separate paragraphs. */
  content: schema.string().default(''),
  /** A key of a ConfigMap in the Website's namespace whose text follows `content`. */
  configMapRef: schema.object({ name: schema.string(), key: schema.string().default('content') }).optional(),
});
export type WebsiteSpec = Infer<typeof WebsiteSpec>;

/** The path of the referenced ConfigMap's name, which the host's mapped watch matches. */
export const CONFIG_MAP_REF_PATH = 'spec.configMapRef.name';

/**
 * What the CRD schema cannot check: a title that is not only blanks, and a
 * referenced ConfigMap that is not the Website's own child. The problem, or
 * `undefined`.
 */
export function invalid(spec: WebsiteSpec, websiteName: string): string | undefined {
  if (spec.title.trim() === '') return 'spec.title is blank';
  if (spec.configMapRef?.name === websiteName) {
    return `spec.configMapRef.name: ${websiteName} is the ConfigMap the page is written to`;
  }
  return undefined;
}

/** Text split into paragraphs at blank lines, the lines of each joined with single spaces. */
export function paragraphs(text: string): string[] {
  const out: string[] = [];
  let current: string[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (line !== '') {
      current.push(line);
    } else if (current.length > 0) {
      out.push(current.join(' '));
      current = [];
    }
  }
  if (current.length > 0) out.push(current.join(' '));
  return out;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text escaped for HTML element content and attribute values. */
export const escape = (text: string) => text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** The page: a small standalone HTML document; `content`'s paragraphs, then `referenced`'s. */
export function render(spec: WebsiteSpec, referenced?: string): string {
  const title = escape(spec.title.trim());
  let html = `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${title}</title>\n</head>\n<body>\n<h1>${title}</h1>\n`;
  for (const text of [spec.content, referenced]) {
    for (const p of paragraphs(text ?? '')) html += `<p>${escape(p)}</p>\n`;
  }
  return `${html}</body>\n</html>\n`;
}
