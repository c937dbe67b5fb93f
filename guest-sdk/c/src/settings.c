/* Settings documents: parsed once, read field by field; the first problem
 * is kept as an error that names its field ("settings.reason: ..."). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct kw_settings {
    kw_json *doc; /* an object, or NULL after a document-level error */
    const char *error;
};

static void record(kw_settings *s, const char *message) {
    if (s->error == NULL) {
        s->error = message;
    }
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

kw_settings *kw_settings_parse(const char *text, const char *field, ...) {
    kw_settings *s = kw_alloc(sizeof *s);
    size_t known_count = 0;
    const char **known = NULL;
    va_list args;
    va_start(args, field);
    for (const char *f = field; f != NULL; f = va_arg(args, const char *)) {
        const char **more = kw_alloc((known_count + 1) * sizeof *more);
        if (known_count) memcpy(more, known, known_count * sizeof *more);
        more[known_count++] = f;
        known = more;
    }
    va_end(args);

    kw_json *doc = kw_json_parse(text, text ? strlen(text) : 0, NULL);
    if (doc == NULL) {
        record(s, "settings: not valid JSON");
        return s;
    }
    if (kw_json_type_of(doc) != KW_JSON_OBJECT) {
        record(s, "settings: must be a JSON object");
        return s;
    }
    /* The first unknown key in sorted order, so the message is stable. */
    const char *unknown = NULL;
    for (size_t i = 0; i < kw_json_len(doc); i++) {
        const char *key = kw_json_key_at(doc, i);
        bool is_known = false;
        for (size_t k = 0; k < known_count && !is_known; k++) {
            is_known = strcmp(key, known[k]) == 0;
        }
        if (!is_known && (unknown == NULL || strcmp(key, unknown) < 0)) {
            unknown = key;
        }
    }
    if (unknown != NULL) {
        const char **sorted = kw_alloc((known_count + 1) * sizeof *sorted);
        if (known_count) memcpy(sorted, known, known_count * sizeof *sorted);
        qsort(sorted, known_count, sizeof *sorted, by_string);
        kw__buf list = {0};
        kw__buf_reserve(&list, 1);
        list.data[0] = '\0';
        for (size_t k = 0; k < known_count; k++) {
            if (k) kw__buf_puts(&list, ", ");
            kw__buf_puts(&list, sorted[k]);
        }
        record(s, kw_sprintf("settings.%s: unknown field (known: %s)", unknown, list.data));
        free(list.data);
        return s;
    }
    s->doc = doc;
    return s;
}

kw_json *kw_settings_value(kw_settings *s, const char *field) {
    return s->error == NULL ? kw_json_get(s->doc, field) : NULL;
}

/* The field's value, or NULL if absent (a null value is present, and
 * refused by the typed readers like any other wrong type). */
static kw_json *present(kw_settings *s, const char *field) { return kw_settings_value(s, field); }

void kw_settings_invalid(kw_settings *s, const char *field, const char *fmt, ...) {
    if (s->error != NULL) {
        return;
    }
    va_list args;
    va_start(args, fmt);
    char *problem = kw_vsprintf(fmt, args);
    va_end(args);
    record(s, kw_sprintf("settings.%s: %s", field, problem));
}

const char *kw_settings_str(kw_settings *s, const char *field, const char *fallback) {
    kw_json *v = present(s, field);
    if (v == NULL) return fallback;
    if (kw_json_type_of(v) != KW_JSON_STRING) {
        kw_settings_invalid(s, field, "must be a string");
        return fallback;
    }
    return kw_json_str(v);
}

bool kw_settings_bool(kw_settings *s, const char *field, bool fallback) {
    kw_json *v = present(s, field);
    bool b = fallback;
    if (v != NULL && !kw_json_bool(v, &b)) {
        kw_settings_invalid(s, field, "must be true or false");
        return fallback;
    }
    return b;
}

int64_t kw_settings_int(kw_settings *s, const char *field, int64_t fallback, int64_t min, int64_t max) {
    kw_json *v = present(s, field);
    int64_t i;
    if (v == NULL) return fallback;
    if (!kw_json_int(v, &i) || i < min || i > max) {
        kw_settings_invalid(s, field, "must be a whole number from %lld to %lld", (long long)min,
                            (long long)max);
        return fallback;
    }
    return i;
}

const char **kw_settings_strs(kw_settings *s, const char *field, size_t *count) {
    kw_json *v = present(s, field);
    size_t n = kw_json_len(v);
    const char **out = kw_alloc((n + 1) * sizeof *out);
    if (count) *count = 0;
    if (v == NULL) return out;
    if (kw_json_type_of(v) != KW_JSON_ARRAY) {
        kw_settings_invalid(s, field, "must be an array of strings");
        return out;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = kw_json_str(kw_json_at(v, i));
        if (out[i] == NULL) {
            kw_settings_invalid(s, kw_sprintf("%s[%zu]", field, i), "must be a string");
            out[0] = NULL;
            return out;
        }
    }
    if (count) *count = n;
    return out;
}

const char *kw_settings_error(const kw_settings *s) { return s->error; }
