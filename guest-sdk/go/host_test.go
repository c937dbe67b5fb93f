package kubewasm_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

func configMap(t *testing.T, namespace, name, labels, uid string) *kubewasm.Object {
	return kubewasmtest.Object(t, `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "`+name+
		`", "namespace": "`+namespace+`", "uid": "`+uid+`", "labels": `+labels+`}}`)
}

func names(objects []*kubewasm.Object) string {
	var out []string
	for _, o := range objects {
		out = append(out, o.Namespace()+"/"+o.Name())
	}
	return strings.Join(out, ",")
}

func TestCacheReads(t *testing.T) {
	kubewasmtest.NewHost(t).
		WithScope(kubewasm.PluginInfo{Name: "p", Subscriptions: []kubewasm.Subscription{{Version: "v1", Kind: "ConfigMap"}}}).
		WithCache(
			configMap(t, "a", "web", `{"tier": "web"}`, "1"),
			configMap(t, "a", "db", `{"tier": "db", "legacy": "true"}`, "2"),
			configMap(t, "b", "web", `{"tier": "web", "legacy": "true"}`, "3"),
		)
	found, err := kubewasm.Get("v1", "ConfigMap", "a", "db")
	if err != nil || found == nil || found.UID() != "2" {
		t.Fatalf("Get = %v, %v", found, err)
	}
	if absent, err := kubewasm.GetRef(kubewasm.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "b", Name: "db"}); absent != nil || err != nil {
		t.Errorf("GetRef of an absent object = %v, %v", absent, err)
	}
	for selector, want := range map[string]string{
		"":                          "a/web,a/db,b/web",
		"tier=web":                  "a/web,b/web",
		"tier!=web":                 "a/db",
		"tier in (db, web),!legacy": "a/web",
		"legacy":                    "a/db,b/web",
		"tier notin (web)":          "a/db",
	} {
		listed, err := kubewasm.List("v1", "ConfigMap", "", selector)
		if err != nil || names(listed) != want {
			t.Errorf("List(%q) = %s, %v; want %s", selector, names(listed), err, want)
		}
	}
	inA, _ := kubewasm.List("v1", "ConfigMap", "a", "")
	if names(inA) != "a/web,a/db" {
		t.Errorf("List in a = %s", names(inA))
	}
	_, err = kubewasm.Get("v1", "Secret", "a", "x")
	var refused *kubewasm.HostError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "may not read Secret") {
		t.Errorf("reading a Secret: %v", err)
	}
}

func TestListOwned(t *testing.T) {
	owner := configMap(t, "a", "parent", `{}`, "p-1")
	child := func(name, uid string, controller bool) *kubewasm.Object {
		obj := configMap(t, "a", name, `{}`, name)
		ref := kubewasm.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "parent", UID: uid, Controller: &controller}
		meta := obj.Value()["metadata"].(map[string]any)
		meta["ownerReferences"] = []any{map[string]any{"apiVersion": ref.APIVersion, "kind": ref.Kind, "name": ref.Name, "uid": ref.UID, "controller": controller}}
		return obj
	}
	kubewasmtest.NewHost(t).WithCache(owner, child("z", "p-1", true), child("b", "p-1", true), child("c", "p-1", false), child("d", "other", true))
	children, err := kubewasm.ListOwned("v1", "ConfigMap", owner)
	if err != nil || names(children) != "a/b,a/z" {
		t.Errorf("ListOwned = %s, %v", names(children), err)
	}
}

func TestLogAndClock(t *testing.T) {
	host := kubewasmtest.NewHost(t).WithNow("2026-12-04T03:15:00.250Z")
	kubewasm.Info("labelled", "namespace", "shop", "count", 3, "dangling")
	kubewasm.Warn("careful")
	want := []kubewasmtest.LogRecord{
		{Level: kubewasm.LevelInfo, Message: "labelled", Fields: map[string]string{"namespace": "shop", "count": "3", "dangling": "(missing)"}},
		{Level: kubewasm.LevelWarn, Message: "careful", Fields: map[string]string{}},
	}
	if got := host.Logs(); !reflect.DeepEqual(got, want) {
		t.Errorf("logs = %+v", got)
	}
	now := kubewasm.Now()
	if now.EpochMs != 1796354100250 || now.RFC3339 != "2026-12-04T03:15:00Z" {
		t.Errorf("now = %+v", now)
	}
	if later := now.Add(90 * time.Second); later.RFC3339 != "2026-12-04T03:16:30Z" || later.Since(now) != 90*time.Second {
		t.Errorf("later = %+v", later)
	}
	if _, err := kubewasm.ParseTimestamp("yesterday"); err == nil {
		t.Error("ParseTimestamp accepted nonsense")
	}
}

func TestStatusUpdateWritesOnlyChanges(t *testing.T) {
	kubewasmtest.NewHost(t).WithNow("2026-03-01T10:00:00Z")
	site := kubewasmtest.Object(t, `{"apiVersion": "demo.kubewasm.dev/v1", "kind": "Website",
	  "metadata": {"name": "blog", "namespace": "web", "generation": 3}}`)
	ready := kubewasm.Condition{Type: "Ready", Status: kubewasm.ConditionTrue, Reason: "ChildReady", Message: "ok"}
	apply, changed := kubewasm.NewStatusUpdate(site).Condition(ready).ObservedGeneration().Apply()
	if !changed {
		t.Fatal("a new condition is no change")
	}
	kubewasmtest.AssertOutcome(t, kubewasm.NewOutcome(apply), `{"intents": [{"type": "apply", "status": true, "force": true,
	  "object": {"apiVersion": "demo.kubewasm.dev/v1", "kind": "Website", "metadata": {"name": "blog", "namespace": "web"},
	    "status": {"observedGeneration": 3, "conditions": [{"type": "Ready", "status": "True", "reason": "ChildReady",
	      "message": "ok", "observedGeneration": 3, "lastTransitionTime": "2026-03-01T10:00:00Z"}]}}}], "requeueAfterMs": null}`)

	// The object now carries that status: the same update writes nothing,
	// even later; a status change moves lastTransitionTime.
	site.Value()["status"] = apply.Object["status"]
	kubewasmtest.NewHost(t).WithNow("2026-03-01T11:00:00Z")
	if _, changed := kubewasm.NewStatusUpdate(site).Condition(ready).ObservedGeneration().Apply(); changed {
		t.Error("an unchanged status is written again")
	}
	ready.Status = kubewasm.ConditionFalse
	update := kubewasm.NewStatusUpdate(site).Condition(ready)
	if c := update.Conditions()[0]; c.LastTransitionTime != "2026-03-01T11:00:00Z" {
		t.Errorf("lastTransitionTime = %s", c.LastTransitionTime)
	}
}

func TestPluginRecoversFromPanics(t *testing.T) {
	p := kubewasm.Plugin{
		Reconcile:        func(kubewasm.Event) (kubewasm.Outcome, error) { panic("boom") },
		ValidateSettings: func(string) error { var m map[string]int; m["x"] = 1; return nil },
	}
	ev := kubewasmtest.Applied(configMap(t, "a", "b", `{}`, "1"))
	if _, err := p.ReconcileSafely(ev); err == nil || err.Error() != "panic: boom" {
		t.Errorf("reconcile: %v", err)
	}
	if err := p.Validate("{}"); err == nil || !strings.HasPrefix(err.Error(), "panic: ") {
		t.Errorf("validate: %v", err)
	}
	if err := (kubewasm.Plugin{}).Validate("anything"); err != nil {
		t.Errorf("no ValidateSettings accepts everything: %v", err)
	}
}
