package main

import (
	"testing"

	"kubewasm.dev/sdk/go/kubewasmtest"
)

const web = `{"apiVersion": "v1", "kind": "ConfigMap",
  "metadata": {"name": "web", "namespace": "default", "labels": {"hello": "please"}}}`

func TestGreetsOnce(t *testing.T) {
	host := kubewasmtest.NewHost(t)
	out, err := Reconcile(kubewasmtest.Applied(kubewasmtest.Object(t, web)))
	if err != nil {
		t.Fatal(err)
	}
	kubewasmtest.AssertOutcome(t, out, `{"intents": [{"type": "apply", "status": false, "force": true,
	  "object": {"apiVersion": "v1", "kind": "ConfigMap",
	    "metadata": {"name": "web", "namespace": "default", "labels": {"greeted": "yes"}}}}],
	  "requeueAfterMs": null}`)
	if logs := host.Logs(); len(logs) != 1 || logs[0].Fields["name"] != "web" {
		t.Errorf("logs = %+v", logs)
	}

	greeted := `{"apiVersion": "v1", "kind": "ConfigMap",
	  "metadata": {"name": "web", "namespace": "default", "labels": {"hello": "please", "greeted": "yes"}}}`
	out, err = Reconcile(kubewasmtest.Applied(kubewasmtest.Object(t, greeted)))
	if err != nil || !out.IsEmpty() {
		t.Errorf("greeted twice: %+v, %v", out, err)
	}
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	if _, err := loadSettings(`{"label": 3}`); err == nil || err.Error() != "settings.label: must be a string" {
		t.Errorf("err = %v", err)
	}
}
