/* Kubernetes objects: metadata accessors, references, owner references,
 * and status updates with conditions. */
#include <string.h>

#include "internal.h"

static kw_json *metadata(const kw_json *object) { return kw_json_get(object, "metadata"); }

static const char *meta_str(const kw_json *object, const char *key) {
    return kw_json_str(kw_json_get(metadata(object), key));
}

const char *kw_name(const kw_json *object) {
    const char *name = meta_str(object, "name");
    return name ? name : "";
}

const char *kw_namespace(const kw_json *object) { return meta_str(object, "namespace"); }
const char *kw_uid(const kw_json *object) { return meta_str(object, "uid"); }
const char *kw_resource_version(const kw_json *object) { return meta_str(object, "resourceVersion"); }

bool kw_generation(const kw_json *object, int64_t *out) {
    return kw_json_int(kw_json_get(metadata(object), "generation"), out);
}

kw_json *kw_labels(const kw_json *object) {
    kw_json *labels = kw_json_get(metadata(object), "labels");
    return kw_json_type_of(labels) == KW_JSON_OBJECT ? labels : NULL;
}

kw_json *kw_annotations(const kw_json *object) {
    kw_json *annotations = kw_json_get(metadata(object), "annotations");
    return kw_json_type_of(annotations) == KW_JSON_OBJECT ? annotations : NULL;
}

const char *kw_label(const kw_json *object, const char *key) {
    return kw_json_str(kw_json_get(kw_labels(object), key));
}

const char *kw_annotation(const kw_json *object, const char *key) {
    return kw_json_str(kw_json_get(kw_annotations(object), key));
}

bool kw_is_being_deleted(const kw_json *object) {
    return !kw_json_is_null(kw_json_get(metadata(object), "deletionTimestamp"));
}

const char *kw_path_str(const kw_json *object, const char *path) {
    return kw_json_str(kw_json_path(object, path));
}

kw_ref kw_ref_make(const char *api_version, const char *kind, const char *ns, const char *name) {
    kw_ref ref = {api_version, kind, ns, name};
    return ref;
}

kw_ref kw_ref_of(const kw_json *object) {
    const char *api_version = kw_json_str(kw_json_get(object, "apiVersion"));
    const char *kind = kw_json_str(kw_json_get(object, "kind"));
    return kw_ref_make(api_version ? api_version : "", kind ? kind : "", kw_namespace(object),
                       kw_name(object));
}

kw_json *kw_ref_json(kw_ref ref) {
    return KW_OBJ("apiVersion", kw_str(ref.api_version ? ref.api_version : ""), "kind",
                  kw_str(ref.kind ? ref.kind : ""), "namespace", kw_str(ref.ns), "name",
                  kw_str(ref.name ? ref.name : ""));
}

/* ---- owner references ------------------------------------------------------------ */

kw_json *kw_controller_ref(const kw_json *owner) {
    kw_ref ref = kw_ref_of(owner);
    const char *uid = kw_uid(owner);
    return KW_OBJ("apiVersion", kw_str(ref.api_version), "kind", kw_str(ref.kind), "name",
                  kw_str(ref.name), "uid", kw_str(uid ? uid : ""), "controller", kw_bool(true),
                  "blockOwnerDeletion", kw_bool(true));
}

kw_json *kw_controller_of(const kw_json *object) {
    kw_json *refs = kw_json_get(metadata(object), "ownerReferences");
    for (size_t i = 0; i < kw_json_len(refs); i++) {
        bool controller = false;
        if (kw_json_bool(kw_json_get(kw_json_at(refs, i), "controller"), &controller) && controller) {
            return kw_json_at(refs, i);
        }
    }
    return NULL;
}

bool kw_is_controlled_by(const kw_json *object, const kw_json *owner) {
    const char *uid = kw_uid(owner);
    const char *controller_uid = kw_json_str(kw_json_get(kw_controller_of(object), "uid"));
    return uid != NULL && controller_uid != NULL && strcmp(uid, controller_uid) == 0;
}

/* ---- status and conditions ---------------------------------------------------------- */

struct kw_status {
    kw_ref target;
    bool has_generation;
    int64_t generation;
    kw_json *current;    /* the object's status (may be NULL) */
    kw_json *fields;     /* what to apply, conditions aside */
    kw_json *conditions; /* the conditions to apply, in order of first set */
    bool changed;
};

kw_status *kw_status_of(const kw_json *object) {
    kw_status *s = kw_alloc(sizeof *s);
    s->target = kw_ref_of(object);
    s->has_generation = kw_generation(object, &s->generation);
    s->current = kw_json_get(object, "status");
    s->fields = kw_object();
    s->conditions = kw_array();
    return s;
}

static kw_json *find_condition(const kw_json *conditions, const char *type) {
    for (size_t i = 0; i < kw_json_len(conditions); i++) {
        const char *t = kw_json_str(kw_json_get(kw_json_at(conditions, i), "type"));
        if (t != NULL && strcmp(t, type) == 0) {
            return kw_json_at(conditions, i);
        }
    }
    return NULL;
}

kw_json *kw_condition_of(const kw_json *object, const char *type) {
    return find_condition(kw_json_path(object, "status.conditions"), type);
}

kw_status *kw_condition(kw_status *s, const char *type, kw_condition_status value,
                        const char *reason, const char *message) {
    static const char *const names[] = {"True", "False", "Unknown"};
    const char *status = names[value <= KW_UNKNOWN ? value : KW_UNKNOWN];
    kw_json *current = find_condition(kw_json_get(s->current, "conditions"), type);
    const char *current_status = kw_json_str(kw_json_get(current, "status"));
    const char *current_time = kw_json_str(kw_json_get(current, "lastTransitionTime"));
    const char *time = current_status && strcmp(current_status, status) == 0 && current_time && *current_time
                           ? current_time
                           : kw_now().rfc3339;
    kw_json *condition = KW_OBJ("type", kw_str(type), "status", kw_str(status), "reason",
                                kw_str(reason ? reason : ""), "message", kw_str(message ? message : ""),
                                "lastTransitionTime", kw_str(time));
    if (s->has_generation) {
        kw_json_set(condition, "observedGeneration", kw_int(s->generation));
    }
    s->changed |= !kw_json_equal(current, condition);
    kw_json *earlier = find_condition(s->conditions, type);
    if (earlier != NULL) {
        for (size_t i = 0; i < kw_json_len(s->conditions); i++) {
            if (kw_json_at(s->conditions, i) == earlier) {
                s->conditions->u.arr.items[i] = condition;
            }
        }
    } else {
        kw_json_push(s->conditions, condition);
    }
    return s;
}

kw_status *kw_status_field(kw_status *s, const char *key, kw_json *value) {
    kw_json *current = kw_json_get(s->current, key);
    s->changed |= current == NULL || !kw_json_equal(current, value);
    kw_json_set(s->fields, key, value);
    return s;
}

kw_status *kw_observed_generation(kw_status *s) {
    return kw_status_field(s, "observedGeneration", s->has_generation ? kw_int(s->generation) : kw_null());
}

bool kw_status_changed(const kw_status *s) { return s->changed; }

kw_intent *kw_status_apply(const kw_status *s) {
    if (!s->changed) {
        return NULL;
    }
    kw_json *status = kw_json_clone(s->fields);
    if (kw_json_len(s->conditions) > 0) {
        kw_json_set(status, "conditions", s->conditions);
    }
    return kw_apply_status(s->target, status);
}
