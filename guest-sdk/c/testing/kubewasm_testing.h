/* kubewasm_testing.h - native tests of C plugins, with a fake host.
 *
 * Build a test with the host compiler (gcc or clang), the plugin's sources,
 * the SDK's sources in src/ and testing/ (not src/export.c, which needs the
 * component's bindings):
 *
 *     kw_fake_reset();
 *     kw_fake_settings("{\"reason\": \"Custom\"}");
 *     kw_fake_cache("{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", ...}");
 *     const char *error;
 *     const kw_json *outcome = kw_test_reconcile(KW_APPLIED, "{...the object...}", &error);
 *     KW_EXPECT_JSON(outcome, "{\"intents\": [], \"requeueAfterMs\": null}");
 *     return kw_test_summary();
 *
 * Reads of kinds the plugin neither subscribes to, owns nor watches are
 * refused like the host refuses them; list supports label selectors
 * (=, ==, !=, in, notin, key, !key). */
#ifndef KUBEWASM_TESTING_H
#define KUBEWASM_TESTING_H

#include "kubewasm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Forgets settings, cache, clock, logs and everything allocated. */
void kw_fake_reset(void);
void kw_fake_settings(const char *json);
/* Adds an object (JSON text) to the cache; traps on invalid JSON. */
void kw_fake_cache(const char *object_json);
void kw_fake_now(int64_t epoch_ms, const char *rfc3339);
/* [{"level": "info", "message": "...", "fields": {"k": "v"}}, ...] */
const kw_json *kw_fake_logs(void);
/* Whether labels (an object, may be NULL) match a Kubernetes label selector. */
bool kw_selector_matches(const char *selector, const kw_json *labels);

/* Calls the plugin registered with KW_PLUGIN, like the host does. */
const kw_json *kw_test_describe(void);
const char *kw_test_validate_settings(const char *json);
/* The outcome, or NULL with the failure in *error. The event's kind comes
 * from the object's apiVersion and kind. */
const kw_json *kw_test_reconcile(kw_event_type type, const char *object_json, const char **error);
/* Parses JSON text; traps (naming the problem) on invalid JSON. */
kw_json *kw_test_json(const char *json);

/* Assertions: each failure prints file, line and both values; the test
 * goes on. kw_test_summary prints the counts and returns the exit status. */
bool kw__expect(bool ok, const char *file, int line, const char *what, const char *actual,
                const char *expected);
#define KW_EXPECT(cond) kw__expect((cond), __FILE__, __LINE__, #cond, NULL, NULL)
#define KW_EXPECT_STR(actual, expected) kw__expect_str((actual), (expected), __FILE__, __LINE__, #actual)
#define KW_EXPECT_JSON(actual, expected_json) \
    kw__expect_json((actual), (expected_json), __FILE__, __LINE__, #actual)
bool kw__expect_str(const char *actual, const char *expected, const char *file, int line, const char *what);
bool kw__expect_json(const kw_json *actual, const char *expected, const char *file, int line, const char *what);
int kw_test_summary(void);

#ifdef __cplusplus
}
#endif
#endif
