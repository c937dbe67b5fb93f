/* What plugins call on the host (logging, settings, cache reads, clock) and
 * the three calls the host makes on a plugin, over the kw__host_* functions
 * that export.c (in the component) or the fake host (in native tests)
 * implement. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool have_now;
static kw_timestamp now;

void kw__call_begin(void) {
    kw__failure_clear();
    have_now = false;
}

void kw_log(kw_log_level level, const char *message, ...) {
    size_t n = 0;
    const char **fields = NULL;
    va_list args;
    va_start(args, message);
    for (const char *key = va_arg(args, const char *); key != NULL; key = va_arg(args, const char *)) {
        const char *value = va_arg(args, const char *);
        const char **more = kw_alloc((n + 2) * sizeof *more);
        if (n) memcpy(more, fields, n * sizeof *more);
        more[n] = key;
        more[n + 1] = value ? value : "";
        fields = more;
        n += 2;
    }
    va_end(args);
    kw__host_log(level, message ? message : "", fields, n / 2);
}

const char *kw_settings_text(void) { return kw__host_settings(); }

const char *kw_get_object(const char *api_version, const char *kind, const char *ns, const char *name,
                          kw_json **out) {
    char *text = NULL, *error = NULL;
    size_t len = 0;
    *out = NULL;
    if (!kw__host_get(api_version, kind, ns, name ? name : "", &text, &len, &error)) {
        return error;
    }
    if (text == NULL) {
        return NULL;
    }
    const char *problem = NULL;
    *out = kw_json_parse(text, len, &problem);
    return *out ? NULL : kw_sprintf("the host returned invalid JSON for %s %s: %s", kind, name, problem);
}

const char *kw_list_objects(const char *api_version, const char *kind, const char *ns,
                            const char *label_selector, kw_json **out) {
    char **items = NULL, *error = NULL;
    size_t *lens = NULL, count = 0;
    *out = kw_array();
    if (!kw__host_list(api_version, kind, ns, label_selector, &items, &lens, &count, &error)) {
        return error;
    }
    for (size_t i = 0; i < count; i++) {
        const char *problem = NULL;
        kw_json *object = kw_json_parse(items[i], lens[i], &problem);
        if (object == NULL) {
            return kw_sprintf("the host returned invalid JSON listing %s: %s", kind, problem);
        }
        kw_json_push(*out, object);
    }
    return NULL;
}

const char *kw_get_ref(kw_ref ref, kw_json **out) {
    return kw_get_object(ref.api_version, ref.kind, ref.ns, ref.name, out);
}

static int by_namespace_and_name(const void *a, const void *b) {
    const kw_json *x = *(const kw_json *const *)a, *y = *(const kw_json *const *)b;
    const char *xn = kw_namespace(x), *yn = kw_namespace(y);
    int c = strcmp(xn ? xn : "", yn ? yn : "");
    return c ? c : strcmp(kw_name(x), kw_name(y));
}

const char *kw_list_owned(const char *api_version, const char *kind, const kw_json *owner, kw_json **out) {
    kw_json *all;
    *out = kw_array();
    if (kw_uid(owner) == NULL) {
        return kw_sprintf("%s %s has no metadata.uid to find its children by", kw_ref_of(owner).kind, kw_name(owner));
    }
    const char *error = kw_list_objects(api_version, kind, kw_namespace(owner), NULL, &all);
    if (error != NULL) return error;
    size_t n = 0;
    kw_json **children = kw_alloc((kw_json_len(all) + 1) * sizeof *children);
    for (size_t i = 0; i < kw_json_len(all); i++) {
        if (kw_is_controlled_by(kw_json_at(all, i), owner)) children[n++] = kw_json_at(all, i);
    }
    qsort(children, n, sizeof *children, by_namespace_and_name);
    for (size_t i = 0; i < n; i++) kw_json_push(*out, children[i]);
    return NULL;
}

kw_timestamp kw_now(void) {
    if (!have_now) {
        now = kw__host_now();
        have_now = true;
    }
    return now;
}

const char *kw_event_type_name(kw_event_type type) {
    static const char *const names[] = {"applied", "deleted", "resync", "finalizing"};
    return type <= KW_FINALIZING ? names[type] : "unknown";
}

/* ---- the calls ------------------------------------------------------------------- */

const kw_json *kw_call_describe(const kw_plugin *plugin) {
    kw__call_begin();
    kw_plugin_info *info = plugin->describe ? plugin->describe() : NULL;
    if (info == NULL) {
        kw__misuse("the plugin's describe returned NULL");
    }
    return kw_plugin_info_json(info);
}

const char *kw_call_validate_settings(const kw_plugin *plugin, const char *json) {
    kw__call_begin();
    return plugin->validate_settings ? plugin->validate_settings(json) : NULL;
}

const kw_json *kw_call_reconcile(const kw_plugin *plugin, const kw_event *event, const char **error) {
    kw__call_begin();
    kw_outcome *outcome = plugin->reconcile ? plugin->reconcile(event) : NULL;
    if (outcome == NULL) {
        *error = kw_failure() ? kw_failure() : "reconcile failed";
        return NULL;
    }
    *error = NULL;
    return kw_outcome_json(outcome);
}
