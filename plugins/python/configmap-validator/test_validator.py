"""The validator's logic, natively with a fake host (no component needed):
`python -m unittest` in this directory, with guest-sdk/python on PYTHONPATH."""

import os
import unittest

import kubewasm
from kubewasm import Event, EventType
from kubewasm.testing import FakeHost, run_fixtures

import app

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def config_map(data, annotations=None):
    metadata = {"name": "web", "namespace": "shop", "labels": {app.SELECTOR: "true"}}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


class Validator(unittest.TestCase):
    def test_missing_keys_are_annotated_and_reported(self):
        host = FakeHost(settings={"requiredKeys": ["owner", "team"]}).install()
        outcome = app.plugin.reconcile(Event.of(config_map({"team": "a"})))
        apply, event = outcome.intents
        self.assertEqual(apply.object["metadata"]["annotations"], {"kubewasm.dev/missing-keys": "owner"})
        self.assertEqual(event.severity, kubewasm.Severity.WARNING)
        self.assertEqual(event.reason, "MissingKeys")
        self.assertEqual(host.logs, [("warn", "required keys missing", {"keys": "owner"})])

    def test_nothing_is_written_while_the_annotation_is_right(self):
        FakeHost().install()
        cm = config_map({}, {"kubewasm.dev/missing-keys": "owner"})
        self.assertFalse(app.plugin.reconcile(Event.of(cm)))

    def test_deleted_config_maps_are_left_alone(self):
        FakeHost().install()
        self.assertFalse(app.plugin.reconcile(Event.of(config_map({}), EventType.DELETED)))

    def test_settings_errors_name_the_field(self):
        with self.assertRaisesRegex(kubewasm.SettingsError, r"^settings\.annotation: "):
            app.plugin.validate_settings('{"annotation": "no spaces allowed"}')

    def test_fixtures_pass_natively(self):
        self.assertEqual(run_fixtures(app.plugin, FIXTURES), [])


if __name__ == "__main__":
    unittest.main()
