// Entry point of the conformance-ts component: the plugin, exported as the
// `reconciler` interface of the kubewasm `plugin` world.

import { exportPlugin } from '@kubewasm/sdk/component';
import { plugin } from './conformance.js';

export const reconciler = exportPlugin(plugin);
