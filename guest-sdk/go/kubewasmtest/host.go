// Package kubewasmtest tests kubewasm plugins natively, with `go test`,
// without building a component: Host stands in for the kubewasm host
// (settings, a cache of objects read with the host's scope rule, a fixed
// clock, and the log records the plugin wrote).
//
//	func TestLabels(t *testing.T) {
//		host := kubewasmtest.NewHost(t).WithSettings(`{"tier": "gold"}`).WithCache(ns)
//		out, err := Reconcile(kubewasmtest.Applied(ns))
//		...
//		if got := host.Logs(); len(got) != 1 { ... }
//	}
//
// The fixture cases under a plugin's fixtures/ are checked against the
// built component by `kubewasm test`, which reads the same files in every
// language.
package kubewasmtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	kubewasm "kubewasm.dev/sdk/go"
)

// LogRecord is one log record a plugin wrote.
type LogRecord struct {
	Level   kubewasm.Level
	Message string
	Fields  map[string]string
}

// Host is a fake kubewasm host for native tests. NewHost installs it for
// the test and restores the previous host when the test ends, so tests
// using it must not run in parallel with each other.
type Host struct {
	mu       sync.Mutex
	settings string
	cache    []*kubewasm.Object
	now      kubewasm.Timestamp
	info     *kubewasm.PluginInfo
	logs     []LogRecord
}

// NewHost installs an empty fake host: settings `{}`, no cached objects,
// the clock at the Unix epoch, every kind readable.
func NewHost(t testing.TB) *Host {
	t.Helper()
	h := &Host{settings: "{}", now: kubewasm.TimestampFromEpochMs(0)}
	previous := kubewasm.SetHost(h)
	t.Cleanup(func() { kubewasm.SetHost(previous) })
	return h
}

// WithSettings sets the settings document (JSON text).
func (h *Host) WithSettings(settings string) *Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settings = settings
	return h
}

// WithCache adds objects to the cache the plugin reads with Get and List.
func (h *Host) WithCache(objects ...*kubewasm.Object) *Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cache = append(h.cache, objects...)
	return h
}

// WithNow sets the clock (RFC 3339); it panics on a malformed time.
func (h *Host) WithNow(rfc3339 string) *Host {
	t, err := kubewasm.ParseTimestamp(rfc3339)
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.now = t
	return h
}

// WithScope refuses reads of kinds the plugin neither subscribes to, owns
// nor watches, like the host does.
func (h *Host) WithScope(info kubewasm.PluginInfo) *Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.info = &info
	return h
}

// Logs are the records written so far.
func (h *Host) Logs() []LogRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogRecord(nil), h.logs...)
}

// Log implements kubewasm.Host.
func (h *Host) Log(level kubewasm.Level, message string, fields [][2]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	record := LogRecord{Level: level, Message: message, Fields: map[string]string{}}
	for _, f := range fields {
		record.Fields[f[0]] = f[1]
	}
	h.logs = append(h.logs, record)
}

// Settings implements kubewasm.Host.
func (h *Host) Settings() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.settings
}

// Now implements kubewasm.Host.
func (h *Host) Now() kubewasm.Timestamp {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

func wildcard(pattern, value string) bool { return pattern == "*" || pattern == value }

func (h *Host) checkScope(apiVersion, kind string) error {
	if h.info == nil {
		return nil
	}
	group := ""
	if i := strings.LastIndexByte(apiVersion, '/'); i >= 0 {
		group = apiVersion[:i]
	}
	var readable [][2]string
	for _, s := range h.info.Subscriptions {
		readable = append(readable, [2]string{s.Group, s.Kind})
	}
	for _, k := range h.info.Owns {
		readable = append(readable, [2]string{k.Group, k.Kind})
	}
	for _, w := range h.info.Watches {
		readable = append(readable, [2]string{w.Source.Group, w.Source.Kind})
	}
	for _, r := range readable {
		if wildcard(r[0], group) && wildcard(r[1], kind) {
			return nil
		}
	}
	return &kubewasm.HostError{Message: fmt.Sprintf(
		"plugin %s may not read %s (%s): it neither subscribes to, owns nor watches that kind",
		h.info.Name, kind, apiVersion)}
}

func encode(obj *kubewasm.Object) string {
	data, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("kubewasmtest: cached %s is not JSON: %v", obj.Ref(), err))
	}
	return string(data)
}

// GetObject implements kubewasm.Host.
func (h *Host) GetObject(apiVersion, kind, namespace, name string) (string, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkScope(apiVersion, kind); err != nil {
		return "", false, err
	}
	for _, obj := range h.cache {
		if obj.APIVersion() == apiVersion && obj.Kind() == kind && obj.Namespace() == namespace && obj.Name() == name {
			return encode(obj), true, nil
		}
	}
	return "", false, nil
}

// ListObjects implements kubewasm.Host.
func (h *Host) ListObjects(apiVersion, kind, namespace, selector string) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.checkScope(apiVersion, kind); err != nil {
		return nil, err
	}
	matches, err := parseSelector(selector)
	if err != nil {
		return nil, &kubewasm.HostError{Message: err.Error()}
	}
	out := []string{}
	for _, obj := range h.cache {
		if obj.APIVersion() != apiVersion || obj.Kind() != kind {
			continue
		}
		if namespace != "" && obj.Namespace() != namespace {
			continue
		}
		if matches(obj.Labels()) {
			out = append(out, encode(obj))
		}
	}
	return out, nil
}
