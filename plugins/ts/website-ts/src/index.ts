// Entry point of the website-ts component.

import { exportPlugin } from '@kubewasm/sdk/component';
import { plugin } from './website.js';

export const reconciler = exportPlugin(plugin);
