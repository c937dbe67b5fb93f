/* kubewasm.h - the C SDK for kubewasm reconcile plugins (C11).
 *
 * A plugin is three functions registered with KW_PLUGIN:
 *
 *     static kw_plugin_info *describe(void);                   // name, subscriptions, writes
 *     static const char *validate_settings(const char *json);  // NULL = accepted
 *     static kw_outcome *reconcile(const kw_event *event);     // NULL = failed (kw_fail)
 *
 *     KW_PLUGIN(.describe = describe, .validate_settings = validate_settings,
 *               .reconcile = reconcile);
 *
 * Memory: everything the SDK returns (JSON values, strings, intents) lives in
 * an arena that the SDK frees after each call from the host. Plugins never
 * call free() on SDK values, and must not keep them across calls. Running
 * out of memory traps (the host fails that one call and backs off). The
 * arena and the per-call state are global: a component is single-threaded,
 * and so are the native tests that use the fake host.
 *
 * Strings are NUL-terminated UTF-8. A NULL `ns` (namespace) means a
 * cluster-scoped object. Functions that can fail for a reason the plugin
 * should report return an error message (or NULL on success), in the style
 * of `const char *err = kw_get_object(...)`.
 *
 * The JSON documents the SDK builds for intents and outcomes have the shape
 * `kubewasm test` prints and fixtures' expected.json holds, so native tests
 * can compare them with kw_json_equal. */
#ifndef KUBEWASM_H
#define KUBEWASM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define KW_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define KW_SENTINEL __attribute__((sentinel))
#else
#define KW_PRINTF(fmt, args)
#define KW_SENTINEL
#endif

/* ---- memory --------------------------------------------------------------- */

/* Zeroed memory from the call's arena; never NULL (out of memory traps). */
void *kw_alloc(size_t size);
char *kw_strdup(const char *s);
char *kw_strndup(const char *s, size_t len);
char *kw_sprintf(const char *fmt, ...) KW_PRINTF(1, 2);
char *kw_vsprintf(const char *fmt, va_list args);
/* Frees everything allocated since the last reset. The SDK calls it after
 * every export; native tests call it between cases. */
void kw_arena_reset(void);

/* ---- JSON ----------------------------------------------------------------- */

typedef struct kw_json kw_json;
typedef enum kw_json_type {
    KW_JSON_NULL,
    KW_JSON_BOOL,
    KW_JSON_NUMBER,
    KW_JSON_STRING,
    KW_JSON_ARRAY,
    KW_JSON_OBJECT,
} kw_json_type;

/* Parses RFC 8259 JSON (strict: UTF-8, no trailing commas or comments,
 * nesting at most 256 deep). NULL on error, with *error (if error is not
 * NULL) set to a message naming the byte offset. */
kw_json *kw_json_parse(const char *text, size_t len, const char **error);
/* Compact JSON text, NUL-terminated (*len, if not NULL, gets its length). */
char *kw_json_write(const kw_json *value, size_t *len);
/* A JSON string literal of s, quotes included: "a \"b\"" for a "b". */
char *kw_json_quote(const char *s);

kw_json *kw_null(void);
kw_json *kw_bool(bool b);
kw_json *kw_int(int64_t i);
kw_json *kw_number(double d);
kw_json *kw_str(const char *s); /* NULL gives JSON null */
kw_json *kw_strn(const char *s, size_t len);
kw_json *kw_strf(const char *fmt, ...) KW_PRINTF(1, 2);
kw_json *kw_array(void);
kw_json *kw_object(void);
/* kw_obj("key", value, "key2", value2, NULL): an object with these members. */
kw_json *kw_obj(const char *key, ...) KW_SENTINEL;
/* kw_arr(value, value2, NULL): an array of these values. */
kw_json *kw_arr(kw_json *first, ...) KW_SENTINEL;
/* Sentinel-adding forms: KW_OBJ("a", kw_int(1)), KW_ARR(kw_str("x")). */
#define KW_OBJ(...) kw_obj(__VA_ARGS__, (const char *)NULL)
#define KW_ARR(...) kw_arr(__VA_ARGS__, (kw_json *)NULL)

kw_json_type kw_json_type_of(const kw_json *value); /* NULL counts as null */
bool kw_json_is_null(const kw_json *value);
/* The string, or NULL if value is not a string. */
const char *kw_json_str(const kw_json *value);
/* True and *out set if value is a boolean / an integral number in range. */
bool kw_json_bool(const kw_json *value, bool *out);
bool kw_json_int(const kw_json *value, int64_t *out);
bool kw_json_double(const kw_json *value, double *out);
/* Arrays and objects: member count (0 for other types). */
size_t kw_json_len(const kw_json *value);
kw_json *kw_json_at(const kw_json *array, size_t index);     /* NULL if out of range */
const char *kw_json_key_at(const kw_json *object, size_t index);
kw_json *kw_json_value_at(const kw_json *object, size_t index);
kw_json *kw_json_get(const kw_json *object, const char *key); /* NULL if absent */
/* Sets (replacing) a member; returns object. Ignored unless object is an object. */
kw_json *kw_json_set(kw_json *object, const char *key, kw_json *value);
bool kw_json_remove(kw_json *object, const char *key);
/* Appends to an array; returns array. */
kw_json *kw_json_push(kw_json *array, kw_json *value);
/* Deep equality; numbers compare by value; object key order is ignored. */
bool kw_json_equal(const kw_json *a, const kw_json *b);
kw_json *kw_json_clone(const kw_json *value);
/* RFC 7386 merge of patch into target (target is modified and returned). */
kw_json *kw_json_merge(kw_json *target, const kw_json *patch);
/* The value at a dotted path: "spec.replicas", "spec.containers[0].image",
 * "metadata.labels[\"app.kubernetes.io/name\"]"; NULL if any step is missing. */
kw_json *kw_json_path(const kw_json *value, const char *path);
/* Escapes a key for a JSON pointer: "a/b~c" -> "a~1b~0c". */
char *kw_pointer_escape(const char *key);

/* ---- objects -------------------------------------------------------------- */

/* A reference to one object: ns NULL for cluster-scoped kinds. */
typedef struct kw_ref {
    const char *api_version;
    const char *kind;
    const char *ns;
    const char *name;
} kw_ref;

const char *kw_name(const kw_json *object);      /* "" if absent */
const char *kw_namespace(const kw_json *object); /* NULL if cluster-scoped */
const char *kw_uid(const kw_json *object);       /* NULL if absent */
const char *kw_resource_version(const kw_json *object);
bool kw_generation(const kw_json *object, int64_t *out);
const char *kw_label(const kw_json *object, const char *key);      /* NULL if absent */
const char *kw_annotation(const kw_json *object, const char *key); /* NULL if absent */
kw_json *kw_labels(const kw_json *object);      /* the map, or NULL */
kw_json *kw_annotations(const kw_json *object); /* the map, or NULL */
bool kw_is_being_deleted(const kw_json *object);
/* kw_json_path on the object, as a string (NULL if absent or not a string). */
const char *kw_path_str(const kw_json *object, const char *path);
kw_ref kw_ref_of(const kw_json *object);
kw_ref kw_ref_make(const char *api_version, const char *kind, const char *ns, const char *name);
kw_json *kw_ref_json(kw_ref ref);

/* Owner references. */
/* {apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true} */
kw_json *kw_controller_ref(const kw_json *owner);
/* The owner reference with controller: true, or NULL. */
kw_json *kw_controller_of(const kw_json *object);
bool kw_is_controlled_by(const kw_json *object, const kw_json *owner);

/* ---- the event ------------------------------------------------------------ */

typedef enum kw_event_type { KW_APPLIED, KW_DELETED, KW_RESYNC, KW_FINALIZING } kw_event_type;

typedef struct kw_kind {
    const char *group;
    const char *version;
    const char *kind;
    const char *plural;
    bool namespaced;
} kw_kind;

typedef struct kw_event {
    kw_event_type type;
    kw_kind kind;
    kw_json *object;
} kw_event;

const char *kw_event_type_name(kw_event_type type); /* "applied", ... */

/* ---- describe -------------------------------------------------------------- */

typedef struct kw_plugin_info kw_plugin_info;
kw_plugin_info *kw_plugin_info_new(const char *name, const char *version);
/* Subscribes to group/version/kind ("*" for any); selector may be NULL;
 * namespaces: NULL-terminated list, or NULL for every namespace. */
kw_plugin_info *kw_subscribe(kw_plugin_info *info, const char *group, const char *version, const char *kind,
                      const char *label_selector, const char *const *namespaces);
kw_plugin_info *kw_writes(kw_plugin_info *info, const char *group, const char *kind);
/* version NULL: the version the cluster prefers. */
kw_plugin_info *kw_owns(kw_plugin_info *info, const char *group, const char *kind, const char *version);
/* Changes of source objects (version NULL: the preferred one) reconcile the
 * target objects chosen by rule: KW_MAP_FIELD_REF (arg: a dotted path),
 * KW_MAP_LABEL (a label key), KW_MAP_SELECTOR (a label selector). */
typedef enum kw_map_rule { KW_MAP_FIELD_REF, KW_MAP_LABEL, KW_MAP_SELECTOR } kw_map_rule;
kw_plugin_info *kw_watches(kw_plugin_info *info, const char *source_group, const char *source_kind,
                    const char *source_version, const char *target_group, const char *target_kind,
                    kw_map_rule rule, const char *arg);
/* Adds a finalizer kind (call once per kind; the name must be the same). */
kw_plugin_info *kw_finalizer(kw_plugin_info *info, const char *name, const char *group, const char *kind);
/* The plugin-info as JSON (the WIT record, camelCase). */
const kw_json *kw_plugin_info_json(const kw_plugin_info *info);

/* ---- intents and outcomes --------------------------------------------------- */

typedef struct kw_intent kw_intent;
typedef struct kw_outcome kw_outcome;
typedef enum kw_propagation { KW_BACKGROUND, KW_FOREGROUND, KW_ORPHAN } kw_propagation;
typedef enum kw_severity { KW_NORMAL, KW_WARNING } kw_severity;

/* Server-side apply of `fields` with ref's apiVersion, kind, name and
 * namespace filled in (force: true, status: false). fields may be NULL. */
kw_intent *kw_apply(kw_ref ref, kw_json *fields);
/* Apply {apiVersion, kind, metadata: {name, namespace}, status} to the status
 * subresource (force: true). */
kw_intent *kw_apply_status(kw_ref ref, kw_json *status);
/* Apply a whole applied configuration as given. */
kw_intent *kw_apply_object(kw_json *object);
kw_intent *kw_merge_patch(kw_ref target, kw_json *patch);
/* ops: an array built with kw_op (or by hand). */
kw_intent *kw_json_patch(kw_ref target, kw_json *ops);
/* Appends {op, path, value} to ops (value NULL for "remove"); returns ops. */
kw_json *kw_op(kw_json *ops, const char *op, const char *path, kw_json *value);
kw_intent *kw_create(kw_json *object);
kw_intent *kw_delete(kw_ref target);
kw_intent *kw_record_event(kw_ref regarding, kw_severity severity, const char *reason,
                           const char *note);

/* Modifiers; each returns its intent. Misuse (e.g. force on a delete) traps. */
kw_intent *kw_force(kw_intent *apply, bool force);
kw_intent *kw_on_status(kw_intent *apply_or_patch);
kw_intent *kw_precondition(kw_intent *patch, const char *resource_version); /* NULL: none */
kw_intent *kw_propagate(kw_intent *del, kw_propagation policy);
kw_intent *kw_action(kw_intent *event, const char *action); /* default "Reconcile" */
/* Appends an owner reference to the object of an apply or create. */
kw_intent *kw_owner(kw_intent *apply_or_create, kw_json *owner_ref);
/* "Background" -> KW_BACKGROUND...; false if name is none of the three. */
bool kw_propagation_parse(const char *name, kw_propagation *out);
const kw_json *kw_intent_json(const kw_intent *intent);

kw_outcome *kw_outcome_new(void);
/* kw_outcome_of(intent, intent2, NULL); KW_OUTCOME(a, b) adds the NULL. */
kw_outcome *kw_outcome_of(kw_intent *first, ...) KW_SENTINEL;
#define KW_OUTCOME(...) kw_outcome_of(__VA_ARGS__, (kw_intent *)NULL)
/* Appends intent (NULL is ignored, so kw_status_apply's "no change" fits). */
kw_outcome *kw_add(kw_outcome *outcome, kw_intent *intent);
kw_outcome *kw_requeue_after(kw_outcome *outcome, uint64_t ms);
/* Fails the reconcile with this message: returns NULL for `return kw_fail(...)`. */
kw_outcome *kw_fail(const char *fmt, ...) KW_PRINTF(1, 2);
/* The message of the last kw_fail, or NULL. */
const char *kw_failure(void);
/* {"intents": [...], "requeueAfterMs": n|null} */
const kw_json *kw_outcome_json(const kw_outcome *outcome);

/* ---- status and conditions --------------------------------------------------- */

typedef struct kw_status kw_status;
typedef enum kw_condition_status { KW_TRUE, KW_FALSE, KW_UNKNOWN } kw_condition_status;
/* A status update of object: fields and conditions to apply. */
kw_status *kw_status_of(const kw_json *object);
/* Sets condition `type` with observedGeneration = the object's generation;
 * lastTransitionTime is kw_now() when the condition is new or its status
 * changes, else the current one. */
kw_status *kw_condition(kw_status *status, const char *type, kw_condition_status value,
                        const char *reason, const char *message);
kw_status *kw_status_field(kw_status *status, const char *key, kw_json *value);
kw_status *kw_observed_generation(kw_status *status);
bool kw_status_changed(const kw_status *status);
/* The apply to the status subresource, or NULL if the object already says it. */
kw_intent *kw_status_apply(const kw_status *status);
/* The object's current condition of this type, or NULL. */
kw_json *kw_condition_of(const kw_json *object, const char *type);

/* ---- settings ------------------------------------------------------------- */

typedef struct kw_settings kw_settings;
/* Parses a settings document whose known fields are listed (NULL-terminated).
 * Errors, the first one kept: "settings: not valid JSON", "settings: must be a
 * JSON object", "settings.KEY: unknown field (known: a, b)". */
kw_settings *kw_settings_parse(const char *text, const char *field, ...) KW_SENTINEL;
/* The raw value of a field, or NULL if absent. */
kw_json *kw_settings_value(kw_settings *settings, const char *field);
/* Typed fields: the default if absent (or after an error); a wrong type
 * records "settings.FIELD: must be a string" and the like. */
const char *kw_settings_str(kw_settings *settings, const char *field, const char *fallback);
bool kw_settings_bool(kw_settings *settings, const char *field, bool fallback);
/* A whole number (2.0 counts) from min to max: else "settings.FIELD: must be
 * a whole number from MIN to MAX". */
int64_t kw_settings_int(kw_settings *settings, const char *field, int64_t fallback,
                        int64_t min, int64_t max);
/* An array of strings (NULL-terminated; *count may be NULL); an item of
 * another type records "settings.FIELD[i]: must be a string". */
const char **kw_settings_strs(kw_settings *settings, const char *field, size_t *count);
/* Records "settings.FIELD: <formatted problem>" unless an error is recorded. */
void kw_settings_invalid(kw_settings *settings, const char *field, const char *fmt, ...)
    KW_PRINTF(3, 4);
/* The first error, or NULL if the settings are valid. */
const char *kw_settings_error(const kw_settings *settings);

/* ---- the host ----------------------------------------------------------------- */

typedef enum kw_log_level { KW_TRACE, KW_DEBUG, KW_INFO, KW_WARN, KW_ERROR } kw_log_level;
/* kw_log(level, message, "key", "value", ..., NULL) */
void kw_log(kw_log_level level, const char *message, ...) KW_SENTINEL;
#define kw_trace(...) kw_log(KW_TRACE, __VA_ARGS__, (const char *)NULL)
#define kw_debug(...) kw_log(KW_DEBUG, __VA_ARGS__, (const char *)NULL)
#define kw_info(...) kw_log(KW_INFO, __VA_ARGS__, (const char *)NULL)
#define kw_warn(...) kw_log(KW_WARN, __VA_ARGS__, (const char *)NULL)
#define kw_error(...) kw_log(KW_ERROR, __VA_ARGS__, (const char *)NULL)

/* The operator's settings document ("{}" if none). */
const char *kw_settings_text(void);

/* Reads one object from the host's cache: *out is the object, or NULL if it
 * does not exist. Returns NULL, or the host's error (kind not readable). */
const char *kw_get_object(const char *api_version, const char *kind, const char *ns,
                          const char *name, kw_json **out);
/* Lists objects (ns NULL: every namespace; selector NULL: all) into *out, a
 * JSON array. Returns NULL or the host's error. */
const char *kw_list_objects(const char *api_version, const char *kind, const char *ns,
                            const char *label_selector, kw_json **out);

/* kw_get_object of the object ref names. */
const char *kw_get_ref(kw_ref ref, kw_json **out);
/* The children of owner of one kind: objects in its namespace whose
 * controller reference carries its uid, sorted by namespace and name.
 * Declare the kind with kw_owns so the host caches it. */
const char *kw_list_owned(const char *api_version, const char *kind, const kw_json *owner, kw_json **out);

typedef struct kw_timestamp {
    int64_t epoch_ms;
    const char *rfc3339;
} kw_timestamp;
/* The host clock (the same instant for the whole call). */
kw_timestamp kw_now(void);

/* ---- registration ------------------------------------------------------------- */

typedef struct kw_plugin {
    kw_plugin_info *(*describe)(void);
    /* Optional: NULL accepts every settings document. */
    const char *(*validate_settings)(const char *json);
    kw_outcome *(*reconcile)(const kw_event *event);
} kw_plugin;

/* Exports the plugin: KW_PLUGIN(.describe = d, .reconcile = r); */
#define KW_PLUGIN(...) const kw_plugin kw_exported_plugin = {__VA_ARGS__}
extern const kw_plugin kw_exported_plugin;

/* What the export glue (and the native test helpers) do with one call. */
const kw_json *kw_call_describe(const kw_plugin *plugin);
const char *kw_call_validate_settings(const kw_plugin *plugin, const char *json);
/* The outcome JSON, or NULL with the failure in *error. A plugin returning
 * NULL without kw_fail fails with "reconcile failed". */
const kw_json *kw_call_reconcile(const kw_plugin *plugin, const kw_event *event, const char **error);

#ifdef __cplusplus
}
#endif
#endif
