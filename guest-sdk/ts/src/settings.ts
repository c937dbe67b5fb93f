// Settings documents parsed by a schema into typed values, with errors that
// name the offending field:
//
//   const Settings = schema.object({
//     annotation: schema.string().default('kubewasm.dev/content-hash'),
//     requiredKeys: schema.array(schema.string()).default([]),
//     maxItems: schema.integer({ min: 1, max: 100 }).optional(),
//   });
//   type Settings = Infer<typeof Settings>;
//   parseSettings('{"requiredKeys": [3]}', Settings);
//   // SettingsError: settings.requiredKeys[0]: must be a string
//
// Objects refuse unknown keys (the first in sorted order is named), and a
// key without `.default()` or `.optional()` is required.

import { SettingsError } from './errors.js';
import { rawSettings } from './host.js';
import { isJsonObject } from './object.js';

/** A parser of one JSON value at a path (`settings.a.b[0]`). */
export class Schema<T> {
  constructor(
    private readonly parser: (value: unknown, path: string) => T,
    /** For an object's field: the value when the key is absent; `missing` makes it required. */
    readonly absent: { value: T } | 'missing' = 'missing',
  ) {}

  parse(value: unknown, path = 'settings'): T {
    return this.parser(value, path);
  }
  /** The key may be absent (the value is then `undefined`). */
  optional(): Schema<T | undefined> {
    return new Schema<T | undefined>((v, p) => this.parser(v, p), { value: undefined });
  }
  /** The value when the key is absent. */
  default(value: T): Schema<T> {
    return new Schema(this.parser, { value });
  }
  /**
   * A further check: `problem` returns what is wrong with a value of the
   * right type (`is not UpperCamelCase`), or `undefined` if it is fine.
   */
  check(problem: (value: T) => string | undefined): Schema<T> {
    return new Schema((v, p) => {
      const parsed = this.parser(v, p);
      const wrong = problem(parsed);
      if (wrong !== undefined) throw new SettingsError(p, wrong);
      return parsed;
    }, this.absent);
  }
}

/** The type a schema parses into: `type Settings = Infer<typeof Settings>`. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

function typed<T>(what: string, is: (v: unknown) => v is T): Schema<T> {
  return new Schema((v, path) => {
    if (!is(v)) throw new SettingsError(path, `must be ${what}`);
    return v;
  });
}

interface Range {
  min?: number;
  max?: number;
}

function rangeText({ min, max }: Range): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  if (max !== undefined) return ` of at most ${max}`;
  return '';
}

function numeric(what: string, whole: boolean, range: Range): Schema<number> {
  const message = `must be ${what}${rangeText(range)}`;
  return new Schema((v, path) => {
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!whole || Number.isInteger(v)) &&
      (range.min === undefined || v >= range.min) &&
      (range.max === undefined || v <= range.max);
    if (!ok) throw new SettingsError(path, message);
    return v as number;
  });
}

export const schema = {
  string: (): Schema<string> => typed('a string', (v): v is string => typeof v === 'string'),
  boolean: (): Schema<boolean> => typed('true or false', (v): v is boolean => typeof v === 'boolean'),
  /** A whole number (`2.0` counts), within `min`..`max` if given. */
  integer: (range: Range = {}): Schema<number> => numeric('a whole number', true, range),
  number: (range: Range = {}): Schema<number> => numeric('a number', false, range),
  /** One of the given strings. */
  oneOf: <const V extends string>(...values: V[]): Schema<V> =>
    typed(`one of ${values.join(', ')}`, (v): v is V => typeof v === 'string' && (values as string[]).includes(v)),
  /** Any JSON value, unchecked. */
  any: (): Schema<unknown> => new Schema((v) => v),
  array: <T>(item: Schema<T>): Schema<T[]> =>
    new Schema((v, path) => {
      if (!Array.isArray(v)) throw new SettingsError(path, 'must be a list');
      return v.map((x, i) => item.parse(x, `${path}[${i}]`));
    }),
  /** An object with any keys, each value parsed by `item`. */
  record: <T>(item: Schema<T>): Schema<Record<string, T>> =>
    new Schema((v, path) => {
      if (!isJsonObject(v)) throw new SettingsError(path, 'must be an object');
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item.parse(x, `${path}.${k}`)]));
    }),
  /** An object with these keys (checked in this order); others are refused. */
  object: <S extends Shape>(shape: S): Schema<ObjectOf<S>> =>
    new Schema((v, path) => {
      if (!isJsonObject(v)) throw new SettingsError(path, path === 'settings' ? 'must be a JSON object' : 'must be an object');
      const known = Object.keys(shape).sort();
      const unknown = Object.keys(v).sort().find((k) => !Object.hasOwn(shape, k));
      if (unknown !== undefined) throw new SettingsError(`${path}.${unknown}`, `unknown field (known: ${known.join(', ')})`);
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(shape)) {
        if (Object.hasOwn(v, key)) out[key] = field.parse(v[key], `${path}.${key}`);
        else if (field.absent === 'missing') throw new SettingsError(`${path}.${key}`, 'missing required field');
        else out[key] = structuredCloneJson(field.absent.value);
      }
      return out as ObjectOf<S>;
    }),
};

/** A fresh copy of a default, so that a plugin changing it changes no other call's. */
function structuredCloneJson<T>(value: T): T {
  return value === undefined || value === null || typeof value !== 'object' ? value : JSON.parse(JSON.stringify(value));
}

/**
 * Parses a settings document (JSON text) with `s`; throws a `SettingsError`
 * naming the first offending field (`settings: not valid JSON`,
 * `settings.requiredKeys[1]: must be a string`).
 */
export function parseSettings<T>(text: string, s: Schema<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SettingsError('settings', 'not valid JSON');
  }
  return s.parse(raw, 'settings');
}

/** The host's settings document parsed with `s` (see `parseSettings`). */
export function readSettings<T>(s: Schema<T>): T {
  return parseSettings(rawSettings(), s);
}
