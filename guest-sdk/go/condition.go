package kubewasm

import (
	"encoding/json"
	"reflect"
)

// ConditionStatus is a condition's status.
type ConditionStatus string

// The condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is a status condition (`metav1.Condition`).
type Condition struct {
	Type    string
	Status  ConditionStatus
	Reason  string
	Message string
	// ObservedGeneration is the generation the condition was set for; nil
	// in a StatusUpdate means the object's `metadata.generation`.
	ObservedGeneration *int64
	// LastTransitionTime (RFC 3339) is set by StatusUpdate: kept while the
	// status stays the same, Now() when it changes.
	LastTransitionTime string
}

func (c Condition) toJSON() map[string]any {
	out := map[string]any{"type": c.Type, "status": string(c.Status), "reason": c.Reason, "message": c.Message}
	if c.ObservedGeneration != nil {
		out["observedGeneration"] = *c.ObservedGeneration
	}
	if c.LastTransitionTime != "" {
		out["lastTransitionTime"] = c.LastTransitionTime
	}
	return out
}

// Conditions is `status.conditions`, parsed; malformed entries are skipped.
func (o *Object) Conditions() []Condition {
	list, _ := o.Get("status.conditions")
	items, _ := list.([]any)
	var out []Condition
	for _, item := range items {
		raw, ok := item.(map[string]any)
		if !ok {
			continue
		}
		c := Condition{Status: ConditionUnknown}
		if c.Type, ok = raw["type"].(string); !ok {
			continue
		}
		if s, ok := raw["status"].(string); ok && (s == "True" || s == "False") {
			c.Status = ConditionStatus(s)
		}
		c.Reason, _ = raw["reason"].(string)
		c.Message, _ = raw["message"].(string)
		c.LastTransitionTime, _ = raw["lastTransitionTime"].(string)
		if gen, ok := wholeNumber(raw["observedGeneration"]); ok {
			c.ObservedGeneration = &gen
		}
		out = append(out, c)
	}
	return out
}

// Condition is the condition of one type, if the object has it.
func (o *Object) Condition(conditionType string) (Condition, bool) {
	for _, c := range o.Conditions() {
		if c.Type == conditionType {
			return c, true
		}
	}
	return Condition{}, false
}

// StatusUpdate is the status an object should have: conditions and other
// status fields, written with one server-side apply to the status
// subresource only when they change it, so repeated reconciles write
// nothing.
//
//	update := kubewasm.NewStatusUpdate(site).
//		Condition(kubewasm.Condition{Type: "Ready", Status: kubewasm.ConditionTrue, Reason: "ChildReady"}).
//		ObservedGeneration()
//	if apply, changed := update.Apply(); changed {
//		outcome.Add(apply)
//	}
//
// A condition's ObservedGeneration defaults to `metadata.generation`; its
// LastTransitionTime is kept while its status stays the same and is Now()
// when it changes (the clock is read only then).
type StatusUpdate struct {
	object     *Object
	conditions []Condition
	fields     map[string]any
}

// NewStatusUpdate is an update of obj's status that changes nothing yet.
func NewStatusUpdate(obj *Object) *StatusUpdate {
	return &StatusUpdate{object: obj, fields: map[string]any{}}
}

// Condition sets a condition (replacing one of the same type set before).
func (u *StatusUpdate) Condition(c Condition) *StatusUpdate {
	if c.ObservedGeneration == nil {
		if gen, ok := u.object.Generation(); ok {
			c.ObservedGeneration = &gen
		}
	}
	if current, ok := u.object.Condition(c.Type); ok && current.Status == c.Status && current.LastTransitionTime != "" {
		c.LastTransitionTime = current.LastTransitionTime
	} else {
		c.LastTransitionTime = Now().RFC3339
	}
	kept := u.conditions[:0]
	for _, existing := range u.conditions {
		if existing.Type != c.Type {
			kept = append(kept, existing)
		}
	}
	u.conditions = append(kept, c)
	return u
}

// Field sets another status field, e.g. Field("phase", "Ready").
func (u *StatusUpdate) Field(key string, value any) *StatusUpdate {
	u.fields[key] = deepCopy(value)
	return u
}

// ObservedGeneration also sets `status.observedGeneration` to the object's
// `metadata.generation` (if it has one).
func (u *StatusUpdate) ObservedGeneration() *StatusUpdate {
	if gen, ok := u.object.Generation(); ok {
		u.fields["observedGeneration"] = gen
	}
	return u
}

// Conditions are the conditions set so far.
func (u *StatusUpdate) Conditions() []Condition { return append([]Condition(nil), u.conditions...) }

// sameJSON compares two values by their JSON encoding (so 3, int64(3) and
// json.Number("3") are equal).
func sameJSON(a, b any) bool {
	left, errA := json.Marshal(a)
	right, errB := json.Marshal(b)
	if errA != nil || errB != nil {
		return false
	}
	x, errA := decodeJSON(left)
	y, errB := decodeJSON(right)
	return errA == nil && errB == nil && reflect.DeepEqual(x, y)
}

// Changed reports whether the update changes the object's status.
func (u *StatusUpdate) Changed() bool {
	status := u.object.GetMap("status")
	for key, value := range u.fields {
		current, ok := status[key]
		if !ok || !sameJSON(current, value) {
			return true
		}
	}
	for _, wanted := range u.conditions {
		current, ok := u.object.Condition(wanted.Type)
		if !ok || !sameJSON(current.toJSON(), wanted.toJSON()) {
			return true
		}
	}
	return false
}

// Apply is the status apply intent, and false when the object's status
// already says all of it.
func (u *StatusUpdate) Apply() (Apply, bool) {
	if !u.Changed() {
		return Apply{}, false
	}
	status := map[string]any{}
	for key, value := range u.fields {
		status[key] = value
	}
	if len(u.conditions) > 0 {
		conditions := make([]any, 0, len(u.conditions))
		for _, c := range u.conditions {
			conditions = append(conditions, c.toJSON())
		}
		status["conditions"] = conditions
	}
	return ApplyStatus(u.object.Ref(), status), true
}
