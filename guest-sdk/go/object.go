package kubewasm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Object is one Kubernetes object as the host hands it over: its JSON,
// decoded, with accessors for what a reconcile asks (identity, labels,
// annotations, owners, conditions) and any field by a dotted path.
//
// Numbers are kept as json.Number, so an object read and written back
// keeps every number exactly. Value returns the decoded map for anything
// the accessors do not cover; Decode fills a typed struct.
type Object struct {
	value map[string]any
}

// ParseObject decodes JSON text that must be a JSON object.
func ParseObject(text string) (*Object, error) {
	value, err := decodeJSON([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("object is not valid JSON: %w", err)
	}
	m, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("an object must be a JSON object, not %s", jsonTypeName(value))
	}
	return &Object{value: m}, nil
}

// NewObject wraps a decoded JSON object (tests build objects this way):
//
//	kubewasm.NewObject(map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
//		"metadata": map[string]any{"name": "web", "namespace": "shop"}})
//
// Numbers may be Go numbers or json.Number. The map is used, not copied.
func NewObject(value map[string]any) *Object {
	if value == nil {
		value = map[string]any{}
	}
	return &Object{value: value}
}

// decodeJSON decodes one JSON value, numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var value any
	if err := dec.Decode(&value); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return value, nil
}

func jsonTypeName(value any) string {
	switch value.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	default:
		return "a number"
	}
}

// Value is the decoded object. Changing it changes the Object.
func (o *Object) Value() map[string]any { return o.value }

// MarshalJSON encodes the object.
func (o *Object) MarshalJSON() ([]byte, error) { return json.Marshal(o.value) }

// String is the object's kind and namespace/name, for messages.
func (o *Object) String() string { return o.Ref().String() }

// Decode fills `into` (a pointer, e.g. to a struct with json tags) from the
// whole object.
func (o *Object) Decode(into any) error {
	data, err := json.Marshal(o.value)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", o.Ref(), err)
	}
	return nil
}

// Get is the value at a dotted path (see GetPath) and whether it exists.
func (o *Object) Get(path string) (any, bool) { return GetPath(o.value, path) }

// GetString is the string at a dotted path; false if it is absent or not a
// string.
func (o *Object) GetString(path string) (string, bool) {
	v, _ := o.Get(path)
	s, ok := v.(string)
	return s, ok
}

// GetInt is the whole number at a dotted path; false if it is absent or not
// a whole number.
func (o *Object) GetInt(path string) (int64, bool) {
	v, _ := o.Get(path)
	return wholeNumber(v)
}

// GetMap is the JSON object at a dotted path; nil if absent or not an object.
func (o *Object) GetMap(path string) map[string]any {
	v, _ := o.Get(path)
	m, _ := v.(map[string]any)
	return m
}

// wholeNumber converts a decoded JSON number that is whole (2.0 counts).
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return i, true
		}
		f, err := n.Float64()
		if err != nil || f != float64(int64(f)) {
			return 0, false
		}
		return int64(f), true
	case float64:
		if n != float64(int64(n)) {
			return 0, false
		}
		return int64(n), true
	case int:
		return int64(n), true
	case int64:
		return n, true
	case int32:
		return int64(n), true
	}
	return 0, false
}

func (o *Object) metadata() map[string]any {
	m, _ := o.value["metadata"].(map[string]any)
	return m
}

func (o *Object) metaString(key string) string {
	s, _ := o.metadata()[key].(string)
	return s
}

// APIVersion is `apiVersion`: `v1` for the core group, else `group/version`.
func (o *Object) APIVersion() string { s, _ := o.value["apiVersion"].(string); return s }

// Kind is `kind`, e.g. `ConfigMap`.
func (o *Object) Kind() string { s, _ := o.value["kind"].(string); return s }

// Name is `metadata.name`.
func (o *Object) Name() string { return o.metaString("name") }

// Namespace is `metadata.namespace`; empty for a cluster-scoped object.
func (o *Object) Namespace() string { return o.metaString("namespace") }

// UID is `metadata.uid`; empty if absent.
func (o *Object) UID() string { return o.metaString("uid") }

// ResourceVersion is `metadata.resourceVersion`; empty if absent.
func (o *Object) ResourceVersion() string { return o.metaString("resourceVersion") }

// Generation is `metadata.generation`, and whether the object has one.
func (o *Object) Generation() (int64, bool) { return wholeNumber(o.metadata()["generation"]) }

// CreationTimestamp is `metadata.creationTimestamp` (RFC 3339); empty if absent.
func (o *Object) CreationTimestamp() string { return o.metaString("creationTimestamp") }

// IsBeingDeleted reports whether `metadata.deletionTimestamp` is set: the
// object is terminating, waiting for its finalizers.
func (o *Object) IsBeingDeleted() bool { return o.metaString("deletionTimestamp") != "" }

func stringMap(value any) map[string]string {
	out := map[string]string{}
	m, _ := value.(map[string]any)
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// Labels is a copy of `metadata.labels` (empty, never nil, if none).
func (o *Object) Labels() map[string]string { return stringMap(o.metadata()["labels"]) }

// Label is one label's value and whether the object has it.
func (o *Object) Label(key string) (string, bool) {
	labels, _ := o.metadata()["labels"].(map[string]any)
	s, ok := labels[key].(string)
	return s, ok
}

// Annotations is a copy of `metadata.annotations` (empty, never nil, if none).
func (o *Object) Annotations() map[string]string {
	return stringMap(o.metadata()["annotations"])
}

// Annotation is one annotation's value and whether the object has it.
func (o *Object) Annotation(key string) (string, bool) {
	annotations, _ := o.metadata()["annotations"].(map[string]any)
	s, ok := annotations[key].(string)
	return s, ok
}

// Finalizers is `metadata.finalizers`.
func (o *Object) Finalizers() []string {
	list, _ := o.metadata()["finalizers"].([]any)
	var out []string
	for _, f := range list {
		if s, ok := f.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// Ref is the object's reference, for intents that target it.
func (o *Object) Ref() ObjectRef {
	return ObjectRef{APIVersion: o.APIVersion(), Kind: o.Kind(), Namespace: o.Namespace(), Name: o.Name()}
}

// ObjectRef names one object. APIVersion is `v1` for the core group and
// `group/version` otherwise; Namespace is empty for cluster-scoped kinds.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
}

// Skeleton is the object's identity as a partial object to apply or
// create: `{apiVersion, kind, metadata: {name, namespace}}`.
func (r ObjectRef) Skeleton() map[string]any {
	metadata := map[string]any{"name": r.Name}
	if r.Namespace != "" {
		metadata["namespace"] = r.Namespace
	}
	return map[string]any{"apiVersion": r.APIVersion, "kind": r.Kind, "metadata": metadata}
}

// String is `Kind namespace/name` (or `Kind name` when cluster-scoped).
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// MarshalJSON writes the form `kubewasm test` uses: a null namespace for a
// cluster-scoped object.
func (r ObjectRef) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"apiVersion": r.APIVersion, "kind": r.Kind, "namespace": optional(r.Namespace), "name": r.Name,
	})
}

// optional is nil for "" (JSON null), else the string.
func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SortObjects orders objects by namespace, then name.
func SortObjects(objects []*Object) {
	sort.SliceStable(objects, func(i, j int) bool {
		a, b := objects[i], objects[j]
		if a.Namespace() != b.Namespace() {
			return a.Namespace() < b.Namespace()
		}
		return a.Name() < b.Name()
	})
}

// deepCopy copies a decoded JSON value, so builders never share maps with
// their callers.
func deepCopy(value any) any {
	switch v := value.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = deepCopy(item)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = deepCopy(item)
		}
		return out
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, item := range v {
			out[k] = item
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, item := range v {
			out[i] = item
		}
		return out
	default:
		return v
	}
}
