package kubewasm_test

import (
	"encoding/json"
	"reflect"
	"testing"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

const deployment = `{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "generation": 3,
    "resourceVersion": "42", "labels": {"app.kubernetes.io/name": "web", "n": 1},
    "annotations": {"note": "x"}, "finalizers": ["a/b"],
    "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u-0", "controller": true}]},
  "spec": {"replicas": 12345678901234567, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}},
  "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Up", "message": "m",
    "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 3}, {"status": "no type"}]}
}`

func TestObjectAccessors(t *testing.T) {
	obj := kubewasmtest.Object(t, deployment)
	checks := map[string][2]string{
		"apiVersion": {obj.APIVersion(), "apps/v1"},
		"kind":       {obj.Kind(), "Deployment"},
		"name":       {obj.Name(), "web"},
		"namespace":  {obj.Namespace(), "shop"},
		"uid":        {obj.UID(), "u-1"},
		"rv":         {obj.ResourceVersion(), "42"},
		"ref":        {obj.Ref().String(), "Deployment shop/web"},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
	if gen, ok := obj.Generation(); !ok || gen != 3 {
		t.Errorf("generation = %d, %v", gen, ok)
	}
	if got := obj.Labels(); !reflect.DeepEqual(got, map[string]string{"app.kubernetes.io/name": "web"}) {
		t.Errorf("labels = %v (non-strings are skipped)", got)
	}
	if v, ok := obj.Label("app.kubernetes.io/name"); !ok || v != "web" {
		t.Errorf("label = %q, %v", v, ok)
	}
	if _, ok := obj.Annotation("absent"); ok {
		t.Error("an absent annotation was found")
	}
	if got := obj.Finalizers(); !reflect.DeepEqual(got, []string{"a/b"}) {
		t.Errorf("finalizers = %v", got)
	}
	if obj.IsBeingDeleted() {
		t.Error("not terminating")
	}
	if ref, ok := obj.Controller(); !ok || ref.UID != "u-0" {
		t.Errorf("controller = %+v, %v", ref, ok)
	}
	owner := kubewasm.NewObject(map[string]any{"metadata": map[string]any{"uid": "u-0"}})
	if !obj.IsControlledBy(owner) {
		t.Error("IsControlledBy(owner) = false")
	}
	if c, ok := obj.Condition("Ready"); !ok || c.Status != kubewasm.ConditionTrue || *c.ObservedGeneration != 3 {
		t.Errorf("condition = %+v, %v", c, ok)
	}
	if n := len(obj.Conditions()); n != 1 {
		t.Errorf("%d conditions, want 1 (the malformed one skipped)", n)
	}
}

func TestNumbersSurviveARoundTrip(t *testing.T) {
	obj := kubewasmtest.Object(t, deployment)
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	again := kubewasmtest.Object(t, string(data))
	if n, ok := again.GetInt("spec.replicas"); !ok || n != 12345678901234567 {
		t.Errorf("replicas = %d, %v: a large integer lost precision", n, ok)
	}
}

func TestGetPath(t *testing.T) {
	obj := kubewasmtest.Object(t, deployment)
	cases := []struct {
		path  string
		want  any
		found bool
	}{
		{"spec.template.spec.containers[0].image", "nginx:1.27", true},
		{"spec.template.spec.containers.0.name", "c", true},
		{`metadata.labels["app.kubernetes.io/name"]`, "web", true},
		{"metadata.labels.app", nil, false},
		{"spec.template.spec.containers[1]", nil, false},
		{"spec..replicas", nil, false},
		{"spec.template[", nil, false},
		{"metadata.name.first", nil, false},
	}
	for _, c := range cases {
		got, found := obj.Get(c.path)
		if found != c.found || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Get(%q) = %v, %v; want %v, %v", c.path, got, found, c.want, c.found)
		}
	}
	if got := kubewasm.EscapePointer("a~b/c"); got != "a~0b~1c" {
		t.Errorf("EscapePointer = %q", got)
	}
}

func TestParseObjectRefusesNonObjects(t *testing.T) {
	for _, text := range []string{`[1]`, `"x"`, `{`, `{} {}`} {
		if _, err := kubewasm.ParseObject(text); err == nil {
			t.Errorf("ParseObject(%s) accepted it", text)
		}
	}
}

func TestDecodeIntoAStruct(t *testing.T) {
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct{ Image string } `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := kubewasmtest.Object(t, deployment).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "nginx:1.27" {
		t.Errorf("image = %q", got)
	}
}

func TestGuessKind(t *testing.T) {
	for kind, plural := range map[string]string{"Ingress": "ingresses", "Policy": "policies", "Gateway": "gateways", "Pod": "pods"} {
		obj := kubewasm.NewObject(map[string]any{"apiVersion": "x.io/v1", "kind": kind})
		got := kubewasm.GuessKind(obj)
		if got.Plural != plural || got.Group != "x.io" || got.Version != "v1" || got.Namespaced {
			t.Errorf("GuessKind(%s) = %+v", kind, got)
		}
	}
}
