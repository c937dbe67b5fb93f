// namespace-quota-labeller labels every Namespace with a quota tier chosen
// by the operator's settings (name globs, first match wins), so quota and
// policy tooling can select Namespaces by tier. It writes only when the
// label is missing or stale.
package main

import (
	kubewasm "kubewasm.dev/sdk/go"
)

func init() {
	kubewasm.Register(kubewasm.Plugin{
		Info: kubewasm.PluginInfo{
			Name:          "namespace-quota-labeller",
			Version:       "0.1.0",
			Subscriptions: []kubewasm.Subscription{{Version: "v1", Kind: "Namespace"}},
			Writes:        []kubewasm.WriteScope{{Kind: "Namespace"}},
		},
		Reconcile: Reconcile,
		ValidateSettings: func(text string) error {
			_, err := parseSettings(text)
			return err
		},
	})
}

func main() {}

// Reconcile labels one Namespace with its tier.
func Reconcile(ev kubewasm.Event) (kubewasm.Outcome, error) {
	settings, err := parseSettings(kubewasm.RawSettings())
	if err != nil {
		return kubewasm.Outcome{}, err
	}
	ns := ev.Object
	if ev.IsDeleted() || ns.IsBeingDeleted() {
		return kubewasm.Outcome{}, nil
	}
	tier := settings.tierOf(ns.Name())
	if tier == "" {
		kubewasm.Debug("no tier for this namespace", "namespace", ns.Name())
		return kubewasm.Outcome{}, nil
	}
	if current, _ := ns.Label(settings.Label); current == tier {
		return kubewasm.Outcome{}, nil
	}
	kubewasm.Info("assigning quota tier", "namespace", ns.Name(), "tier", tier)
	labels := map[string]any{"metadata": map[string]any{"labels": map[string]any{settings.Label: tier}}}
	return kubewasm.NewOutcome(kubewasm.ApplyFields(ns.Ref(), labels)), nil
}
