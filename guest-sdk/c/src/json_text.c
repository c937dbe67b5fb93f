/* JSON text: a strict RFC 8259 parser (UTF-8 checked, depth-limited, every
 * read bounds-checked against the given length) and a compact writer. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { MAX_DEPTH = 256 };

typedef struct parser {
    const unsigned char *p, *end, *start;
    const char *error;
} parser;

static kw_json *fail(parser *ps, const char *what) {
    if (ps->error == NULL) {
        ps->error = kw_sprintf("%s at byte %zu", what, (size_t)(ps->p - ps->start));
    }
    return NULL;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static bool literal(parser *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return false;
    }
    ps->p += n;
    return true;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* no overlongs */
        if (c == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;      /* up to U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return len;
}

static void put_utf8(kw__buf *b, unsigned long cp) {
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)), out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18)), out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    kw__buf_put(b, out, n);
}

static bool hex4(parser *ps, unsigned long *out) {
    if (ps->end - ps->p < 4) {
        return false;
    }
    unsigned long v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = *ps->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned long)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned long)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned long)(c - 'A' + 10);
        else return false;
    }
    *out = v;
    return true;
}

/* Parses a string after its opening quote into b (cleared first). */
static bool parse_string(parser *ps, kw__buf *b) {
    b->len = 0;
    kw__buf_reserve(b, 1);
    b->data[0] = '\0';
    while (ps->p < ps->end) {
        unsigned char c = *ps->p;
        if (c == '"') {
            ps->p++;
            return true;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            return false;
        }
        if (c != '\\') {
            size_t n = utf8_len(ps->p, (size_t)(ps->end - ps->p));
            if (n == 0) {
                fail(ps, "invalid UTF-8 in string");
                return false;
            }
            kw__buf_put(b, (const char *)ps->p, n);
            ps->p += n;
            continue;
        }
        ps->p++;
        if (ps->p >= ps->end) {
            break;
        }
        char e = (char)*ps->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (simple != NULL && e != '\0') {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            kw__buf_put(b, &decoded[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            unsigned long cp;
            if (!hex4(ps, &cp)) {
                fail(ps, "invalid \\u escape");
                return false;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned long lo;
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                    fail(ps, "unpaired surrogate in \\u escape");
                    return false;
                }
                ps->p += 2;
                if (!hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                    fail(ps, "unpaired surrogate in \\u escape");
                    return false;
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                fail(ps, "unpaired surrogate in \\u escape");
                return false;
            }
            put_utf8(b, cp);
        } else {
            fail(ps, "invalid escape in string");
            return false;
        }
    }
    fail(ps, "unterminated string");
    return false;
}

static kw_json *parse_number(parser *ps) {
    const unsigned char *start = ps->p;
    bool integral = true;
    if (ps->p < ps->end && *ps->p == '-') ps->p++;
    if (ps->p < ps->end && *ps->p == '0') {
        ps->p++;
    } else if (ps->p < ps->end && *ps->p >= '1' && *ps->p <= '9') {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    } else {
        return fail(ps, "invalid number");
    }
    if (ps->p < ps->end && *ps->p == '.') {
        integral = false;
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        integral = false;
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, "invalid number");
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    }
    /* strtod needs a NUL-terminated copy: the input need not be terminated. */
    char *text = kw_strndup((const char *)start, (size_t)(ps->p - start));
    kw_json *v = kw_number(strtod(text, NULL));
    if (integral) {
        errno = 0;
        long long i = strtoll(text, NULL, 10);
        if (errno == 0) {
            v->u.num.i = (int64_t)i;
            v->u.num.is_int = true;
        }
    }
    return v;
}

static kw_json *parse_value(parser *ps, kw__buf *b, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, "unexpected end of input");
    if (depth > MAX_DEPTH) return fail(ps, "nesting too deep");
    switch (*ps->p) {
    case 'n': return literal(ps, "null") ? kw_null() : fail(ps, "invalid literal");
    case 't': return literal(ps, "true") ? kw_bool(true) : fail(ps, "invalid literal");
    case 'f': return literal(ps, "false") ? kw_bool(false) : fail(ps, "invalid literal");
    case '"':
        ps->p++;
        return parse_string(ps, b) ? kw_strn(b->data, b->len) : NULL;
    case '[': {
        ps->p++;
        kw_json *array = kw_array();
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return array;
        }
        for (;;) {
            kw_json *item = parse_value(ps, b, depth + 1);
            if (item == NULL) return NULL;
            kw_json_push(array, item);
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == ']') { ps->p++; return array; }
            return fail(ps, "expected ',' or ']'");
        }
    }
    case '{': {
        ps->p++;
        kw_json *object = kw_object();
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return object;
        }
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "expected a string key");
            ps->p++;
            if (!parse_string(ps, b)) return NULL;
            char *key = kw_strndup(b->data, b->len);
            size_t key_len = b->len;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, "expected ':'");
            ps->p++;
            kw_json *value = parse_value(ps, b, depth + 1);
            if (value == NULL) return NULL;
            /* A duplicate key keeps the last value, as serde_json does. */
            kw__json_set_n(object, key, key_len, value);
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
            if (ps->p < ps->end && *ps->p == '}') { ps->p++; return object; }
            return fail(ps, "expected ',' or '}'");
        }
    }
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        return fail(ps, "unexpected character");
    }
}

kw_json *kw_json_parse(const char *text, size_t len, const char **error) {
    parser ps = {(const unsigned char *)text, (const unsigned char *)text + len,
                 (const unsigned char *)text, NULL};
    kw__buf b = {0};
    kw_json *v = text ? parse_value(&ps, &b, 0) : fail(&ps, "no input");
    if (v != NULL) {
        skip_ws(&ps);
        if (ps.p != ps.end) v = fail(&ps, "trailing characters");
    }
    free(b.data);
    if (error != NULL) *error = v ? NULL : ps.error;
    return v;
}

/* ---- writing -------------------------------------------------------------- */

static void write_string(kw__buf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    kw__buf_put(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, flushed before an escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (c < 0x20) {
                memcpy(u, "\\u00", 4);
                u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
                esc = u;
            }
        }
        if (esc == NULL) {
            run++;
            continue;
        }
        kw__buf_put(b, s + i - run, run);
        run = 0;
        kw__buf_puts(b, esc);
    }
    kw__buf_put(b, s + len - run, run);
    kw__buf_put(b, "\"", 1);
}

static void write_number(kw__buf *b, const kw_json *v) {
    char text[40];
    if (v->u.num.is_int) {
        snprintf(text, sizeof text, "%lld", (long long)v->u.num.i);
    } else if (!isfinite(v->u.num.d)) {
        snprintf(text, sizeof text, "null"); /* JSON has no NaN or infinity */
    } else {
        /* The shortest form that reads back as the same double. */
        for (int digits = 15; digits <= 17; digits++) {
            snprintf(text, sizeof text, "%.*g", digits, v->u.num.d);
            if (strtod(text, NULL) == v->u.num.d) break;
        }
        if (strpbrk(text, ".eEn") == NULL) {
            strcat(text, ".0"); /* keep a float a float (2.0, not 2) */
        }
    }
    kw__buf_puts(b, text);
}

static void write_value(kw__buf *b, const kw_json *v) {
    switch (kw_json_type_of(v)) {
    case KW_JSON_NULL: kw__buf_puts(b, "null"); break;
    case KW_JSON_BOOL: kw__buf_puts(b, v->u.boolean ? "true" : "false"); break;
    case KW_JSON_NUMBER: write_number(b, v); break;
    case KW_JSON_STRING: write_string(b, v->u.str.s, v->u.str.len); break;
    case KW_JSON_ARRAY:
        kw__buf_put(b, "[", 1);
        for (size_t i = 0; i < v->u.arr.len; i++) {
            if (i) kw__buf_put(b, ",", 1);
            write_value(b, v->u.arr.items[i]);
        }
        kw__buf_put(b, "]", 1);
        break;
    case KW_JSON_OBJECT:
        kw__buf_put(b, "{", 1);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            if (i) kw__buf_put(b, ",", 1);
            write_string(b, v->u.obj.items[i].key, v->u.obj.items[i].key_len);
            kw__buf_put(b, ":", 1);
            write_value(b, v->u.obj.items[i].value);
        }
        kw__buf_put(b, "}", 1);
        break;
    }
}

void kw__json_write_buf(kw__buf *b, const kw_json *value) {
    kw__buf_reserve(b, 1);
    b->data[b->len] = '\0';
    write_value(b, value);
}

char *kw_json_write(const kw_json *value, size_t *len) {
    kw__buf b = {0};
    kw__json_write_buf(&b, value);
    char *out = kw_strndup(b.data, b.len);
    if (len != NULL) *len = b.len;
    free(b.data);
    return out;
}

char *kw_json_quote(const char *s) {
    kw__buf b = {0};
    kw__buf_reserve(&b, 1);
    write_string(&b, s ? s : "", s ? strlen(s) : 0);
    char *out = kw_strndup(b.data, b.len);
    free(b.data);
    return out;
}
