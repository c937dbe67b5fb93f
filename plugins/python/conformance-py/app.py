"""The conformance plugin in Python: the behaviour conformance/README.md
specifies, which every language implements and conformance/fixtures checks
through `kubewasm test`. Each ConfigMap says in its
`conformance.kubewasm.dev/do` label which part of the contract to exercise."""

import json
import re
from dataclasses import dataclass
from typing import Any

import kubewasm
from kubewasm import (
    Apply,
    Create,
    Delete,
    Error,
    Event,
    GroupKind,
    JsonPatch,
    Object,
    ObjectRef,
    Outcome,
    OwnerReference,
    Patch,
    PluginInfo,
    Propagation,
    RecordEvent,
    SettingsError,
    Subscription,
    WriteScope,
)

PREFIX = "conformance.kubewasm.dev/"
DO = PREFIX + "do"
FINALIZER = PREFIX + "cleanup"
MAX_REQUEUE_MS = 3_600_000


@dataclass
class Settings:
    """Parsed by the SDK (unknown fields, types); the checks the spec adds
    are refinements in `__post_init__`."""

    reason: str = "Conformance"
    requeue_after_ms: Any = 1500

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", self.reason):
            raise SettingsError("reason", f"{json.dumps(self.reason)} is not UpperCamelCase")
        ms = self.requeue_after_ms
        whole = isinstance(ms, int) or (isinstance(ms, float) and ms.is_integer())
        if isinstance(ms, bool) or not whole or not 1 <= ms <= MAX_REQUEUE_MS:
            raise SettingsError("requeueAfterMs", f"must be a whole number from 1 to {MAX_REQUEUE_MS}")
        self.requeue_after_ms = int(ms)


def annotation(obj: Object, name: str):
    return obj.annotation(PREFIX + name)


def sibling(obj: Object, name: str) -> ObjectRef:
    return ObjectRef("v1", "ConfigMap", obj.namespace, name)


def annotate(obj: Object, annotations: dict) -> Apply:
    return Apply.fields(obj.object_ref(), {"metadata": {"annotations": annotations}})


def applied(obj: Object) -> Apply:
    value = obj.get_str("data.value")
    return annotate(obj, {PREFIX + "applied": "yes" if value is None else value})


def event_about(obj: Object, settings: Settings) -> RecordEvent:
    severity = kubewasm.Severity.WARNING if annotation(obj, "severity") == "Warning" else kubewasm.Severity.NORMAL
    note = f"conformance event for {obj.name}"
    return RecordEvent(obj.object_ref(), severity, settings.reason, note).action("Test")


class Conformance:
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("conformance", "1.0.0")
            .subscribe(Subscription("", "v1", "ConfigMap").selector(DO))
            .writes(WriteScope("", "ConfigMap"))
            .finalizer([GroupKind("", "ConfigMap")], name=FINALIZER)
        )

    def validate_settings(self, text: str) -> None:
        kubewasm.parse_settings(text, Settings)

    def reconcile(self, event: Event) -> Outcome:
        settings = kubewasm.settings(Settings)
        obj = event.object
        action = obj.label(DO) or ""
        kubewasm.info("conformance reconcile", do=action)
        value = obj.get_str("data.value")

        if event.is_deleted:
            tombstone = ObjectRef("v1", "ConfigMap", obj.namespace, f"{obj.name}-tombstone")
            return Outcome(Apply.fields(tombstone, {"data": {"last": value or ""}}))
        if event.is_finalizing:
            child = f"{obj.name}-child"
            return Outcome(
                Delete(sibling(obj, child)).propagation(Propagation.FOREGROUND),
                RecordEvent.normal(obj.object_ref(), settings.reason, f"cleaned up {child}").action("Finalize"),
            )
        if obj.is_being_deleted:
            return Outcome()
        handler = getattr(self, "do_" + action.replace("-", "_"), None) if re.fullmatch(r"[a-z-]+", action) else None
        if handler is None:
            raise Error(f"unknown {DO} {json.dumps(action)}")
        return handler(obj, value, settings)

    def do_nothing(self, obj, value, settings):
        return Outcome()

    def do_apply(self, obj, value, settings):
        return Outcome(applied(obj))

    def do_apply_unforced(self, obj, value, settings):
        return Outcome(applied(obj).with_force(False))

    def do_apply_status(self, obj, value, settings):
        status = {"phase": "Reconciled"}
        if obj.generation is not None:
            status["observedGeneration"] = obj.generation
        return Outcome(Apply.status_of(obj.object_ref(), status))

    def do_merge_patch(self, obj, value, settings):
        patch = {"metadata": {"labels": {PREFIX + "patched": "merge"}}}
        return Outcome(Patch.merge(obj.object_ref(), patch).resource_version(obj.resource_version))

    def do_merge_patch_status(self, obj, value, settings):
        return Outcome(Patch.merge(obj.object_ref(), {"status": {"phase": "Patched"}}).on_status())

    def do_json_patch(self, obj, value, settings):
        if value is None:
            raise Error("json-patch needs data.value")
        ops = (
            JsonPatch()
            .test("/data/value", value)
            .replace("/data/value", value + "!")
            .add("/metadata/labels/" + kubewasm.escape_pointer(PREFIX + "patched"), "json")
        )
        return Outcome(Patch.json(obj.object_ref(), ops))

    def do_create(self, obj, value, settings):
        child = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{obj.name}-child", "namespace": obj.namespace, "labels": {PREFIX + "parent": obj.name}},
            "data": {"value": value or ""},
        }
        return Outcome(Create(child).owner(OwnerReference.controller_of(obj)))

    def do_delete(self, obj, value, settings):
        target = annotation(obj, "target") or f"{obj.name}-child"
        given = annotation(obj, "propagation")
        policy = None if given is None else Propagation.parse(given)
        if given is not None and policy is None:
            raise Error(
                f"annotation {PREFIX}propagation: {json.dumps(given)} is not Background, Foreground or Orphan"
            )
        return Outcome(Delete(sibling(obj, target)).propagation(policy))

    def do_event(self, obj, value, settings):
        return Outcome(event_about(obj, settings))

    def do_apply_and_event(self, obj, value, settings):
        return Outcome(applied(obj), event_about(obj, settings), requeue_after_ms=settings.requeue_after_ms)

    def do_get(self, obj, value, settings):
        found = kubewasm.get("v1", "ConfigMap", obj.namespace, annotation(obj, "target") or "")
        if found is None:
            return Outcome(annotate(obj, {PREFIX + "read": "absent"}))
        read_value = found.get_str("data.value") or ""
        return Outcome(annotate(obj, {PREFIX + "read": "found", PREFIX + "read-value": read_value}))

    def do_get_secret(self, obj, value, settings):
        target = annotation(obj, "target") or obj.name
        try:
            kubewasm.get("v1", "Secret", obj.namespace, target)
        except kubewasm.HostError:
            note = f"reading Secret {obj.namespace or ''}/{target} was refused"
            return Outcome(RecordEvent.warning(obj.object_ref(), "ReadRefused", note).action("Read"))
        return Outcome(annotate(obj, {PREFIX + "read": "allowed"}))

    def do_list(self, obj, value, settings):
        given = annotation(obj, "namespace")
        scope = None if given == "*" else (given if given is not None else obj.namespace)
        listed = kubewasm.list_objects("v1", "ConfigMap", scope, annotation(obj, "selector"))
        names = sorted(f"{o.namespace or ''}/{o.name}" for o in listed)
        return Outcome(annotate(obj, {PREFIX + "listed": ",".join(names)}))

    def do_now(self, obj, value, settings):
        now = kubewasm.now()
        return Outcome(annotate(obj, {PREFIX + "now": now.rfc3339, PREFIX + "now-ms": str(now.epoch_ms)}))

    def do_requeue(self, obj, value, settings):
        text = annotation(obj, "after-ms")
        if text is not None and not re.fullmatch(r"[0-9]+", text):
            raise Error(f"annotation {PREFIX}after-ms: {json.dumps(text)} is not a whole number of milliseconds")
        return Outcome(requeue_after_ms=settings.requeue_after_ms if text is None else int(text))

    def do_fail(self, obj, value, settings):
        raise Error(f"asked to fail on {obj.namespace or ''}/{obj.name}")


plugin = Conformance()
Reconciler = kubewasm.export(plugin)
