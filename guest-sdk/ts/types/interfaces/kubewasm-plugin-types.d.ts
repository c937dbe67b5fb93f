declare module 'kubewasm:plugin/types@0.2.0' {
  /**
   * A kind pattern a plugin subscribes to. Each of `group`, `version` and
   * `kind` is either an exact value or `"*"` (any). The core group is `""`.
   * 
   * Examples: `{group: "apps", version: "v1", kind: "Deployment"}`,
   * `{group: "*", version: "*", kind: "*"}` (every kind the cluster serves).
   */
  export interface Subscription {
    group: string,
    version: string,
    kind: string,
    /**
     * Only objects in these namespaces; empty means every namespace.
     * Cluster-scoped objects are delivered regardless of this list.
     */
    namespaces: Array<string>,
    /**
     * A Kubernetes label selector (`app=web,tier!=cache`); none means all.
     */
    labelSelector?: string,
  }
  /**
   * A kind the plugin intends to write: `group` and `kind`, each exact or
   * `"*"`. Declaring a kind allows every intent on it (apply, patches,
   * create, delete, and the `status` subresource). Kubernetes Events about
   * an object the plugin reconciles are always allowed.
   */
  export interface WriteScope {
    group: string,
    kind: string,
  }
  /**
   * An exact kind: `group` (`""` for the core group) and `kind`, no `"*"`.
   */
  export interface GroupKind {
    group: string,
    kind: string,
  }
  /**
   * An exact kind to watch, and optionally the version to watch it at.
   */
  export interface KindRef {
    group: string,
    kind: string,
    /**
     * None: the version the cluster prefers for the kind.
     */
    version?: string,
  }
  /**
   * How a changed object of a watched kind names the objects to reconcile.
   * The host applies the rule to its cache; the plugin is not called to
   * do the mapping. "Namespace" below is the changed object's namespace,
   * or every namespace when the changed object is cluster-scoped.
   */
  export type MapRule = MapRuleFieldRef | MapRuleLabel | MapRuleSelector;
  /**
   * Every target object in the namespace whose field at this path
   * (dot-separated, e.g. `spec.configMapRef.name`) is the changed
   * object's name, or is a list of strings containing it.
   */
  export interface MapRuleFieldRef {
    tag: 'field-ref',
    val: string,
  }
  /**
   * The target object in the namespace named by the value of this
   * label on the changed object (e.g. `app.kubernetes.io/instance`).
   */
  export interface MapRuleLabel {
    tag: 'label',
    val: string,
  }
  /**
   * Every target object in the namespace that matches this label
   * selector (`tier=web`), whatever changed.
   */
  export interface MapRuleSelector {
    tag: 'selector',
    val: string,
  }
  /**
   * Changes of `source` objects reconcile `target` objects chosen by `rule`
   * (kube-rs `Controller::watches`, controller-runtime `Watches` with a
   * map function). The source's own change is not delivered; each target
   * is reconciled with a `resync` of its newest cached state. The plugin
   * may read `source` objects from the cache.
   */
  export interface MappedWatch {
    source: KindRef,
    /**
     * Must be a kind the plugin subscribes to.
     */
    target: GroupKind,
    rule: MapRule,
  }
  /**
   * A finalizer the host manages for the plugin on objects of `kinds`.
   * 
   * The host adds `name` to an object before applying the intents of the
   * first reconcile that returns any, so the object cannot disappear
   * before the plugin has cleaned up. When the object's deletion starts
   * (`metadata.deletionTimestamp` is set and the finalizer is present) the
   * plugin is called with a `finalizing` event; the host removes the
   * finalizer once that reconcile succeeds without `requeue-after` and
   * all its intents are applied. A `finalizing` reconcile that returns
   * `requeue-after` keeps the finalizer (the cleanup is not finished) and
   * is called again, still `finalizing`, after the delay. A failed
   * reconcile or intent keeps the finalizer and is retried with backoff.
   * Like every reconcile, a `finalizing` one may run more than once for
   * one deletion (an owned child's deletion or a conflict can queue it
   * again before the host sees its finalizer gone), so cleanup must be
   * idempotent: deleting what is already gone is not an error.
   * An object whose deletion started without the finalizer (the plugin
   * never wrote for it, or an operator released it) has nothing to clean
   * up: the plugin is not called for it until its `deleted` event.
   * `kubewasm release-finalizers` removes a plugin's finalizer from every
   * object, for a plugin that is gone.
   */
  export interface Finalizer {
    /**
     * A qualified name, `<dns-subdomain>/<name>`; conventionally
     * `kubewasm.dev/<plugin-name>`.
     */
    name: string,
    /**
     * Exact kinds the plugin subscribes to and declares it writes.
     */
    kinds: Array<GroupKind>,
  }
  /**
   * What a plugin says about itself. Must not depend on settings.
   */
  export interface PluginInfo {
    /**
     * DNS-label-like name, unique among loaded plugins; used in the field
     * manager (`kubewasm/<name>`), logs and metrics.
     */
    name: string,
    /**
     * Free-form version of the plugin's logic, e.g. `1.2.0`.
     */
    version: string,
    subscriptions: Array<Subscription>,
    writes: Array<WriteScope>,
    /**
     * Kinds of children the plugin owns (kube-rs `Controller::owns`):
     * a change or deletion of such an object whose controller owner
     * reference (`controller: true`) names an object of a kind the
     * plugin subscribes to reconciles that owner (a `resync` of its
     * newest cached state), not the child. The plugin may read owned
     * kinds from the cache; it still declares them in `writes` to
     * create or change them.
     */
    owns: Array<KindRef>,
    /**
     * Changes of other kinds mapped to reconciles of subscribed kinds.
     */
    watches: Array<MappedWatch>,
    /**
     * A finalizer for the host to manage, if any.
     */
    finalizer?: Finalizer,
  }
  /**
   * Why the plugin is being called.
   * # Variants
   * 
   * ## `"applied"`
   * 
   * The object was created or changed (or is seen for the first time).
   * ## `"deleted"`
   * 
   * The object was deleted; the event carries its last known state.
   * ## `"resync"`
   * 
   * The host asks for a reconcile of an unchanged object: after the
   * plugin (re)loaded, on a periodic resync, after a requested requeue,
   * or because an owned child or a mapped watch source changed.
   * ## `"finalizing"`
   * 
   * The object is being deleted and still carries the plugin's
   * finalizer: clean up, and return the intents that do it. The host
   * removes the finalizer when this reconcile succeeds without
   * `requeue-after` and its intents are applied; with `requeue-after`
   * the finalizer stays and the plugin is called again after the
   * delay. The plugin never removes the finalizer itself.
   */
  export type EventType = 'applied' | 'deleted' | 'resync' | 'finalizing';
  /**
   * A kind as the cluster serves it.
   */
  export interface ResourceKind {
    /**
     * API group; `""` for the core group.
     */
    group: string,
    version: string,
    kind: string,
    /**
     * Lower-case plural resource name, e.g. `deployments`.
     */
    plural: string,
    namespaced: boolean,
  }
  /**
   * One change delivered to `reconcile`. Reconciles are level-triggered:
   * several changes may be coalesced into one call, and `object` is always
   * the newest state the host has.
   */
  export interface Event {
    eventType: EventType,
    kind: ResourceKind,
    /**
     * The whole object as JSON.
     */
    object: string,
  }
  /**
   * A reference to one object. `api-version` is `v1` for the core group and
   * `group/version` otherwise; `namespace` is none for cluster-scoped kinds.
   */
  export interface ObjectRef {
    apiVersion: string,
    kind: string,
    namespace?: string,
    name: string,
  }
  /**
   * Server-side apply of a partial object (`apiVersion`, `kind`,
   * `metadata.name`, `metadata.namespace` and the fields the plugin owns).
   */
  export interface ApplyIntent {
    /**
     * The applied configuration as JSON.
     */
    object: string,
    /**
     * Apply to the `status` subresource instead of the main resource.
     */
    status: boolean,
    /**
     * Take ownership of fields another manager owns (`force=true`).
     * Controllers normally force.
     */
    force: boolean,
  }
  /**
   * A JSON merge patch (RFC 7386) or JSON patch (RFC 6902) on one object.
   */
  export interface PatchIntent {
    target: ObjectRef,
    /**
     * The patch document as JSON: an object for merge patches, an array
     * of operations for JSON patches (which may include `test` ops).
     */
    patch: string,
    /**
     * Patch the `status` subresource instead of the main resource.
     */
    status: boolean,
    /**
     * Precondition: only apply if the object still has this
     * `metadata.resourceVersion`; otherwise the write fails with a
     * conflict and the object is reconciled again.
     */
    resourceVersion?: string,
  }
  /**
   * Create a new object (`apiVersion`, `kind`, `metadata` required). To make
   * it a child of the reconciled object, put an owner reference in its
   * `metadata.ownerReferences`.
   */
  export interface CreateIntent {
    object: string,
  }
  /**
   * How dependents of a deleted object are treated.
   * # Variants
   * 
   * ## `"background"`
   * 
   * ## `"foreground"`
   * 
   * ## `"orphan"`
   */
  export type PropagationPolicy = 'background' | 'foreground' | 'orphan';
  export interface DeleteIntent {
    target: ObjectRef,
    /**
     * None uses the server's default for the kind.
     */
    propagation?: PropagationPolicy,
  }
  /**
   * Severity of a Kubernetes Event.
   * # Variants
   * 
   * ## `"normal"`
   * 
   * ## `"warning"`
   */
  export type EventSeverity = 'normal' | 'warning';
  /**
   * Record a Kubernetes Event (`events.k8s.io/v1`) about an object.
   */
  export interface EventIntent {
    regarding: ObjectRef,
    severity: EventSeverity,
    /**
     * Short UpperCamelCase machine-readable reason, e.g. `ChildCreated`.
     */
    reason: string,
    /**
     * Human-readable description.
     */
    note: string,
    /**
     * What was done, e.g. `Reconcile`.
     */
    action: string,
  }
  /**
   * One write the plugin wants the host to make.
   */
  export type Intent = IntentApply | IntentMergePatch | IntentJsonPatch | IntentCreate | IntentDelete | IntentRecordEvent;
  export interface IntentApply {
    tag: 'apply',
    val: ApplyIntent,
  }
  export interface IntentMergePatch {
    tag: 'merge-patch',
    val: PatchIntent,
  }
  export interface IntentJsonPatch {
    tag: 'json-patch',
    val: PatchIntent,
  }
  export interface IntentCreate {
    tag: 'create',
    val: CreateIntent,
  }
  export interface IntentDelete {
    tag: 'delete',
    val: DeleteIntent,
  }
  export interface IntentRecordEvent {
    tag: 'record-event',
    val: EventIntent,
  }
  /**
   * A successful reconcile: the writes to make, and optionally a request to
   * be called again for the same object after a delay even if it does not
   * change.
   */
  export interface Outcome {
    intents: Array<Intent>,
    requeueAfterMs?: bigint,
  }
  /**
   * A failed reconcile. The host logs the message, makes none of the
   * writes, and retries the object with exponential backoff.
   */
  export interface ReconcileError {
    message: string,
  }
  /**
   * A point in wall-clock time, in two forms of the same instant.
   */
  export interface Timestamp {
    /**
     * Milliseconds since the Unix epoch.
     */
    epochMs: bigint,
    /**
     * RFC 3339 in UTC with second precision, e.g. `2026-12-04T03:15:00Z`,
     * the form Kubernetes uses in `lastTransitionTime`.
     */
    rfc3339: string,
  }
  /**
   * Severity of a log record.
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
}
