"""What the host offers a plugin: logging, its settings, cache reads and the
clock. Inside a component these call the WIT imports; in native tests a
`kubewasm.testing.FakeHost` stands in (`FakeHost(...).install()`)."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional, Protocol, Tuple

from .errors import Error, HostError
from .object import Object, ObjectRef, sort_key


class Level(enum.Enum):
    TRACE = "trace"
    DEBUG = "debug"
    INFO = "info"
    WARN = "warn"
    ERROR = "error"


@dataclass(frozen=True)
class Timestamp:
    """One instant: milliseconds since the Unix epoch and RFC 3339 in UTC with
    second precision (`2026-12-04T03:15:00Z`, the form of `lastTransitionTime`)."""

    epoch_ms: int
    rfc3339: str

    @classmethod
    def from_epoch_ms(cls, epoch_ms: int) -> "Timestamp":
        when = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=epoch_ms)
        return cls(epoch_ms, when.strftime("%Y-%m-%dT%H:%M:%SZ"))

    @classmethod
    def parse(cls, text: str) -> "Timestamp":
        """Parses RFC 3339 (`2026-12-04T03:15:00Z`, offsets and fractions allowed)."""
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text.strip())
        if not m:
            raise Error(f"{text!r} is not an RFC 3339 time")
        zone = "+00:00" if m.group(3) == "Z" else m.group(3)
        when = datetime.fromisoformat(m.group(1) + zone)
        ms = int(float("0" + (m.group(2) or ".0")) * 1000)
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        return cls.from_epoch_ms((when - epoch) // timedelta(milliseconds=1) + ms)

    def plus(self, seconds: float) -> "Timestamp":
        return Timestamp.from_epoch_ms(self.epoch_ms + round(seconds * 1000))

    def since(self, earlier: "Timestamp") -> float:
        """Seconds from `earlier` to this instant (never negative)."""
        return max(0, self.epoch_ms - earlier.epoch_ms) / 1000


class Backend(Protocol):
    """The host functions: the WIT imports in a component, a fake in tests."""

    def log(self, level: Level, message: str, fields: List[Tuple[str, str]]) -> None: ...
    def settings(self) -> str: ...
    def get_object(self, api_version: str, kind: str, namespace: Optional[str], name: str) -> Optional[str]: ...
    def list_objects(
        self, api_version: str, kind: str, namespace: Optional[str], label_selector: Optional[str]
    ) -> List[str]: ...
    def now(self) -> Timestamp: ...


class _NoHost:
    def _missing(self, *_: Any) -> Any:
        raise Error(
            "no kubewasm host: inside a component the SDK calls the WIT imports; "
            "in native tests install a kubewasm.testing.FakeHost first"
        )

    log = settings = get_object = list_objects = now = _missing


_backend: Backend = _NoHost()


def install(backend: Backend) -> None:
    """Routes the SDK's host calls to `backend` (the component or a fake)."""
    global _backend
    _backend = backend


def current() -> Backend:
    return _backend


# --- logging -------------------------------------------------------------


def log(level: Level, message: str, **fields: Any) -> None:
    """A structured log record; the host adds the plugin and the object.
    Field values are turned into strings (`str()`)."""
    _backend.log(level, message, [(k, str(v)) for k, v in fields.items()])


def trace(message: str, **fields: Any) -> None:
    log(Level.TRACE, message, **fields)


def debug(message: str, **fields: Any) -> None:
    log(Level.DEBUG, message, **fields)


def info(message: str, **fields: Any) -> None:
    log(Level.INFO, message, **fields)


def warn(message: str, **fields: Any) -> None:
    log(Level.WARN, message, **fields)


def error(message: str, **fields: Any) -> None:
    log(Level.ERROR, message, **fields)


# --- settings and clock --------------------------------------------------


def raw_settings() -> str:
    """The operator's settings document as JSON text (`{}` if none)."""
    return _backend.settings()


def now() -> Timestamp:
    """The host's clock; the same instant for every call in one reconcile."""
    return _backend.now()


# --- cache reads ---------------------------------------------------------


def get(api_version: str, kind: str, namespace: Optional[str], name: str) -> Optional[Object]:
    """One object from the host's cache, or None if it does not exist. The
    kind must be one the plugin subscribes to, owns or watches: otherwise
    the host refuses and this raises `HostError`."""
    text = _backend.get_object(api_version, kind, namespace, name)
    return None if text is None else Object.parse(text)


def get_ref(target: ObjectRef) -> Optional[Object]:
    return get(target.api_version, target.kind, target.namespace, target.name)


def list_objects(
    api_version: str, kind: str, namespace: Optional[str] = None, selector: Optional[str] = None
) -> List[Object]:
    """Objects of a kind from the cache, in one namespace (None: all) and
    matching a label selector (`tier=web,env in (a,b),!legacy`)."""
    return [Object.parse(t) for t in _backend.list_objects(api_version, kind, namespace, selector)]


def list_owned(api_version: str, kind: str, owner: Object) -> List[Object]:
    """The children of `owner` of one kind: objects in its namespace whose
    controller reference carries its uid, sorted by namespace and name.
    Declare the kind in `owns` so the host caches it."""
    if not owner.uid:
        raise Error(f"{owner.object_ref()} has no metadata.uid to find its children by")
    children = [c for c in list_objects(api_version, kind, owner.namespace) if c.is_controlled_by(owner)]
    return sorted(children, key=sort_key)


__all__ = [
    "Level",
    "Timestamp",
    "HostError",
    "install",
    "log",
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "raw_settings",
    "now",
    "get",
    "get_ref",
    "list_objects",
    "list_owned",
]
