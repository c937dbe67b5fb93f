"""The SDK's own tests, natively: `python3 -m unittest discover -s tests` in guest-sdk/python."""

import unittest
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import kubewasm
from kubewasm import (
    Apply,
    Condition,
    Create,
    Delete,
    Event,
    GroupKind,
    JsonPatch,
    KindRef,
    MappedWatch,
    Object,
    ObjectRef,
    Outcome,
    OwnerReference,
    Patch,
    PluginInfo,
    Propagation,
    RecordEvent,
    SettingsError,
    Status,
    StatusUpdate,
    Subscription,
    Timestamp,
)
from kubewasm.testing import FakeHost

SITE = {
    "apiVersion": "demo.kubewasm.dev/v1alpha1",
    "kind": "Website",
    "metadata": {"name": "shop", "namespace": "web", "uid": "u-1", "generation": 3, "resourceVersion": "9",
                 "labels": {"app.kubernetes.io/name": "shop"}},
    "spec": {"title": "Shop", "ports": [{"port": 80}]},
}


def child(name, uid="u-1", controller=True):
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "web",
                         "ownerReferences": [{"apiVersion": "x/v1", "kind": "Website", "name": "shop", "uid": uid,
                                              "controller": controller}]}}


class Objects(unittest.TestCase):
    def test_accessors(self):
        site = Object(SITE)
        self.assertEqual(site.object_ref(), ObjectRef("demo.kubewasm.dev/v1alpha1", "Website", "web", "shop"))
        self.assertEqual((site.uid, site.generation, site.resource_version), ("u-1", 3, "9"))
        self.assertEqual(site.label("app.kubernetes.io/name"), "shop")
        self.assertIsNone(site.annotation("missing"))
        self.assertEqual(site.get("spec.ports[0].port"), 80)
        self.assertEqual(site.get('metadata.labels["app.kubernetes.io/name"]'), "shop")
        self.assertIsNone(site.get("spec.ports[3].port"))
        self.assertIsNone(site.get("spec..title"))
        self.assertFalse(site.is_being_deleted)

    def test_owner_references(self):
        owned = Object(child("a"))
        self.assertTrue(owned.is_controlled_by(Object(SITE)))
        self.assertFalse(Object(child("b", controller=False)).is_controlled_by(Object(SITE)))
        ref = OwnerReference.controller_of(Object(SITE))
        self.assertEqual(ref.to_json(), {"apiVersion": "demo.kubewasm.dev/v1alpha1", "kind": "Website",
                                         "name": "shop", "uid": "u-1", "controller": True,
                                         "blockOwnerDeletion": True})
        with self.assertRaisesRegex(kubewasm.Error, "has no metadata.uid"):
            OwnerReference.controller_of(Object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))


class Intents(unittest.TestCase):
    def test_every_intent_in_expected_json_form(self):
        site = Object(SITE)
        ref = site.object_ref()
        outcome = Outcome(
            Apply.fields(ref, {"metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}}).with_force(False),
            Apply.status_of(ref, {"phase": "Ready"}),
            Patch.merge(ref, {"spec": {"x": 2}}).resource_version(site.resource_version),
            Patch.json(ref, JsonPatch().test("/spec/x", 1).remove("/spec/x")).on_status(),
            Create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "web"}})
            .owner(OwnerReference.controller_of(site)),
            Delete(ObjectRef("v1", "ConfigMap", "web", "c")).propagation(Propagation.ORPHAN),
            RecordEvent.warning(ref, "Broken", "it broke").action("Check"),
            requeue_after=2.5,
        )
        j = outcome.to_json()
        self.assertEqual(j["requeueAfterMs"], 2500)
        self.assertEqual([i["type"] for i in j["intents"]],
                         ["apply", "apply", "merge-patch", "json-patch", "create", "delete", "record-event"])
        self.assertEqual(j["intents"][0]["object"]["metadata"],
                         {"name": "shop", "namespace": "web", "labels": {"a": "b"}})
        self.assertFalse(j["intents"][0]["force"])
        self.assertTrue(j["intents"][1]["status"])
        self.assertEqual(j["intents"][2]["resourceVersion"], "9")
        self.assertEqual(j["intents"][3]["patch"], [{"op": "test", "path": "/spec/x", "value": 1},
                                                    {"op": "remove", "path": "/spec/x"}])
        self.assertEqual(j["intents"][4]["object"]["metadata"]["ownerReferences"][0]["uid"], "u-1")
        self.assertEqual(j["intents"][5]["propagation"], "Orphan")
        self.assertEqual(j["intents"][6]["severity"], "Warning")

    def test_not_an_intent_is_refused(self):
        with self.assertRaisesRegex(kubewasm.Error, "not an intent"):
            Outcome({"type": "apply"})


class Conditions(unittest.TestCase):
    def setUp(self):
        FakeHost(now="2026-12-04T03:15:00Z").install()

    def test_new_condition_is_stamped_with_now_and_generation(self):
        update = StatusUpdate(Object(SITE)).condition(Condition("Ready", Status.TRUE, "Up", "fine"))
        applied = update.observed_generation().apply()
        self.assertEqual(applied.object["status"], {
            "observedGeneration": 3,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Up", "message": "fine",
                            "observedGeneration": 3, "lastTransitionTime": "2026-12-04T03:15:00Z"}]})
        self.assertTrue(applied.status)

    def test_unchanged_status_writes_nothing_and_keeps_the_transition_time(self):
        site = dict(SITE, status={"observedGeneration": 3, "conditions": [
            {"type": "Ready", "status": "True", "reason": "Up", "message": "fine", "observedGeneration": 3,
             "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
        update = StatusUpdate(Object(site)).condition(Condition("Ready", Status.TRUE, "Up", "fine"))
        self.assertIsNone(update.observed_generation().apply())
        changed = StatusUpdate(Object(site)).condition(Condition("Ready", Status.TRUE, "Up", "new message"))
        self.assertEqual(changed.apply().object["status"]["conditions"][0]["lastTransitionTime"],
                         "2026-01-01T00:00:00Z")
        flipped = StatusUpdate(Object(site)).condition(Condition("Ready", Status.FALSE, "Down"))
        self.assertEqual(flipped.apply().object["status"]["conditions"][0]["lastTransitionTime"],
                         "2026-12-04T03:15:00Z")


@dataclass
class Inner:
    enabled: bool = False


@dataclass
class Settings:
    labels: List[str]
    max_items: int = 10
    ratio: Optional[float] = None
    extra: Dict[str, str] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


class SettingsParsing(unittest.TestCase):
    def test_parses_camel_case_keys_and_whole_floats(self):
        s = kubewasm.parse_settings('{"labels": ["a"], "maxItems": 2.0, "inner": {"enabled": true}}', Settings)
        self.assertEqual((s.labels, s.max_items, s.inner.enabled), (["a"], 2, True))

    def test_errors_name_the_field(self):
        cases = {
            "nope": "settings: not valid JSON",
            "[]": "settings: must be a JSON object",
            "{}": "settings.labels: missing required field",
            '{"labels": ["a", 3]}': "settings.labels[1]: must be a string",
            '{"labels": [], "maxItems": 1.5}': "settings.maxItems: must be a whole number",
            '{"labels": [], "extra": {"k": 1}}': "settings.extra.k: must be a string",
            '{"labels": [], "inner": {"enabled": "yes"}}': "settings.inner.enabled: must be true or false",
            '{"labels": [], "zeta": 1, "alpha": 2}':
                "settings.alpha: unknown field (known: extra, inner, labels, maxItems, ratio)",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                with self.assertRaises(SettingsError) as caught:
                    kubewasm.parse_settings(text, Settings)
                self.assertEqual(str(caught.exception), message)

    def test_settings_reads_the_host_document(self):
        FakeHost(settings={"labels": ["team"]}).install()
        self.assertEqual(kubewasm.settings(Settings).labels, ["team"])


class Host(unittest.TestCase):
    def test_cache_reads_respect_scope_namespace_and_selector(self):
        info = PluginInfo("sites", "1").subscribe(Subscription("demo.kubewasm.dev", "v1alpha1", "Website")) \
            .owns(KindRef("", "ConfigMap"))
        FakeHost(cache=[SITE, child("b"), child("a"), child("other", uid="u-2")], info=info).install()
        self.assertEqual([c.name for c in kubewasm.list_owned("v1", "ConfigMap", Object(SITE))], ["a", "b"])
        self.assertEqual(kubewasm.get("v1", "ConfigMap", "web", "a").name, "a")
        self.assertIsNone(kubewasm.get("v1", "ConfigMap", "web", "zzz"))
        self.assertEqual(len(kubewasm.list_objects("demo.kubewasm.dev/v1alpha1", "Website", None,
                                                   "app.kubernetes.io/name in (shop,cart)")), 1)
        self.assertEqual(kubewasm.list_objects("demo.kubewasm.dev/v1alpha1", "Website", None, "!app.kubernetes.io/name"), [])
        with self.assertRaisesRegex(kubewasm.HostError, "may not read Secret"):
            kubewasm.get("v1", "Secret", "web", "x")

    def test_logs_and_clock(self):
        host = FakeHost(now="2026-12-04T03:15:00.250Z").install()
        kubewasm.info("hello", count=3)
        self.assertEqual(host.logs, [("info", "hello", {"count": "3"})])
        self.assertEqual(kubewasm.now(), Timestamp(1796354100250, "2026-12-04T03:15:00Z"))
        self.assertEqual(Timestamp.from_epoch_ms(0).rfc3339, "1970-01-01T00:00:00Z")

    def test_describe_builders(self):
        info = (PluginInfo("pages", "0.1.0").subscribe(Subscription.all().in_namespaces("a"))
                .watches(MappedWatch.field_ref(KindRef("", "Secret"), GroupKind("x", "Y"), "spec.secretRef.name"))
                .finalizer([GroupKind("x", "Y")]))
        self.assertEqual(info.finalizer_decl.name, "kubewasm.dev/pages")
        self.assertEqual(info.subscriptions[0].namespaces, ["a"])
        self.assertEqual(Event.of(SITE).kind.plural, "websites")


if __name__ == "__main__":
    unittest.main()
