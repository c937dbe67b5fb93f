package kubewasm

import (
	"fmt"
	"strings"
)

// Plugin is what a Go plugin registers: its description and its reconcile
// function, and optionally a settings check.
//
//	func init() {
//		kubewasm.Register(kubewasm.Plugin{Info: info, Reconcile: Reconcile})
//	}
type Plugin struct {
	// Info is what `describe` returns. It must not depend on settings.
	Info PluginInfo
	// Reconcile is called for every change of a subscribed object. A
	// returned error fails the call with its message (the host retries the
	// object with backoff); a panic does too.
	Reconcile func(Event) (Outcome, error)
	// ValidateSettings checks an operator's settings document (JSON text)
	// before it is used; the error should name the offending field
	// (ParseSettings does). Nil accepts every document.
	ValidateSettings func(settings string) error
}

var registered *Plugin

// Register makes p the plugin the component exports. Call it once, from an
// init function of package main (the host calls the exports after package
// initialization; main is never run).
func Register(p Plugin) {
	if registered != nil {
		panic(fmt.Sprintf("kubewasm.Register: plugin %q is already registered", registered.Info.Name))
	}
	if p.Reconcile == nil {
		panic("kubewasm.Register: Plugin.Reconcile is nil")
	}
	registered = &p
}

// Registered is the plugin passed to Register, for tests; false if none.
func Registered() (Plugin, bool) {
	if registered == nil {
		return Plugin{}, false
	}
	return *registered, true
}

// ReconcileSafely calls p.Reconcile, turning a panic into an error, the way
// the component does.
func (p Plugin) ReconcileSafely(ev Event) (out Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = Outcome{}, fmt.Errorf("panic: %v", r)
		}
	}()
	return p.Reconcile(ev)
}

// Validate calls p.ValidateSettings (nil accepts everything), turning a
// panic into an error.
func (p Plugin) Validate(settings string) (err error) {
	if p.ValidateSettings == nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return p.ValidateSettings(settings)
}

// PluginInfo describes a plugin: its name (unique among loaded plugins,
// used in the field manager `kubewasm/<name>`, logs and metrics), the
// kinds it reconciles and writes, its children, mapped watches and
// finalizer.
//
//	kubewasm.PluginInfo{
//		Name: "hello", Version: "0.1.0",
//		Subscriptions: []kubewasm.Subscription{{Version: "v1", Kind: "ConfigMap"}},
//		Writes:        []kubewasm.WriteScope{{Kind: "ConfigMap"}},
//	}
type PluginInfo struct {
	Name          string
	Version       string
	Subscriptions []Subscription
	Writes        []WriteScope
	// Owns lists child kinds: a change of an object whose controller
	// reference names a subscribed object reconciles that owner. Declare
	// them in Writes too to create or change them.
	Owns []KindRef
	// Watches maps changes of other kinds to reconciles of subscribed ones.
	Watches []MappedWatch
	// Finalizer, if set, is managed by the host: see Event.IsFinalizing.
	Finalizer *Finalizer
}

// Subscription is a kind to reconcile. Group, Version and Kind are exact or
// "*"; the core group is "". Namespaces (empty: all) and LabelSelector
// (empty: all) narrow it.
type Subscription struct {
	Group         string
	Version       string
	Kind          string
	Namespaces    []string
	LabelSelector string
}

// AllKinds subscribes to every kind the cluster serves.
func AllKinds() Subscription { return Subscription{Group: "*", Version: "*", Kind: "*"} }

// WriteScope is a kind the plugin writes: Group and Kind, each exact or "*".
// Events about reconciled objects are always allowed.
type WriteScope struct {
	Group string
	Kind  string
}

// GroupKind is an exact kind.
type GroupKind struct {
	Group string
	Kind  string
}

// KindRef is an exact kind, optionally at a version (empty: the version the
// cluster prefers).
type KindRef struct {
	Group   string
	Kind    string
	Version string
}

// MapRule says how a changed object of a watched kind names the objects to
// reconcile: FieldRef, LabelRef or SelectorRule.
type MapRule struct {
	rule     string
	argument string
}

// FieldRef: every target in the namespace whose field at path (e.g.
// `spec.configMapRef.name`) is the changed object's name, or a list
// containing it.
func FieldRef(path string) MapRule { return MapRule{"field-ref", path} }

// LabelRef: the target in the namespace named by this label's value on the
// changed object.
func LabelRef(key string) MapRule { return MapRule{"label", key} }

// SelectorRule: every target in the namespace matching the label selector.
func SelectorRule(selector string) MapRule { return MapRule{"selector", selector} }

// String is the rule as `field-ref(path)`, `label(key)` or `selector(s)`.
func (r MapRule) String() string { return r.rule + "(" + r.argument + ")" }

// MappedWatch reconciles Target objects chosen by Rule when a Source object
// changes. Target must be a subscribed kind.
type MappedWatch struct {
	Source KindRef
	Target GroupKind
	Rule   MapRule
}

// Finalizer is a finalizer the host manages on objects of Kinds: it is
// added before the first write, and removed once a finalizing reconcile
// succeeds.
type Finalizer struct {
	// Name is `<dns-subdomain>/<name>`; DefaultFinalizerName by convention.
	Name  string
	Kinds []GroupKind
}

// DefaultFinalizerName is `kubewasm.dev/<plugin>`.
func DefaultFinalizerName(plugin string) string { return "kubewasm.dev/" + plugin }

// EventType says why reconcile is called.
type EventType string

// The event types.
const (
	// Applied: the object was created or changed (or first seen).
	Applied EventType = "applied"
	// Deleted: the object is gone; the event carries its last known state.
	Deleted EventType = "deleted"
	// Resync: an unchanged object, after a (re)load, a periodic resync, a
	// requeue, or a change of an owned child or mapped watch source.
	Resync EventType = "resync"
	// Finalizing: the object is being deleted and carries the plugin's
	// finalizer: return the cleanup intents; the host then removes it.
	Finalizing EventType = "finalizing"
)

// ResourceKind is a kind as the cluster serves it.
type ResourceKind struct {
	Group      string
	Version    string
	Kind       string
	Plural     string
	Namespaced bool
}

// APIVersion is `v1` for the core group, else `group/version`.
func (k ResourceKind) APIVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

// GuessKind derives a kind from an object's apiVersion and kind (the plural
// guessed by English rules), for tests.
func GuessKind(obj *Object) ResourceKind {
	group, version := "", obj.APIVersion()
	if i := strings.LastIndexByte(version, '/'); i >= 0 {
		group, version = version[:i], version[i+1:]
	}
	lower := strings.ToLower(obj.Kind())
	plural := lower + "s"
	switch {
	case strings.HasSuffix(lower, "s"), strings.HasSuffix(lower, "x"),
		strings.HasSuffix(lower, "ch"), strings.HasSuffix(lower, "sh"):
		plural = lower + "es"
	case strings.HasSuffix(lower, "y") && len(lower) > 1 && !strings.ContainsRune("aeiou", rune(lower[len(lower)-2])):
		plural = lower[:len(lower)-1] + "ies"
	}
	return ResourceKind{Group: group, Version: version, Kind: obj.Kind(), Plural: plural, Namespaced: obj.Namespace() != ""}
}

// Event is one change to reconcile: why, the kind, and the newest state of
// the object (reconciles are level-triggered: several changes may arrive
// as one call).
type Event struct {
	Type   EventType
	Kind   ResourceKind
	Object *Object
}

// NewEvent is an event for tests, its kind guessed from the object.
func NewEvent(eventType EventType, obj *Object) Event {
	return Event{Type: eventType, Kind: GuessKind(obj), Object: obj}
}

// IsDeleted reports a `deleted` event.
func (e Event) IsDeleted() bool { return e.Type == Deleted }

// IsFinalizing reports a `finalizing` event.
func (e Event) IsFinalizing() bool { return e.Type == Finalizing }
