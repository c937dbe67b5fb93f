package kubewasm

import "fmt"

// OwnerReference makes an object a child of another: a change of the child
// reconciles its owner (declare the child kind in PluginInfo.Owns), and
// deleting the owner deletes the child (with a garbage collector).
type OwnerReference struct {
	APIVersion         string `json:"apiVersion"`
	Kind               string `json:"kind"`
	Name               string `json:"name"`
	UID                string `json:"uid"`
	Controller         *bool  `json:"controller,omitempty"`
	BlockOwnerDeletion *bool  `json:"blockOwnerDeletion,omitempty"`
}

// IsController reports whether the reference is marked `controller: true`.
func (r OwnerReference) IsController() bool { return r.Controller != nil && *r.Controller }

// ControllerOf is the controller reference to owner (`controller` and
// `blockOwnerDeletion` true); an error if owner has no uid.
func ControllerOf(owner *Object) (OwnerReference, error) {
	if owner.UID() == "" {
		return OwnerReference{}, fmt.Errorf("%s has no metadata.uid to own a child", owner.Ref())
	}
	yes := true
	return OwnerReference{
		APIVersion: owner.APIVersion(), Kind: owner.Kind(), Name: owner.Name(), UID: owner.UID(),
		Controller: &yes, BlockOwnerDeletion: &yes,
	}, nil
}

func (r OwnerReference) toJSON() map[string]any {
	out := map[string]any{"apiVersion": r.APIVersion, "kind": r.Kind, "name": r.Name, "uid": r.UID}
	if r.Controller != nil {
		out["controller"] = *r.Controller
	}
	if r.BlockOwnerDeletion != nil {
		out["blockOwnerDeletion"] = *r.BlockOwnerDeletion
	}
	return out
}

// OwnerReferences is `metadata.ownerReferences`.
func (o *Object) OwnerReferences() []OwnerReference {
	list, _ := o.metadata()["ownerReferences"].([]any)
	var out []OwnerReference
	for _, item := range list {
		raw, ok := item.(map[string]any)
		if !ok {
			continue
		}
		ref := OwnerReference{}
		ref.APIVersion, _ = raw["apiVersion"].(string)
		ref.Kind, _ = raw["kind"].(string)
		ref.Name, _ = raw["name"].(string)
		ref.UID, _ = raw["uid"].(string)
		if b, ok := raw["controller"].(bool); ok {
			ref.Controller = &b
		}
		if b, ok := raw["blockOwnerDeletion"].(bool); ok {
			ref.BlockOwnerDeletion = &b
		}
		out = append(out, ref)
	}
	return out
}

// Controller is the owner reference marked `controller: true`, if any.
func (o *Object) Controller() (OwnerReference, bool) {
	for _, ref := range o.OwnerReferences() {
		if ref.IsController() {
			return ref, true
		}
	}
	return OwnerReference{}, false
}

// IsControlledBy reports whether owner (matched by uid) is this object's
// controller.
func (o *Object) IsControlledBy(owner *Object) bool {
	ref, ok := o.Controller()
	return ok && owner.UID() != "" && ref.UID == owner.UID()
}

// withOwner returns a copy of obj with owner in metadata.ownerReferences,
// replacing a reference with the same uid.
func withOwner(obj map[string]any, owner OwnerReference) map[string]any {
	out, _ := deepCopy(obj).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	meta, _ := out["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		out["metadata"] = meta
	}
	existing, _ := meta["ownerReferences"].([]any)
	refs := []any{}
	for _, r := range existing {
		if m, ok := r.(map[string]any); ok && m["uid"] == owner.UID {
			continue
		}
		refs = append(refs, r)
	}
	meta["ownerReferences"] = append(refs, owner.toJSON())
	return out
}
