"""The plugin natively with a fake host: `./build.sh test`."""

import os
import unittest

from kubewasm import Event
from kubewasm.testing import FakeHost, run_fixtures

import app

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


class PluginTest(unittest.TestCase):
    def test_fixtures(self):
        self.assertEqual(run_fixtures(app.plugin, FIXTURES), [])

    def test_custom_label_setting(self):
        FakeHost(settings={"label": "team.example.com/owner"}).install()
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}
        (apply,) = app.plugin.reconcile(Event.of(cm)).intents
        self.assertEqual(apply.object["metadata"]["labels"], {"team.example.com/owner": "{{name}}"})


if __name__ == "__main__":
    unittest.main()
