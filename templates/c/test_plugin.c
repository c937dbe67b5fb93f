/* Native tests of {{name}} with the SDK's fake host: `./build.sh test`. */
#include "kubewasm.h"
#include "kubewasm_testing.h"

static const char *const CONFIGMAP =
    "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\","
    " \"metadata\": {\"name\": \"app-config\", \"namespace\": \"default\"}}";

static void labels_a_configmap_once(void) {
    kw_fake_reset();
    const char *error;
    const kw_json *outcome = kw_test_reconcile(KW_APPLIED, CONFIGMAP, &error);
    KW_EXPECT_JSON(kw_json_path(outcome, "intents[0].object.metadata.labels"),
                   "{\"example.com/reconciled-by\": \"{{name}}\"}");
    const kw_json *again = kw_test_reconcile(
        KW_APPLIED,
        "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"app-config\","
        " \"namespace\": \"default\", \"labels\": {\"example.com/reconciled-by\": \"{{name}}\"}}}",
        &error);
    KW_EXPECT_JSON(again, "{\"intents\": [], \"requeueAfterMs\": null}");
}

static void the_label_is_a_setting(void) {
    kw_fake_reset();
    kw_fake_settings("{\"label\": \"team.example.com/owner\"}");
    const char *error;
    const kw_json *outcome = kw_test_reconcile(KW_APPLIED, CONFIGMAP, &error);
    KW_EXPECT_JSON(kw_json_path(outcome, "intents[0].object.metadata.labels"),
                   "{\"team.example.com/owner\": \"{{name}}\"}");
    KW_EXPECT_STR(kw_test_validate_settings("{\"label\": 7}"), "settings.label: must be a string");
    KW_EXPECT_STR(kw_test_validate_settings("{\"label\": \"a b\"}"), "settings.label: \"a b\" is not a valid label key");
    KW_EXPECT_STR(kw_test_validate_settings("{\"lable\": \"x\"}"), "settings.lable: unknown field (known: label)");
}

int main(void) {
    labels_a_configmap_once();
    the_label_is_a_setting();
    return kw_test_summary();
}
