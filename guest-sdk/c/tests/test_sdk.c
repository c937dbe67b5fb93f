/* Unit tests of the C SDK, natively with the fake host
 * (plugins/c/tools/test.sh runs them). */
#include <stdlib.h>
#include <string.h>

#include "kubewasm.h"
#include "kubewasm_testing.h"

/* A plugin for the host-facing tests: reads ConfigMaps, owns Secrets. */
static kw_plugin_info *describe(void) {
    kw_plugin_info *info = kw_plugin_info_new("sdk-test", "0.1.0");
    kw_subscribe(info, "", "v1", "ConfigMap", "app=web", (const char *[]){"shop", NULL});
    kw_owns(info, "", "Secret", NULL);
    kw_watches(info, "apps", "Deployment", "v1", "", "ConfigMap", KW_MAP_LABEL, "app");
    kw_writes(info, "", "ConfigMap");
    return info;
}

static kw_outcome *reconcile(const kw_event *event) {
    if (event->type == KW_DELETED) return kw_fail("deleted %s", kw_name(event->object));
    return kw_outcome_new();
}

KW_PLUGIN(.describe = describe, .reconcile = reconcile);

static const char *parse_error(const char *text) {
    const char *error = NULL;
    kw_json *v = kw_json_parse(text, strlen(text), &error);
    return v ? NULL : error;
}

static void json_round_trips(void) {
    const char *text = "{\"a\":[1,-2,3.5,1e3,true,false,null],\"s\":\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}";
    kw_json *v = kw_test_json(text);
    KW_EXPECT_STR(kw_json_write(v, NULL),
                  "{\"a\":[1,-2,3.5,1000.0,true,false,null],\"s\":\"q\\\"\\\\/\\b\\f\\n\\r\\t\xc3\xa9\xf0\x9f\x98\x80\"}");
    KW_EXPECT(kw_json_equal(v, kw_test_json(kw_json_write(v, NULL))));
    KW_EXPECT_STR(kw_json_write(kw_str("\x01 tab\t"), NULL), "\"\\u0001 tab\\t\"");
    KW_EXPECT_STR(kw_json_quote("not ok"), "\"not ok\"");
    /* The last duplicate key wins; key order does not matter to equality. */
    KW_EXPECT_JSON(kw_test_json("{\"k\": 1, \"k\": 2, \"j\": 0}"), "{\"j\": 0, \"k\": 2}");
    int64_t i;
    KW_EXPECT(kw_json_int(kw_test_json("9007199254740993"), &i) && i == 9007199254740993LL);
    KW_EXPECT(kw_json_int(kw_test_json("2.0"), &i) && i == 2);
    KW_EXPECT(!kw_json_int(kw_test_json("1.5"), &i));
    KW_EXPECT(!kw_json_int(kw_test_json("1e300"), &i));
    KW_EXPECT_STR(kw_json_write(kw_number(0.1), NULL), "0.1");
    /* Input need not be NUL-terminated: only len bytes are read. */
    KW_EXPECT(kw_json_parse("12345", 2, NULL) != NULL && kw_json_int(kw_json_parse("12345", 2, NULL), &i) && i == 12);
}

static void json_refuses_what_rfc_8259_refuses(void) {
    const char *bad[] = {"", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "+1", ".5", "tru", "nul",
                         "\"unterminated", "\"\x01\"", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"",
                         "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{1:2}", "[1 2]", "1 2", "// c\n1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        KW_EXPECT(parse_error(bad[i]) != NULL);
    }
    KW_EXPECT_STR(parse_error("[1,]"), "unexpected character at byte 3");
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    deep[599] = '\0';
    KW_EXPECT_STR(parse_error("[[[[]]]]") ? "refused" : "accepted", "accepted");
    deep[299] = ']';
    KW_EXPECT(parse_error(deep) != NULL); /* 299 deep is over the limit of 256 */
}

/* Mutated documents in buffers of their exact size (no NUL after them), so
 * AddressSanitizer catches any read past the end; whatever parses must
 * write back to text that parses to an equal value. */
static void json_survives_mutated_input(void) {
    const char *seed = "{\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\n\"], \"b\": {\"c\": \"\\ud83d\\ude00\"}}";
    const char alphabet[] = "{}[]\",:\\u0123456789abcdefEe+-. \ntrnul\xc3\xa9\xff";
    size_t n = strlen(seed);
    unsigned state = 12345;
    int parsed = 0;
    for (int round = 0; round < 20000; round++) {
        char *buf = malloc(n);
        memcpy(buf, seed, n);
        size_t len = n;
        for (int edits = 1 + round % 4; edits > 0; edits--) {
            state = state * 1103515245u + 12345u;
            size_t at = (state >> 8) % len;
            state = state * 1103515245u + 12345u;
            char c = alphabet[(state >> 8) % (sizeof alphabet - 1)];
            if (round % 3 == 0) len = at + 1; /* truncate too */
            buf[at] = c;
        }
        kw_json *v = kw_json_parse(buf, len, NULL);
        if (v != NULL) {
            parsed++;
            size_t out_len;
            char *text = kw_json_write(v, &out_len);
            if (!kw_json_equal(v, kw_json_parse(text, out_len, NULL))) {
                KW_EXPECT_STR(text, "a text that parses back to the same value");
            }
        }
        free(buf);
        if (round % 1000 == 0) kw_fake_reset();
    }
    KW_EXPECT(parsed > 0);
}

static void json_builders_paths_and_merge(void) {
    kw_json *deployment = kw_test_json(
        "{\"metadata\": {\"labels\": {\"app.kubernetes.io/name\": \"web\"}},"
        " \"spec\": {\"replicas\": 3, \"containers\": [{\"image\": \"nginx\"}]}}");
    int64_t replicas;
    KW_EXPECT(kw_json_int(kw_json_path(deployment, "spec.replicas"), &replicas) && replicas == 3);
    KW_EXPECT_STR(kw_path_str(deployment, "spec.containers[0].image"), "nginx");
    KW_EXPECT_STR(kw_path_str(deployment, "spec.containers.0.image"), "nginx");
    KW_EXPECT_STR(kw_path_str(deployment, "metadata.labels[\"app.kubernetes.io/name\"]"), "web");
    KW_EXPECT(kw_json_path(deployment, "spec.containers[1].image") == NULL);
    KW_EXPECT(kw_json_path(deployment, "spec..replicas") == NULL);
    KW_EXPECT(kw_json_path(deployment, "spec.replicas.x") == NULL);
    KW_EXPECT_JSON(KW_OBJ("a", KW_ARR(kw_int(1), kw_str("x")), "b", kw_null()), "{\"a\": [1, \"x\"], \"b\": null}");
    kw_json *merged = kw_json_merge(kw_test_json("{\"a\": {\"b\": 1, \"c\": 2}, \"d\": 3}"),
                                    kw_test_json("{\"a\": {\"b\": null, \"e\": 4}, \"d\": [5]}"));
    KW_EXPECT_JSON(merged, "{\"a\": {\"c\": 2, \"e\": 4}, \"d\": [5]}");
    KW_EXPECT_STR(kw_pointer_escape("a/b~c"), "a~1b~0c");
    kw_json *o = KW_OBJ("x", kw_int(1), "y", kw_int(2));
    KW_EXPECT(kw_json_remove(o, "x") && !kw_json_remove(o, "x"));
    KW_EXPECT_JSON(o, "{\"y\": 2}");
}

static const char *const CM = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"web\","
                              " \"namespace\": \"shop\", \"uid\": \"u-1\", \"generation\": 4, \"resourceVersion\": \"9\","
                              " \"labels\": {\"app\": \"web\"}, \"annotations\": {\"note\": \"hi\"},"
                              " \"ownerReferences\": [{\"uid\": \"x\"}, {\"uid\": \"owner\", \"controller\": true}]},"
                              " \"status\": {\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\","
                              " \"reason\": \"Up\", \"message\": \"\", \"lastTransitionTime\": \"2026-01-01T00:00:00Z\","
                              " \"observedGeneration\": 4}]}}";

static void objects(void) {
    kw_json *cm = kw_test_json(CM);
    int64_t generation;
    KW_EXPECT_STR(kw_name(cm), "web");
    KW_EXPECT_STR(kw_namespace(cm), "shop");
    KW_EXPECT_STR(kw_uid(cm), "u-1");
    KW_EXPECT_STR(kw_resource_version(cm), "9");
    KW_EXPECT(kw_generation(cm, &generation) && generation == 4);
    KW_EXPECT_STR(kw_label(cm, "app"), "web");
    KW_EXPECT_STR(kw_label(cm, "missing"), NULL);
    KW_EXPECT_STR(kw_annotation(cm, "note"), "hi");
    KW_EXPECT(!kw_is_being_deleted(cm));
    KW_EXPECT_JSON(kw_ref_json(kw_ref_of(cm)),
                   "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"namespace\": \"shop\", \"name\": \"web\"}");
    KW_EXPECT_JSON(kw_controller_ref(cm), "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"name\": \"web\","
                                          " \"uid\": \"u-1\", \"controller\": true, \"blockOwnerDeletion\": true}");
    KW_EXPECT(kw_is_controlled_by(cm, kw_test_json("{\"metadata\": {\"uid\": \"owner\"}}")));
    KW_EXPECT(!kw_is_controlled_by(cm, kw_test_json("{\"metadata\": {\"uid\": \"x\"}}")));
    KW_EXPECT_STR(kw_namespace(kw_test_json("{\"metadata\": {\"name\": \"node-1\"}}")), NULL);
}

static void intents(void) {
    kw_ref web = kw_ref_make("v1", "ConfigMap", "shop", "web");
    KW_EXPECT_JSON(kw_intent_json(kw_force(kw_apply(web, KW_OBJ("data", KW_OBJ("k", kw_str("v")))), false)),
                   "{\"type\": \"apply\", \"force\": false, \"status\": false, \"object\": {\"apiVersion\": \"v1\","
                   " \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"},"
                   " \"data\": {\"k\": \"v\"}}}");
    KW_EXPECT_JSON(kw_intent_json(kw_apply_status(kw_ref_make("v1", "Node", NULL, "n1"), KW_OBJ("phase", kw_str("Up")))),
                   "{\"type\": \"apply\", \"force\": true, \"status\": true, \"object\": {\"apiVersion\": \"v1\","
                   " \"kind\": \"Node\", \"metadata\": {\"name\": \"n1\"}, \"status\": {\"phase\": \"Up\"}}}");
    KW_EXPECT_JSON(kw_intent_json(kw_precondition(kw_on_status(kw_merge_patch(web, kw_object())), "7")),
                   "{\"type\": \"merge-patch\", \"target\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\","
                   " \"namespace\": \"shop\", \"name\": \"web\"}, \"patch\": {}, \"status\": true, \"resourceVersion\": \"7\"}");
    kw_json *ops = kw_op(kw_op(kw_array(), "test", "/a", kw_int(1)), "remove", "/b", NULL);
    KW_EXPECT_JSON(kw_json_get(kw_intent_json(kw_json_patch(web, ops)), "patch"),
                   "[{\"op\": \"test\", \"path\": \"/a\", \"value\": 1}, {\"op\": \"remove\", \"path\": \"/b\"}]");
    kw_json *owner = kw_test_json(CM);
    KW_EXPECT_JSON(kw_intent_json(kw_owner(kw_create(KW_OBJ("kind", kw_str("Secret"))), kw_controller_ref(owner))),
                   "{\"type\": \"create\", \"object\": {\"kind\": \"Secret\", \"metadata\": {\"ownerReferences\":"
                   " [{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"name\": \"web\", \"uid\": \"u-1\","
                   " \"controller\": true, \"blockOwnerDeletion\": true}]}}}");
    kw_propagation policy;
    KW_EXPECT(kw_propagation_parse("Orphan", &policy) && policy == KW_ORPHAN);
    KW_EXPECT(!kw_propagation_parse("orphan", &policy));
    KW_EXPECT_JSON(kw_json_get(kw_intent_json(kw_propagate(kw_delete(web), KW_FOREGROUND)), "propagation"), "\"Foreground\"");
    KW_EXPECT_JSON(kw_intent_json(kw_record_event(web, KW_WARNING, "Broken", "it broke")),
                   "{\"type\": \"record-event\", \"regarding\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\","
                   " \"namespace\": \"shop\", \"name\": \"web\"}, \"severity\": \"Warning\", \"reason\": \"Broken\","
                   " \"note\": \"it broke\", \"action\": \"Reconcile\"}");
    kw_outcome *o = kw_requeue_after(KW_OUTCOME(kw_delete(web), NULL), 2500);
    KW_EXPECT_JSON(kw_json_get(kw_outcome_json(o), "requeueAfterMs"), "2500");
    KW_EXPECT(kw_json_len(kw_json_get(kw_outcome_json(o), "intents")) == 1);
    KW_EXPECT(kw_fail("no %s", "way") == NULL);
    KW_EXPECT_STR(kw_failure(), "no way");
}

static void conditions(void) {
    kw_fake_now(1767225600000, "2026-01-01T00:00:00Z");
    kw_json *cm = kw_test_json(CM);
    /* Ready=True again: nothing to write. */
    KW_EXPECT(kw_status_apply(kw_condition(kw_status_of(cm), "Ready", KW_TRUE, "Up", "")) == NULL);
    kw_fake_now(1767229200000, "2026-01-01T01:00:00Z");
    /* Same status, new reason: the transition time stays. */
    kw_intent *reason = kw_status_apply(kw_condition(kw_status_of(cm), "Ready", KW_TRUE, "StillUp", "ok"));
    KW_EXPECT_JSON(kw_json_path(kw_intent_json(reason), "object.status.conditions[0].lastTransitionTime"),
                   "\"2026-01-01T00:00:00Z\"");
    /* A new status: now; a field and observedGeneration. */
    kw_status *down = kw_observed_generation(kw_condition(kw_status_of(cm), "Ready", KW_FALSE, "Down", "gone"));
    KW_EXPECT_JSON(kw_json_path(kw_intent_json(kw_status_apply(down)), "object.status"),
                   "{\"observedGeneration\": 4, \"conditions\": [{\"type\": \"Ready\", \"status\": \"False\","
                   " \"reason\": \"Down\", \"message\": \"gone\", \"lastTransitionTime\": \"2026-01-01T01:00:00Z\","
                   " \"observedGeneration\": 4}]}");
    KW_EXPECT_JSON(kw_json_get(kw_condition_of(cm, "Ready"), "reason"), "\"Up\"");
    KW_EXPECT(kw_status_changed(kw_status_field(kw_status_of(cm), "phase", kw_str("Ready"))));
}

static void settings(void) {
    const char *cases[][2] = {
        {"nope", "settings: not valid JSON"},
        {"[]", "settings: must be a JSON object"},
        {"{\"zeta\": 1, \"beta\": 2}", "settings.beta: unknown field (known: keys, limit, name, strict)"},
        {"{\"name\": 1}", "settings.name: must be a string"},
        {"{\"name\": null}", "settings.name: must be a string"},
        {"{\"limit\": 0}", "settings.limit: must be a whole number from 1 to 10"},
        {"{\"limit\": 2.5}", "settings.limit: must be a whole number from 1 to 10"},
        {"{\"strict\": \"yes\"}", "settings.strict: must be true or false"},
        {"{\"keys\": [\"a\", 2]}", "settings.keys[1]: must be a string"},
        {"{\"name\": \"x\", \"limit\": 99}", "settings.name: too short"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        kw_settings *s = kw_settings_parse(cases[i][0], "name", "limit", "strict", "keys", NULL);
        const char *name = kw_settings_str(s, "name", "default");
        if (strlen(name) < 2) kw_settings_invalid(s, "name", "too short");
        kw_settings_int(s, "limit", 5, 1, 10);
        kw_settings_bool(s, "strict", false);
        kw_settings_strs(s, "keys", NULL);
        KW_EXPECT_STR(kw_settings_error(s), cases[i][1]);
    }
    kw_settings *s = kw_settings_parse("{\"limit\": 2.0, \"keys\": [\"a\", \"b\"]}", "limit", "keys", NULL);
    size_t n;
    const char **keys = kw_settings_strs(s, "keys", &n);
    KW_EXPECT(kw_settings_int(s, "limit", 5, 1, 10) == 2);
    KW_EXPECT(n == 2 && strcmp(keys[1], "b") == 0 && keys[2] == NULL);
    KW_EXPECT_STR(kw_settings_str(s, "absent", "fallback"), "fallback");
    KW_EXPECT_STR(kw_settings_error(s), NULL);
}

static void host(void) {
    kw_fake_reset();
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"a\", \"namespace\": \"shop\","
                  " \"labels\": {\"tier\": \"web\"}}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"b\", \"namespace\": \"shop\","
                  " \"labels\": {\"tier\": \"db\", \"legacy\": \"true\"}}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\", \"namespace\": \"other\"}}");
    kw_json *found, *items;
    KW_EXPECT(kw_get_object("v1", "ConfigMap", "shop", "a", &found) == NULL && found != NULL);
    KW_EXPECT(kw_get_object("v1", "ConfigMap", "other", "a", &found) == NULL && found == NULL);
    KW_EXPECT(kw_get_object("v1", "Secret", "shop", "a", &found) == NULL); /* owned: readable */
    KW_EXPECT_STR(kw_get_object("v1", "Pod", "shop", "a", &found),
                  "v1 Pod is not a kind this plugin subscribes to, owns or watches");
    KW_EXPECT(kw_get_object("apps/v1", "Deployment", "shop", "a", &found) == NULL); /* watched */
    KW_EXPECT(kw_list_objects("v1", "ConfigMap", NULL, NULL, &items) == NULL && kw_json_len(items) == 3);
    KW_EXPECT(kw_list_objects("v1", "ConfigMap", "shop", "tier in (web, db),!legacy", &items) == NULL);
    KW_EXPECT(kw_json_len(items) == 1 && strcmp(kw_name(kw_json_at(items, 0)), "a") == 0);
    KW_EXPECT(kw_selector_matches("tier!=web,legacy", kw_labels(kw_json_at(items, 0))) == false);
    KW_EXPECT(kw_selector_matches("tier notin (db), tier==web", kw_labels(kw_json_at(items, 0))));
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"z\", \"namespace\": \"shop\","
                  " \"ownerReferences\": [{\"uid\": \"u-1\", \"controller\": true}]}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"y\", \"namespace\": \"shop\","
                  " \"ownerReferences\": [{\"uid\": \"u-1\", \"controller\": true}]}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"x\", \"namespace\": \"shop\","
                  " \"ownerReferences\": [{\"uid\": \"u-1\"}]}}");
    KW_EXPECT(kw_list_owned("v1", "Secret", kw_test_json(CM), &items) == NULL && kw_json_len(items) == 2);
    KW_EXPECT_STR(kw_name(kw_json_at(items, 0)), "y");
    KW_EXPECT_STR(kw_list_owned("v1", "Secret", kw_test_json("{\"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"n\"}}"), &items),
                  "ConfigMap n has no metadata.uid to find its children by");
    KW_EXPECT(kw_get_ref(kw_ref_make("v1", "Secret", "shop", "z"), &found) == NULL && found != NULL);
    kw_fake_settings("{\"x\": 1}");
    KW_EXPECT_STR(kw_settings_text(), "{\"x\": 1}");
    KW_EXPECT(kw_now().epoch_ms == 0);
    kw_info("hello", "k", "v", "k2", NULL);
    KW_EXPECT_JSON(kw_fake_logs(), "[{\"level\": \"info\", \"message\": \"hello\", \"fields\": {\"k\": \"v\", \"k2\": \"\"}}]");
}

static void calls(void) {
    KW_EXPECT_JSON(kw_test_describe(),
                   "{\"name\": \"sdk-test\", \"version\": \"0.1.0\", \"subscriptions\": [{\"group\": \"\", \"version\": \"v1\","
                   " \"kind\": \"ConfigMap\", \"namespaces\": [\"shop\"], \"labelSelector\": \"app=web\"}],"
                   " \"writes\": [{\"group\": \"\", \"kind\": \"ConfigMap\"}],"
                   " \"owns\": [{\"group\": \"\", \"kind\": \"Secret\", \"version\": null}],"
                   " \"watches\": [{\"source\": {\"group\": \"apps\", \"kind\": \"Deployment\", \"version\": \"v1\"},"
                   " \"target\": {\"group\": \"\", \"kind\": \"ConfigMap\"}, \"rule\": {\"label\": \"app\"}}],"
                   " \"finalizer\": null}");
    KW_EXPECT_STR(kw_test_validate_settings("{}"), NULL);
    const char *error;
    KW_EXPECT_JSON(kw_test_reconcile(KW_APPLIED, CM, &error), "{\"intents\": [], \"requeueAfterMs\": null}");
    KW_EXPECT(kw_test_reconcile(KW_DELETED, CM, &error) == NULL);
    KW_EXPECT_STR(error, "deleted web");
}

int main(void) {
    kw_fake_reset();
    json_round_trips();
    json_refuses_what_rfc_8259_refuses();
    json_survives_mutated_input();
    json_builders_paths_and_merge();
    objects();
    intents();
    conditions();
    settings();
    host();
    calls();
    return kw_test_summary();
}
