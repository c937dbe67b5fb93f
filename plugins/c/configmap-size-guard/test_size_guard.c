/* Native tests of configmap-size-guard with the SDK's fake host; the
 * fixtures/ cases run against the component through `kubewasm test`. */
#include "kubewasm.h"
#include "kubewasm_testing.h"

#define CONFIGMAP(META, DATA)                                                                  \
    "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"web\","     \
    " \"namespace\": \"shop\"" META "}, " DATA "}"

static void annotates_the_size_once(void) {
    kw_fake_reset();
    const char *error;
    const kw_json *first = kw_test_reconcile(KW_APPLIED, CONFIGMAP("", "\"data\": {\"a\": \"12345\"}"), &error);
    KW_EXPECT_JSON(kw_json_path(first, "intents[0].object.metadata"),
                   "{\"name\": \"web\", \"namespace\": \"shop\","
                   " \"annotations\": {\"size-guard.kubewasm.dev/bytes\": \"5\"}}");
    const kw_json *again = kw_test_reconcile(
        KW_RESYNC,
        CONFIGMAP(", \"annotations\": {\"size-guard.kubewasm.dev/bytes\": \"5\"}", "\"data\": {\"a\": \"12345\"}"),
        &error);
    KW_EXPECT_JSON(again, "{\"intents\": [], \"requeueAfterMs\": null}");
    KW_EXPECT_JSON(kw_fake_logs(), "[]");
}

static void warns_once_when_oversize(void) {
    kw_fake_reset();
    kw_fake_settings("{\"maxBytes\": 4}");
    const char *error;
    const kw_json *outcome = kw_test_reconcile(KW_APPLIED, CONFIGMAP("", "\"binaryData\": {\"b\": \"aGVsbG8=\"}"), &error);
    KW_EXPECT_JSON(kw_json_path(outcome, "intents[0].object.metadata.labels"),
                   "{\"size-guard.kubewasm.dev/oversize\": \"true\"}");
    KW_EXPECT_JSON(kw_json_path(outcome, "intents[1].note"), "\"ConfigMap holds 5 bytes, over the limit of 4\"");
    KW_EXPECT_JSON(kw_json_path(kw_fake_logs(), "[0].fields"), "{\"name\": \"web\", \"bytes\": \"5\"}");
    /* Labelled already but the size changed: re-annotate, no second Event. */
    const kw_json *grown = kw_test_reconcile(
        KW_APPLIED,
        CONFIGMAP(", \"labels\": {\"size-guard.kubewasm.dev/oversize\": \"true\"}", "\"data\": {\"a\": \"123456\"}"),
        &error);
    KW_EXPECT(kw_json_len(kw_json_get(grown, "intents")) == 1);
}

static void settings_name_the_field(void) {
    KW_EXPECT_STR(kw_test_validate_settings("{\"maxBytes\": \"1Mi\"}"),
                  "settings.maxBytes: must be a whole number from 1 to 1048576");
    KW_EXPECT_STR(kw_test_validate_settings("{\"maxbytes\": 5}"), "settings.maxbytes: unknown field (known: maxBytes)");
    KW_EXPECT_STR(kw_test_validate_settings("{\"maxBytes\": 1048576}"), NULL);
}

int main(void) {
    annotates_the_size_once();
    warns_once_when_oversize();
    settings_name_the_field();
    return kw_test_summary();
}
