"""{{name}}: a kubewasm reconcile plugin.

It labels every ConfigMap labelled `hello=please` with the `label` setting (default
`example.com/reconciled-by`) set to `{{name}}`. Change `reconcile` to do
your work: the host calls it for every change of a subscribed object and
makes the writes it returns.
"""

import re
from dataclasses import dataclass

import kubewasm
from kubewasm import Apply, Event, Outcome, PluginInfo, SettingsError, Subscription, WriteScope

# A label key: an optional DNS-subdomain prefix and a name.
LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")


@dataclass
class Settings:
    label: str = "example.com/reconciled-by"

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not LABEL_KEY.fullmatch(self.label):
            raise SettingsError("label", f"{self.label!r} is not a valid label key")


class Plugin:
    def describe(self) -> PluginInfo:
        return (
            PluginInfo("{{name}}", "0.1.0")
            .subscribe(Subscription("", "v1", "ConfigMap").selector("hello=please"))
            .writes(WriteScope("", "ConfigMap"))
        )

    def validate_settings(self, text: str) -> None:
        kubewasm.parse_settings(text, Settings)

    def reconcile(self, event: Event) -> Outcome:
        cm = event.object
        settings = kubewasm.settings(Settings)
        if event.is_deleted or cm.label(settings.label) == "{{name}}":
            return Outcome()
        return Outcome(Apply.fields(cm.object_ref(), {"metadata": {"labels": {settings.label: "{{name}}"}}}))


plugin = Plugin()
Reconciler = kubewasm.export(plugin)
