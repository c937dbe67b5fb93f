// Status conditions and the status update that writes them only when they
// change (the Rust SDK's `StatusUpdate`).

import { now } from './host.js';
import { Apply } from './intents.js';
import type { ConditionValue, JsonObject, JsonValue, KubeObject } from './object.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A condition to set: `lastTransitionTime` and `observedGeneration` are filled in. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  /** UpperCamelCase, e.g. `ChildReady`. */
  reason: string;
  message?: string;
  /** Defaults to the object's `metadata.generation`. */
  observedGeneration?: number;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The status of one object: conditions and other fields. `intent()` is the
 * status `Apply`, or `undefined` when the object's status already says it all,
 * so repeated reconciles write nothing.
 *
 * - a condition's `lastTransitionTime` is kept while its `status` is
 *   unchanged, and is the host's `now()` otherwise;
 * - only the conditions given are applied: other managers' conditions stay
 *   theirs when the CRD makes `status.conditions` a map list keyed by `type`.
 */
export class StatusUpdate {
  private readonly wanted: Condition[] = [];
  private readonly fields: JsonObject = {};

  constructor(private readonly object: KubeObject) {}

  condition(condition: Condition): this {
    const i = this.wanted.findIndex((c) => c.type === condition.type);
    if (i >= 0) this.wanted[i] = condition;
    else this.wanted.push(condition);
    return this;
  }
  /** Sets `status.<key>`. */
  field(key: string, value: JsonValue): this {
    this.fields[key] = value;
    return this;
  }
  /** Sets `status.observedGeneration` to `metadata.generation`. */
  observedGeneration(): this {
    const generation = this.object.generation;
    if (generation !== undefined) this.fields['observedGeneration'] = generation;
    return this;
  }

  /** The status apply intent, or `undefined` if nothing would change. */
  intent(): Apply | undefined {
    const current = this.object.value['status'];
    const status: JsonObject = { ...this.fields };
    let changed = Object.entries(status).some(
      ([key, value]) => !same(current !== null && typeof current === 'object' && !Array.isArray(current) ? current[key] : undefined, value),
    );
    const conditions = this.wanted.map((wanted) => {
      const existing = this.object.condition(wanted.type);
      const condition: ConditionValue = {
        type: wanted.type,
        status: wanted.status,
        reason: wanted.reason,
        message: wanted.message ?? '',
        lastTransitionTime:
          existing?.status === wanted.status && existing.lastTransitionTime ? existing.lastTransitionTime : now().rfc3339,
      };
      const generation = wanted.observedGeneration ?? this.object.generation;
      if (generation !== undefined) condition.observedGeneration = generation;
      const unchanged =
        existing !== undefined &&
        (Object.keys(condition) as (keyof ConditionValue)[]).every((k) => same(existing[k], condition[k])) &&
        existing.observedGeneration === condition.observedGeneration;
      changed ||= !unchanged;
      return condition as unknown as JsonObject;
    });
    if (!changed) return undefined;
    if (conditions.length > 0) status['conditions'] = conditions;
    return Apply.status(this.object.ref(), status);
  }
}
