"""configmap-validator: checks that every ConfigMap labelled
`kubewasm.dev/validate` carries the data keys the operator requires.

A ConfigMap missing some gets an annotation listing them (by default
`kubewasm.dev/missing-keys: owner,team`) and a Warning Event
`MissingKeys`; once they are all there, the annotation is removed and a
Normal Event `Valid` says so. Nothing is written while the annotation
already tells the truth, so an unchanged ConfigMap costs no API call.

Settings (all optional):

    {"requiredKeys": ["owner"], "annotation": "kubewasm.dev/missing-keys"}
"""

import json
import re
from dataclasses import dataclass, field
from typing import List

import kubewasm
from kubewasm import Apply, Event, Outcome, PluginInfo, RecordEvent, SettingsError, Subscription, WriteScope

SELECTOR = "kubewasm.dev/validate"
# A ConfigMap data key (Kubernetes' IsConfigMapKey).
KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")
# A qualified name with an optional DNS-subdomain prefix.
ANNOTATION = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass
class Settings:
    required_keys: List[str] = field(default_factory=lambda: ["owner"])
    annotation: str = "kubewasm.dev/missing-keys"

    def __post_init__(self) -> None:
        if not self.required_keys:
            raise SettingsError("requiredKeys", "must name at least one key")
        for i, key in enumerate(self.required_keys):
            if not KEY.fullmatch(key):
                raise SettingsError(f"requiredKeys[{i}]", f"{json.dumps(key)} is not a valid ConfigMap key")
        if not ANNOTATION.fullmatch(self.annotation):
            raise SettingsError("annotation", f"{json.dumps(self.annotation)} is not a valid annotation name")


class Validator:
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("configmap-validator", "0.1.0")
            .subscribe(Subscription("", "v1", "ConfigMap").selector(SELECTOR))
            .writes(WriteScope("", "ConfigMap"))
        )

    def validate_settings(self, text: str) -> None:
        kubewasm.parse_settings(text, Settings)

    def reconcile(self, event: Event) -> Outcome:
        cm = event.object
        if event.is_deleted or cm.is_being_deleted:
            return Outcome()
        settings = kubewasm.settings(Settings)
        present = set(cm.get("data") or {}) | set(cm.get("binaryData") or {})
        missing = sorted(set(settings.required_keys) - present)
        said = cm.annotation(settings.annotation)
        ref = cm.object_ref()

        if missing:
            listed = ",".join(missing)
            if said == listed:
                return Outcome()
            kubewasm.warn("required keys missing", keys=listed)
            note = f"ConfigMap {cm.namespace}/{cm.name} is missing required keys: {', '.join(missing)}"
            return Outcome(
                Apply.fields(ref, {"metadata": {"annotations": {settings.annotation: listed}}}),
                RecordEvent.warning(ref, "MissingKeys", note).action("Validate"),
            )
        if said is None:
            return Outcome()
        # Applying none of the fields this plugin owned removes its annotation.
        kubewasm.info("required keys present again")
        note = f"ConfigMap {cm.namespace}/{cm.name} has every required key"
        return Outcome(Apply.fields(ref, {}), RecordEvent.normal(ref, "Valid", note).action("Validate"))


plugin = Validator()
Reconciler = kubewasm.export(plugin)
