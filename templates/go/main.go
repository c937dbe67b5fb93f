// {{name}} is a kubewasm plugin: it labels every ConfigMap labelled
// `hello=please` with `greeted: "yes"` (the label key is a setting).
package main

import (
	kubewasm "kubewasm.dev/sdk/go"
)

// Settings are the operator's settings for this plugin (a JSON document).
type Settings struct {
	// Label is the label written on greeted ConfigMaps.
	Label string `json:"label"`
}

func loadSettings(text string) (Settings, error) {
	s := Settings{Label: "greeted"} // the defaults
	return s, kubewasm.ParseSettings(text, &s)
}

func init() {
	kubewasm.Register(kubewasm.Plugin{
		Info: kubewasm.PluginInfo{
			Name:    "{{name}}",
			Version: "0.1.0",
			Subscriptions: []kubewasm.Subscription{
				{Version: "v1", Kind: "ConfigMap", LabelSelector: "hello=please"},
			},
			Writes: []kubewasm.WriteScope{{Kind: "ConfigMap"}},
		},
		Reconcile: Reconcile,
		ValidateSettings: func(text string) error {
			_, err := loadSettings(text)
			return err
		},
	})
}

// main is never called: the host calls Reconcile through the component's
// exports once the package is initialized.
func main() {}

// Reconcile greets one ConfigMap, once.
func Reconcile(ev kubewasm.Event) (kubewasm.Outcome, error) {
	settings, err := loadSettings(kubewasm.RawSettings())
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	cm := ev.Object
	if ev.IsDeleted() || cm.IsBeingDeleted() {
		return kubewasm.Outcome{}, nil
	}
	if greeted, _ := cm.Label(settings.Label); greeted == "yes" {
		return kubewasm.Outcome{}, nil // already done: no write
	}
	kubewasm.Info("greeting", "name", cm.Name())
	labels := map[string]any{"metadata": map[string]any{"labels": map[string]any{settings.Label: "yes"}}}
	return kubewasm.NewOutcome(kubewasm.ApplyFields(cm.Ref(), labels)), nil
}
