"""Status conditions (`metav1.Condition`) and status updates that write only
when something changed, stamping `lastTransitionTime` from the host clock
only when a condition's status changes."""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from . import host
from .intents import Apply
from .object import Object


class Status(enum.Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str = ""
    observed_generation: Optional[int] = None
    last_transition_time: Optional[str] = None

    @classmethod
    def from_json(cls, raw: Any) -> Optional["Condition"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            return None
        status = next((s for s in Status if s.value == raw.get("status")), Status.UNKNOWN)
        gen = raw.get("observedGeneration")
        return cls(
            raw["type"],
            status,
            str(raw.get("reason", "")),
            str(raw.get("message", "")),
            gen if isinstance(gen, int) else None,
            raw.get("lastTransitionTime") if isinstance(raw.get("lastTransitionTime"), str) else None,
        )

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "type": self.type,
            "status": self.status.value,
            "reason": self.reason,
            "message": self.message,
        }
        if self.observed_generation is not None:
            out["observedGeneration"] = self.observed_generation
        if self.last_transition_time is not None:
            out["lastTransitionTime"] = self.last_transition_time
        return out


class StatusUpdate:
    """The status an object should have: conditions and other fields. `apply()`
    is the status `apply` intent, or None when the object's status already
    says all of it, so repeated reconciles write nothing.

        update = StatusUpdate(site).condition(Condition("Ready", Status.TRUE, "ChildReady"))
        outcome.add(update.observed_generation().apply())

    A condition's `observedGeneration` defaults to `metadata.generation`; its
    `lastTransitionTime` is kept while its status stays the same and is
    `kubewasm.now()` when it changes (the clock is read only then).
    """

    def __init__(self, obj: Object):
        self._object = obj
        self._conditions: List[Condition] = []
        self._fields: Dict[str, Any] = {}

    def condition(self, condition: Condition) -> "StatusUpdate":
        if condition.observed_generation is None:
            condition = replace(condition, observed_generation=self._object.generation)
        current = self._object.condition(condition.type)
        if current is not None and current.status == condition.status and current.last_transition_time:
            condition = replace(condition, last_transition_time=current.last_transition_time)
        else:
            condition = replace(condition, last_transition_time=host.now().rfc3339)
        self._conditions = [c for c in self._conditions if c.type != condition.type] + [condition]
        return self

    def field(self, key: str, value: Any) -> "StatusUpdate":
        self._fields[key] = copy.deepcopy(value)
        return self

    def observed_generation(self) -> "StatusUpdate":
        """Also sets `status.observedGeneration` to `metadata.generation`."""
        return self.field("observedGeneration", self._object.generation)

    @property
    def conditions(self) -> List[Condition]:
        return list(self._conditions)

    @property
    def is_changed(self) -> bool:
        status = self._object.get("status") or {}
        if any(status.get(k) != v for k, v in self._fields.items()):
            return True
        for wanted in self._conditions:
            current = self._object.condition(wanted.type)
            if current is None or current.to_json() != wanted.to_json():
                return True
        return False

    def apply(self) -> Optional[Apply]:
        if not self.is_changed:
            return None
        status = dict(self._fields)
        if self._conditions:
            status["conditions"] = [c.to_json() for c in self._conditions]
        return Apply.status_of(self._object.object_ref(), status)
