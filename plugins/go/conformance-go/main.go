// The conformance plugin in Go: the behaviour conformance/README.md
// specifies, which every language implements and conformance/fixtures
// checks through `kubewasm test`. Each ConfigMap says in its
// `conformance.kubewasm.dev/do` label which part of the contract to
// exercise.
package main

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	kubewasm "kubewasm.dev/sdk/go"
)

const (
	prefix       = "conformance.kubewasm.dev/"
	doLabel      = prefix + "do"
	finalizer    = prefix + "cleanup"
	maxRequeueMs = 3_600_000
)

var upperCamelCase = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)

// Settings are the plugin's settings; RequeueAfterMs is checked by
// Validate (any JSON number, whole and in range).
type Settings struct {
	Reason         string `json:"reason"`
	RequeueAfterMs any    `json:"requeueAfterMs"`
	requeue        time.Duration
}

// Validate refines what the types cannot say.
func (s *Settings) Validate() error {
	if !upperCamelCase.MatchString(s.Reason) {
		return kubewasm.FieldError("reason", "%s is not UpperCamelCase", kubewasm.QuoteJSON(s.Reason))
	}
	ms, ok := wholeMs(s.RequeueAfterMs)
	if !ok || ms < 1 || ms > maxRequeueMs {
		return kubewasm.FieldError("requeueAfterMs", "must be a whole number from 1 to %d", maxRequeueMs)
	}
	s.requeue = time.Duration(ms) * time.Millisecond
	return nil
}

func wholeMs(value any) (int64, bool) {
	switch n := value.(type) {
	case int:
		return int64(n), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := n.Float64()
		if err != nil || f != float64(int64(f)) {
			return 0, false
		}
		return int64(f), true
	}
	return 0, false
}

func parseSettings(text string) (Settings, error) {
	s := Settings{Reason: "Conformance", RequeueAfterMs: 1500}
	return s, kubewasm.ParseSettings(text, &s)
}

func init() {
	kubewasm.Register(kubewasm.Plugin{
		Info: kubewasm.PluginInfo{
			Name: "conformance", Version: "1.0.0",
			Subscriptions: []kubewasm.Subscription{{Version: "v1", Kind: "ConfigMap", LabelSelector: doLabel}},
			Writes:        []kubewasm.WriteScope{{Kind: "ConfigMap"}},
			Finalizer:     &kubewasm.Finalizer{Name: finalizer, Kinds: []kubewasm.GroupKind{{Kind: "ConfigMap"}}},
		},
		Reconcile: Reconcile,
		ValidateSettings: func(text string) error {
			_, err := parseSettings(text)
			return err
		},
	})
}

func main() {}

func annotation(obj *kubewasm.Object, name string) (string, bool) {
	return obj.Annotation(prefix + name)
}

func sibling(obj *kubewasm.Object, name string) kubewasm.ObjectRef {
	return kubewasm.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: obj.Namespace(), Name: name}
}

func annotate(obj *kubewasm.Object, annotations map[string]any) kubewasm.Apply {
	return kubewasm.ApplyFields(obj.Ref(), map[string]any{"metadata": map[string]any{"annotations": annotations}})
}

func applied(obj *kubewasm.Object) kubewasm.Apply {
	value, ok := obj.GetString("data.value")
	if !ok {
		value = "yes"
	}
	return annotate(obj, map[string]any{prefix + "applied": value})
}

func eventAbout(obj *kubewasm.Object, s Settings) kubewasm.RecordEvent {
	note := "conformance event for " + obj.Name()
	event := kubewasm.NormalEvent(obj.Ref(), s.Reason, note)
	if severity, _ := annotation(obj, "severity"); severity == "Warning" {
		event = kubewasm.WarningEvent(obj.Ref(), s.Reason, note)
	}
	return event.WithAction("Test")
}

// Reconcile implements the behaviour of conformance/README.md.
func Reconcile(ev kubewasm.Event) (kubewasm.Outcome, error) {
	s, err := parseSettings(kubewasm.RawSettings())
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	obj := ev.Object
	action, _ := obj.Label(doLabel)
	kubewasm.Info("conformance reconcile", "do", action)
	value, hasValue := obj.GetString("data.value")

	switch {
	case ev.IsDeleted():
		tombstone := sibling(obj, obj.Name()+"-tombstone")
		return kubewasm.NewOutcome(kubewasm.ApplyFields(tombstone, map[string]any{"data": map[string]any{"last": value}})), nil
	case ev.IsFinalizing():
		child := obj.Name() + "-child"
		return kubewasm.NewOutcome(
			kubewasm.NewDelete(sibling(obj, child)).WithPropagation(kubewasm.Foreground),
			kubewasm.NormalEvent(obj.Ref(), s.Reason, "cleaned up "+child).WithAction("Finalize"),
		), nil
	case obj.IsBeingDeleted():
		return kubewasm.Outcome{}, nil
	}

	switch action {
	case "nothing":
		return kubewasm.Outcome{}, nil
	case "apply":
		return kubewasm.NewOutcome(applied(obj)), nil
	case "apply-unforced":
		return kubewasm.NewOutcome(applied(obj).WithForce(false)), nil
	case "apply-status":
		status := map[string]any{"phase": "Reconciled"}
		if gen, ok := obj.Generation(); ok {
			status["observedGeneration"] = gen
		}
		return kubewasm.NewOutcome(kubewasm.ApplyStatus(obj.Ref(), status)), nil
	case "merge-patch":
		patch := map[string]any{"metadata": map[string]any{"labels": map[string]any{prefix + "patched": "merge"}}}
		return kubewasm.NewOutcome(kubewasm.MergePatch(obj.Ref(), patch).WithResourceVersion(obj.ResourceVersion())), nil
	case "merge-patch-status":
		patch := map[string]any{"status": map[string]any{"phase": "Patched"}}
		return kubewasm.NewOutcome(kubewasm.MergePatch(obj.Ref(), patch).OnStatus()), nil
	case "json-patch":
		if !hasValue {
			return kubewasm.Outcome{}, errors.New("json-patch needs data.value")
		}
		ops := kubewasm.Ops{}.
			Test("/data/value", value).
			Replace("/data/value", value+"!").
			Add("/metadata/labels/"+kubewasm.EscapePointer(prefix+"patched"), "json")
		return kubewasm.NewOutcome(kubewasm.JSONPatch(obj.Ref(), ops)), nil
	case "create":
		return create(obj, value)
	case "delete":
		return deleteTarget(obj)
	case "event":
		return kubewasm.NewOutcome(eventAbout(obj, s)), nil
	case "apply-and-event":
		return kubewasm.NewOutcome(applied(obj), eventAbout(obj, s)).RequeueAfter(s.requeue), nil
	case "get":
		return get(obj)
	case "get-secret":
		return getSecret(obj)
	case "list":
		return list(obj)
	case "now":
		now := kubewasm.Now()
		return kubewasm.NewOutcome(annotate(obj, map[string]any{
			prefix + "now": now.RFC3339, prefix + "now-ms": strconv.FormatInt(now.EpochMs, 10),
		})), nil
	case "requeue":
		return requeue(obj, s)
	case "fail":
		return kubewasm.Outcome{}, fmt.Errorf("asked to fail on %s/%s", obj.Namespace(), obj.Name())
	}
	return kubewasm.Outcome{}, fmt.Errorf("unknown %s %s", doLabel, kubewasm.QuoteJSON(action))
}

func create(obj *kubewasm.Object, value string) (kubewasm.Outcome, error) {
	owner, err := kubewasm.ControllerOf(obj)
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	child := kubewasm.NewCreate(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{
			"name": obj.Name() + "-child", "namespace": obj.Namespace(),
			"labels": map[string]any{prefix + "parent": obj.Name()},
		},
		"data": map[string]any{"value": value},
	})
	return kubewasm.NewOutcome(child.WithOwner(owner)), nil
}

func deleteTarget(obj *kubewasm.Object) (kubewasm.Outcome, error) {
	target, ok := annotation(obj, "target")
	if !ok {
		target = obj.Name() + "-child"
	}
	del := kubewasm.NewDelete(sibling(obj, target))
	if given, ok := annotation(obj, "propagation"); ok {
		policy, valid := kubewasm.ParsePropagation(given)
		if !valid {
			return kubewasm.Outcome{}, fmt.Errorf("annotation %spropagation: %s is not Background, Foreground or Orphan",
				prefix, kubewasm.QuoteJSON(given))
		}
		del = del.WithPropagation(policy)
	}
	return kubewasm.NewOutcome(del), nil
}

func get(obj *kubewasm.Object) (kubewasm.Outcome, error) {
	target, _ := annotation(obj, "target")
	found, err := kubewasm.Get("v1", "ConfigMap", obj.Namespace(), target)
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	if found == nil {
		return kubewasm.NewOutcome(annotate(obj, map[string]any{prefix + "read": "absent"})), nil
	}
	readValue, _ := found.GetString("data.value")
	return kubewasm.NewOutcome(annotate(obj, map[string]any{prefix + "read": "found", prefix + "read-value": readValue})), nil
}

func getSecret(obj *kubewasm.Object) (kubewasm.Outcome, error) {
	target, ok := annotation(obj, "target")
	if !ok {
		target = obj.Name()
	}
	if _, err := kubewasm.Get("v1", "Secret", obj.Namespace(), target); err != nil {
		var refused *kubewasm.HostError
		if !errors.As(err, &refused) {
			return kubewasm.Outcome{}, err
		}
		note := fmt.Sprintf("reading Secret %s/%s was refused", obj.Namespace(), target)
		return kubewasm.NewOutcome(kubewasm.WarningEvent(obj.Ref(), "ReadRefused", note).WithAction("Read")), nil
	}
	return kubewasm.NewOutcome(annotate(obj, map[string]any{prefix + "read": "allowed"})), nil
}

func list(obj *kubewasm.Object) (kubewasm.Outcome, error) {
	namespace, ok := annotation(obj, "namespace")
	if !ok {
		namespace = obj.Namespace()
	} else if namespace == "*" {
		namespace = ""
	}
	selector, _ := annotation(obj, "selector")
	listed, err := kubewasm.List("v1", "ConfigMap", namespace, selector)
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	names := make([]string, 0, len(listed))
	for _, o := range listed {
		names = append(names, o.Namespace()+"/"+o.Name())
	}
	sort.Strings(names)
	return kubewasm.NewOutcome(annotate(obj, map[string]any{prefix + "listed": strings.Join(names, ",")})), nil
}

var digits = regexp.MustCompile(`^[0-9]+$`)

func requeue(obj *kubewasm.Object, s Settings) (kubewasm.Outcome, error) {
	text, ok := annotation(obj, "after-ms")
	if !ok {
		return kubewasm.Outcome{}.RequeueAfter(s.requeue), nil
	}
	ms, err := strconv.ParseInt(text, 10, 64)
	if !digits.MatchString(text) || err != nil {
		return kubewasm.Outcome{}, fmt.Errorf("annotation %safter-ms: %s is not a whole number of milliseconds",
			prefix, kubewasm.QuoteJSON(text))
	}
	return kubewasm.Outcome{}.RequeueAfter(time.Duration(ms) * time.Millisecond), nil
}
