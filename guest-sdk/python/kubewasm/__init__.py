"""Write kubewasm reconcile plugins in Python.

A plugin is an object (a class instance or a module) with `describe()`
returning a `PluginInfo` and `reconcile(event)` returning an `Outcome`;
raising an exception fails the reconcile with its message. The entry
module of the component binds `Reconciler = kubewasm.export(plugin)`.

    import kubewasm
    from kubewasm import Apply, Event, Outcome, PluginInfo, Subscription, WriteScope

    class Stamp:
        def describe(self):
            return (PluginInfo("stamp", "0.1.0")
                    .subscribe(Subscription("", "v1", "ConfigMap"))
                    .writes(WriteScope("", "ConfigMap")))

        def reconcile(self, event: Event) -> Outcome:
            if event.is_deleted or event.object.label("stamped") == "yes":
                return Outcome()
            labels = {"metadata": {"labels": {"stamped": "yes"}}}
            return Outcome(Apply.fields(event.object.object_ref(), labels))

    Reconciler = kubewasm.export(Stamp())
"""

from .conditions import Condition, Status, StatusUpdate
from .errors import Error, HostError, SettingsError
from .export import export
from .host import (
    Level,
    Timestamp,
    debug,
    error,
    get,
    get_ref,
    info,
    list_objects,
    list_owned,
    log,
    now,
    raw_settings,
    trace,
    warn,
)
from .intents import Apply, Create, Delete, Intent, JsonPatch, Outcome, Patch, Propagation, RecordEvent, Severity
from .object import Object, ObjectRef, escape_pointer, get_path
from .owner import OwnerReference
from .plugin import (
    Event,
    EventType,
    Finalizer,
    GroupKind,
    KindRef,
    MappedWatch,
    MapRule,
    PluginInfo,
    ResourceKind,
    Subscription,
    WriteScope,
)
from .settings import parse_settings, settings

__version__ = "0.2.0"

__all__ = [
    "Apply", "Condition", "Create", "Delete", "Error", "Event", "EventType", "Finalizer", "GroupKind",
    "HostError", "Intent", "JsonPatch", "KindRef", "Level", "MapRule", "MappedWatch", "Object",
    "ObjectRef", "Outcome", "OwnerReference", "Patch", "PluginInfo", "Propagation", "RecordEvent",
    "ResourceKind", "SettingsError", "Severity", "Status", "StatusUpdate", "Subscription", "Timestamp",
    "WriteScope", "debug", "error", "escape_pointer", "export", "get", "get_path", "get_ref", "info",
    "list_objects", "list_owned", "log", "now", "parse_settings", "raw_settings", "settings", "trace", "warn",
]
