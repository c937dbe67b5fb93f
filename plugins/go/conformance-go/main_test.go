package main

import (
	"testing"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

// The whole suite runs against the component (`kubewasm test conformance`);
// these native cases check the plugin's wiring with the fake host.

func subject(t *testing.T, do string, annotations string) *kubewasm.Object {
	return kubewasmtest.Object(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "subject",
	  "namespace": "conf", "uid": "u-1", "resourceVersion": "42",
	  "labels": {"conformance.kubewasm.dev/do": "`+do+`"}, "annotations": `+annotations+`},
	  "data": {"value": "hello"}}`)
}

func TestApplyAndEventWithSettings(t *testing.T) {
	host := kubewasmtest.NewHost(t).WithSettings(`{"reason": "Custom", "requeueAfterMs": 2.0}`)
	out, err := Reconcile(kubewasmtest.Applied(subject(t, "apply-and-event", `{}`)))
	if err != nil {
		t.Fatal(err)
	}
	kubewasmtest.AssertOutcome(t, out, `{"intents": [
	  {"type": "apply", "status": false, "force": true, "object": {"apiVersion": "v1", "kind": "ConfigMap",
	    "metadata": {"name": "subject", "namespace": "conf", "annotations": {"conformance.kubewasm.dev/applied": "hello"}}}},
	  {"type": "record-event", "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "conf", "name": "subject"},
	    "severity": "Normal", "reason": "Custom", "note": "conformance event for subject", "action": "Test"}
	], "requeueAfterMs": 2}`)
	if logs := host.Logs(); len(logs) != 1 || logs[0].Fields["do"] != "apply-and-event" {
		t.Errorf("logs = %+v", logs)
	}
}

func TestListWithSelector(t *testing.T) {
	cm := func(ns, name, tier string) *kubewasm.Object {
		return kubewasmtest.Object(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "`+name+
			`", "namespace": "`+ns+`", "labels": {"tier": "`+tier+`"}}}`)
	}
	kubewasmtest.NewHost(t).WithCache(cm("conf", "b", "web"), cm("conf", "a", "web"), cm("conf", "db", "db"), cm("other", "c", "web"))
	out, err := Reconcile(kubewasmtest.Applied(subject(t, "list", `{"conformance.kubewasm.dev/selector": "tier=web", "conformance.kubewasm.dev/namespace": "*"}`)))
	if err != nil {
		t.Fatal(err)
	}
	got := out.Intents[0].(kubewasm.Apply).Object["metadata"].(map[string]any)["annotations"]
	if want := "conf/a,conf/b,other/c"; got.(map[string]any)["conformance.kubewasm.dev/listed"] != want {
		t.Errorf("listed = %v, want %s", got, want)
	}
}

func TestErrorsAndSettings(t *testing.T) {
	kubewasmtest.NewHost(t)
	_, err := Reconcile(kubewasmtest.Applied(subject(t, "what", `{}`)))
	if err == nil || err.Error() != `unknown conformance.kubewasm.dev/do "what"` {
		t.Errorf("err = %v", err)
	}
	if _, err := parseSettings(`{"requeueAfterMs": 0}`); err == nil ||
		err.Error() != "settings.requeueAfterMs: must be a whole number from 1 to 3600000" {
		t.Errorf("settings err = %v", err)
	}
	p, ok := kubewasm.Registered()
	if !ok || p.Info.Name != "conformance" || p.Validate(`{"reason": "Fine"}`) != nil {
		t.Errorf("registered = %+v, %v", p.Info, ok)
	}
}
