// Entry point of the conformance-js component: the `reconciler` export of
// the kubewasm `plugin` world, wired to the host imports. The behaviour is
// conformance/README.md's, the same as the Rust conformance plugin's.

import { getObject, listObjects, log, now, settings } from 'kubewasm:plugin/host@0.2.0';
import * as conformance from './conformance.js';

export const reconciler = {
  describe() {
    return conformance.describe();
  },

  validateSettings(text) {
    try {
      conformance.parseSettings(text);
    } catch (e) {
      // validate-settings' error is a string.
      throw errorMessage(e);
    }
  },

  reconcile(event) {
    try {
      const host = { getObject, listObjects, log, now };
      return conformance.reconcile(event, conformance.parseSettings(settings()), host);
    } catch (e) {
      // reconcile's error is a reconcile-error record.
      throw { message: errorMessage(e) };
    }
  },
};

function errorMessage(e) {
  return typeof e?.message === 'string' ? e.message : String(e);
}
