/* The per-call arena: a list of malloc'd chunks, bump-allocated, freed all
 * at once by kw_arena_reset after every export. */
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct chunk {
    struct chunk *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
} chunk;

enum { CHUNK_SIZE = 64 * 1024 };

static chunk *chunks;

void kw__oom(void) {
    /* Nothing can be allocated to report it: trap, which fails the call. */
    abort();
}

void *kw_alloc(size_t size) {
    size_t align = alignof(max_align_t);
    size_t need = (size + align - 1) & ~(align - 1);
    if (need < size) {
        kw__oom();
    }
    if (chunks == NULL || chunks->cap - chunks->used < need) {
        size_t cap = need > CHUNK_SIZE ? need : CHUNK_SIZE;
        if (cap > SIZE_MAX - sizeof(chunk)) {
            kw__oom();
        }
        chunk *c = malloc(sizeof(chunk) + cap);
        if (c == NULL) {
            kw__oom();
        }
        c->used = 0;
        c->cap = cap;
        if (chunks != NULL && need > CHUNK_SIZE) {
            /* A large block gets its own chunk behind the current one, so
             * the current one keeps serving small allocations. */
            c->next = chunks->next;
            chunks->next = c;
            c->used = need;
            memset(c->data, 0, need);
            return c->data;
        }
        c->next = chunks;
        chunks = c;
    }
    void *p = chunks->data + chunks->used;
    chunks->used += need;
    memset(p, 0, need);
    return p;
}

void kw_arena_reset(void) {
    while (chunks != NULL) {
        chunk *next = chunks->next;
        free(chunks);
        chunks = next;
    }
}

char *kw_strndup(const char *s, size_t len) {
    if (len == SIZE_MAX) {
        kw__oom();
    }
    char *copy = kw_alloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *kw_strdup(const char *s) {
    return s == NULL ? NULL : kw_strndup(s, strlen(s));
}

char *kw_vsprintf(const char *fmt, va_list args) {
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(NULL, 0, fmt, args);
    if (n < 0) {
        va_end(again);
        return kw_strdup("");
    }
    char *out = kw_alloc((size_t)n + 1);
    vsnprintf(out, (size_t)n + 1, fmt, again);
    va_end(again);
    return out;
}

char *kw_sprintf(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *out = kw_vsprintf(fmt, args);
    va_end(args);
    return out;
}

/* A growable malloc'd byte buffer (for JSON output). */
void kw__buf_reserve(kw__buf *b, size_t more) {
    if (b->cap - b->len >= more) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            kw__oom();
        }
        cap *= 2;
    }
    char *data = realloc(b->data, cap);
    if (data == NULL) {
        kw__oom();
    }
    b->data = data;
    b->cap = cap;
}

void kw__buf_put(kw__buf *b, const char *s, size_t len) {
    kw__buf_reserve(b, len + 1);
    memcpy(b->data + b->len, s, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void kw__buf_puts(kw__buf *b, const char *s) {
    kw__buf_put(b, s, strlen(s));
}
