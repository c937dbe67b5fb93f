/* The conformance plugin in C: the behaviour conformance/README.md
 * specifies, which every language implements and conformance/fixtures checks
 * through `kubewasm test`. Each ConfigMap says in its
 * `conformance.kubewasm.dev/do` label which part of the contract to
 * exercise. */
#include <stdlib.h>
#include <string.h>

#include "kubewasm.h"

#define PREFIX "conformance.kubewasm.dev/"
#define DO PREFIX "do"
#define FINALIZER PREFIX "cleanup"

typedef struct settings {
    const char *reason;
    int64_t requeue_after_ms;
} settings;

static bool upper_camel_case(const char *s) {
    if (!(*s >= 'A' && *s <= 'Z')) return false;
    for (s++; *s; s++) {
        bool ok = (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9');
        if (!ok) return false;
    }
    return true;
}

/* NULL and *out filled, or the first problem naming its field. */
static const char *parse_settings(const char *text, settings *out) {
    kw_settings *s = kw_settings_parse(text, "reason", "requeueAfterMs", NULL);
    out->reason = kw_settings_str(s, "reason", "Conformance");
    if (!upper_camel_case(out->reason)) {
        kw_settings_invalid(s, "reason", "%s is not UpperCamelCase", kw_json_quote(out->reason));
    }
    out->requeue_after_ms = kw_settings_int(s, "requeueAfterMs", 1500, 1, 3600000);
    return kw_settings_error(s);
}

static const char *annotation(const kw_json *obj, const char *name) {
    return kw_annotation(obj, kw_sprintf(PREFIX "%s", name));
}

static kw_ref sibling(const kw_json *obj, const char *name) {
    return kw_ref_make("v1", "ConfigMap", kw_namespace(obj), name);
}

/* Apply SELF's identity plus these annotations. */
static kw_intent *annotate(const kw_json *obj, kw_json *annotations) {
    return kw_apply(kw_ref_of(obj), KW_OBJ("metadata", KW_OBJ("annotations", annotations)));
}

static kw_intent *applied(const kw_json *obj, const char *value) {
    return annotate(obj, KW_OBJ(PREFIX "applied", kw_str(value ? value : "yes")));
}

static kw_intent *event_about(const kw_json *obj, const settings *cfg) {
    const char *severity = annotation(obj, "severity");
    kw_severity level = severity && strcmp(severity, "Warning") == 0 ? KW_WARNING : KW_NORMAL;
    const char *note = kw_sprintf("conformance event for %s", kw_name(obj));
    return kw_action(kw_record_event(kw_ref_of(obj), level, cfg->reason, note), "Test");
}

static bool all_digits(const char *s) {
    if (*s == '\0') return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
    }
    return true;
}

static kw_outcome *do_get(const kw_json *obj) {
    const char *target = annotation(obj, "target");
    kw_json *found;
    const char *err = kw_get_object("v1", "ConfigMap", kw_namespace(obj), target ? target : "", &found);
    if (err != NULL) return kw_fail("%s", err);
    if (found == NULL) return KW_OUTCOME(annotate(obj, KW_OBJ(PREFIX "read", kw_str("absent"))));
    const char *value = kw_path_str(found, "data.value");
    return KW_OUTCOME(annotate(obj, KW_OBJ(PREFIX "read", kw_str("found"), PREFIX "read-value",
                                           kw_str(value ? value : ""))));
}

static kw_outcome *do_get_secret(const kw_json *obj) {
    const char *target = annotation(obj, "target");
    if (target == NULL) target = kw_name(obj);
    kw_json *secret;
    if (kw_get_object("v1", "Secret", kw_namespace(obj), target, &secret) != NULL) {
        const char *ns = kw_namespace(obj);
        const char *note = kw_sprintf("reading Secret %s/%s was refused", ns ? ns : "", target);
        kw_intent *refused = kw_record_event(kw_ref_of(obj), KW_WARNING, "ReadRefused", note);
        return KW_OUTCOME(kw_action(refused, "Read"));
    }
    return KW_OUTCOME(annotate(obj, KW_OBJ(PREFIX "read", kw_str("allowed"))));
}

static int by_string(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static kw_outcome *do_list(const kw_json *obj) {
    const char *given = annotation(obj, "namespace");
    const char *scope = given == NULL ? kw_namespace(obj) : strcmp(given, "*") == 0 ? NULL : given;
    kw_json *items;
    const char *err = kw_list_objects("v1", "ConfigMap", scope, annotation(obj, "selector"), &items);
    if (err != NULL) return kw_fail("%s", err);
    size_t n = kw_json_len(items);
    const char **names = kw_alloc((n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) {
        const char *ns = kw_namespace(kw_json_at(items, i));
        names[i] = kw_sprintf("%s/%s", ns ? ns : "", kw_name(kw_json_at(items, i)));
    }
    qsort(names, n, sizeof *names, by_string);
    char *joined = "";
    for (size_t i = 0; i < n; i++) {
        joined = i ? kw_sprintf("%s,%s", joined, names[i]) : kw_strdup(names[i]);
    }
    return KW_OUTCOME(annotate(obj, KW_OBJ(PREFIX "listed", kw_str(joined))));
}

static kw_outcome *do_delete(const kw_json *obj) {
    const char *target = annotation(obj, "target");
    kw_intent *del = kw_delete(sibling(obj, target ? target : kw_sprintf("%s-child", kw_name(obj))));
    const char *given = annotation(obj, "propagation");
    if (given != NULL) {
        kw_propagation policy;
        if (!kw_propagation_parse(given, &policy)) {
            return kw_fail("annotation " PREFIX "propagation: %s is not Background, Foreground or Orphan",
                           kw_json_quote(given));
        }
        kw_propagate(del, policy);
    }
    return KW_OUTCOME(del);
}

static kw_outcome *do_create(const kw_json *obj, const char *value) {
    const char *name = kw_name(obj);
    kw_json *child = KW_OBJ(
        "apiVersion", kw_str("v1"), "kind", kw_str("ConfigMap"), "metadata",
        KW_OBJ("name", kw_strf("%s-child", name), "namespace", kw_str(kw_namespace(obj)), "labels",
               KW_OBJ(PREFIX "parent", kw_str(name))),
        "data", KW_OBJ("value", kw_str(value ? value : "")));
    return KW_OUTCOME(kw_owner(kw_create(child), kw_controller_ref(obj)));
}

static kw_outcome *do_action(const char *action, const kw_json *obj, const settings *cfg) {
    const char *value = kw_path_str(obj, "data.value");
    kw_ref self = kw_ref_of(obj);
    if (strcmp(action, "nothing") == 0) return kw_outcome_new();
    if (strcmp(action, "apply") == 0) return KW_OUTCOME(applied(obj, value));
    if (strcmp(action, "apply-unforced") == 0) return KW_OUTCOME(kw_force(applied(obj, value), false));
    if (strcmp(action, "apply-status") == 0) {
        kw_json *status = KW_OBJ("phase", kw_str("Reconciled"));
        int64_t generation;
        if (kw_generation(obj, &generation)) kw_json_set(status, "observedGeneration", kw_int(generation));
        return KW_OUTCOME(kw_apply_status(self, status));
    }
    if (strcmp(action, "merge-patch") == 0) {
        kw_json *patch = KW_OBJ("metadata", KW_OBJ("labels", KW_OBJ(PREFIX "patched", kw_str("merge"))));
        return KW_OUTCOME(kw_precondition(kw_merge_patch(self, patch), kw_resource_version(obj)));
    }
    if (strcmp(action, "merge-patch-status") == 0) {
        return KW_OUTCOME(kw_on_status(kw_merge_patch(self, KW_OBJ("status", KW_OBJ("phase", kw_str("Patched"))))));
    }
    if (strcmp(action, "json-patch") == 0) {
        if (value == NULL) return kw_fail("json-patch needs data.value");
        kw_json *ops = kw_array();
        kw_op(ops, "test", "/data/value", kw_str(value));
        kw_op(ops, "replace", "/data/value", kw_strf("%s!", value));
        kw_op(ops, "add", kw_sprintf("/metadata/labels/%s", kw_pointer_escape(PREFIX "patched")), kw_str("json"));
        return KW_OUTCOME(kw_json_patch(self, ops));
    }
    if (strcmp(action, "create") == 0) return do_create(obj, value);
    if (strcmp(action, "delete") == 0) return do_delete(obj);
    if (strcmp(action, "event") == 0) return KW_OUTCOME(event_about(obj, cfg));
    if (strcmp(action, "apply-and-event") == 0) {
        kw_outcome *both = KW_OUTCOME(applied(obj, value), event_about(obj, cfg));
        return kw_requeue_after(both, (uint64_t)cfg->requeue_after_ms);
    }
    if (strcmp(action, "get") == 0) return do_get(obj);
    if (strcmp(action, "get-secret") == 0) return do_get_secret(obj);
    if (strcmp(action, "list") == 0) return do_list(obj);
    if (strcmp(action, "now") == 0) {
        kw_timestamp now = kw_now();
        return KW_OUTCOME(annotate(obj, KW_OBJ(PREFIX "now", kw_str(now.rfc3339), PREFIX "now-ms",
                                               kw_strf("%lld", (long long)now.epoch_ms))));
    }
    if (strcmp(action, "requeue") == 0) {
        const char *text = annotation(obj, "after-ms");
        if (text == NULL) return kw_requeue_after(kw_outcome_new(), (uint64_t)cfg->requeue_after_ms);
        if (!all_digits(text) || strlen(text) > 19) {
            return kw_fail("annotation " PREFIX "after-ms: %s is not a whole number of milliseconds",
                           kw_json_quote(text));
        }
        return kw_requeue_after(kw_outcome_new(), strtoull(text, NULL, 10));
    }
    if (strcmp(action, "fail") == 0) {
        const char *ns = kw_namespace(obj);
        return kw_fail("asked to fail on %s/%s", ns ? ns : "", kw_name(obj));
    }
    return kw_fail("unknown " DO " %s", kw_json_quote(action));
}

static kw_outcome *reconcile(const kw_event *event) {
    settings cfg;
    const char *invalid = parse_settings(kw_settings_text(), &cfg);
    if (invalid != NULL) return kw_fail("%s", invalid);
    const kw_json *obj = event->object;
    const char *action = kw_label(obj, DO);
    if (action == NULL) action = "";
    kw_info("conformance reconcile", "do", action);
    const char *value = kw_path_str(obj, "data.value");
    const char *name = kw_name(obj);

    if (event->type == KW_DELETED) {
        kw_ref tombstone = sibling(obj, kw_sprintf("%s-tombstone", name));
        return KW_OUTCOME(kw_apply(tombstone, KW_OBJ("data", KW_OBJ("last", kw_str(value ? value : "")))));
    }
    if (event->type == KW_FINALIZING) {
        const char *child = kw_sprintf("%s-child", name);
        kw_intent *cleaned = kw_record_event(kw_ref_of(obj), KW_NORMAL, cfg.reason,
                                             kw_sprintf("cleaned up %s", child));
        return KW_OUTCOME(kw_propagate(kw_delete(sibling(obj, child)), KW_FOREGROUND),
                          kw_action(cleaned, "Finalize"));
    }
    if (kw_is_being_deleted(obj)) return kw_outcome_new();
    return do_action(action, obj, &cfg);
}

static const char *validate_settings(const char *text) {
    settings cfg;
    return parse_settings(text, &cfg);
}

static kw_plugin_info *describe(void) {
    kw_plugin_info *info = kw_plugin_info_new("conformance", "1.0.0");
    kw_subscribe(info, "", "v1", "ConfigMap", DO, NULL);
    kw_writes(info, "", "ConfigMap");
    kw_finalizer(info, FINALIZER, "", "ConfigMap");
    return info;
}

KW_PLUGIN(.describe = describe, .validate_settings = validate_settings, .reconcile = reconcile);
