/* {{name}}: a kubewasm reconcile plugin in C.
 *
 * It labels every ConfigMap labelled `hello=please` with the `label` setting (default
 * `example.com/reconciled-by`) set to `{{name}}`. Change `reconcile` to do
 * your work: the host calls it for every change of a subscribed object and
 * makes the writes it returns. Everything the SDK allocates is freed after
 * each call: no free() needed. The guide: {{sdk}}/docs/plugins/c.md. */
#include <string.h>

#include "kubewasm.h"

#define PLUGIN_NAME "{{name}}"

typedef struct settings {
    const char *label;
} settings;

static bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A label name: 1-63 characters, alphanumeric at both ends, - _ . inside. */
static bool valid_name(const char *s, size_t n) {
    if (n == 0 || n > 63 || !is_alnum(s[0]) || !is_alnum(s[n - 1])) return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
    }
    return true;
}

/* A label key: an optional DNS-subdomain prefix and "/", then a name. */
static bool valid_label_key(const char *key) {
    const char *slash = strchr(key, '/');
    if (slash == NULL) return valid_name(key, strlen(key));
    size_t prefix = (size_t)(slash - key);
    if (prefix == 0 || prefix > 253 || key[0] == '.' || key[0] == '-' || key[prefix - 1] == '.' || key[prefix - 1] == '-')
        return false;
    for (size_t i = 0; i < prefix; i++) {
        bool ok = (key[i] >= 'a' && key[i] <= 'z') || (key[i] >= '0' && key[i] <= '9') || key[i] == '-' || key[i] == '.';
        if (!ok) return false;
    }
    return valid_name(slash + 1, strlen(slash + 1));
}

/* NULL and *out filled, or the first problem naming its field. */
static const char *parse_settings(const char *text, settings *out) {
    kw_settings *s = kw_settings_parse(text, "label", NULL);
    out->label = kw_settings_str(s, "label", "example.com/reconciled-by");
    if (!valid_label_key(out->label)) {
        kw_settings_invalid(s, "label", "%s is not a valid label key", kw_json_quote(out->label));
    }
    return kw_settings_error(s);
}

static kw_plugin_info *describe(void) {
    kw_plugin_info *info = kw_plugin_info_new(PLUGIN_NAME, "0.1.0");
    kw_subscribe(info, "", "v1", "ConfigMap", "hello=please", NULL);
    kw_writes(info, "", "ConfigMap");
    return info;
}

static const char *validate_settings(const char *text) {
    settings cfg;
    return parse_settings(text, &cfg);
}

static kw_outcome *reconcile(const kw_event *event) {
    settings cfg;
    const char *invalid = parse_settings(kw_settings_text(), &cfg);
    if (invalid != NULL) return kw_fail("%s", invalid);

    const kw_json *cm = event->object;
    const char *current = kw_label(cm, cfg.label);
    if (event->type == KW_DELETED || (current != NULL && strcmp(current, PLUGIN_NAME) == 0)) {
        return kw_outcome_new(); /* nothing to do */
    }
    kw_debug("labelling", "configmap", kw_name(cm));
    kw_json *labels = kw_object();
    kw_json_set(labels, cfg.label, kw_str(PLUGIN_NAME));
    return KW_OUTCOME(kw_apply(kw_ref_of(cm), KW_OBJ("metadata", KW_OBJ("labels", labels))));
}

KW_PLUGIN(.describe = describe, .validate_settings = validate_settings, .reconcile = reconcile);
