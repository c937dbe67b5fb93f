/* Internals shared by the SDK's source files; not part of the API. */
#ifndef KUBEWASM_INTERNAL_H
#define KUBEWASM_INTERNAL_H

#include "kubewasm.h"

typedef struct kw__member {
    char *key;
    size_t key_len;
    kw_json *value;
} kw__member;

struct kw_json {
    kw_json_type type;
    union {
        bool boolean;
        struct {
            double d;
            int64_t i;
            bool is_int; /* an integer literal (or kw_int) that fits int64 */
        } num;
        struct {
            char *s; /* NUL-terminated; may contain NUL (len counts) */
            size_t len;
        } str;
        struct {
            kw_json **items;
            size_t len, cap;
        } arr;
        struct {
            kw__member *items;
            size_t len, cap;
        } obj;
    } u;
};

struct kw_intent {
    kw_json *json;
};

struct kw_outcome {
    kw_json *json;
};

struct kw_plugin_info {
    kw_json *json;
};

/* Traps after writing a fixed message; used when malloc fails. */
_Noreturn void kw__oom(void);
/* Traps with a message naming the SDK misuse. */
_Noreturn void kw__misuse(const char *fmt, ...) KW_PRINTF(1, 2);

typedef struct kw__buf {
    char *data; /* malloc'd, NUL-terminated once anything is put */
    size_t len, cap;
} kw__buf;
void kw__buf_reserve(kw__buf *b, size_t more);
void kw__buf_put(kw__buf *b, const char *s, size_t len);
void kw__buf_puts(kw__buf *b, const char *s);
/* Sets a member whose key may contain NUL. */
void kw__json_set_n(kw_json *object, const char *key, size_t key_len, kw_json *value);
/* Writes value as JSON into b (malloc'd, for handing to the host). */
void kw__json_write_buf(kw__buf *b, const kw_json *value);

/* The host, implemented by export.c in the component and by the fake host
 * in native tests. Strings returned are arena copies. */
void kw__host_log(kw_log_level level, const char *message, const char **fields, size_t nfields);
const char *kw__host_settings(void);
/* true: found or absent (*out NULL if absent); false: *error set. */
bool kw__host_get(const char *api_version, const char *kind, const char *ns, const char *name,
                  char **out, size_t *out_len, char **error);
bool kw__host_list(const char *api_version, const char *kind, const char *ns,
                   const char *selector, char ***items, size_t **lens, size_t *count, char **error);
kw_timestamp kw__host_now(void);

/* Resets the per-call state (failure message, cached clock). */
void kw__call_begin(void);
/* Forgets the message of the last kw_fail (intent.c). */
void kw__failure_clear(void);

#endif
