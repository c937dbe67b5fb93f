// Entry point of the configmap-hasher component: the `reconciler` export of
// the kubewasm `plugin` world, wired to the host imports.
//
// WIT result convention (componentize-js): returning gives `ok`, throwing
// gives `err`, and the thrown value must be the `err` payload itself: a
// string for `validate-settings`, a `reconcile-error` record for `reconcile`.

import { log, now, settings } from 'kubewasm:plugin/host@0.2.0';
import * as hasher from './hasher.js';

export const reconciler = {
  describe() {
    return hasher.describe();
  },

  validateSettings(text) {
    try {
      hasher.parseSettings(text);
    } catch (e) {
      throw errorMessage(e);
    }
  },

  // An async export is fine: componentize-js runs the promise to completion
  // before the call returns.
  async reconcile(event) {
    try {
      return await hasher.reconcile(event, hasher.parseSettings(settings()), { log, now });
    } catch (e) {
      // Any failure, a bug included, becomes a reconcile-error with a message
      // the host can log, rather than a trap without one.
      throw { message: errorMessage(e) };
    }
  },
};

function errorMessage(e) {
  return typeof e?.message === 'string' ? e.message : String(e);
}
