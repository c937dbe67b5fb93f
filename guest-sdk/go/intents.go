package kubewasm

import "encoding/json"

// Intent is one write a plugin asks the host to make: Apply, Patch, Create,
// Delete or RecordEvent. The host checks it against the plugin's declared
// write scope and makes it with the plugin's own field manager.
type Intent interface {
	// intentJSON is the intent in `kubewasm test`'s expected.json form.
	intentJSON() map[string]any
}

// Apply is a server-side apply of a partial object: `apiVersion`, `kind`,
// `metadata.name` (and `namespace`) and the fields the plugin owns. Fields
// the plugin applied before and leaves out are removed by the API server.
type Apply struct {
	// Object is the applied configuration.
	Object map[string]any
	// Status applies to the `status` subresource instead of the object.
	Status bool
	// Force takes ownership of fields another manager owns (controllers
	// normally force; the constructors set it).
	Force bool
}

// NewApply applies a whole partial object (forced).
func NewApply(object map[string]any) Apply {
	obj, _ := deepCopy(object).(map[string]any)
	return Apply{Object: obj, Force: true}
}

// ApplyFields applies `fields` to `target`: its identity (Skeleton) with
// `fields` added, `fields["metadata"]` merged into the identity's metadata.
//
//	kubewasm.ApplyFields(obj.Ref(), map[string]any{
//		"metadata": map[string]any{"labels": map[string]any{"team": "shop"}},
//	})
func ApplyFields(target ObjectRef, fields map[string]any) Apply {
	obj := target.Skeleton()
	for key, value := range fields {
		switch key {
		case "apiVersion", "kind":
		case "metadata":
			if meta, ok := deepCopy(value).(map[string]any); ok {
				skeleton := obj["metadata"].(map[string]any)
				for k, v := range meta {
					if k != "name" && k != "namespace" {
						skeleton[k] = v
					}
				}
				continue
			}
			obj[key] = deepCopy(value)
		default:
			obj[key] = deepCopy(value)
		}
	}
	return Apply{Object: obj, Force: true}
}

// ApplyStatus applies `status` to `target`'s status subresource (forced).
func ApplyStatus(target ObjectRef, status map[string]any) Apply {
	obj := target.Skeleton()
	obj["status"] = deepCopy(status)
	return Apply{Object: obj, Status: true, Force: true}
}

// WithForce is the apply with `force` set to force.
func (a Apply) WithForce(force bool) Apply { a.Force = force; return a }

// OnStatus is the apply on the status subresource.
func (a Apply) OnStatus() Apply { a.Status = true; return a }

// WithOwner is the apply with `owner` in `metadata.ownerReferences`
// (replacing a reference with the same uid).
func (a Apply) WithOwner(owner OwnerReference) Apply {
	a.Object = withOwner(a.Object, owner)
	return a
}

func (a Apply) intentJSON() map[string]any {
	return map[string]any{"type": "apply", "object": a.Object, "status": a.Status, "force": a.Force}
}

// Patch is a JSON merge patch (RFC 7386) or a JSON patch (RFC 6902) on one
// object. Build it with MergePatch or JSONPatch.
type Patch struct {
	Target ObjectRef
	// Document is the merge patch (a map) or the JSON patch operations (Ops).
	Document any
	// JSON is true for a JSON patch, false for a merge patch.
	JSON bool
	// Status patches the `status` subresource instead of the object.
	Status bool
	// ResourceVersion, if not empty, is a precondition: the write fails with
	// a conflict (and the object is reconciled again) unless the object
	// still has this `metadata.resourceVersion`.
	ResourceVersion string
}

// MergePatch is a JSON merge patch of target: keys set to nil are removed.
func MergePatch(target ObjectRef, patch map[string]any) Patch {
	return Patch{Target: target, Document: deepCopy(patch)}
}

// JSONPatch is a JSON patch of target with the operations `ops`.
func JSONPatch(target ObjectRef, ops Ops) Patch {
	return Patch{Target: target, Document: append(Ops{}, ops...), JSON: true}
}

// OnStatus is the patch on the status subresource.
func (p Patch) OnStatus() Patch { p.Status = true; return p }

// WithResourceVersion is the patch with a resourceVersion precondition
// ("" means none).
func (p Patch) WithResourceVersion(resourceVersion string) Patch {
	p.ResourceVersion = resourceVersion
	return p
}

func (p Patch) intentJSON() map[string]any {
	kind := "merge-patch"
	if p.JSON {
		kind = "json-patch"
	}
	return map[string]any{
		"type": kind, "target": p.Target, "patch": p.Document, "status": p.Status,
		"resourceVersion": optional(p.ResourceVersion),
	}
}

// Op is one JSON patch operation.
type Op struct {
	Op    string
	Path  string
	Value any
}

// MarshalJSON writes the operation; `remove` has no value.
func (o Op) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(map[string]any{"op": o.Op, "path": o.Path})
	}
	return json.Marshal(map[string]any{"op": o.Op, "path": o.Path, "value": o.Value})
}

// Ops is a JSON patch built operation by operation. Paths are JSON
// Pointers: escape keys with EscapePointer.
//
//	kubewasm.Ops{}.Test("/data/value", "a").Replace("/data/value", "b")
type Ops []Op

func (ops Ops) with(op Op) Ops { return append(append(Ops{}, ops...), op) }

// Test is a precondition: the patch fails, changing nothing, unless path
// holds value.
func (ops Ops) Test(path string, value any) Ops {
	return ops.with(Op{"test", path, deepCopy(value)})
}

// Add adds value at path (or replaces a map key).
func (ops Ops) Add(path string, value any) Ops { return ops.with(Op{"add", path, deepCopy(value)}) }

// Replace replaces the value at path, which must exist.
func (ops Ops) Replace(path string, value any) Ops {
	return ops.with(Op{"replace", path, deepCopy(value)})
}

// Remove removes the value at path, which must exist.
func (ops Ops) Remove(path string) Ops { return ops.with(Op{Op: "remove", Path: path}) }

// Create creates a new object (`apiVersion`, `kind`, `metadata` required).
type Create struct {
	Object map[string]any
}

// NewCreate creates object.
func NewCreate(object map[string]any) Create {
	obj, _ := deepCopy(object).(map[string]any)
	return Create{Object: obj}
}

// WithOwner is the create with `owner` in `metadata.ownerReferences`, which
// makes the new object a child (see ControllerOf).
func (c Create) WithOwner(owner OwnerReference) Create {
	c.Object = withOwner(c.Object, owner)
	return c
}

func (c Create) intentJSON() map[string]any {
	return map[string]any{"type": "create", "object": c.Object}
}

// Propagation says how dependents of a deleted object are treated.
type Propagation string

// The propagation policies; the empty Propagation uses the server's default.
const (
	Background Propagation = "Background"
	Foreground Propagation = "Foreground"
	Orphan     Propagation = "Orphan"
)

// ParsePropagation parses `Background`, `Foreground` or `Orphan`.
func ParsePropagation(text string) (Propagation, bool) {
	switch p := Propagation(text); p {
	case Background, Foreground, Orphan:
		return p, true
	}
	return "", false
}

// Delete deletes one object. Deleting an object that is already gone is
// not an error.
type Delete struct {
	Target ObjectRef
	// Propagation is the policy for dependents; empty for the server's default.
	Propagation Propagation
}

// NewDelete deletes target with the server's default propagation.
func NewDelete(target ObjectRef) Delete { return Delete{Target: target} }

// WithPropagation is the delete with propagation policy p.
func (d Delete) WithPropagation(p Propagation) Delete { d.Propagation = p; return d }

func (d Delete) intentJSON() map[string]any {
	return map[string]any{"type": "delete", "target": d.Target, "propagation": optional(string(d.Propagation))}
}

// Severity is a Kubernetes Event's type.
type Severity string

// The two Event severities.
const (
	Normal  Severity = "Normal"
	Warning Severity = "Warning"
)

// RecordEvent records a Kubernetes Event (events.k8s.io/v1) about an object.
type RecordEvent struct {
	Regarding ObjectRef
	Severity  Severity
	// Reason is short UpperCamelCase, machine-readable: `ChildCreated`.
	Reason string
	// Note is the human-readable description.
	Note string
	// Action is what was done; the constructors set `Reconcile`.
	Action string
}

// NormalEvent is a Normal Event about regarding, action `Reconcile`.
func NormalEvent(regarding ObjectRef, reason, note string) RecordEvent {
	return RecordEvent{Regarding: regarding, Severity: Normal, Reason: reason, Note: note, Action: "Reconcile"}
}

// WarningEvent is a Warning Event about regarding, action `Reconcile`.
func WarningEvent(regarding ObjectRef, reason, note string) RecordEvent {
	return RecordEvent{Regarding: regarding, Severity: Warning, Reason: reason, Note: note, Action: "Reconcile"}
}

// WithAction is the Event with action set (e.g. `Validate`).
func (e RecordEvent) WithAction(action string) RecordEvent { e.Action = action; return e }

func (e RecordEvent) intentJSON() map[string]any {
	return map[string]any{
		"type": "record-event", "regarding": e.Regarding, "severity": string(e.Severity),
		"reason": e.Reason, "note": e.Note, "action": e.Action,
	}
}
