package kubewasm_test

import (
	"testing"
	"time"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

var cm = kubewasm.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "shop", Name: "web"}

func TestEveryIntentInExpectedJSONForm(t *testing.T) {
	owner := kubewasmtest.Object(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p", "namespace": "shop", "uid": "u-1"}}`)
	ref, err := kubewasm.ControllerOf(owner)
	if err != nil {
		t.Fatal(err)
	}
	out := kubewasm.NewOutcome(
		kubewasm.ApplyFields(cm, map[string]any{
			"apiVersion": "ignored",
			"metadata":   map[string]any{"labels": map[string]string{"a": "b"}, "name": "ignored"},
			"data":       map[string]any{"k": "v"},
		}).WithOwner(ref),
		kubewasm.ApplyStatus(cm, map[string]any{"phase": "Ready"}).WithForce(false),
		kubewasm.MergePatch(cm, map[string]any{"data": map[string]any{"k": nil}}).OnStatus().WithResourceVersion("7"),
		kubewasm.JSONPatch(cm, kubewasm.Ops{}.Test("/data/k", "v").Remove("/data/k")),
		kubewasm.NewCreate(map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c"}}),
		kubewasm.NewDelete(kubewasm.ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "gone"}).WithPropagation(kubewasm.Orphan),
		kubewasm.WarningEvent(cm, "Missing", "note").WithAction("Validate"),
		nil,
	).RequeueAfter(1500 * time.Millisecond)
	kubewasmtest.AssertOutcome(t, out, `{"intents": [
	  {"type": "apply", "status": false, "force": true, "object": {"apiVersion": "v1", "kind": "ConfigMap",
	    "metadata": {"name": "web", "namespace": "shop", "labels": {"a": "b"},
	      "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "p", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}]},
	    "data": {"k": "v"}}},
	  {"type": "apply", "status": true, "force": false, "object": {"apiVersion": "v1", "kind": "ConfigMap",
	    "metadata": {"name": "web", "namespace": "shop"}, "status": {"phase": "Ready"}}},
	  {"type": "merge-patch", "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "web"},
	    "patch": {"data": {"k": null}}, "status": true, "resourceVersion": "7"},
	  {"type": "json-patch", "target": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "web"},
	    "patch": [{"op": "test", "path": "/data/k", "value": "v"}, {"op": "remove", "path": "/data/k"}],
	    "status": false, "resourceVersion": null},
	  {"type": "create", "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}},
	  {"type": "delete", "target": {"apiVersion": "v1", "kind": "Namespace", "namespace": null, "name": "gone"}, "propagation": "Orphan"},
	  {"type": "record-event", "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "web"},
	    "severity": "Warning", "reason": "Missing", "note": "note", "action": "Validate"}
	], "requeueAfterMs": 1500}`)
}

func TestBuildersDoNotShareMaps(t *testing.T) {
	fields := map[string]any{"data": map[string]any{"k": "v"}}
	apply := kubewasm.ApplyFields(cm, fields)
	fields["data"].(map[string]any)["k"] = "changed"
	if got := apply.Object["data"].(map[string]any)["k"]; got != "v" {
		t.Errorf("the apply changed with its input: %v", got)
	}
	ops := kubewasm.Ops{}.Add("/a", 1)
	first := ops.Add("/b", 2)
	second := ops.Add("/c", 3)
	if len(first) != 2 || first[1].Path != "/b" || second[1].Path != "/c" {
		t.Errorf("Ops share their backing array: %v %v", first, second)
	}
}

func TestOutcomeRequeue(t *testing.T) {
	var out kubewasm.Outcome
	if !out.IsEmpty() {
		t.Error("the zero outcome is not empty")
	}
	if _, ok := out.Requeue(); ok {
		t.Error("the zero outcome requeues")
	}
	out = out.RequeueAfter(0)
	if d, ok := out.Requeue(); !ok || d != 0 || out.IsEmpty() {
		t.Errorf("a zero requeue is a requeue: %v %v", d, ok)
	}
	kubewasmtest.AssertOutcome(t, out, `{"intents": [], "requeueAfterMs": 0}`)
}

func TestControllerOfNeedsAUID(t *testing.T) {
	obj := kubewasm.NewObject(map[string]any{"kind": "ConfigMap", "metadata": map[string]any{"name": "x", "namespace": "n"}})
	if _, err := kubewasm.ControllerOf(obj); err == nil || err.Error() != "ConfigMap n/x has no metadata.uid to own a child" {
		t.Errorf("err = %v", err)
	}
}

func TestParsePropagation(t *testing.T) {
	if p, ok := kubewasm.ParsePropagation("Foreground"); !ok || p != kubewasm.Foreground {
		t.Errorf("Foreground: %v %v", p, ok)
	}
	if _, ok := kubewasm.ParsePropagation("foreground"); ok {
		t.Error("lower case accepted")
	}
}
