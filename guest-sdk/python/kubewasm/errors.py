"""The SDK's exceptions. Raising any exception from `reconcile` fails the
reconcile with its message; the host retries the object with backoff."""


class Error(Exception):
    """A failed reconcile or a refused input; the message is what the host reports."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class HostError(Error):
    """The host refused a cache read (e.g. a kind the plugin does not subscribe to)."""


class SettingsError(Error):
    """Settings the plugin refuses; the message names the field (`settings.labels[1]: ...`)."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
