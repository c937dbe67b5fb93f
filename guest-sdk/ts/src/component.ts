// The entry point of a plugin component: wires the SDK to the host's WIT
// imports. Only a component imports this module (Node cannot load the
// `kubewasm:` import); test the plugin's logic through `@kubewasm/sdk` with a
// `FakeHost` from `@kubewasm/sdk/testing`.
//
//   import { exportPlugin } from '@kubewasm/sdk/component';
//   import { plugin } from './plugin.js';
//   export const reconciler = exportPlugin(plugin);

import * as wit from 'kubewasm:plugin/host@0.2.0';
import { reconcilerOf, type Plugin, type Reconciler } from './export.js';
import { installHost } from './host.js';

/** The `reconciler` export of `plugin`; bind it to `export const reconciler`. */
export function exportPlugin<S>(plugin: Plugin<S>): Reconciler {
  installHost(wit);
  return reconcilerOf(plugin);
}
