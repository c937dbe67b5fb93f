// The conformance behaviour (conformance/README.md) written with the
// TypeScript SDK. Each ConfigMap says in its `conformance.kubewasm.dev/do`
// label which part of the contract to exercise.

import {
  Apply,
  Create,
  Delete,
  getObject,
  HostError,
  info,
  JsonPatch,
  KubewasmError,
  listObjects,
  now,
  Outcome,
  Patch,
  PluginInfo,
  RecordEvent,
  schema,
  Subscription,
  type Event,
  type Infer,
  type KubeObject,
  type ObjectRef,
  type Plugin,
} from '@kubewasm/sdk';

const P = 'conformance.kubewasm.dev/';
const DO = `${P}do`;

const Settings = schema.object({
  reason: schema
    .string()
    .check((r) => (/^[A-Z][A-Za-z0-9]*$/.test(r) ? undefined : `${JSON.stringify(r)} is not UpperCamelCase`))
    .default('Conformance'),
  requeueAfterMs: schema.integer({ min: 1, max: 3_600_000 }).default(1500),
});
type Settings = Infer<typeof Settings>;

const PROPAGATIONS = ['Background', 'Foreground', 'Orphan'] as const;
type Propagation = (typeof PROPAGATIONS)[number];

/** A ConfigMap named `name` in `object`'s namespace. */
function sibling(object: KubeObject, name: string): ObjectRef {
  return { apiVersion: 'v1', kind: 'ConfigMap', namespace: object.namespace, name };
}

const annotation = (object: KubeObject, name: string) => object.annotation(`${P}${name}`);
const value = (object: KubeObject) => object.getString('data.value');
const annotate = (object: KubeObject, annotations: Record<string, string>) =>
  Apply.fields(object.ref(), { metadata: { annotations } });
const applied = (object: KubeObject) => annotate(object, { [`${P}applied`]: value(object) ?? 'yes' });
const eventAbout = (object: KubeObject, settings: Settings) =>
  (annotation(object, 'severity') === 'Warning' ? RecordEvent.warning : RecordEvent.normal)(
    object.ref(),
    settings.reason,
    `conformance event for ${object.name}`,
  ).action('Test');

function reconcile(event: Event, settings: Settings): Outcome | undefined {
  const object = event.object;
  const { name, namespace } = object;
  const action = object.label(DO) ?? '';
  info('conformance reconcile', { do: action });

  if (event.isDeleted) {
    return Outcome.of(
      Apply.object({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${name}-tombstone`, namespace },
        data: { last: value(object) ?? '' },
      }),
    );
  }
  if (event.isFinalizing) {
    const child = `${name}-child`;
    return Outcome.of(
      Delete.of(sibling(object, child)).propagation('foreground'),
      RecordEvent.normal(object.ref(), settings.reason, `cleaned up ${child}`).action('Finalize'),
    );
  }
  if (object.isBeingDeleted) return undefined;

  switch (action) {
    case 'nothing':
      return undefined;
    case 'apply':
      return Outcome.of(applied(object));
    case 'apply-unforced':
      return Outcome.of(applied(object).withForce(false));
    case 'apply-status': {
      const status: Record<string, string | number> = { phase: 'Reconciled' };
      if (object.generation !== undefined) status['observedGeneration'] = object.generation;
      return Outcome.of(Apply.status(object.ref(), status));
    }
    case 'merge-patch':
      return Outcome.of(
        Patch.merge(object.ref(), { metadata: { labels: { [`${P}patched`]: 'merge' } } }).ifResourceVersion(object.resourceVersion),
      );
    case 'merge-patch-status':
      return Outcome.of(Patch.merge(object.ref(), { status: { phase: 'Patched' } }).onStatus());
    case 'json-patch': {
      const v = value(object);
      if (v === undefined) throw new KubewasmError('json-patch needs data.value');
      return Outcome.of(
        Patch.json(
          object.ref(),
          new JsonPatch()
            .test('/data/value', v)
            .replace('/data/value', `${v}!`)
            .add('/metadata/labels/conformance.kubewasm.dev~1patched', 'json'),
        ),
      );
    }
    case 'create':
      return Outcome.of(
        Create.object({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `${name}-child`, namespace, labels: { [`${P}parent`]: name } },
          data: { value: value(object) ?? '' },
        }).ownedBy(object),
      );
    case 'delete': {
      const given = annotation(object, 'propagation');
      const del = Delete.of(sibling(object, annotation(object, 'target') ?? `${name}-child`));
      if (given === undefined) return Outcome.of(del);
      if (!PROPAGATIONS.includes(given as Propagation)) {
        throw new KubewasmError(`annotation ${P}propagation: ${JSON.stringify(given)} is not Background, Foreground or Orphan`);
      }
      return Outcome.of(del.propagation(given as Propagation));
    }
    case 'event':
      return Outcome.of(eventAbout(object, settings));
    case 'apply-and-event':
      return Outcome.of(applied(object), eventAbout(object, settings)).requeueAfter(settings.requeueAfterMs);
    case 'get': {
      const found = getObject('v1', 'ConfigMap', namespace, annotation(object, 'target') ?? '');
      return Outcome.of(
        annotate(
          object,
          found === undefined ? { [`${P}read`]: 'absent' } : { [`${P}read`]: 'found', [`${P}read-value`]: value(found) ?? '' },
        ),
      );
    }
    case 'get-secret': {
      const target = annotation(object, 'target') ?? name;
      try {
        getObject('v1', 'Secret', namespace, target);
      } catch (e) {
        if (!(e instanceof HostError)) throw e;
        const note = `reading Secret ${namespace ?? ''}/${target} was refused`;
        return Outcome.of(RecordEvent.warning(object.ref(), 'ReadRefused', note).action('Read'));
      }
      return Outcome.of(annotate(object, { [`${P}read`]: 'allowed' }));
    }
    case 'list': {
      const given = annotation(object, 'namespace');
      const names = listObjects('v1', 'ConfigMap', {
        namespace: given === '*' ? undefined : (given ?? namespace),
        selector: annotation(object, 'selector'),
      })
        .map((o) => `${o.namespace ?? ''}/${o.name}`)
        .sort();
      return Outcome.of(annotate(object, { [`${P}listed`]: names.join(',') }));
    }
    case 'now': {
      const t = now();
      return Outcome.of(annotate(object, { [`${P}now`]: t.rfc3339, [`${P}now-ms`]: String(t.epochMs) }));
    }
    case 'requeue': {
      const text = annotation(object, 'after-ms');
      if (text !== undefined && !/^[0-9]+$/.test(text)) {
        throw new KubewasmError(`annotation ${P}after-ms: ${JSON.stringify(text)} is not a whole number of milliseconds`);
      }
      return new Outcome().requeueAfter(text === undefined ? settings.requeueAfterMs : Number(text));
    }
    case 'fail':
      throw new KubewasmError(`asked to fail on ${namespace ?? ''}/${name}`);
    default:
      throw new KubewasmError(`unknown ${DO} ${JSON.stringify(action)}`);
  }
}

export const plugin: Plugin<Settings> = {
  describe: () =>
    new PluginInfo('conformance', '1.0.0')
      .subscribe(Subscription.of('', 'v1', 'ConfigMap').selector(DO))
      .writes('', 'ConfigMap')
      .finalizer(`${P}cleanup`, { group: '', kind: 'ConfigMap' }),
  settings: Settings,
  reconcile,
};
