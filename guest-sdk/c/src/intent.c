/* Intents, outcomes and the plugin description. Each is kept as the JSON
 * document `kubewasm test` shows for it (expected.json's shape); export.c
 * turns them into the WIT types. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Logs the misuse through the host (no stdio: a component without WASI
 * imports needs no adapter) and traps. */
_Noreturn void kw__misuse(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    char *message = kw_vsprintf(fmt, args);
    va_end(args);
    kw__host_log(KW_ERROR, kw_sprintf("kubewasm SDK misuse: %s", message), NULL, 0);
    abort();
}

static kw_intent *intent(const char *type) {
    kw_intent *i = kw_alloc(sizeof *i);
    i->json = KW_OBJ("type", kw_str(type));
    return i;
}

static const char *type_of(const kw_intent *i) { return kw_json_str(kw_json_get(i->json, "type")); }

static bool is(const kw_intent *i, const char *type) { return strcmp(type_of(i), type) == 0; }

static kw_json *identity(kw_ref ref) {
    kw_json *meta = KW_OBJ("name", kw_str(ref.name ? ref.name : ""));
    if (ref.ns != NULL) {
        kw_json_set(meta, "namespace", kw_str(ref.ns));
    }
    return KW_OBJ("apiVersion", kw_str(ref.api_version ? ref.api_version : ""), "kind",
                  kw_str(ref.kind ? ref.kind : ""), "metadata", meta);
}

kw_intent *kw_apply_object(kw_json *object) {
    kw_intent *i = intent("apply");
    kw_json_set(i->json, "object", object);
    kw_json_set(i->json, "status", kw_bool(false));
    kw_json_set(i->json, "force", kw_bool(true));
    return i;
}

kw_intent *kw_apply(kw_ref ref, kw_json *fields) {
    kw_json *object = fields ? kw_json_clone(fields) : kw_object();
    /* The identity wins over whatever fields say about it. */
    return kw_apply_object(kw_json_merge(object, identity(ref)));
}

kw_intent *kw_apply_status(kw_ref ref, kw_json *status) {
    kw_json *object = identity(ref);
    kw_json_set(object, "status", status ? status : kw_object());
    return kw_on_status(kw_apply_object(object));
}

static kw_intent *patch(const char *type, kw_ref target, kw_json *document) {
    kw_intent *i = intent(type);
    kw_json_set(i->json, "target", kw_ref_json(target));
    kw_json_set(i->json, "patch", document);
    kw_json_set(i->json, "status", kw_bool(false));
    kw_json_set(i->json, "resourceVersion", kw_null());
    return i;
}

kw_intent *kw_merge_patch(kw_ref target, kw_json *document) {
    return patch("merge-patch", target, document ? document : kw_object());
}

kw_intent *kw_json_patch(kw_ref target, kw_json *ops) {
    return patch("json-patch", target, ops ? ops : kw_array());
}

kw_json *kw_op(kw_json *ops, const char *op, const char *path, kw_json *value) {
    kw_json *entry = KW_OBJ("op", kw_str(op), "path", kw_str(path));
    if (value != NULL) {
        kw_json_set(entry, "value", value);
    }
    return kw_json_push(ops, entry);
}

kw_intent *kw_create(kw_json *object) {
    kw_intent *i = intent("create");
    kw_json_set(i->json, "object", object);
    return i;
}

kw_intent *kw_delete(kw_ref target) {
    kw_intent *i = intent("delete");
    kw_json_set(i->json, "target", kw_ref_json(target));
    kw_json_set(i->json, "propagation", kw_null());
    return i;
}

kw_intent *kw_record_event(kw_ref regarding, kw_severity severity, const char *reason, const char *note) {
    kw_intent *i = intent("record-event");
    kw_json_set(i->json, "regarding", kw_ref_json(regarding));
    kw_json_set(i->json, "severity", kw_str(severity == KW_WARNING ? "Warning" : "Normal"));
    kw_json_set(i->json, "reason", kw_str(reason ? reason : ""));
    kw_json_set(i->json, "note", kw_str(note ? note : ""));
    kw_json_set(i->json, "action", kw_str("Reconcile"));
    return i;
}

kw_intent *kw_force(kw_intent *i, bool force) {
    if (!is(i, "apply")) kw__misuse("kw_force on a %s intent (only apply)", type_of(i));
    kw_json_set(i->json, "force", kw_bool(force));
    return i;
}

kw_intent *kw_on_status(kw_intent *i) {
    if (!is(i, "apply") && !is(i, "merge-patch") && !is(i, "json-patch")) {
        kw__misuse("kw_on_status on a %s intent (only apply and patches)", type_of(i));
    }
    kw_json_set(i->json, "status", kw_bool(true));
    return i;
}

kw_intent *kw_precondition(kw_intent *i, const char *resource_version) {
    if (!is(i, "merge-patch") && !is(i, "json-patch")) {
        kw__misuse("kw_precondition on a %s intent (only patches)", type_of(i));
    }
    kw_json_set(i->json, "resourceVersion", kw_str(resource_version));
    return i;
}

kw_intent *kw_propagate(kw_intent *i, kw_propagation policy) {
    static const char *const names[] = {"Background", "Foreground", "Orphan"};
    if (!is(i, "delete")) kw__misuse("kw_propagate on a %s intent (only delete)", type_of(i));
    if (policy > KW_ORPHAN) kw__misuse("kw_propagate: no propagation policy %d", (int)policy);
    kw_json_set(i->json, "propagation", kw_str(names[policy]));
    return i;
}

bool kw_propagation_parse(const char *name, kw_propagation *out) {
    static const char *const names[] = {"Background", "Foreground", "Orphan"};
    for (int p = KW_BACKGROUND; name != NULL && p <= KW_ORPHAN; p++) {
        if (strcmp(name, names[p]) == 0) {
            *out = (kw_propagation)p;
            return true;
        }
    }
    return false;
}

kw_intent *kw_action(kw_intent *i, const char *action) {
    if (!is(i, "record-event")) kw__misuse("kw_action on a %s intent (only record-event)", type_of(i));
    kw_json_set(i->json, "action", kw_str(action ? action : ""));
    return i;
}

kw_intent *kw_owner(kw_intent *i, kw_json *owner_ref) {
    if (!is(i, "apply") && !is(i, "create")) {
        kw__misuse("kw_owner on a %s intent (only apply and create)", type_of(i));
    }
    kw_json *object = kw_json_get(i->json, "object");
    kw_json *meta = kw_json_get(object, "metadata");
    if (kw_json_type_of(meta) != KW_JSON_OBJECT) {
        meta = kw_object();
        kw_json_set(object, "metadata", meta);
    }
    kw_json *refs = kw_json_get(meta, "ownerReferences");
    if (kw_json_type_of(refs) != KW_JSON_ARRAY) {
        refs = kw_array();
        kw_json_set(meta, "ownerReferences", refs);
    }
    kw_json_push(refs, owner_ref);
    return i;
}

const kw_json *kw_intent_json(const kw_intent *i) { return i->json; }

/* ---- outcomes ------------------------------------------------------------------ */

static char *failure;

kw_outcome *kw_outcome_new(void) {
    kw_outcome *o = kw_alloc(sizeof *o);
    o->json = KW_OBJ("intents", kw_array(), "requeueAfterMs", kw_null());
    return o;
}

kw_outcome *kw_add(kw_outcome *o, kw_intent *i) {
    if (i != NULL) {
        kw_json_push(kw_json_get(o->json, "intents"), i->json);
    }
    return o;
}

kw_outcome *kw_outcome_of(kw_intent *first, ...) {
    kw_outcome *o = kw_outcome_new();
    va_list args;
    va_start(args, first);
    for (kw_intent *i = first; i != NULL; i = va_arg(args, kw_intent *)) {
        kw_add(o, i);
    }
    va_end(args);
    return o;
}

kw_outcome *kw_requeue_after(kw_outcome *o, uint64_t ms) {
    /* Clamped to int64 (292 million years), which JSON numbers carry exactly. */
    kw_json_set(o->json, "requeueAfterMs", kw_int(ms > INT64_MAX ? INT64_MAX : (int64_t)ms));
    return o;
}

kw_outcome *kw_fail(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    failure = kw_vsprintf(fmt, args);
    va_end(args);
    return NULL;
}

const char *kw_failure(void) { return failure; }

void kw__failure_clear(void) { failure = NULL; }

const kw_json *kw_outcome_json(const kw_outcome *o) { return o->json; }

/* ---- describe ----------------------------------------------------------------- */

static kw_json *list_of(kw_plugin_info *info, const char *field) { return kw_json_get(info->json, field); }

kw_plugin_info *kw_plugin_info_new(const char *name, const char *version) {
    kw_plugin_info *info = kw_alloc(sizeof *info);
    info->json = KW_OBJ("name", kw_str(name), "version", kw_str(version), "subscriptions", kw_array(),
                        "writes", kw_array(), "owns", kw_array(), "watches", kw_array(), "finalizer",
                        kw_null());
    return info;
}

kw_plugin_info *kw_subscribe(kw_plugin_info *info, const char *group, const char *version, const char *kind,
                      const char *label_selector, const char *const *namespaces) {
    kw_json *ns = kw_array();
    for (size_t i = 0; namespaces != NULL && namespaces[i] != NULL; i++) {
        kw_json_push(ns, kw_str(namespaces[i]));
    }
    kw_json_push(list_of(info, "subscriptions"),
                 KW_OBJ("group", kw_str(group), "version", kw_str(version), "kind", kw_str(kind),
                        "namespaces", ns, "labelSelector", kw_str(label_selector)));
    return info;
}

kw_plugin_info *kw_writes(kw_plugin_info *info, const char *group, const char *kind) {
    kw_json_push(list_of(info, "writes"), KW_OBJ("group", kw_str(group), "kind", kw_str(kind)));
    return info;
}

kw_plugin_info *kw_owns(kw_plugin_info *info, const char *group, const char *kind, const char *version) {
    kw_json_push(list_of(info, "owns"),
                 KW_OBJ("group", kw_str(group), "kind", kw_str(kind), "version", kw_str(version)));
    return info;
}

kw_plugin_info *kw_watches(kw_plugin_info *info, const char *source_group, const char *source_kind,
                    const char *source_version, const char *target_group, const char *target_kind,
                    kw_map_rule rule, const char *arg) {
    static const char *const rules[] = {"fieldRef", "label", "selector"};
    if (rule > KW_MAP_SELECTOR) kw__misuse("kw_watches: no map rule %d", (int)rule);
    kw_json *source = KW_OBJ("group", kw_str(source_group), "kind", kw_str(source_kind), "version",
                             kw_str(source_version));
    kw_json *target = KW_OBJ("group", kw_str(target_group), "kind", kw_str(target_kind));
    kw_json_push(list_of(info, "watches"),
                 KW_OBJ("source", source, "target", target, "rule", KW_OBJ(rules[rule], kw_str(arg))));
    return info;
}

kw_plugin_info *kw_finalizer(kw_plugin_info *info, const char *name, const char *group, const char *kind) {
    kw_json *finalizer = kw_json_get(info->json, "finalizer");
    if (kw_json_is_null(finalizer)) {
        finalizer = KW_OBJ("name", kw_str(name), "kinds", kw_array());
        kw_json_set(info->json, "finalizer", finalizer);
    } else if (strcmp(kw_json_str(kw_json_get(finalizer, "name")), name) != 0) {
        kw__misuse("kw_finalizer: a plugin has one finalizer name, not %s and %s",
                   kw_json_str(kw_json_get(finalizer, "name")), name);
    }
    kw_json_push(kw_json_get(finalizer, "kinds"), KW_OBJ("group", kw_str(group), "kind", kw_str(kind)));
    return info;
}

const kw_json *kw_plugin_info_json(const kw_plugin_info *info) { return info->json; }
