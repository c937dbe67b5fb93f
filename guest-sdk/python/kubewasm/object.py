"""Kubernetes objects as the host hands them over: JSON, read with accessors.

`Object` wraps the parsed JSON of one object (a `dict`) and answers the
questions a reconcile asks: identity, labels, annotations, owner references,
and any field by a dotted path (`spec.template.spec.containers[0].image`,
`metadata.labels["app.kubernetes.io/name"]`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .errors import Error

if TYPE_CHECKING:
    from .conditions import Condition
    from .owner import OwnerReference

_MISSING = object()


def _parse_path(path: str) -> Optional[List[Any]]:
    """The segments of a dotted path (keys and int indexes), or None if malformed."""
    segments: List[Any] = []
    rest = path
    after_segment = False
    while rest:
        if rest.startswith("["):
            m = re.match(r'\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]', rest)
            if not m:
                return None
            if m.group(1) is not None:
                segments.append(int(m.group(1)))
            else:
                segments.append(json.loads('"' + m.group(2) + '"'))
            rest = rest[m.end():]
        else:
            if after_segment:
                if not rest.startswith("."):
                    return None
                rest = rest[1:]
                if rest.startswith("["):
                    continue
            end = len(rest)
            for stop in (".", "["):
                i = rest.find(stop)
                if i != -1:
                    end = min(end, i)
            key = rest[:end]
            if not key:
                return None
            segments.append(key)
            rest = rest[end:]
        after_segment = True
    return segments


def get_path(value: Any, path: str, default: Any = None) -> Any:
    """Follows a dotted `path` from `value`; `default` if a step is missing,
    has the wrong type, or the path is malformed.

    >>> get_path({"spec": {"ports": [{"port": 80}]}}, "spec.ports[0].port")
    80
    >>> get_path({"metadata": {"labels": {"a.b/c": "x"}}}, 'metadata.labels["a.b/c"]')
    'x'
    """
    segments = _parse_path(path)
    if segments is None:
        return default
    current = value
    for segment in segments:
        if isinstance(current, dict) and isinstance(segment, str):
            current = current.get(segment, _MISSING)
        elif isinstance(current, list):
            index = segment if isinstance(segment, int) else (int(segment) if segment.isdigit() else -1)
            current = current[index] if 0 <= index < len(current) else _MISSING
        else:
            return default
        if current is _MISSING:
            return default
    return current


def escape_pointer(key: str) -> str:
    """A key as one JSON Pointer (RFC 6901) segment: `~` is `~0`, `/` is `~1`.

    >>> escape_pointer("conformance.kubewasm.dev/patched")
    'conformance.kubewasm.dev~1patched'
    """
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class ObjectRef:
    """A reference to one object: `api_version` (`v1` for the core group,
    else `group/version`), `kind`, `namespace` (None when cluster-scoped), `name`."""

    api_version: str
    kind: str
    namespace: Optional[str]
    name: str

    def skeleton(self) -> Dict[str, Any]:
        """The object's identity as a partial object to apply:
        `{apiVersion, kind, metadata: {name, namespace}}`."""
        metadata: Dict[str, Any] = {"name": self.name}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": metadata}

    def to_json(self) -> Dict[str, Any]:
        return {"apiVersion": self.api_version, "kind": self.kind, "namespace": self.namespace, "name": self.name}

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace is not None else self.name
        return f"{self.kind} {where}"


class Object:
    """One Kubernetes object, parsed. `obj.value` is the underlying dict."""

    __slots__ = ("value",)

    def __init__(self, value: Dict[str, Any]):
        if not isinstance(value, dict):
            raise Error(f"an object must be a JSON object, not {type(value).__name__}")
        self.value = value

    @classmethod
    def parse(cls, text: str) -> "Object":
        """Parses JSON text; raises `Error` if it is not a JSON object."""
        try:
            value = json.loads(text)
        except ValueError as e:
            raise Error(f"object is not valid JSON: {e}") from None
        return cls(value)

    def __repr__(self) -> str:
        return f"Object({self.object_ref()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Object) and other.value == self.value

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path (see `get_path`), or `default`."""
        return get_path(self.value, path, default)

    def get_str(self, path: str) -> Optional[str]:
        """The string at a dotted path; None if absent or not a string."""
        value = self.get(path)
        return value if isinstance(value, str) else None

    def __getitem__(self, key: str) -> Any:
        return self.value[key]

    def __contains__(self, key: str) -> bool:
        return key in self.value

    @property
    def metadata(self) -> Dict[str, Any]:
        meta = self.value.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def api_version(self) -> str:
        return self.value.get("apiVersion") or ""

    @property
    def kind(self) -> str:
        return self.value.get("kind") or ""

    @property
    def name(self) -> str:
        return self.metadata.get("name") or ""

    @property
    def namespace(self) -> Optional[str]:
        ns = self.metadata.get("namespace")
        return ns if isinstance(ns, str) and ns else None

    @property
    def uid(self) -> Optional[str]:
        return self.metadata.get("uid") or None

    @property
    def resource_version(self) -> Optional[str]:
        return self.metadata.get("resourceVersion") or None

    @property
    def generation(self) -> Optional[int]:
        gen = self.metadata.get("generation")
        return gen if isinstance(gen, int) and not isinstance(gen, bool) else None

    @property
    def creation_timestamp(self) -> Optional[str]:
        return self.metadata.get("creationTimestamp") or None

    @property
    def is_being_deleted(self) -> bool:
        """Whether `metadata.deletionTimestamp` is set (the object is terminating)."""
        return bool(self.metadata.get("deletionTimestamp"))

    @property
    def labels(self) -> Dict[str, str]:
        labels = self.metadata.get("labels")
        return dict(labels) if isinstance(labels, dict) else {}

    def label(self, key: str) -> Optional[str]:
        value = self.labels.get(key)
        return value if isinstance(value, str) else None

    @property
    def annotations(self) -> Dict[str, str]:
        annotations = self.metadata.get("annotations")
        return dict(annotations) if isinstance(annotations, dict) else {}

    def annotation(self, key: str) -> Optional[str]:
        value = self.annotations.get(key)
        return value if isinstance(value, str) else None

    @property
    def finalizers(self) -> List[str]:
        finalizers = self.metadata.get("finalizers")
        return [f for f in finalizers if isinstance(f, str)] if isinstance(finalizers, list) else []

    def object_ref(self) -> ObjectRef:
        """This object's reference, for intents that target it."""
        return ObjectRef(self.api_version, self.kind, self.namespace, self.name)

    @property
    def owner_references(self) -> List["OwnerReference"]:
        from .owner import OwnerReference

        refs = self.metadata.get("ownerReferences")
        if not isinstance(refs, list):
            return []
        return [OwnerReference.from_json(r) for r in refs if isinstance(r, dict)]

    def controller(self) -> Optional["OwnerReference"]:
        """The owner reference marked `controller: true`, if any."""
        return next((r for r in self.owner_references if r.controller), None)

    def is_controlled_by(self, owner: "Object") -> bool:
        """Whether `owner` (matched by uid) is this object's controller."""
        ref = self.controller()
        return ref is not None and owner.uid is not None and ref.uid == owner.uid

    def conditions(self) -> List["Condition"]:
        """`status.conditions`, parsed; malformed entries are skipped."""
        from .conditions import Condition

        raw = self.get("status.conditions")
        if not isinstance(raw, list):
            return []
        return [c for c in (Condition.from_json(r) for r in raw) if c is not None]

    def condition(self, type_: str) -> Optional["Condition"]:
        return next((c for c in self.conditions() if c.type == type_), None)

    def to_json(self) -> str:
        return json.dumps(self.value, separators=(",", ":"))


def sort_key(obj: Object) -> Tuple[str, str]:
    """Orders objects by namespace, then name."""
    return (obj.namespace or "", obj.name)
