"""The bridge between a plugin written with this SDK and the component's WIT
bindings, which componentize-py generates into the `wit_world` package.

A plugin's entry module ends with

    Reconciler = kubewasm.export(MyPlugin())

(or `kubewasm.export(sys.modules[__name__])` for a module of functions):
componentize-py finds the `Reconciler` class there and exports it. The
plugin object needs `describe()` and `reconcile(event)`; `validate_settings(text)`
is optional (default: accept everything). An exception raised by
`reconcile` fails the reconcile with its message; by `validate_settings`,
refuses the settings with it.
"""

from __future__ import annotations

from typing import Any, Optional

from . import host
from .errors import Error
from .host import Level, Timestamp
from .intents import Apply, Create, Delete, Outcome, Patch, RecordEvent, _dump
from .object import Object, ObjectRef
from .plugin import Event, EventType, MapRule, PluginInfo, ResourceKind


def error_message(e: BaseException) -> str:
    """The message a failed call reports: the exception's text, or its class
    name for an exception without one."""
    text = str(e)
    return text if text else type(e).__name__


class _WitHost:
    """The SDK's host backend over the component's imports."""

    def __init__(self) -> None:
        from wit_world.imports import host as wit_host  # type: ignore[import-not-found]
        from wit_world.imports import types  # type: ignore[import-not-found]

        self._host = wit_host
        self._types = types
        self._levels = {
            Level.TRACE: types.LogLevel.TRACE,
            Level.DEBUG: types.LogLevel.DEBUG,
            Level.INFO: types.LogLevel.INFO,
            Level.WARN: types.LogLevel.WARN,
            Level.ERROR: types.LogLevel.ERROR,
        }

    def log(self, level: Level, message: str, fields: Any) -> None:
        self._host.log(self._levels[level], message, list(fields))

    def settings(self) -> str:
        return self._host.settings()

    def get_object(self, api_version: str, kind: str, namespace: Optional[str], name: str) -> Optional[str]:
        from componentize_py_types import Err  # type: ignore[import-not-found]

        try:
            return self._host.get_object(api_version, kind, namespace, name)
        except Err as e:
            raise host.HostError(str(e.value)) from None

    def list_objects(self, api_version: str, kind: str, namespace: Optional[str], selector: Optional[str]) -> Any:
        from componentize_py_types import Err  # type: ignore[import-not-found]

        try:
            return self._host.list_objects(api_version, kind, namespace, selector)
        except Err as e:
            raise host.HostError(str(e.value)) from None

    def now(self) -> Timestamp:
        t = self._host.now()
        return Timestamp(t.epoch_ms, t.rfc3339)


def _wit_ref(t: Any, ref: ObjectRef) -> Any:
    return t.ObjectRef(ref.api_version, ref.kind, ref.namespace, ref.name)


def _wit_intent(t: Any, intent: Any) -> Any:
    if isinstance(intent, Apply):
        return t.Intent_Apply(t.ApplyIntent(_dump(intent.object), intent.status, intent.force))
    if isinstance(intent, Patch):
        value = t.PatchIntent(_wit_ref(t, intent.target), _dump(intent.patch), intent.status, intent.precondition)
        return t.Intent_JsonPatch(value) if intent.json_patch else t.Intent_MergePatch(value)
    if isinstance(intent, Create):
        return t.Intent_Create(t.CreateIntent(_dump(intent.object)))
    if isinstance(intent, Delete):
        policy = None if intent.policy is None else t.PropagationPolicy[intent.policy.name]
        return t.Intent_Delete(t.DeleteIntent(_wit_ref(t, intent.target), policy))
    if isinstance(intent, RecordEvent):
        severity = t.EventSeverity[intent.severity.name]
        return t.Intent_RecordEvent(
            t.EventIntent(_wit_ref(t, intent.regarding), severity, intent.reason, intent.note, intent.what)
        )
    raise Error(f"reconcile returned {intent!r}, which is not an intent")


def _wit_info(t: Any, info: PluginInfo) -> Any:
    rules = {MapRule.FIELD_REF: t.MapRule_FieldRef, MapRule.LABEL: t.MapRule_Label, MapRule.SELECTOR: t.MapRule_Selector}
    finalizer = info.finalizer_decl
    return t.PluginInfo(
        info.name,
        info.version,
        [t.Subscription(s.group, s.version, s.kind, list(s.namespaces), s.label_selector) for s in info.subscriptions],
        [t.WriteScope(w.group, w.kind) for w in info.write_scopes],
        [t.KindRef(k.group, k.kind, k.version) for k in info.owned],
        [
            t.MappedWatch(
                t.KindRef(w.source.group, w.source.kind, w.source.version),
                t.GroupKind(w.target.group, w.target.kind),
                rules[w.rule](w.argument),
            )
            for w in info.watched
        ],
        None
        if finalizer is None
        else t.Finalizer(finalizer.name, [t.GroupKind(k.group, k.kind) for k in finalizer.kinds]),
    )


def to_event(t: Any, event: Any) -> Event:
    k = event.kind
    return Event(
        EventType[event.event_type.name],
        Object.parse(event.object),
        ResourceKind(k.group, k.version, k.kind, k.plural, k.namespaced),
    )


def export(plugin: Any) -> type:
    """The class componentize-py exports for `plugin` (see the module docs).
    Bind it to the name `Reconciler` in the entry module."""
    for required in ("describe", "reconcile"):
        if not callable(getattr(plugin, required, None)):
            raise TypeError(f"kubewasm.export: the plugin has no {required}() function")

    class Reconciler:
        def __init__(self) -> None:
            host.install(_WitHost())

        def describe(self) -> Any:
            from wit_world.imports import types  # type: ignore[import-not-found]

            info = plugin.describe()
            if not isinstance(info, PluginInfo):
                raise TypeError(f"describe() returned {info!r}, not a kubewasm.PluginInfo")
            return _wit_info(types, info)

        def validate_settings(self, settings: str) -> None:
            from componentize_py_types import Err  # type: ignore[import-not-found]

            validate = getattr(plugin, "validate_settings", None)
            if validate is None:
                return
            try:
                validate(settings)
            except Exception as e:  # every failure refuses the settings with its message
                raise Err(error_message(e)) from None

        def reconcile(self, event: Any) -> Any:
            from componentize_py_types import Err  # type: ignore[import-not-found]
            from wit_world.imports import types  # type: ignore[import-not-found]

            try:
                outcome = plugin.reconcile(to_event(types, event))
                if outcome is None:
                    outcome = Outcome()
                if not isinstance(outcome, Outcome):
                    raise Error(f"reconcile returned {outcome!r}, not a kubewasm.Outcome")
                intents = [_wit_intent(types, i) for i in outcome.intents]
                return types.Outcome(intents, outcome.requeue_after_ms)
            except Exception as e:  # a raised exception is a failed reconcile
                raise Err(types.ReconcileError(error_message(e))) from None

    return Reconciler


