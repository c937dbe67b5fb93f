// Owner references: how a child names the object that controls it.

import { KubewasmError } from './errors.js';
import type { KubeObject, OwnerReference } from './object.js';

/**
 * A controller reference to `owner` (`controller: true`,
 * `blockOwnerDeletion: true`), for a child the plugin creates; the owner
 * needs a `metadata.uid`.
 */
export function ownerReferenceTo(owner: KubeObject, { controller = true } = {}): OwnerReference {
  const uid = owner.uid;
  if (!uid) throw new KubewasmError(`${owner.describe()} has no metadata.uid to be an owner`);
  const ref: OwnerReference = { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid };
  if (controller) {
    ref.controller = true;
    ref.blockOwnerDeletion = true;
  }
  return ref;
}
