"""What a plugin says about itself (`describe`) and what it is called with."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Iterable, List, Optional, Union

from .object import Object


@dataclass(frozen=True)
class Subscription:
    """Objects to reconcile: `group`, `version`, `kind` each exact or `"*"`,
    optionally only in some namespaces and matching a label selector."""

    group: str
    version: str
    kind: str
    namespaces: List[str] = field(default_factory=list)
    label_selector: Optional[str] = None

    @classmethod
    def all(cls) -> "Subscription":
        return cls("*", "*", "*")

    def in_namespaces(self, *namespaces: str) -> "Subscription":
        return replace(self, namespaces=list(namespaces))

    def selector(self, label_selector: str) -> "Subscription":
        return replace(self, label_selector=label_selector)


@dataclass(frozen=True)
class WriteScope:
    """A kind the plugin writes: `group` and `kind`, each exact or `"*"`."""

    group: str
    kind: str


@dataclass(frozen=True)
class GroupKind:
    group: str
    kind: str


@dataclass(frozen=True)
class KindRef:
    """An exact kind, optionally at a version (None: the preferred one)."""

    group: str
    kind: str
    version: Optional[str] = None


class MapRule(enum.Enum):
    FIELD_REF = "field-ref"
    LABEL = "label"
    SELECTOR = "selector"


@dataclass(frozen=True)
class MappedWatch:
    """Changes of `source` objects reconcile `target` objects chosen by a rule:
    `MappedWatch.field_ref(src, tgt, "spec.configMapRef.name")`, `.label(...)`, `.selector(...)`."""

    source: KindRef
    target: GroupKind
    rule: MapRule
    argument: str

    @classmethod
    def field_ref(cls, source: KindRef, target: GroupKind, path: str) -> "MappedWatch":
        return cls(source, target, MapRule.FIELD_REF, path)

    @classmethod
    def label(cls, source: KindRef, target: GroupKind, key: str) -> "MappedWatch":
        return cls(source, target, MapRule.LABEL, key)

    @classmethod
    def selector(cls, source: KindRef, target: GroupKind, selector: str) -> "MappedWatch":
        return cls(source, target, MapRule.SELECTOR, selector)


@dataclass(frozen=True)
class Finalizer:
    """A finalizer the host manages on objects of `kinds`."""

    name: str
    kinds: List[GroupKind]


@dataclass
class PluginInfo:
    """A plugin's description. Build it with the chaining methods:

        PluginInfo("validator", "0.1.0").subscribe(Subscription("", "v1", "ConfigMap"))
            .writes(WriteScope("", "ConfigMap"))
    """

    name: str
    version: str
    subscriptions: List[Subscription] = field(default_factory=list)
    write_scopes: List[WriteScope] = field(default_factory=list)
    owned: List[KindRef] = field(default_factory=list)
    watched: List[MappedWatch] = field(default_factory=list)
    finalizer_decl: Optional[Finalizer] = None

    def subscribe(self, subscription: Subscription) -> "PluginInfo":
        self.subscriptions.append(subscription)
        return self

    def writes(self, scope: WriteScope) -> "PluginInfo":
        self.write_scopes.append(scope)
        return self

    def owns(self, kind: KindRef) -> "PluginInfo":
        """A child kind: a change of a child with a controller reference to a
        subscribed object reconciles that owner. Declare it in `writes` too to write it."""
        self.owned.append(kind)
        return self

    def watches(self, watch: MappedWatch) -> "PluginInfo":
        self.watched.append(watch)
        return self

    def finalizer(self, kinds: Iterable[GroupKind], name: Optional[str] = None) -> "PluginInfo":
        """A host-managed finalizer on `kinds`, named `kubewasm.dev/<plugin name>` by default."""
        self.finalizer_decl = Finalizer(name or f"kubewasm.dev/{self.name}", list(kinds))
        return self


class EventType(enum.Enum):
    APPLIED = "applied"
    DELETED = "deleted"
    RESYNC = "resync"
    FINALIZING = "finalizing"


@dataclass(frozen=True)
class ResourceKind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def guess_from(cls, obj: Object) -> "ResourceKind":
        """A kind from an object's `apiVersion`/`kind` (plural guessed), for tests."""
        group, _, version = obj.api_version.rpartition("/")
        kind = obj.kind
        lower = kind.lower()
        plural = lower + ("es" if lower.endswith(("s", "x", "ch", "sh")) else "s")
        if lower.endswith("y") and lower[-2:-1] not in "aeiou":
            plural = lower[:-1] + "ies"
        return cls(group, version, kind, plural, obj.namespace is not None)


@dataclass(frozen=True)
class Event:
    """One change to reconcile: why (`type`), the kind, and the newest state of the object."""

    type: EventType
    object: Object
    kind: Optional[ResourceKind] = None

    @classmethod
    def of(cls, obj: Union[Object, Dict[str, Any]], type: EventType = EventType.APPLIED) -> "Event":
        """An event for tests: `Event.of({"apiVersion": "v1", ...})`."""
        obj = obj if isinstance(obj, Object) else Object(obj)
        return cls(type, obj, ResourceKind.guess_from(obj))

    @property
    def is_deleted(self) -> bool:
        return self.type is EventType.DELETED

    @property
    def is_finalizing(self) -> bool:
        return self.type is EventType.FINALIZING
