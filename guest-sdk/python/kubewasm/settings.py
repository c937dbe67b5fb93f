"""Settings documents parsed into a dataclass, with errors naming the field.

    @dataclass
    class Settings:
        required_keys: list[str] = field(default_factory=lambda: ["owner"])
        annotation: str = "kubewasm.dev/missing-keys"

    settings = kubewasm.settings(Settings)        # the host's document
    kubewasm.parse_settings('{"requiredKeys": [3]}', Settings)
    # SettingsError: settings.requiredKeys[0]: must be a string

JSON keys are the camelCase of the field names (`required_keys` is
`requiredKeys`), or `field(metadata={"key": "..."})`. Unknown keys are
refused, fields without a default are required. Types checked: `str`,
`int` (a whole float like `2.0` counts), `float`, `bool`, `list[T]`,
`dict[str, T]`, `Optional[T]`, nested dataclasses and `Any`. A dataclass
may refine the check in `__post_init__` by raising `SettingsError`; its
field is then reported under `settings.` too.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from typing import Any, Dict, Type, TypeVar, Union

from . import host
from .errors import SettingsError

T = TypeVar("T")


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def json_key(f: "dataclasses.Field[Any]") -> str:
    return f.metadata.get("key") or camel_case(f.name)


def _type_name(tp: Any) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin in (list, List):
        return "a list"
    if origin in (dict, Dict) or dataclasses.is_dataclass(tp):
        return "an object"
    return getattr(tp, "__name__", str(tp))


List = typing.List


def _convert(value: Any, tp: Any, path: str) -> Any:
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Union or (sys.version_info >= (3, 10) and origin is getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return _convert(value, others[0], path)
        for option in others:
            try:
                return _convert(value, option, path)
            except SettingsError:
                continue
        raise SettingsError(path, "must be " + " or ".join(_type_name(a) for a in others))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin in (list, List):
        if isinstance(value, list):
            item = args[0] if args else Any
            return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    elif origin in (dict, Dict):
        if isinstance(value, dict):
            item = args[1] if len(args) == 2 else Any
            return {k: _convert(v, item, f"{path}.{k}") for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, dict):
            return _dataclass(value, tp, path)
    else:
        raise TypeError(f"kubewasm settings: unsupported type {tp!r} at {path}")
    raise SettingsError(path, f"must be {_type_name(tp)}")


def _dataclass(raw: Dict[str, Any], cls: Any, path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    keys = {json_key(f): f for f in fields}
    unknown = sorted(k for k in raw if k not in keys)
    if unknown:
        raise SettingsError(f"{path}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(keys))})")
    kwargs = {}
    for key, f in keys.items():
        if key in raw:
            kwargs[f.name] = _convert(raw[key], hints.get(f.name, Any), f"{path}.{key}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{path}.{key}", "missing required field")
    try:
        return cls(**kwargs)
    except SettingsError as e:
        if e.field.startswith(path):
            raise
        raise SettingsError(f"{path}.{e.field}", e.problem) from None


def parse_settings(text: str, cls: Type[T]) -> T:
    """Parses a settings document (JSON text) into the dataclass `cls`;
    raises `SettingsError` naming the first offending field."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise SettingsError("settings", "not valid JSON") from None
    if not isinstance(raw, dict):
        raise SettingsError("settings", "must be a JSON object")
    return _dataclass(raw, cls, "settings")


def settings(cls: Type[T]) -> T:
    """The host's settings document parsed into `cls` (see `parse_settings`)."""
    return parse_settings(host.raw_settings(), cls)
