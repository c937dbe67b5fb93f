/* The fake host of native tests: settings, a cache with the host's read
 * rules and label selectors, a clock, and recorded logs; plus a tiny
 * assertion harness. Everything lives in the SDK's arena. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/internal.h"
#include "kubewasm_testing.h"

static const char *settings_text;
static kw_json *cache;
static kw_json *logs;
static kw_timestamp clock_now;
static int checks, failures;

void kw_fake_reset(void) {
    kw_arena_reset();
    kw__call_begin();
    settings_text = "{}";
    cache = kw_array();
    logs = kw_array();
    clock_now.epoch_ms = 0;
    clock_now.rfc3339 = "1970-01-01T00:00:00Z";
}

static void ensure(void) {
    if (cache == NULL) kw_fake_reset();
}

kw_json *kw_test_json(const char *json) {
    const char *problem;
    kw_json *v = kw_json_parse(json, strlen(json), &problem);
    if (v == NULL) {
        fprintf(stderr, "kw_test_json: invalid JSON (%s): %s\n", problem, json);
        abort();
    }
    return v;
}

void kw_fake_settings(const char *json) { ensure(), settings_text = kw_strdup(json); }
void kw_fake_cache(const char *object_json) { ensure(), kw_json_push(cache, kw_test_json(object_json)); }

void kw_fake_now(int64_t epoch_ms, const char *rfc3339) {
    ensure();
    clock_now.epoch_ms = epoch_ms;
    clock_now.rfc3339 = kw_strdup(rfc3339);
    kw__call_begin(); /* kw_now reads the new time, even outside a call */
}

const kw_json *kw_fake_logs(void) { return ensure(), logs; }

/* ---- the host functions ---------------------------------------------------------- */

void kw__host_log(kw_log_level level, const char *message, const char **fields, size_t nfields) {
    static const char *const names[] = {"trace", "debug", "info", "warn", "error"};
    ensure();
    kw_json *f = kw_object();
    for (size_t i = 0; i < nfields; i++) kw_json_set(f, fields[2 * i], kw_str(fields[2 * i + 1]));
    kw_json_push(logs, KW_OBJ("level", kw_str(names[level <= KW_ERROR ? level : KW_ERROR]), "message",
                              kw_str(message), "fields", f));
}

const char *kw__host_settings(void) { return ensure(), settings_text; }
kw_timestamp kw__host_now(void) { return ensure(), clock_now; }

static bool same(const char *pattern, const char *value) {
    return strcmp(pattern, "*") == 0 || strcmp(pattern, value) == 0;
}

/* The host's read rule: a kind the plugin subscribes to, owns or watches. */
static bool readable(const char *api_version, const char *kind) {
    const char *slash = strchr(api_version, '/');
    const char *group = slash ? kw_strndup(api_version, (size_t)(slash - api_version)) : "";
    /* Not kw_call_describe: that would reset the state of the call in progress. */
    const kw_json *info = kw_plugin_info_json(kw_exported_plugin.describe());
    const char *lists[] = {"subscriptions", "owns"};
    for (size_t l = 0; l < 2; l++) {
        const kw_json *items = kw_json_get(info, lists[l]);
        for (size_t i = 0; i < kw_json_len(items); i++) {
            const kw_json *k = kw_json_at(items, i);
            if (same(kw_json_str(kw_json_get(k, "group")), group) && same(kw_json_str(kw_json_get(k, "kind")), kind))
                return true;
        }
    }
    const kw_json *watches = kw_json_get(info, "watches");
    for (size_t i = 0; i < kw_json_len(watches); i++) {
        const kw_json *source = kw_json_get(kw_json_at(watches, i), "source");
        if (strcmp(kw_json_str(kw_json_get(source, "group")), group) == 0 &&
            strcmp(kw_json_str(kw_json_get(source, "kind")), kind) == 0)
            return true;
    }
    return false;
}

static bool is_kind(const kw_json *object, const char *api_version, const char *kind) {
    const char *av = kw_json_str(kw_json_get(object, "apiVersion"));
    const char *k = kw_json_str(kw_json_get(object, "kind"));
    return av && k && strcmp(av, api_version) == 0 && strcmp(k, kind) == 0;
}

static bool same_namespace(const kw_json *object, const char *ns) {
    const char *object_ns = kw_namespace(object);
    return ns == NULL || (object_ns != NULL && strcmp(object_ns, ns) == 0);
}

bool kw__host_get(const char *api_version, const char *kind, const char *ns, const char *name, char **out,
                  size_t *out_len, char **error) {
    ensure();
    if (!readable(api_version, kind)) {
        *error = kw_sprintf("%s %s is not a kind this plugin subscribes to, owns or watches", api_version, kind);
        return false;
    }
    *out = NULL;
    for (size_t i = 0; i < kw_json_len(cache); i++) {
        const kw_json *o = kw_json_at(cache, i);
        const char *object_ns = kw_namespace(o);
        bool ns_ok = ns ? object_ns && strcmp(object_ns, ns) == 0 : object_ns == NULL;
        if (is_kind(o, api_version, kind) && ns_ok && strcmp(kw_name(o), name) == 0) {
            *out = kw_json_write(o, out_len);
        }
    }
    return true;
}

bool kw__host_list(const char *api_version, const char *kind, const char *ns, const char *selector,
                   char ***items, size_t **lens, size_t *count, char **error) {
    ensure();
    if (!readable(api_version, kind)) {
        *error = kw_sprintf("%s %s is not a kind this plugin subscribes to, owns or watches", api_version, kind);
        return false;
    }
    size_t n = kw_json_len(cache);
    *items = kw_alloc((n + 1) * sizeof **items);
    *lens = kw_alloc((n + 1) * sizeof **lens);
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const kw_json *o = kw_json_at(cache, i);
        if (is_kind(o, api_version, kind) && same_namespace(o, ns) &&
            (selector == NULL || kw_selector_matches(selector, kw_labels(o)))) {
            (*items)[*count] = kw_json_write(o, &(*lens)[*count]);
            (*count)++;
        }
    }
    return true;
}

/* ---- label selectors -------------------------------------------------------------- */

static char *trim(char *s) {
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ') s[--n] = '\0';
    return s;
}

static bool in_set(char *set, const char *value) {
    for (char *item = strtok(set, ","); item != NULL; item = strtok(NULL, ",")) {
        if (value != NULL && strcmp(trim(item), value) == 0) return true;
    }
    return false;
}

/* One requirement: key, !key, key=v, key==v, key!=v, key in (a,b), key notin (a,b). */
static bool requirement(char *r, const kw_json *labels) {
    r = trim(r);
    if (*r == '!') return kw_json_get(labels, trim(r + 1)) == NULL;
    char *op;
    if ((op = strstr(r, "!=")) != NULL) {
        *op = '\0';
        const char *v = kw_json_str(kw_json_get(labels, trim(r)));
        return v == NULL || strcmp(v, trim(op + 2)) != 0;
    }
    if ((op = strchr(r, '=')) != NULL) {
        *op = '\0';
        const char *v = kw_json_str(kw_json_get(labels, trim(r)));
        const char *want = trim(op[1] == '=' ? op + 2 : op + 1);
        return v != NULL && strcmp(v, want) == 0;
    }
    char *paren = strchr(r, '(');
    if (paren != NULL) {
        char *close = strchr(paren, ')');
        if (close) *close = '\0';
        *paren = '\0';
        bool negate = strstr(r, " notin") != NULL;
        char *space = strchr(trim(r), ' ');
        if (space) *space = '\0';
        const char *v = kw_json_str(kw_json_get(labels, trim(r)));
        bool found = in_set(paren + 1, v);
        return negate ? !found : found;
    }
    return kw_json_get(labels, r) != NULL;
}

bool kw_selector_matches(const char *selector, const kw_json *labels) {
    char *copy = kw_strdup(selector);
    char *start = copy;
    int depth = 0;
    for (char *p = copy;; p++) {
        if (*p == '(') depth++;
        if (*p == ')') depth--;
        if ((*p == ',' && depth == 0) || *p == '\0') {
            bool last = *p == '\0';
            *p = '\0';
            if (*trim(start) != '\0' && !requirement(start, labels)) return false;
            if (last) return true;
            start = p + 1;
        }
    }
}

/* ---- calling the plugin -------------------------------------------------------------- */

const kw_json *kw_test_describe(void) { return ensure(), kw_call_describe(&kw_exported_plugin); }

const char *kw_test_validate_settings(const char *json) {
    return ensure(), kw_call_validate_settings(&kw_exported_plugin, json);
}

const kw_json *kw_test_reconcile(kw_event_type type, const char *object_json, const char **error) {
    ensure();
    kw_event event = {.type = type, .object = kw_test_json(object_json)};
    const char *av = kw_json_str(kw_json_get(event.object, "apiVersion"));
    const char *slash = av ? strchr(av, '/') : NULL;
    event.kind.group = slash ? kw_strndup(av, (size_t)(slash - av)) : "";
    event.kind.version = slash ? slash + 1 : (av ? av : "");
    event.kind.kind = kw_json_str(kw_json_get(event.object, "kind"));
    event.kind.plural = "";
    event.kind.namespaced = kw_namespace(event.object) != NULL;
    return kw_call_reconcile(&kw_exported_plugin, &event, error);
}

/* ---- assertions --------------------------------------------------------------------- */

bool kw__expect(bool ok, const char *file, int line, const char *what, const char *actual, const char *expected) {
    checks++;
    if (!ok) {
        failures++;
        fprintf(stderr, "%s:%d: FAILED %s\n", file, line, what);
        if (actual != NULL || expected != NULL) {
            fprintf(stderr, "    actual:   %s\n    expected: %s\n", actual ? actual : "NULL",
                    expected ? expected : "NULL");
        }
    }
    return ok;
}

bool kw__expect_str(const char *actual, const char *expected, const char *file, int line, const char *what) {
    bool ok = (actual == NULL && expected == NULL) || (actual && expected && strcmp(actual, expected) == 0);
    return kw__expect(ok, file, line, what, actual ? kw_json_quote(actual) : NULL,
                      expected ? kw_json_quote(expected) : NULL);
}

bool kw__expect_json(const kw_json *actual, const char *expected, const char *file, int line, const char *what) {
    bool ok = actual != NULL && kw_json_equal(actual, kw_test_json(expected));
    return kw__expect(ok, file, line, what, actual ? kw_json_write(actual, NULL) : NULL, expected);
}

int kw_test_summary(void) {
    fprintf(stderr, "%d checks, %d failed\n", checks, failures);
    kw_arena_reset();
    cache = NULL;
    return failures ? 1 : 0;
}
