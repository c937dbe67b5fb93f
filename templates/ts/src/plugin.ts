// {{name}}: labels every ConfigMap labelled `hello=please` with
// `greeted=<greeting>` and records an Event saying so. The logic has no host
// imports, so Node tests can run it with a FakeHost (test/plugin.test.ts).

import { Apply, info, Outcome, PluginInfo, RecordEvent, schema, Subscription, type Event, type Infer, type Plugin } from '@kubewasm/sdk';

/** The operator's settings; errors name the field (`settings.greeting: must be a string`). */
const Settings = schema.object({
  greeting: schema
    .string()
    .check((g) => (/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(g) ? undefined : `${JSON.stringify(g)} is not a valid label value`))
    .default('yes'),
});
type Settings = Infer<typeof Settings>;

export const plugin = {
  describe: () =>
    new PluginInfo('{{name}}', '0.1.0')
      .subscribe(Subscription.of('', 'v1', 'ConfigMap').selector('hello=please'))
      .writes('', 'ConfigMap'),

  settings: Settings,

  reconcile(event: Event, settings: Settings) {
    const cm = event.object;
    if (event.isDeleted || cm.isBeingDeleted || cm.label('greeted') === settings.greeting) return undefined;
    info('greeting', { name: cm.name, greeting: settings.greeting });
    return Outcome.of(
      Apply.fields(cm.ref(), { metadata: { labels: { greeted: settings.greeting } } }),
      RecordEvent.normal(cm.ref(), 'Greeted', `greeted ${cm.name}`).action('Greet'),
    );
  },
} satisfies Plugin<Settings>;
