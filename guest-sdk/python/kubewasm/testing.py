"""Test plugins natively, without building a component.

`FakeHost` stands in for the host: settings, a cache of objects (read with
the same scope rule as the host: only kinds the plugin subscribes to, owns
or watches, when given a `PluginInfo`), a fixed clock, and the log records
the plugin wrote.

    host = FakeHost(settings={"requiredKeys": ["owner"]}, cache=[cm]).install()
    outcome = plugin.reconcile(Event.of(cm))
    assert outcome.to_json() == {...}
    assert host.logs == [("warn", "missing keys", {"keys": "owner"})]

`run_fixtures(plugin, "fixtures")` runs a fixture directory (the layout
`kubewasm test` reads) against the plugin object and returns the failures,
so the same cases pass natively and against the built component.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import host
from .errors import HostError
from .export import error_message
from .host import Level, Timestamp
from .intents import Outcome
from .object import Object
from .plugin import Event, EventType, PluginInfo, ResourceKind

ObjectLike = Union[Object, Dict[str, Any]]


def _selector_matches(selector: Optional[str], labels: Dict[str, str]) -> bool:
    """Kubernetes label selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`."""
    if not selector or not selector.strip():
        return True
    for req in re.findall(r"(?:[^,(]|\([^)]*\))+", selector):
        req = req.strip()
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", req)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            inside = m.group(1) in labels and labels[m.group(1)] in values
            if inside != (m.group(2) == "in"):
                return False
            continue
        m = re.fullmatch(r"([^!=\s]+)\s*(==|=|!=)\s*(\S*)", req)
        if m:
            equal = labels.get(m.group(1)) == m.group(3)
            if equal != (m.group(2) != "!="):
                return False
            continue
        if req.startswith("!"):
            if req[1:].strip() in labels:
                return False
        elif req not in labels:
            return False
    return True


def _wildcard(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value


class FakeHost:
    """The host's imports for native tests. Install it with `.install()`."""

    def __init__(
        self,
        settings: Union[str, Dict[str, Any], None] = None,
        cache: Iterable[ObjectLike] = (),
        now: Union[str, Timestamp, None] = None,
        info: Optional[PluginInfo] = None,
    ):
        self._settings = settings if isinstance(settings, str) else json.dumps(settings or {})
        self.cache: List[Object] = [o if isinstance(o, Object) else Object(o) for o in cache]
        if isinstance(now, str):
            now = Timestamp.parse(now)
        self.clock: Timestamp = now or Timestamp.from_epoch_ms(0)
        self.info = info
        self.logs: List[Tuple[str, str, Dict[str, str]]] = []

    def install(self) -> "FakeHost":
        host.install(self)
        return self

    # --- the host functions ---------------------------------------------

    def log(self, level: Level, message: str, fields: List[Tuple[str, str]]) -> None:
        self.logs.append((level.value, message, dict(fields)))

    def settings(self) -> str:
        return self._settings

    def now(self) -> Timestamp:
        return self.clock

    def _check_scope(self, api_version: str, kind: str) -> None:
        if self.info is None:
            return
        group = api_version.rpartition("/")[0]
        readable = [(s.group, s.kind) for s in self.info.subscriptions]
        readable += [(k.group, k.kind) for k in self.info.owned]
        readable += [(w.source.group, w.source.kind) for w in self.info.watched]
        if not any(_wildcard(g, group) and _wildcard(k, kind) for g, k in readable):
            raise HostError(
                f"plugin {self.info.name} may not read {kind} ({api_version}): "
                "it neither subscribes to, owns nor watches that kind"
            )

    def _matching(self, api_version: str, kind: str) -> List[Object]:
        return [o for o in self.cache if o.api_version == api_version and o.kind == kind]

    def get_object(self, api_version: str, kind: str, namespace: Optional[str], name: str) -> Optional[str]:
        self._check_scope(api_version, kind)
        for o in self._matching(api_version, kind):
            if o.namespace == namespace and o.name == name:
                return o.to_json()
        return None

    def list_objects(
        self, api_version: str, kind: str, namespace: Optional[str], label_selector: Optional[str]
    ) -> List[str]:
        self._check_scope(api_version, kind)
        return [
            o.to_json()
            for o in self._matching(api_version, kind)
            if (namespace is None or o.namespace == namespace) and _selector_matches(label_selector, o.labels)
        ]


# --- fixtures ----------------------------------------------------------------


def _load_yaml(path: str) -> List[Dict[str, Any]]:
    import yaml  # PyYAML: only native fixture runs need it

    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _cache(directory: str) -> List[Object]:
    if not os.path.isdir(directory):
        return []
    objects: List[Object] = []
    for name in sorted(os.listdir(directory)):
        if name.endswith((".yaml", ".yml", ".json")):
            objects += [Object(d) for d in _load_yaml(os.path.join(directory, name))]
    return objects


def run_case(plugin: Any, fixtures: str, case: str) -> Tuple[Any, Any]:
    """(expected, actual) of one fixture case, as JSON values."""
    here = os.path.join(fixtures, case)

    def pick(name: str) -> Optional[str]:
        own = _read(os.path.join(here, name))
        return own if own is not None else _read(os.path.join(fixtures, name))

    settings = pick("settings.json") or "{}"
    if not os.path.exists(os.path.join(here, "object.yaml")):
        expected_error = (_read(os.path.join(here, "expected-error.txt")) or "").strip()
        try:
            getattr(plugin, "validate_settings", lambda _: None)(settings)
        except Exception as e:
            message = error_message(e)
            return expected_error, (expected_error if expected_error in message else message)
        return expected_error, "settings were accepted"
    cache_dir = os.path.join(here, "cache") if os.path.isdir(os.path.join(here, "cache")) else os.path.join(fixtures, "cache")
    FakeHost(settings, _cache(cache_dir), (pick("now") or "").strip() or None, plugin.describe()).install()
    obj = Object(_load_yaml(os.path.join(here, "object.yaml"))[0])
    event_type = EventType((_read(os.path.join(here, "event")) or "applied").strip())
    expected = json.loads(_read(os.path.join(here, "expected.json")) or "null")
    try:
        outcome = plugin.reconcile(Event(event_type, obj, ResourceKind.guess_from(obj))) or Outcome()
        actual = outcome.to_json()
    except Exception as e:
        actual = {"error": error_message(e)}
    return expected, actual


def run_fixtures(plugin: Any, fixtures: str) -> List[str]:
    """Runs every case under `fixtures` against `plugin` natively; returns a
    line per failed case (empty if all pass)."""
    failures = []
    cases = sorted(
        d for d in os.listdir(fixtures) if os.path.isdir(os.path.join(fixtures, d)) and d != "cache"
    )
    for case in cases:
        expected, actual = run_case(plugin, fixtures, case)
        if expected is None:
            failures.append(f"{case}: no expected.json (write it with `kubewasm test --bless`, then review it)")
        elif expected != actual:
            failures.append(f"{case}: expected {json.dumps(expected)}, actual {json.dumps(actual)}")
    return failures
