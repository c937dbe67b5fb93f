/* Native tests of the C conformance plugin with the SDK's fake host: a few
 * cases of conformance/fixtures, checked before the component is built
 * (`kubewasm test conformance` runs all of them against the component). */
#include "kubewasm.h"
#include "kubewasm_testing.h"

#define SUBJECT(DO, EXTRA)                                                                        \
    "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"subject\","      \
    " \"namespace\": \"conf\", \"uid\": \"u-1\", \"resourceVersion\": \"42\", \"labels\":"         \
    " {\"conformance.kubewasm.dev/do\": \"" DO "\"}" EXTRA "}, \"data\": {\"value\": \"hello\"}}"

static const char *SELF = "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"namespace\": \"conf\", \"name\": \"subject\"}";

static void settings_errors_name_the_field(void) {
    KW_EXPECT_STR(kw_test_validate_settings("{"), "settings: not valid JSON");
    KW_EXPECT_STR(kw_test_validate_settings("{\"zz\": 1, \"aa\": 2}"),
                  "settings.aa: unknown field (known: reason, requeueAfterMs)");
    KW_EXPECT_STR(kw_test_validate_settings("{\"reason\": \"not ok\"}"),
                  "settings.reason: \"not ok\" is not UpperCamelCase");
    KW_EXPECT_STR(kw_test_validate_settings("{\"requeueAfterMs\": 1.5}"),
                  "settings.requeueAfterMs: must be a whole number from 1 to 3600000");
    KW_EXPECT_STR(kw_test_validate_settings("{\"reason\": \"Custom\", \"requeueAfterMs\": 2.0}"), NULL);
}

static void apply_logs_and_annotates(void) {
    kw_fake_reset();
    const char *error;
    const kw_json *outcome = kw_test_reconcile(KW_APPLIED, SUBJECT("apply", ""), &error);
    KW_EXPECT_JSON(outcome, "{\"intents\": [{\"type\": \"apply\", \"force\": true, \"status\": false, \"object\":"
                            " {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"subject\","
                            " \"namespace\": \"conf\", \"annotations\": {\"conformance.kubewasm.dev/applied\": \"hello\"}}}}],"
                            " \"requeueAfterMs\": null}");
    KW_EXPECT_JSON(kw_fake_logs(), "[{\"level\": \"info\", \"message\": \"conformance reconcile\","
                                   " \"fields\": {\"do\": \"apply\"}}]");
}

static void apply_and_event_uses_the_settings(void) {
    kw_fake_reset();
    kw_fake_settings("{\"reason\": \"Custom\", \"requeueAfterMs\": 250}");
    const char *error;
    const kw_json *outcome = kw_test_reconcile(KW_RESYNC, SUBJECT("apply-and-event", ""), &error);
    KW_EXPECT_JSON(kw_json_get(outcome, "requeueAfterMs"), "250");
    KW_EXPECT_JSON(kw_json_at(kw_json_get(outcome, "intents"), 1),
                   kw_sprintf("{\"type\": \"record-event\", \"regarding\": %s, \"severity\": \"Normal\", \"reason\":"
                              " \"Custom\", \"note\": \"conformance event for subject\", \"action\": \"Test\"}", SELF));
}

static void list_and_refused_reads(void) {
    kw_fake_reset();
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"web-b\", \"namespace\": \"conf\","
                  " \"labels\": {\"tier\": \"web\"}}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"web-a\", \"namespace\": \"conf\","
                  " \"labels\": {\"tier\": \"web\"}}}");
    kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"db\", \"namespace\": \"conf\"}}");
    const char *error;
    const kw_json *listed = kw_test_reconcile(
        KW_APPLIED, SUBJECT("list", ", \"annotations\": {\"conformance.kubewasm.dev/selector\": \"tier=web\"}"), &error);
    KW_EXPECT_JSON(kw_json_path(listed, "intents[0].object.metadata.annotations"),
                   "{\"conformance.kubewasm.dev/listed\": \"conf/web-a,conf/web-b\"}");
    const kw_json *refused = kw_test_reconcile(KW_APPLIED, SUBJECT("get-secret", ""), &error);
    KW_EXPECT_JSON(kw_json_path(refused, "intents[0].note"), "\"reading Secret conf/subject was refused\"");
}

static void errors_and_finalizing(void) {
    kw_fake_reset();
    const char *error;
    KW_EXPECT(kw_test_reconcile(KW_APPLIED, SUBJECT("bogus", ""), &error) == NULL);
    KW_EXPECT_STR(error, "unknown conformance.kubewasm.dev/do \"bogus\"");
    KW_EXPECT(kw_test_reconcile(
                  KW_APPLIED, SUBJECT("requeue", ", \"annotations\": {\"conformance.kubewasm.dev/after-ms\": \"1s\"}"),
                  &error) == NULL);
    KW_EXPECT_STR(error, "annotation conformance.kubewasm.dev/after-ms: \"1s\" is not a whole number of milliseconds");
    const kw_json *finalizing = kw_test_reconcile(KW_FINALIZING, SUBJECT("apply", ""), &error);
    KW_EXPECT_JSON(kw_json_path(finalizing, "intents[0]"),
                   "{\"type\": \"delete\", \"target\": {\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"namespace\":"
                   " \"conf\", \"name\": \"subject-child\"}, \"propagation\": \"Foreground\"}");
    kw_fake_settings("{\"reason\": 3}");
    KW_EXPECT(kw_test_reconcile(KW_APPLIED, SUBJECT("apply", ""), &error) == NULL);
    KW_EXPECT_STR(error, "settings.reason: must be a string");
}

int main(void) {
    kw_fake_reset();
    settings_errors_name_the_field();
    apply_logs_and_annotates();
    apply_and_event_uses_the_settings();
    list_and_refused_reads();
    errors_and_finalizing();
    return kw_test_summary();
}
