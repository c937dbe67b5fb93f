"""The conformance suite, run natively against the Python plugin (no
component): the same cases `kubewasm test conformance` runs on the build."""

import os
import unittest

from kubewasm.testing import run_fixtures

import app

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "conformance", "fixtures")


class ConformanceFixtures(unittest.TestCase):
    def test_every_case_passes_natively(self):
        self.assertEqual(run_fixtures(app.plugin, FIXTURES), [])


if __name__ == "__main__":
    unittest.main()
