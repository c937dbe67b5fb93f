//go:build wasip1

package kubewasm

// The component's side of the contract: the SDK's Host over the WIT
// imports, and the exports (describe, validate-settings, reconcile) over the
// registered Plugin. Only wasip1 builds compile this file, so native tests
// never need the generated bindings.

import (
	"encoding/json"
	"fmt"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"kubewasm.dev/sdk/go/internal/wit/exports/export_kubewasm_plugin_reconciler"
	_ "kubewasm.dev/sdk/go/internal/wit/exports/wit_exports" // the //go:wasmexport functions
	wit "kubewasm.dev/sdk/go/internal/wit/imports/kubewasm_plugin_host"
	"kubewasm.dev/sdk/go/internal/wit/imports/kubewasm_plugin_types"
)

func init() {
	host = witHost{}
	export_kubewasm_plugin_reconciler.DescribeHook = describe
	export_kubewasm_plugin_reconciler.ValidateSettingsHook = validateSettings
	export_kubewasm_plugin_reconciler.ReconcileHook = reconcile
}

// --- imports ----------------------------------------------------------------

type witHost struct{}

var witLevels = map[Level]uint8{
	LevelTrace: kubewasm_plugin_types.LogLevel_Trace,
	LevelDebug: kubewasm_plugin_types.LogLevel_Debug,
	LevelInfo:  kubewasm_plugin_types.LogLevel_Info,
	LevelWarn:  kubewasm_plugin_types.LogLevel_Warn,
	LevelError: kubewasm_plugin_types.LogLevel_Error,
}

func (witHost) Log(level Level, message string, fields [][2]string) {
	pairs := make([]witTypes.Tuple2[string, string], len(fields))
	for i, f := range fields {
		pairs[i] = witTypes.Tuple2[string, string]{F0: f[0], F1: f[1]}
	}
	wit.Log(witLevels[level], message, pairs)
}

func (witHost) Settings() string { return wit.Settings() }

func some(s string) witTypes.Option[string] {
	if s == "" {
		return witTypes.None[string]()
	}
	return witTypes.Some(s)
}

func (witHost) GetObject(apiVersion, kind, namespace, name string) (string, bool, error) {
	result := wit.GetObject(apiVersion, kind, some(namespace), name)
	if result.IsErr() {
		return "", false, &HostError{Message: result.Err()}
	}
	found := result.Ok()
	if found.IsNone() {
		return "", false, nil
	}
	return found.Some(), true, nil
}

func (witHost) ListObjects(apiVersion, kind, namespace, selector string) ([]string, error) {
	result := wit.ListObjects(apiVersion, kind, some(namespace), some(selector))
	if result.IsErr() {
		return nil, &HostError{Message: result.Err()}
	}
	return result.Ok(), nil
}

func (witHost) Now() Timestamp {
	t := wit.Now()
	return Timestamp{EpochMs: t.EpochMs, RFC3339: t.Rfc3339}
}

// --- exports ----------------------------------------------------------------

func plugin() *Plugin {
	if registered == nil {
		panic("kubewasm: no plugin registered: call kubewasm.Register from an init function of package main")
	}
	return registered
}

func witKindRef(k KindRef) kubewasm_plugin_types.KindRef {
	return kubewasm_plugin_types.KindRef{Group: k.Group, Kind: k.Kind, Version: some(k.Version)}
}

func witGroupKinds(kinds []GroupKind) []kubewasm_plugin_types.GroupKind {
	out := make([]kubewasm_plugin_types.GroupKind, len(kinds))
	for i, k := range kinds {
		out[i] = kubewasm_plugin_types.GroupKind{Group: k.Group, Kind: k.Kind}
	}
	return out
}

func witMapRule(r MapRule) kubewasm_plugin_types.MapRule {
	switch r.rule {
	case "field-ref":
		return kubewasm_plugin_types.MakeMapRuleFieldRef(r.argument)
	case "label":
		return kubewasm_plugin_types.MakeMapRuleLabel(r.argument)
	case "selector":
		return kubewasm_plugin_types.MakeMapRuleSelector(r.argument)
	}
	panic("kubewasm: a MappedWatch without a rule: use FieldRef, LabelRef or SelectorRule")
}

func describe() kubewasm_plugin_types.PluginInfo {
	info := plugin().Info
	out := kubewasm_plugin_types.PluginInfo{Name: info.Name, Version: info.Version, Finalizer: witTypes.None[kubewasm_plugin_types.Finalizer]()}
	for _, s := range info.Subscriptions {
		out.Subscriptions = append(out.Subscriptions, kubewasm_plugin_types.Subscription{
			Group: s.Group, Version: s.Version, Kind: s.Kind,
			Namespaces: append([]string{}, s.Namespaces...), LabelSelector: some(s.LabelSelector),
		})
	}
	for _, w := range info.Writes {
		out.Writes = append(out.Writes, kubewasm_plugin_types.WriteScope{Group: w.Group, Kind: w.Kind})
	}
	for _, k := range info.Owns {
		out.Owns = append(out.Owns, witKindRef(k))
	}
	for _, w := range info.Watches {
		out.Watches = append(out.Watches, kubewasm_plugin_types.MappedWatch{
			Source: witKindRef(w.Source),
			Target: kubewasm_plugin_types.GroupKind{Group: w.Target.Group, Kind: w.Target.Kind},
			Rule:   witMapRule(w.Rule),
		})
	}
	if f := info.Finalizer; f != nil {
		name := f.Name
		if name == "" {
			name = DefaultFinalizerName(info.Name)
		}
		out.Finalizer = witTypes.Some(kubewasm_plugin_types.Finalizer{Name: name, Kinds: witGroupKinds(f.Kinds)})
	}
	return out
}

func validateSettings(settings string) witTypes.Result[witTypes.Unit, string] {
	if err := plugin().Validate(settings); err != nil {
		return witTypes.Err[witTypes.Unit, string](err.Error())
	}
	return witTypes.Ok[witTypes.Unit, string](witTypes.Unit{})
}

var eventTypes = map[uint8]EventType{
	kubewasm_plugin_types.EventType_Applied:    Applied,
	kubewasm_plugin_types.EventType_Deleted:    Deleted,
	kubewasm_plugin_types.EventType_Resync:     Resync,
	kubewasm_plugin_types.EventType_Finalizing: Finalizing,
}

type witOutcome = witTypes.Result[kubewasm_plugin_types.Outcome, kubewasm_plugin_types.ReconcileError]

func failed(err error) witOutcome {
	return witTypes.Err[kubewasm_plugin_types.Outcome](kubewasm_plugin_types.ReconcileError{Message: err.Error()})
}

func reconcile(event kubewasm_plugin_types.Event) witOutcome {
	obj, err := ParseObject(event.Object)
	if err != nil {
		return failed(err)
	}
	k := event.Kind
	ev := Event{
		Type:   eventTypes[event.EventType],
		Kind:   ResourceKind{Group: k.Group, Version: k.Version, Kind: k.Kind, Plural: k.Plural, Namespaced: k.Namespaced},
		Object: obj,
	}
	outcome, err := plugin().ReconcileSafely(ev)
	if err != nil {
		return failed(err)
	}
	intents := make([]kubewasm_plugin_types.Intent, 0, len(outcome.Intents))
	for i, intent := range outcome.Intents {
		converted, err := witIntent(intent)
		if err != nil {
			return failed(fmt.Errorf("intent %d: %w", i, err))
		}
		intents = append(intents, converted)
	}
	requeue := witTypes.None[uint64]()
	if ms, ok := outcome.requeueMs(); ok {
		requeue = witTypes.Some(ms)
	}
	return witTypes.Ok[kubewasm_plugin_types.Outcome, kubewasm_plugin_types.ReconcileError](
		kubewasm_plugin_types.Outcome{Intents: intents, RequeueAfterMs: requeue})
}

func witRef(r ObjectRef) kubewasm_plugin_types.ObjectRef {
	return kubewasm_plugin_types.ObjectRef{ApiVersion: r.APIVersion, Kind: r.Kind, Namespace: some(r.Namespace), Name: r.Name}
}

func jsonText(value any) (string, error) {
	data, err := json.Marshal(value)
	return string(data), err
}

var propagations = map[Propagation]uint8{
	Background: kubewasm_plugin_types.PropagationPolicy_Background,
	Foreground: kubewasm_plugin_types.PropagationPolicy_Foreground,
	Orphan:     kubewasm_plugin_types.PropagationPolicy_Orphan,
}

func witIntent(intent Intent) (kubewasm_plugin_types.Intent, error) {
	switch i := intent.(type) {
	case *Apply:
		return witIntent(*i)
	case *Patch:
		return witIntent(*i)
	case *Create:
		return witIntent(*i)
	case *Delete:
		return witIntent(*i)
	case *RecordEvent:
		return witIntent(*i)
	case Apply:
		text, err := jsonText(i.Object)
		if err != nil {
			return kubewasm_plugin_types.Intent{}, fmt.Errorf("apply of a partial object that is not JSON: %w", err)
		}
		return kubewasm_plugin_types.MakeIntentApply(kubewasm_plugin_types.ApplyIntent{Object: text, Status: i.Status, Force: i.Force}), nil
	case Patch:
		text, err := jsonText(i.Document)
		if err != nil {
			return kubewasm_plugin_types.Intent{}, fmt.Errorf("patch of %s is not JSON: %w", i.Target, err)
		}
		patch := kubewasm_plugin_types.PatchIntent{Target: witRef(i.Target), Patch: text, Status: i.Status, ResourceVersion: some(i.ResourceVersion)}
		if i.JSON {
			return kubewasm_plugin_types.MakeIntentJsonPatch(patch), nil
		}
		return kubewasm_plugin_types.MakeIntentMergePatch(patch), nil
	case Create:
		text, err := jsonText(i.Object)
		if err != nil {
			return kubewasm_plugin_types.Intent{}, fmt.Errorf("create of an object that is not JSON: %w", err)
		}
		return kubewasm_plugin_types.MakeIntentCreate(kubewasm_plugin_types.CreateIntent{Object: text}), nil
	case Delete:
		policy := witTypes.None[uint8]()
		if i.Propagation != "" {
			p, ok := propagations[i.Propagation]
			if !ok {
				return kubewasm_plugin_types.Intent{}, fmt.Errorf("delete of %s: propagation %q is not Background, Foreground or Orphan", i.Target, i.Propagation)
			}
			policy = witTypes.Some(p)
		}
		return kubewasm_plugin_types.MakeIntentDelete(kubewasm_plugin_types.DeleteIntent{Target: witRef(i.Target), Propagation: policy}), nil
	case RecordEvent:
		severity := kubewasm_plugin_types.EventSeverity_Normal
		if i.Severity == Warning {
			severity = kubewasm_plugin_types.EventSeverity_Warning
		}
		return kubewasm_plugin_types.MakeIntentRecordEvent(kubewasm_plugin_types.EventIntent{
			Regarding: witRef(i.Regarding), Severity: severity, Reason: i.Reason, Note: i.Note, Action: i.Action,
		}), nil
	}
	return kubewasm_plugin_types.Intent{}, fmt.Errorf("%T is not an intent", intent)
}
