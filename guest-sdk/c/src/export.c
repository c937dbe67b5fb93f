/* The component's side of the contract: the host imports behind the
 * kw__host_* functions, and the reconciler exports, which call the plugin
 * registered with KW_PLUGIN and convert its JSON-shaped results to the WIT
 * types of the generated bindings (plugin.h, from `wit-bindgen c`).
 *
 * Ownership follows the bindings: strings and lists returned by imports are
 * malloc'd for us (copied into the arena, then freed here); export
 * parameters are ours to free; export results are malloc'd and freed by the
 * generated post-return functions. The arena is reset after every export. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "plugin.h"

typedef kubewasm_plugin_types_intent_t wit_intent;

static plugin_string_t borrow(const char *s) {
    plugin_string_t out = {(uint8_t *)(s ? s : ""), s ? strlen(s) : 0};
    return out;
}

static char *take(plugin_string_t *s) {
    char *copy = kw_strndup((const char *)s->ptr, s->len);
    plugin_string_free(s);
    return copy;
}

/* A malloc'd copy for a result (the post-return function frees it). */
static plugin_string_t own(const char *s) {
    plugin_string_t out;
    plugin_string_dup_n(&out, s ? s : "", s ? strlen(s) : 0);
    return out;
}

static plugin_string_t own_json(const kw_json *v) {
    kw__buf b = {0};
    kw__json_write_buf(&b, v);
    plugin_string_t out = {(uint8_t *)b.data, b.len};
    return out;
}

static void *own_array(size_t n, size_t size) {
    if (n == 0) return NULL;
    void *p = calloc(n, size);
    if (p == NULL) kw__oom();
    return p;
}

/* Sizes the WIT list `list` like the JSON array `items` (zeroed, malloc'd). */
#define OWN_LIST(list, items) \
    ((list).len = kw_json_len(items), (list).ptr = own_array((list).len, sizeof *(list).ptr))

static const char *str_at(const kw_json *v, const char *key) {
    const char *s = kw_json_str(kw_json_get(v, key));
    return s ? s : "";
}

static plugin_option_string_t own_option(const kw_json *v) {
    plugin_option_string_t out = {0};
    if (kw_json_str(v) != NULL) {
        out.is_some = true;
        out.val = own(kw_json_str(v));
    }
    return out;
}

static bool flag(const kw_json *v, const char *key) {
    bool b = false;
    kw_json_bool(kw_json_get(v, key), &b);
    return b;
}

/* ---- imports ----------------------------------------------------------------- */

void kw__host_log(kw_log_level level, const char *message, const char **fields, size_t nfields) {
    plugin_tuple2_string_string_t *pairs = kw_alloc((nfields ? nfields : 1) * sizeof *pairs);
    for (size_t i = 0; i < nfields; i++) {
        pairs[i].f0 = borrow(fields[2 * i]);
        pairs[i].f1 = borrow(fields[2 * i + 1]);
    }
    plugin_string_t msg = borrow(message);
    plugin_list_tuple2_string_string_t list = {pairs, nfields};
    kubewasm_plugin_host_log((kubewasm_plugin_host_log_level_t)level, &msg, &list);
}

const char *kw__host_settings(void) {
    plugin_string_t text;
    kubewasm_plugin_host_settings(&text);
    return take(&text);
}

bool kw__host_get(const char *api_version, const char *kind, const char *ns, const char *name, char **out,
                  size_t *out_len, char **error) {
    plugin_string_t av = borrow(api_version), k = borrow(kind), n = borrow(ns), nm = borrow(name);
    plugin_option_string_t found;
    plugin_string_t err;
    if (!kubewasm_plugin_host_get_object(&av, &k, ns ? &n : NULL, &nm, &found, &err)) {
        *error = take(&err);
        return false;
    }
    *out = NULL;
    if (found.is_some) {
        *out_len = found.val.len;
        *out = take(&found.val);
    }
    return true;
}

bool kw__host_list(const char *api_version, const char *kind, const char *ns, const char *selector,
                   char ***items, size_t **lens, size_t *count, char **error) {
    plugin_string_t av = borrow(api_version), k = borrow(kind), n = borrow(ns), sel = borrow(selector);
    plugin_list_string_t list;
    plugin_string_t err;
    if (!kubewasm_plugin_host_list_objects(&av, &k, ns ? &n : NULL, selector ? &sel : NULL, &list, &err)) {
        *error = take(&err);
        return false;
    }
    *count = list.len;
    *items = kw_alloc((list.len ? list.len : 1) * sizeof **items);
    *lens = kw_alloc((list.len ? list.len : 1) * sizeof **lens);
    for (size_t i = 0; i < list.len; i++) {
        (*lens)[i] = list.ptr[i].len;
        (*items)[i] = kw_strndup((const char *)list.ptr[i].ptr, list.ptr[i].len);
    }
    plugin_list_string_free(&list);
    return true;
}

kw_timestamp kw__host_now(void) {
    kubewasm_plugin_host_timestamp_t t;
    kubewasm_plugin_host_now(&t);
    kw_timestamp out = {t.epoch_ms, kw_strndup((const char *)t.rfc3339.ptr, t.rfc3339.len)};
    kubewasm_plugin_host_timestamp_free(&t);
    return out;
}

/* ---- describe ------------------------------------------------------------------ */

static kubewasm_plugin_types_group_kind_t own_group_kind(const kw_json *v) {
    kubewasm_plugin_types_group_kind_t gk = {own(str_at(v, "group")), own(str_at(v, "kind"))};
    return gk;
}

static kubewasm_plugin_types_kind_ref_t own_kind_ref(const kw_json *v) {
    kubewasm_plugin_types_kind_ref_t k = {own(str_at(v, "group")), own(str_at(v, "kind")),
                                          own_option(kw_json_get(v, "version"))};
    return k;
}

static void describe_into(const kw_json *info, kubewasm_plugin_types_plugin_info_t *ret) {
    memset(ret, 0, sizeof *ret);
    ret->name = own(str_at(info, "name"));
    ret->version = own(str_at(info, "version"));

    const kw_json *subs = kw_json_get(info, "subscriptions");
    OWN_LIST(ret->subscriptions, subs);
    for (size_t i = 0; i < ret->subscriptions.len; i++) {
        const kw_json *s = kw_json_at(subs, i);
        kubewasm_plugin_types_subscription_t *out = &ret->subscriptions.ptr[i];
        out->group = own(str_at(s, "group"));
        out->version = own(str_at(s, "version"));
        out->kind = own(str_at(s, "kind"));
        const kw_json *ns = kw_json_get(s, "namespaces");
        OWN_LIST(out->namespaces, ns);
        for (size_t j = 0; j < out->namespaces.len; j++) {
            out->namespaces.ptr[j] = own(kw_json_str(kw_json_at(ns, j)));
        }
        out->label_selector = own_option(kw_json_get(s, "labelSelector"));
    }

    const kw_json *writes = kw_json_get(info, "writes");
    OWN_LIST(ret->writes, writes);
    for (size_t i = 0; i < ret->writes.len; i++) {
        const kw_json *w = kw_json_at(writes, i);
        ret->writes.ptr[i].group = own(str_at(w, "group"));
        ret->writes.ptr[i].kind = own(str_at(w, "kind"));
    }

    const kw_json *owns = kw_json_get(info, "owns");
    OWN_LIST(ret->owns, owns);
    for (size_t i = 0; i < ret->owns.len; i++) {
        ret->owns.ptr[i] = own_kind_ref(kw_json_at(owns, i));
    }

    static const char *const rules[] = {"fieldRef", "label", "selector"};
    const kw_json *watches = kw_json_get(info, "watches");
    OWN_LIST(ret->watches, watches);
    for (size_t i = 0; i < ret->watches.len; i++) {
        const kw_json *w = kw_json_at(watches, i);
        kubewasm_plugin_types_mapped_watch_t *out = &ret->watches.ptr[i];
        out->source = own_kind_ref(kw_json_get(w, "source"));
        out->target = own_group_kind(kw_json_get(w, "target"));
        const kw_json *rule = kw_json_get(w, "rule");
        for (uint8_t r = 0; r < 3; r++) {
            if (kw_json_get(rule, rules[r]) != NULL) {
                out->rule.tag = r;
                out->rule.val.field_ref = own(str_at(rule, rules[r]));
            }
        }
    }

    const kw_json *finalizer = kw_json_get(info, "finalizer");
    if (!kw_json_is_null(finalizer)) {
        ret->finalizer.is_some = true;
        ret->finalizer.val.name = own(str_at(finalizer, "name"));
        const kw_json *kinds = kw_json_get(finalizer, "kinds");
        OWN_LIST(ret->finalizer.val.kinds, kinds);
        for (size_t i = 0; i < kw_json_len(kinds); i++) {
            ret->finalizer.val.kinds.ptr[i] = own_group_kind(kw_json_at(kinds, i));
        }
    }
}

void exports_kubewasm_plugin_reconciler_describe(exports_kubewasm_plugin_reconciler_plugin_info_t *ret) {
    describe_into(kw_call_describe(&kw_exported_plugin), ret);
    kw_arena_reset();
}

bool exports_kubewasm_plugin_reconciler_validate_settings(plugin_string_t *settings, plugin_string_t *err) {
    const char *text = take(settings);
    const char *error = kw_call_validate_settings(&kw_exported_plugin, text);
    if (error != NULL) {
        *err = own(error);
    }
    kw_arena_reset();
    return error == NULL;
}

/* ---- reconcile ------------------------------------------------------------------ */

static kubewasm_plugin_types_object_ref_t own_ref(const kw_json *v) {
    kubewasm_plugin_types_object_ref_t ref = {own(str_at(v, "apiVersion")), own(str_at(v, "kind")),
                                              own_option(kw_json_get(v, "namespace")),
                                              own(str_at(v, "name"))};
    return ref;
}

static void intent_into(const kw_json *v, wit_intent *out) {
    const char *type = str_at(v, "type");
    if (strcmp(type, "apply") == 0) {
        out->tag = KUBEWASM_PLUGIN_TYPES_INTENT_APPLY;
        out->val.apply.object = own_json(kw_json_get(v, "object"));
        out->val.apply.status = flag(v, "status");
        out->val.apply.force = flag(v, "force");
    } else if (strcmp(type, "merge-patch") == 0 || strcmp(type, "json-patch") == 0) {
        bool merge = type[0] == 'm';
        out->tag = merge ? KUBEWASM_PLUGIN_TYPES_INTENT_MERGE_PATCH : KUBEWASM_PLUGIN_TYPES_INTENT_JSON_PATCH;
        kubewasm_plugin_types_patch_intent_t *p = merge ? &out->val.merge_patch : &out->val.json_patch;
        p->target = own_ref(kw_json_get(v, "target"));
        p->patch = own_json(kw_json_get(v, "patch"));
        p->status = flag(v, "status");
        p->resource_version = own_option(kw_json_get(v, "resourceVersion"));
    } else if (strcmp(type, "create") == 0) {
        out->tag = KUBEWASM_PLUGIN_TYPES_INTENT_CREATE;
        out->val.create.object = own_json(kw_json_get(v, "object"));
    } else if (strcmp(type, "delete") == 0) {
        out->tag = KUBEWASM_PLUGIN_TYPES_INTENT_DELETE;
        out->val.delete_.target = own_ref(kw_json_get(v, "target"));
        kw_propagation policy;
        if (kw_propagation_parse(kw_json_str(kw_json_get(v, "propagation")), &policy)) {
            out->val.delete_.propagation.is_some = true;
            out->val.delete_.propagation.val = (kubewasm_plugin_types_propagation_policy_t)policy;
        }
    } else if (strcmp(type, "record-event") == 0) {
        out->tag = KUBEWASM_PLUGIN_TYPES_INTENT_RECORD_EVENT;
        kubewasm_plugin_types_event_intent_t *e = &out->val.record_event;
        e->regarding = own_ref(kw_json_get(v, "regarding"));
        e->severity = strcmp(str_at(v, "severity"), "Warning") == 0 ? KUBEWASM_PLUGIN_TYPES_EVENT_SEVERITY_WARNING
                                                                    : KUBEWASM_PLUGIN_TYPES_EVENT_SEVERITY_NORMAL;
        e->reason = own(str_at(v, "reason"));
        e->note = own(str_at(v, "note"));
        e->action = own(str_at(v, "action"));
    } else {
        kw__misuse("an intent of unknown type %s", type);
    }
}

static const char *event_from(exports_kubewasm_plugin_reconciler_event_t *wit, kw_event *event) {
    event->type = (kw_event_type)wit->event_type;
    event->kind.group = kw_strndup((const char *)wit->kind.group.ptr, wit->kind.group.len);
    event->kind.version = kw_strndup((const char *)wit->kind.version.ptr, wit->kind.version.len);
    event->kind.kind = kw_strndup((const char *)wit->kind.kind.ptr, wit->kind.kind.len);
    event->kind.plural = kw_strndup((const char *)wit->kind.plural.ptr, wit->kind.plural.len);
    event->kind.namespaced = wit->kind.namespaced;
    const char *problem = NULL;
    event->object = kw_json_parse((const char *)wit->object.ptr, wit->object.len, &problem);
    exports_kubewasm_plugin_reconciler_event_free(wit);
    return event->object ? NULL : kw_sprintf("the event's object is not valid JSON: %s", problem);
}

bool exports_kubewasm_plugin_reconciler_reconcile(exports_kubewasm_plugin_reconciler_event_t *wit_event,
                                                  exports_kubewasm_plugin_reconciler_outcome_t *ret,
                                                  exports_kubewasm_plugin_reconciler_reconcile_error_t *err) {
    kw_event event;
    const char *error = event_from(wit_event, &event);
    const kw_json *outcome = error ? NULL : kw_call_reconcile(&kw_exported_plugin, &event, &error);
    if (outcome == NULL) {
        err->message = own(error);
        kw_arena_reset();
        return false;
    }
    const kw_json *intents = kw_json_get(outcome, "intents");
    OWN_LIST(ret->intents, intents);
    for (size_t i = 0; i < ret->intents.len; i++) {
        intent_into(kw_json_at(intents, i), &ret->intents.ptr[i]);
    }
    int64_t ms;
    ret->requeue_after_ms.is_some = kw_json_int(kw_json_get(outcome, "requeueAfterMs"), &ms) && ms >= 0;
    ret->requeue_after_ms.val = ret->requeue_after_ms.is_some ? (uint64_t)ms : 0;
    kw_arena_reset();
    return true;
}
