"""The writes a plugin asks the host to make, and the outcome of a reconcile.

Every intent is a small immutable value with builder methods returning a
changed copy, so they read like the Rust SDK's builders:

    Apply.fields(obj.object_ref(), {"metadata": {"labels": {"a": "b"}}})
    Patch.merge(ref, {...}).on_status().resource_version("42")
    Patch.json(ref, JsonPatch().test("/data/v", "x").replace("/data/v", "y"))
    Create(child).owner(OwnerReference.controller_of(parent))
    Delete(ref).propagation(Propagation.FOREGROUND)
    RecordEvent.warning(ref, "MissingKey", "data.owner is missing").action("Validate")
"""

from __future__ import annotations

import copy
import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Union

from .errors import Error
from .object import ObjectRef
from .owner import OwnerReference, add_owner


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Apply:
    """Server-side apply of a partial object (`apiVersion`, `kind`,
    `metadata.name`/`namespace` and the fields the plugin owns). Forced by default."""

    object: Dict[str, Any]
    status: bool = False
    force: bool = True

    @classmethod
    def fields(cls, target: ObjectRef, fields: Dict[str, Any]) -> "Apply":
        """Apply `fields` to `target`: its identity merged with `fields`
        (`fields["metadata"]` is merged into the identity's metadata)."""
        obj = target.skeleton()
        for key, value in fields.items():
            if key == "metadata" and isinstance(value, dict):
                obj["metadata"].update(copy.deepcopy(value))
            elif key not in ("apiVersion", "kind"):
                obj[key] = copy.deepcopy(value)
        return cls(obj)

    @classmethod
    def status_of(cls, target: ObjectRef, status: Dict[str, Any]) -> "Apply":
        """Apply `status` to `target`'s status subresource."""
        obj = target.skeleton()
        obj["status"] = copy.deepcopy(status)
        return cls(obj, status=True)

    def with_force(self, force: bool) -> "Apply":
        return replace(self, force=force)

    def on_status(self, status: bool = True) -> "Apply":
        return replace(self, status=status)

    def owner(self, owner: OwnerReference) -> "Apply":
        """Adds an owner reference to the applied object."""
        return replace(self, object=add_owner(copy.deepcopy(self.object), owner))

    def to_json(self) -> Dict[str, Any]:
        return {"type": "apply", "object": self.object, "status": self.status, "force": self.force}


class JsonPatch:
    """A JSON patch (RFC 6902) built op by op. Paths are JSON Pointers:
    escape keys with `escape_pointer` (`/` is `~1`)."""

    def __init__(self, ops: Optional[List[Dict[str, Any]]] = None):
        self.ops: List[Dict[str, Any]] = list(ops or [])

    def _with(self, op: Dict[str, Any]) -> "JsonPatch":
        return JsonPatch(self.ops + [op])

    def test(self, path: str, value: Any) -> "JsonPatch":
        """Precondition: the patch fails (and nothing changes) unless `path` holds `value`."""
        return self._with({"op": "test", "path": path, "value": value})

    def add(self, path: str, value: Any) -> "JsonPatch":
        return self._with({"op": "add", "path": path, "value": value})

    def replace(self, path: str, value: Any) -> "JsonPatch":
        return self._with({"op": "replace", "path": path, "value": value})

    def remove(self, path: str) -> "JsonPatch":
        return self._with({"op": "remove", "path": path})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonPatch) and other.ops == self.ops

    def __repr__(self) -> str:
        return f"JsonPatch({self.ops!r})"


@dataclass(frozen=True)
class Patch:
    """A JSON merge patch (RFC 7386) or JSON patch (RFC 6902) on one object."""

    target: ObjectRef
    patch: Union[Dict[str, Any], List[Dict[str, Any]]]
    json_patch: bool = False
    status: bool = False
    precondition: Optional[str] = None

    @classmethod
    def merge(cls, target: ObjectRef, patch: Dict[str, Any]) -> "Patch":
        if not isinstance(patch, dict):
            raise Error(f"a merge patch of {target} must be a JSON object")
        return cls(target, copy.deepcopy(patch))

    @classmethod
    def json(cls, target: ObjectRef, ops: Union[JsonPatch, List[Dict[str, Any]]]) -> "Patch":
        return cls(target, list(ops.ops if isinstance(ops, JsonPatch) else ops), json_patch=True)

    def on_status(self, status: bool = True) -> "Patch":
        """Patch the status subresource instead of the main resource."""
        return replace(self, status=status)

    def resource_version(self, resource_version: Optional[str]) -> "Patch":
        """Only apply if the object still has this `metadata.resourceVersion`
        (else a conflict, and the object is reconciled again)."""
        return replace(self, precondition=resource_version)

    def to_json(self) -> Dict[str, Any]:
        return {
            "type": "json-patch" if self.json_patch else "merge-patch",
            "target": self.target.to_json(),
            "patch": self.patch,
            "status": self.status,
            "resourceVersion": self.precondition,
        }


@dataclass(frozen=True)
class Create:
    """Create a new object (`apiVersion`, `kind`, `metadata` required)."""

    object: Dict[str, Any]

    def owner(self, owner: OwnerReference) -> "Create":
        return Create(add_owner(copy.deepcopy(self.object), owner))

    def to_json(self) -> Dict[str, Any]:
        return {"type": "create", "object": self.object}


class Propagation(enum.Enum):
    """How dependents of a deleted object are treated."""

    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"

    @classmethod
    def parse(cls, text: str) -> Optional["Propagation"]:
        """`Background`, `Foreground` or `Orphan`; None for anything else."""
        return next((p for p in cls if p.value == text), None)


@dataclass(frozen=True)
class Delete:
    """Delete one object; propagation None uses the server's default."""

    target: ObjectRef
    policy: Optional[Propagation] = None

    def propagation(self, policy: Optional[Propagation]) -> "Delete":
        return replace(self, policy=policy)

    def to_json(self) -> Dict[str, Any]:
        return {
            "type": "delete",
            "target": self.target.to_json(),
            "propagation": self.policy.value if self.policy else None,
        }


class Severity(enum.Enum):
    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class RecordEvent:
    """Record a Kubernetes Event (`events.k8s.io/v1`) about an object.
    `reason` is short UpperCamelCase; `action` defaults to `Reconcile`."""

    regarding: ObjectRef
    severity: Severity
    reason: str
    note: str
    what: str = "Reconcile"

    @classmethod
    def normal(cls, regarding: ObjectRef, reason: str, note: str) -> "RecordEvent":
        return cls(regarding, Severity.NORMAL, reason, note)

    @classmethod
    def warning(cls, regarding: ObjectRef, reason: str, note: str) -> "RecordEvent":
        return cls(regarding, Severity.WARNING, reason, note)

    def action(self, action: str) -> "RecordEvent":
        return replace(self, what=action)

    def to_json(self) -> Dict[str, Any]:
        return {
            "type": "record-event",
            "regarding": self.regarding.to_json(),
            "severity": self.severity.value,
            "reason": self.reason,
            "note": self.note,
            "action": self.what,
        }


Intent = Union[Apply, Patch, Create, Delete, RecordEvent]
INTENT_TYPES = (Apply, Patch, Create, Delete, RecordEvent)


@dataclass(init=False)
class Outcome:
    """A successful reconcile: the intents, in order, and optionally a delay
    after which to be called again (`requeue_after` in seconds, or
    `requeue_after_ms`)."""

    intents: List[Intent] = field(default_factory=list)
    requeue_after_ms: Optional[int] = None

    def __init__(
        self,
        *intents: Union[Intent, Iterable[Intent], None],
        requeue_after: Optional[float] = None,
        requeue_after_ms: Optional[int] = None,
    ):
        self.intents = []
        for item in intents:
            self.add(item)
        if requeue_after is not None:
            requeue_after_ms = round(requeue_after * 1000)
        self.requeue_after_ms = requeue_after_ms

    def add(self, intent: Union[Intent, Iterable[Intent], None]) -> "Outcome":
        """Appends an intent (or several; None is skipped); returns self."""
        if intent is None:
            return self
        if isinstance(intent, INTENT_TYPES):
            self.intents.append(intent)
        elif isinstance(intent, Iterable) and not isinstance(intent, (str, bytes, dict)):
            for item in intent:
                self.add(item)
        else:
            raise Error(f"not an intent: {intent!r}")
        return self

    def requeue(self, *, seconds: Optional[float] = None, ms: Optional[int] = None) -> "Outcome":
        """Asks to be called again after a delay; returns self."""
        self.requeue_after_ms = ms if ms is not None else round((seconds or 0) * 1000)
        return self

    def __bool__(self) -> bool:
        return bool(self.intents) or self.requeue_after_ms is not None

    def to_json(self) -> Dict[str, Any]:
        """The outcome in `kubewasm test`'s `expected.json` form."""
        return {"intents": [i.to_json() for i in self.intents], "requeueAfterMs": self.requeue_after_ms}


__all__ = [
    "Apply",
    "JsonPatch",
    "Patch",
    "Create",
    "Propagation",
    "Delete",
    "Severity",
    "RecordEvent",
    "Intent",
    "Outcome",
    "_dump",
]
