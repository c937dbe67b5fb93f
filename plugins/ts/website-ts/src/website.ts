// website-ts: the Rust `website` plugin (plugins/website) in TypeScript, to
// show the SDK's owned children, mapped watch, finalizer and status
// conditions, and passing the same fixtures (plugins/website/fixtures).
//
// For each Website (demo.kubewasm.dev/v1alpha1) it applies a ConfigMap of the
// same name holding the rendered page, owned by the Website; reports `Ready`
// in the status; re-renders when a ConfigMap named in spec.configMapRef
// changes (mapped watch); and deletes the child itself when the Website is
// deleted (finalizer), recording Events along the way.

import {
  Apply,
  Delete,
  getObject,
  getRef,
  info,
  KubewasmError,
  listOwned,
  MappedWatch,
  Outcome,
  PluginInfo,
  RecordEvent,
  StatusUpdate,
  Subscription,
  type ConditionStatus,
  type Event,
  type KubeObject,
  type ObjectRef,
  type Plugin,
} from '@kubewasm/sdk';
import { CONFIG_MAP_REF_PATH, invalid, render, WebsiteSpec } from './page.js';

export const GROUP = 'demo.kubewasm.dev';
const READY = 'Ready';
/** How long to wait before looking again for a child that was just applied. */
const PENDING_REQUEUE_MS = 2_000;
/** How long to wait before looking again at a name taken by someone else's ConfigMap. */
const CONFLICT_REQUEUE_MS = 30_000;

const childRef = (website: KubeObject): ObjectRef => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace: website.namespace, name: website.name });

/** The child's applied configuration: labels, the page, a controller reference to the Website. */
function desired(website: KubeObject, html: string): { apply: Apply; labels: Record<string, string>; data: Record<string, string> } {
  const labels = {
    'app.kubernetes.io/instance': website.name,
    'app.kubernetes.io/managed-by': 'kubewasm-website',
    'app.kubernetes.io/name': 'website',
  };
  const data = { 'index.html': html };
  return { apply: Apply.fields(childRef(website), { metadata: { labels }, data }).ownedBy(website), labels, data };
}

/** Whether the child holds the desired data and every desired label (others may add more). */
function isUpToDate(child: KubeObject, want: ReturnType<typeof desired>): boolean {
  const current = child.labels;
  return (
    JSON.stringify(child.get('data') ?? null) === JSON.stringify(want.data) &&
    Object.entries(want.labels).every(([k, v]) => current[k] === v)
  );
}

const hasReason = (website: KubeObject, reason: string) => website.condition(READY)?.reason === reason;

function readiness(website: KubeObject, status: ConditionStatus, reason: string, message: string): Apply | undefined {
  return new StatusUpdate(website).condition({ type: READY, status, reason, message }).observedGeneration().intent();
}

/** The Website's children: the current one (same name) and stale ones. */
function children(website: KubeObject): { current: KubeObject | undefined; stale: KubeObject[] } {
  const owned = listOwned('v1', 'ConfigMap', website);
  return { current: owned.find((c) => c.name === website.name), stale: owned.filter((c) => c.name !== website.name) };
}

function finalize(website: KubeObject): Outcome {
  const { current, stale } = children(website);
  const doomed = [...(current ? [current] : []), ...stale];
  const note =
    doomed.length === 0
      ? 'No ConfigMap to delete; the Website can go'
      : `Deleted ConfigMap ${doomed.map((c) => c.name).join(', ')} before the Website goes`;
  return Outcome.of(...doomed.map((c) => Delete.of(c.ref())), RecordEvent.normal(website.ref(), 'Finalized', note).action('Delete'));
}

/** Ready=False for a reason the user must fix: a Warning Event when it first appears, and the status. */
function notReady(website: KubeObject, reason: string, message: string): Outcome {
  return Outcome.of(
    hasReason(website, reason) ? undefined : RecordEvent.warning(website.ref(), reason, message),
    readiness(website, 'False', reason, message),
  );
}

function reconcileWebsite(website: KubeObject): Outcome {
  let spec: WebsiteSpec;
  try {
    const parsed = website.getAs('spec', WebsiteSpec);
    if (parsed === undefined) throw new KubewasmError('spec is missing');
    spec = parsed;
  } catch (e) {
    return notReady(website, 'InvalidSpec', (e as Error).message);
  }
  const problem = invalid(spec, website.name);
  if (problem !== undefined) return notReady(website, 'InvalidSpec', problem);

  let referenced: string | undefined;
  if (spec.configMapRef !== undefined) {
    const { name, key } = spec.configMapRef;
    const source = getObject('v1', 'ConfigMap', website.namespace, name);
    // The mapped watch calls again when the ConfigMap changes.
    if (source === undefined) return notReady(website, 'ContentMissing', `ConfigMap ${name} does not exist`);
    const text = source.get(`data["${key}"]`);
    if (typeof text !== 'string') return notReady(website, 'ContentMissing', `ConfigMap ${name} has no key ${key}`);
    referenced = text;
  }

  const outcome = new Outcome();
  const child = childRef(website).name;
  const want = desired(website, render(spec, referenced));
  const { current: owned, stale } = children(website);
  outcome.add(...stale.map((old) => Delete.of(old.ref())));
  // Not ours, or not there: someone else's ConfigMap of that name?
  const current = owned ?? getRef(childRef(website));
  let ready: Apply | undefined;
  if (current === undefined) {
    // Applied on every call until the cache shows it; the Event only on the first.
    outcome.add(want.apply);
    if (hasReason(website, 'ChildReady')) {
      outcome.add(RecordEvent.normal(website.ref(), 'ChildRecreated', `Recreated ConfigMap ${child}, which was deleted`).action('Create'));
    } else if (!hasReason(website, 'ChildPending')) {
      outcome.add(RecordEvent.normal(website.ref(), 'ChildCreated', `Created ConfigMap ${child} with the rendered page`).action('Create'));
    }
    outcome.requeueAfter(PENDING_REQUEUE_MS);
    ready = readiness(website, 'False', 'ChildPending', `Waiting for ConfigMap ${child} to appear`);
  } else if (!current.isControlledBy(website)) {
    const message = `ConfigMap ${child} exists and is not controlled by this Website`;
    if (!hasReason(website, 'ChildConflict')) outcome.add(RecordEvent.warning(website.ref(), 'ChildConflict', message));
    outcome.requeueAfter(CONFLICT_REQUEUE_MS);
    ready = readiness(website, 'False', 'ChildConflict', message);
  } else {
    if (!isUpToDate(current, want)) {
      outcome.add(want.apply, RecordEvent.normal(website.ref(), 'ChildUpdated', `Updated the page in ConfigMap ${child}`).action('Update'));
    }
    ready = readiness(website, 'True', 'ChildReady', `ConfigMap ${child} serves the page`);
  }
  return outcome.add(ready);
}

export const plugin = {
  describe: () =>
    new PluginInfo('website', '0.1.0')
      .subscribe(Subscription.of(GROUP, 'v1alpha1', 'Website'))
      // A child's change reconciles its Website; owning the kind also lets the
      // plugin read any ConfigMap, so someone else's of the child's name is seen.
      .owns('', 'ConfigMap', 'v1')
      .watches(MappedWatch.fieldRef({ group: '', kind: 'ConfigMap', version: 'v1' }, { group: GROUP, kind: 'Website' }, CONFIG_MAP_REF_PATH))
      .writes(GROUP, 'Website')
      .writes('', 'ConfigMap')
      .finalizer('kubewasm.dev/website', { group: GROUP, kind: 'Website' }),

  reconcile(event: Event): Outcome | undefined {
    const website = event.object;
    if (event.kind.group !== GROUP || event.kind.kind !== 'Website') return undefined;
    if (event.isFinalizing) return finalize(website);
    if (event.isDeleted) {
      info('Website deleted', { website: website.name, last_ready_reason: website.condition(READY)?.reason ?? 'none' });
      return undefined;
    }
    // The finalizing event does the cleanup.
    if (website.isBeingDeleted) return undefined;
    return reconcileWebsite(website);
  },
} satisfies Plugin;
