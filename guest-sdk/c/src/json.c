/* JSON values: a strict RFC 8259 parser, a compact writer, builders and
 * accessors. Values live in the call's arena. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- builders --------------------------------------------------------------- */

static kw_json *make(kw_json_type type) {
    kw_json *v = kw_alloc(sizeof *v);
    v->type = type;
    return v;
}

kw_json *kw_null(void) { return make(KW_JSON_NULL); }

kw_json *kw_bool(bool b) {
    kw_json *v = make(KW_JSON_BOOL);
    v->u.boolean = b;
    return v;
}

kw_json *kw_int(int64_t i) {
    kw_json *v = make(KW_JSON_NUMBER);
    v->u.num.i = i;
    v->u.num.d = (double)i;
    v->u.num.is_int = true;
    return v;
}

kw_json *kw_number(double d) {
    kw_json *v = make(KW_JSON_NUMBER);
    v->u.num.d = d;
    return v;
}

kw_json *kw_strn(const char *s, size_t len) {
    kw_json *v = make(KW_JSON_STRING);
    v->u.str.s = kw_strndup(s, len);
    v->u.str.len = len;
    return v;
}

kw_json *kw_str(const char *s) { return s == NULL ? kw_null() : kw_strn(s, strlen(s)); }

kw_json *kw_strf(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *s = kw_vsprintf(fmt, args);
    va_end(args);
    return kw_str(s);
}

kw_json *kw_array(void) { return make(KW_JSON_ARRAY); }
kw_json *kw_object(void) { return make(KW_JSON_OBJECT); }

static void grow(void **items, size_t *cap, size_t len, size_t size) {
    if (len < *cap) {
        return;
    }
    size_t next = *cap ? *cap * 2 : 4;
    if (next > SIZE_MAX / size) {
        kw__oom();
    }
    void *bigger = kw_alloc(next * size);
    if (len) {
        memcpy(bigger, *items, len * size);
    }
    *items = bigger;
    *cap = next;
}

kw_json *kw_json_push(kw_json *array, kw_json *value) {
    if (array == NULL || array->type != KW_JSON_ARRAY) {
        return array;
    }
    grow((void **)&array->u.arr.items, &array->u.arr.cap, array->u.arr.len, sizeof(kw_json *));
    array->u.arr.items[array->u.arr.len++] = value ? value : kw_null();
    return array;
}

static kw__member *find(const kw_json *object, const char *key, size_t key_len) {
    if (object == NULL || object->type != KW_JSON_OBJECT) {
        return NULL;
    }
    for (size_t i = 0; i < object->u.obj.len; i++) {
        kw__member *m = &object->u.obj.items[i];
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
            return m;
        }
    }
    return NULL;
}

void kw__json_set_n(kw_json *object, const char *key, size_t key_len, kw_json *value) {
    kw__member *m = find(object, key, key_len);
    if (m != NULL) {
        m->value = value;
        return;
    }
    grow((void **)&object->u.obj.items, &object->u.obj.cap, object->u.obj.len, sizeof(kw__member));
    m = &object->u.obj.items[object->u.obj.len++];
    m->key = kw_strndup(key, key_len);
    m->key_len = key_len;
    m->value = value;
}

kw_json *kw_json_set(kw_json *object, const char *key, kw_json *value) {
    if (object != NULL && object->type == KW_JSON_OBJECT && key != NULL) {
        kw__json_set_n(object, key, strlen(key), value ? value : kw_null());
    }
    return object;
}

bool kw_json_remove(kw_json *object, const char *key) {
    kw__member *m = find(object, key, strlen(key));
    if (m == NULL) {
        return false;
    }
    size_t at = (size_t)(m - object->u.obj.items);
    memmove(m, m + 1, (object->u.obj.len - at - 1) * sizeof *m);
    object->u.obj.len--;
    return true;
}

kw_json *kw_obj(const char *key, ...) {
    kw_json *object = kw_object();
    va_list args;
    va_start(args, key);
    for (; key != NULL; key = va_arg(args, const char *)) {
        kw_json_set(object, key, va_arg(args, kw_json *));
    }
    va_end(args);
    return object;
}

kw_json *kw_arr(kw_json *first, ...) {
    kw_json *array = kw_array();
    va_list args;
    va_start(args, first);
    for (kw_json *v = first; v != NULL; v = va_arg(args, kw_json *)) {
        kw_json_push(array, v);
    }
    va_end(args);
    return array;
}

/* ---- accessors -------------------------------------------------------------- */

kw_json_type kw_json_type_of(const kw_json *v) { return v ? v->type : KW_JSON_NULL; }
bool kw_json_is_null(const kw_json *v) { return kw_json_type_of(v) == KW_JSON_NULL; }

const char *kw_json_str(const kw_json *v) {
    return v && v->type == KW_JSON_STRING ? v->u.str.s : NULL;
}

bool kw_json_bool(const kw_json *v, bool *out) {
    if (!v || v->type != KW_JSON_BOOL) {
        return false;
    }
    *out = v->u.boolean;
    return true;
}

bool kw_json_int(const kw_json *v, int64_t *out) {
    if (!v || v->type != KW_JSON_NUMBER) {
        return false;
    }
    if (v->u.num.is_int) {
        *out = v->u.num.i;
        return true;
    }
    double d = v->u.num.d;
    /* 2^63 is exactly representable; anything from it up does not fit. */
    if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
        return false;
    }
    *out = (int64_t)d;
    return true;
}

bool kw_json_double(const kw_json *v, double *out) {
    if (!v || v->type != KW_JSON_NUMBER) {
        return false;
    }
    *out = v->u.num.d;
    return true;
}

size_t kw_json_len(const kw_json *v) {
    if (!v) {
        return 0;
    }
    return v->type == KW_JSON_ARRAY ? v->u.arr.len : v->type == KW_JSON_OBJECT ? v->u.obj.len : 0;
}

kw_json *kw_json_at(const kw_json *a, size_t i) {
    return a && a->type == KW_JSON_ARRAY && i < a->u.arr.len ? a->u.arr.items[i] : NULL;
}

const char *kw_json_key_at(const kw_json *o, size_t i) {
    return o && o->type == KW_JSON_OBJECT && i < o->u.obj.len ? o->u.obj.items[i].key : NULL;
}

kw_json *kw_json_value_at(const kw_json *o, size_t i) {
    return o && o->type == KW_JSON_OBJECT && i < o->u.obj.len ? o->u.obj.items[i].value : NULL;
}

kw_json *kw_json_get(const kw_json *object, const char *key) {
    kw__member *m = key ? find(object, key, strlen(key)) : NULL;
    return m ? m->value : NULL;
}

bool kw_json_equal(const kw_json *a, const kw_json *b) {
    kw_json_type ta = kw_json_type_of(a), tb = kw_json_type_of(b);
    if (ta != tb) {
        return false;
    }
    switch (ta) {
    case KW_JSON_NULL:
        return true;
    case KW_JSON_BOOL:
        return a->u.boolean == b->u.boolean;
    case KW_JSON_NUMBER:
        if (a->u.num.is_int && b->u.num.is_int) {
            return a->u.num.i == b->u.num.i;
        }
        return a->u.num.d == b->u.num.d;
    case KW_JSON_STRING:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case KW_JSON_ARRAY:
        if (a->u.arr.len != b->u.arr.len) {
            return false;
        }
        for (size_t i = 0; i < a->u.arr.len; i++) {
            if (!kw_json_equal(a->u.arr.items[i], b->u.arr.items[i])) {
                return false;
            }
        }
        return true;
    case KW_JSON_OBJECT:
        if (a->u.obj.len != b->u.obj.len) {
            return false;
        }
        for (size_t i = 0; i < a->u.obj.len; i++) {
            kw__member *m = &a->u.obj.items[i];
            kw__member *other = find(b, m->key, m->key_len);
            if (other == NULL || !kw_json_equal(m->value, other->value)) {
                return false;
            }
        }
        return true;
    }
    return false;
}

kw_json *kw_json_clone(const kw_json *v) {
    if (v == NULL) {
        return kw_null();
    }
    kw_json *copy = make(v->type);
    *copy = *v;
    switch (v->type) {
    case KW_JSON_STRING:
        copy->u.str.s = kw_strndup(v->u.str.s, v->u.str.len);
        break;
    case KW_JSON_ARRAY:
        copy->u.arr.items = NULL;
        copy->u.arr.len = copy->u.arr.cap = 0;
        for (size_t i = 0; i < v->u.arr.len; i++) {
            kw_json_push(copy, kw_json_clone(v->u.arr.items[i]));
        }
        break;
    case KW_JSON_OBJECT:
        copy->u.obj.items = NULL;
        copy->u.obj.len = copy->u.obj.cap = 0;
        for (size_t i = 0; i < v->u.obj.len; i++) {
            kw__member *m = &v->u.obj.items[i];
            kw__json_set_n(copy, m->key, m->key_len, kw_json_clone(m->value));
        }
        break;
    default:
        break;
    }
    return copy;
}

kw_json *kw_json_merge(kw_json *target, const kw_json *patch) {
    if (kw_json_type_of(patch) != KW_JSON_OBJECT) {
        return kw_json_clone(patch);
    }
    if (kw_json_type_of(target) != KW_JSON_OBJECT) {
        target = kw_object();
    }
    for (size_t i = 0; i < patch->u.obj.len; i++) {
        kw__member *m = &patch->u.obj.items[i];
        if (kw_json_is_null(m->value)) {
            kw__member *gone = find(target, m->key, m->key_len);
            if (gone != NULL) {
                size_t at = (size_t)(gone - target->u.obj.items);
                memmove(gone, gone + 1, (target->u.obj.len - at - 1) * sizeof *gone);
                target->u.obj.len--;
            }
            continue;
        }
        kw__member *current = find(target, m->key, m->key_len);
        kw__json_set_n(target, m->key, m->key_len, kw_json_merge(current ? current->value : NULL, m->value));
    }
    return target;
}

/* ---- paths ------------------------------------------------------------------- */

kw_json *kw_json_path(const kw_json *value, const char *path) {
    const char *p = path;
    const kw_json *current = value;
    while (current != NULL && *p != '\0') {
        if (*p == '[' && p[1] == '"') {
            /* ["key with . or ]"]: up to the closing quote and bracket. */
            const char *start = p + 2, *end = strstr(start, "\"]");
            if (end == NULL) {
                return NULL;
            }
            kw__member *m = find(current, start, (size_t)(end - start));
            current = m ? m->value : NULL;
            p = end + 2;
        } else if (*p == '[') {
            char *end;
            errno = 0;
            unsigned long long i = strtoull(p + 1, &end, 10);
            if (end == p + 1 || *end != ']' || errno != 0 || p[1] == '-' || p[1] == '+') {
                return NULL;
            }
            current = i < SIZE_MAX ? kw_json_at(current, (size_t)i) : NULL;
            p = end + 1;
        } else {
            size_t n = strcspn(p, ".[");
            if (n == 0) {
                return NULL;
            }
            if (current->type == KW_JSON_ARRAY) {
                size_t i = 0, k = 0;
                for (; k < n && p[k] >= '0' && p[k] <= '9'; k++) {
                    i = i > (SIZE_MAX - 9) / 10 ? SIZE_MAX : i * 10 + (size_t)(p[k] - '0');
                }
                current = k == n ? kw_json_at(current, i) : NULL;
            } else {
                kw__member *m = find(current, p, n);
                current = m ? m->value : NULL;
            }
            p += n;
        }
        if (*p == '.') {
            p++;
            if (*p == '\0' || *p == '.') {
                return NULL;
            }
        } else if (*p != '\0' && *p != '[') {
            return NULL;
        }
    }
    return (kw_json *)current;
}

char *kw_pointer_escape(const char *key) {
    kw__buf b = {0};
    kw__buf_reserve(&b, 1);
    b.data[0] = '\0';
    for (const char *c = key; *c; c++) {
        if (*c == '~') {
            kw__buf_puts(&b, "~0");
        } else if (*c == '/') {
            kw__buf_puts(&b, "~1");
        } else {
            kw__buf_put(&b, c, 1);
        }
    }
    char *out = kw_strndup(b.data, b.len);
    free(b.data);
    return out;
}
