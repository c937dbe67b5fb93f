// The component's entry point: the plugin as the `reconciler` export of the
// kubewasm `plugin` world, wired to the host.

import { exportPlugin } from '@kubewasm/sdk/component';
import { plugin } from './plugin.js';

export const reconciler = exportPlugin(plugin);
