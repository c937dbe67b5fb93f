/* configmap-size-guard: the example C plugin. It annotates every ConfigMap
 * with the size of its data (`size-guard.kubewasm.dev/bytes`), and labels
 * one over the `maxBytes` setting `size-guard.kubewasm.dev/oversize: "true"`
 * with a Warning Event. The label goes away by itself once the ConfigMap
 * shrinks: the plugin stops applying it, and server-side apply removes a
 * field its manager no longer sets. */
#include <string.h>

#include "kubewasm.h"

#define PREFIX "size-guard.kubewasm.dev/"
#define BYTES PREFIX "bytes"
#define OVERSIZE PREFIX "oversize"
#define MAX_LIMIT 1048576 /* Kubernetes refuses objects over 1 MiB anyway */

typedef struct settings {
    int64_t max_bytes;
} settings;

static const char *parse_settings(const char *text, settings *out) {
    kw_settings *s = kw_settings_parse(text, "maxBytes", NULL);
    out->max_bytes = kw_settings_int(s, "maxBytes", 262144, 1, MAX_LIMIT);
    return kw_settings_error(s);
}

/* The decoded size of a base64 value (binaryData). */
static size_t base64_size(const char *value) {
    size_t n = strlen(value), padding = 0;
    while (padding < 2 && n > padding && value[n - 1 - padding] == '=') padding++;
    return n / 4 * 3 - (n % 4 == 0 ? padding : 0) + (n % 4 ? (n % 4) - 1 : 0);
}

/* Bytes held by data (as text) and binaryData (decoded). */
static size_t data_size(const kw_json *cm) {
    size_t total = 0;
    const kw_json *data = kw_json_get(cm, "data");
    for (size_t i = 0; i < kw_json_len(data); i++) {
        const char *value = kw_json_str(kw_json_value_at(data, i));
        total += value ? strlen(value) : 0;
    }
    const kw_json *binary = kw_json_get(cm, "binaryData");
    for (size_t i = 0; i < kw_json_len(binary); i++) {
        const char *value = kw_json_str(kw_json_value_at(binary, i));
        total += value ? base64_size(value) : 0;
    }
    return total;
}

static kw_outcome *reconcile(const kw_event *event) {
    settings cfg;
    const char *invalid = parse_settings(kw_settings_text(), &cfg);
    if (invalid != NULL) return kw_fail("%s", invalid);
    const kw_json *cm = event->object;
    if (event->type == KW_DELETED) return kw_outcome_new();

    size_t bytes = data_size(cm);
    bool oversize = bytes > (size_t)cfg.max_bytes;
    char *size = kw_sprintf("%zu", bytes);
    const char *current_size = kw_annotation(cm, BYTES);
    const char *current_label = kw_label(cm, OVERSIZE);
    bool labelled = current_label != NULL && strcmp(current_label, "true") == 0;
    if (current_size != NULL && strcmp(current_size, size) == 0 && labelled == oversize) {
        return kw_outcome_new(); /* up to date */
    }

    kw_json *metadata = KW_OBJ("annotations", KW_OBJ(BYTES, kw_str(size)));
    if (oversize) kw_json_set(metadata, "labels", KW_OBJ(OVERSIZE, kw_str("true")));
    kw_outcome *outcome = KW_OUTCOME(kw_apply(kw_ref_of(cm), KW_OBJ("metadata", metadata)));
    if (oversize && !labelled) {
        const char *note = kw_sprintf("ConfigMap holds %zu bytes, over the limit of %lld", bytes,
                                      (long long)cfg.max_bytes);
        kw_add(outcome, kw_action(kw_record_event(kw_ref_of(cm), KW_WARNING, "TooLarge", note), "Measure"));
        kw_warn("oversize ConfigMap", "name", kw_name(cm), "bytes", size);
    }
    return outcome;
}

static const char *validate_settings(const char *text) {
    settings cfg;
    return parse_settings(text, &cfg);
}

static kw_plugin_info *describe(void) {
    kw_plugin_info *info = kw_plugin_info_new("configmap-size-guard", "0.1.0");
    kw_subscribe(info, "", "v1", "ConfigMap", NULL, NULL);
    kw_writes(info, "", "ConfigMap");
    return info;
}

KW_PLUGIN(.describe = describe, .validate_settings = validate_settings, .reconcile = reconcile);
