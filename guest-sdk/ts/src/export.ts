// The bridge from a plugin written with the SDK to the `reconciler` export
// componentize-js expects. It converts what the plugin returns into the
// contract's shapes and every error into the one each function must throw
// (a string from `validateSettings`, a `{ message }` record from
// `reconcile`); anything else traps in the component, and the host would
// only see "unreachable executed".

import { errorMessage, KubewasmError, SettingsError } from './errors.js';
import { rawSettings } from './host.js';
import { Outcome, type IntentBuilder } from './intents.js';
import { Event, PluginInfo } from './plugin.js';
import { parseSettings, Schema } from './settings.js';
import type { WitEvent, WitOutcome, WitPluginInfo } from './wit.js';

/** What `reconcile` may return: an `Outcome`, a list of intents, or nothing. */
export type ReconcileResult = Outcome | (IntentBuilder | undefined)[] | undefined | void;

/**
 * A plugin. With a `settings` schema, the operator's settings are validated
 * with it and `reconcile` receives them parsed; without one, only `{}` is
 * accepted unless `validateSettings` says otherwise.
 */
export interface Plugin<S = undefined> {
  describe(): PluginInfo;
  settings?: Schema<S>;
  /** Extra checks of the parsed settings; throw (a `SettingsError`) to refuse them. */
  validateSettings?(settings: S): void;
  reconcile(event: Event, settings: S): ReconcileResult | Promise<ReconcileResult>;
}

/** The `reconciler` interface of the `plugin` world, as componentize-js calls it. */
export interface Reconciler {
  describe(): WitPluginInfo;
  validateSettings(text: string): void;
  reconcile(event: WitEvent): WitOutcome | Promise<WitOutcome>;
}

/** The parsed settings of `text` for `plugin`, or a thrown `SettingsError`. */
export function settingsOf<S>(plugin: Plugin<S>, text: string): S {
  let parsed: S;
  if (plugin.settings !== undefined) {
    parsed = parseSettings(text, plugin.settings);
  } else {
    parsed = parseSettings(text, NO_SETTINGS) as S;
  }
  plugin.validateSettings?.(parsed);
  return parsed;
}

/** The settings of a plugin without a schema: `{}` only. */
const NO_SETTINGS = new Schema<undefined>((value) => {
  const empty = typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
  if (!empty) throw new SettingsError('settings', 'this plugin takes no settings (expected {})');
  return undefined;
});

/** The contract's outcome of what `reconcile` returned. */
export function outcomeOf(result: ReconcileResult): WitOutcome {
  if (result === undefined || result === null) return { intents: [] };
  if (result instanceof Outcome) return result.toWit();
  if (Array.isArray(result)) return new Outcome(...result).toWit();
  throw new KubewasmError('reconcile must return an Outcome, a list of intents or nothing');
}

const fail = (e: unknown): never => {
  throw { message: errorMessage(e) };
};

/**
 * The `reconciler` export for `plugin`, using the installed host (see
 * `exportPlugin` in `@kubewasm/sdk/component`, which installs the
 * component's). Node tests may call it with a `FakeHost` installed.
 */
export function reconcilerOf<S>(plugin: Plugin<S>): Reconciler {
  for (const required of ['describe', 'reconcile'] as const) {
    if (typeof plugin?.[required] !== 'function') throw new KubewasmError(`the plugin has no ${required}() function`);
  }
  return {
    describe() {
      const info = plugin.describe();
      if (!(info instanceof PluginInfo)) throw new KubewasmError('describe() must return a PluginInfo');
      return info.toWit();
    },
    validateSettings(text: string) {
      try {
        settingsOf(plugin, text);
      } catch (e) {
        // validate-settings' error is a string: an Error object would trap.
        throw errorMessage(e);
      }
    },
    reconcile(event: WitEvent) {
      let result: ReconcileResult | Promise<ReconcileResult>;
      try {
        result = plugin.reconcile(Event.fromWit(event), settingsOf(plugin, rawSettings()));
        if (!(result instanceof Promise)) return outcomeOf(result);
      } catch (e) {
        // reconcile's error is a reconcile-error record: a string would trap.
        return fail(e);
      }
      return result.then(outcomeOf).catch(fail);
    },
  };
}
