package main

import (
	"testing"

	kubewasm "kubewasm.dev/sdk/go"
	"kubewasm.dev/sdk/go/kubewasmtest"
)

const settings = `{"rules": [{"tier": "gold", "namespaces": ["prod-*", "payments"]},
  {"tier": "silver", "namespaces": ["stage-*"]}], "defaultTier": "bronze"}`

func namespace(t *testing.T, name, labels string) *kubewasm.Object {
	return kubewasmtest.Object(t, `{"apiVersion": "v1", "kind": "Namespace",
	  "metadata": {"name": "`+name+`", "uid": "u-`+name+`", "labels": `+labels+`}}`)
}

func TestTiers(t *testing.T) {
	kubewasmtest.NewHost(t).WithSettings(settings)
	for name, want := range map[string]string{
		"prod-eu": "gold", "payments": "gold", "stage-1": "silver", "sandbox": "bronze", "kube-system": "",
	} {
		out, err := Reconcile(kubewasmtest.Applied(namespace(t, name, `{}`)))
		if err != nil {
			t.Fatal(err)
		}
		if want == "" {
			if !out.IsEmpty() {
				t.Errorf("%s: excluded, but %+v", name, out)
			}
			continue
		}
		kubewasmtest.AssertOutcome(t, out, `{"intents": [{"type": "apply", "status": false, "force": true,
		  "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "`+name+`",
		    "labels": {"kubewasm.dev/quota-tier": "`+want+`"}}}}], "requeueAfterMs": null}`)
	}
}

func TestNoWriteWhenUpToDate(t *testing.T) {
	host := kubewasmtest.NewHost(t).WithSettings(settings)
	out, err := Reconcile(kubewasmtest.Resync(namespace(t, "prod-eu", `{"kubewasm.dev/quota-tier": "gold"}`)))
	if err != nil || !out.IsEmpty() {
		t.Errorf("up to date: %+v, %v", out, err)
	}
	if len(host.Logs()) != 0 {
		t.Errorf("logged %+v", host.Logs())
	}
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	for text, want := range map[string]string{
		`{"rules": [{"tier": "gold", "namespaces": ["a", "[x"]}]}`: `settings.rules[0].namespaces[1]: "[x" is not a name glob`,
		`{"rules": [{"tier": "not ok", "namespaces": ["a"]}]}`:     `settings.rules[0].tier: "not ok" is not a label value`,
		`{"rules": [{"namespaces": ["a"]}]}`:                       `settings.rules[0].tier: missing required field`,
		`{"label": "Bad_Prefix/x"}`:                                `settings.label: "Bad_Prefix/x" is not a label key`,
		`{"tiers": {}}`:                                            `settings.tiers: unknown field (known: defaultTier, exclude, label, rules)`,
	} {
		if _, err := parseSettings(text); err == nil || err.Error() != want {
			t.Errorf("%s: %v\nwant %s", text, err, want)
		}
	}
}
