package kubewasm

import (
	"fmt"
	"time"
)

// Host is what the host offers a plugin. Inside a component the SDK calls
// the WIT imports; native tests install a fake with SetHost (the
// kubewasmtest package has one). Plugins use the package functions (Get,
// List, Info, Now, RawSettings ...), not a Host.
type Host interface {
	Log(level Level, message string, fields [][2]string)
	Settings() string
	// GetObject returns the object's JSON, "" and false if absent, or an
	// error if the host refuses the read. namespace "" is cluster-scoped.
	GetObject(apiVersion, kind, namespace, name string) (string, bool, error)
	// ListObjects returns the objects' JSON; namespace "" is every
	// namespace, selector "" matches everything.
	ListObjects(apiVersion, kind, namespace, selector string) ([]string, error)
	Now() Timestamp
}

type noHost struct{}

func (noHost) fail() {
	panic("kubewasm: no host: inside a component the SDK calls the WIT imports; " +
		"in native tests install one first (kubewasmtest.NewHost)")
}
func (h noHost) Log(Level, string, [][2]string) { h.fail() }
func (h noHost) Settings() string               { h.fail(); return "" }
func (h noHost) GetObject(string, string, string, string) (string, bool, error) {
	h.fail()
	return "", false, nil
}
func (h noHost) ListObjects(string, string, string, string) ([]string, error) {
	h.fail()
	return nil, nil
}
func (h noHost) Now() Timestamp { h.fail(); return Timestamp{} }

var host Host = noHost{}

// SetHost routes the SDK's host calls to h and returns the previous Host.
// Only tests call it: a component installs its WIT imports itself.
func SetHost(h Host) Host {
	previous := host
	host = h
	return previous
}

// HostError is a read the host refused, e.g. of a kind the plugin neither
// subscribes to, owns nor watches.
type HostError struct {
	Message string
}

func (e *HostError) Error() string { return e.Message }

// Level is a log record's severity.
type Level string

// The log levels.
const (
	LevelTrace Level = "trace"
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Log writes a structured record; the host adds the plugin and the object.
// keysAndValues alternate keys and values, like log/slog; values are
// formatted with fmt.Sprint.
//
//	kubewasm.Log(kubewasm.LevelInfo, "labelled", "namespace", ns, "tier", tier)
func Log(level Level, message string, keysAndValues ...any) {
	fields := make([][2]string, 0, (len(keysAndValues)+1)/2)
	for i := 0; i < len(keysAndValues); i += 2 {
		key := fmt.Sprint(keysAndValues[i])
		value := "(missing)"
		if i+1 < len(keysAndValues) {
			value = fmt.Sprint(keysAndValues[i+1])
		}
		fields = append(fields, [2]string{key, value})
	}
	host.Log(level, message, fields)
}

// Trace logs at level trace.
func Trace(message string, keysAndValues ...any) { Log(LevelTrace, message, keysAndValues...) }

// Debug logs at level debug.
func Debug(message string, keysAndValues ...any) { Log(LevelDebug, message, keysAndValues...) }

// Info logs at level info.
func Info(message string, keysAndValues ...any) { Log(LevelInfo, message, keysAndValues...) }

// Warn logs at level warn.
func Warn(message string, keysAndValues ...any) { Log(LevelWarn, message, keysAndValues...) }

// Error logs at level error.
func Error(message string, keysAndValues ...any) { Log(LevelError, message, keysAndValues...) }

// RawSettings is the operator's settings document as JSON text (`{}` if none).
func RawSettings() string { return host.Settings() }

// Timestamp is one instant in two forms: milliseconds since the Unix epoch
// and RFC 3339 in UTC with second precision (`2026-12-04T03:15:00Z`, the
// form of `lastTransitionTime`).
type Timestamp struct {
	EpochMs int64
	RFC3339 string
}

// Now is the host's clock, read once per reconcile: every call in one
// reconcile returns the same instant (offline runs take it from the
// fixture). Plugins have no other clock.
func Now() Timestamp { return host.Now() }

// TimestampFromEpochMs is the instant epochMs milliseconds after the epoch.
func TimestampFromEpochMs(epochMs int64) Timestamp {
	return Timestamp{EpochMs: epochMs, RFC3339: time.UnixMilli(epochMs).UTC().Format("2006-01-02T15:04:05Z")}
}

// ParseTimestamp parses RFC 3339 (`2026-12-04T03:15:00Z`; offsets and
// fractions allowed).
func ParseTimestamp(text string) (Timestamp, error) {
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return Timestamp{}, fmt.Errorf("%q is not an RFC 3339 time", text)
	}
	return TimestampFromEpochMs(t.UnixMilli()), nil
}

// Time is the instant as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.EpochMs).UTC() }

// Add is the instant d later.
func (t Timestamp) Add(d time.Duration) Timestamp {
	return TimestampFromEpochMs(t.EpochMs + d.Milliseconds())
}

// Since is the time from earlier to t (never negative).
func (t Timestamp) Since(earlier Timestamp) time.Duration {
	if t.EpochMs < earlier.EpochMs {
		return 0
	}
	return time.Duration(t.EpochMs-earlier.EpochMs) * time.Millisecond
}

// Get reads one object from the host's cache: nil (and no error) if it does
// not exist. namespace "" means cluster-scoped. The kind must be one the
// plugin subscribes to, owns or watches; otherwise the host refuses and the
// error is a *HostError.
func Get(apiVersion, kind, namespace, name string) (*Object, error) {
	text, found, err := host.GetObject(apiVersion, kind, namespace, name)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, nil
	}
	return ParseObject(text)
}

// GetRef reads the object ref names (see Get).
func GetRef(ref ObjectRef) (*Object, error) {
	return Get(ref.APIVersion, ref.Kind, ref.Namespace, ref.Name)
}

// List reads objects of a kind from the host's cache, in one namespace (""
// for all) and matching a label selector ("" for all; e.g.
// `tier=web,env in (a,b),!legacy`). Same kind rule as Get.
func List(apiVersion, kind, namespace, selector string) ([]*Object, error) {
	texts, err := host.ListObjects(apiVersion, kind, namespace, selector)
	if err != nil {
		return nil, err
	}
	objects := make([]*Object, 0, len(texts))
	for _, text := range texts {
		obj, err := ParseObject(text)
		if err != nil {
			return nil, err
		}
		objects = append(objects, obj)
	}
	return objects, nil
}

// ListOwned is owner's children of one kind: objects in its namespace whose
// controller reference carries its uid, sorted by namespace and name.
// Declare the kind in PluginInfo.Owns so the host caches it.
func ListOwned(apiVersion, kind string, owner *Object) ([]*Object, error) {
	if owner.UID() == "" {
		return nil, fmt.Errorf("%s has no metadata.uid to find its children by", owner.Ref())
	}
	all, err := List(apiVersion, kind, owner.Namespace(), "")
	if err != nil {
		return nil, err
	}
	var children []*Object
	for _, child := range all {
		if child.IsControlledBy(owner) {
			children = append(children, child)
		}
	}
	SortObjects(children)
	return children, nil
}
