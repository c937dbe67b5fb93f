// Package export_kubewasm_plugin_reconciler is where the generated exports
// (package wit_exports) find the `reconciler` interface's implementation.
// It is written by hand, not generated: the SDK's wasip1 glue (package
// kubewasm, export_wasip1.go) sets the hooks in its init function, so this
// package needs no import of the SDK (which imports it).
package export_kubewasm_plugin_reconciler

import (
	witTypes "go.bytecodealliance.org/pkg/wit/types"
	"kubewasm.dev/sdk/go/internal/wit/imports/kubewasm_plugin_types"
)

// The implementation, set once at initialization.
var (
	DescribeHook         func() kubewasm_plugin_types.PluginInfo
	ValidateSettingsHook func(settings string) witTypes.Result[witTypes.Unit, string]
	ReconcileHook        func(event kubewasm_plugin_types.Event) witTypes.Result[kubewasm_plugin_types.Outcome, kubewasm_plugin_types.ReconcileError]
)

// Describe implements `describe`.
func Describe() kubewasm_plugin_types.PluginInfo { return DescribeHook() }

// ValidateSettings implements `validate-settings`.
func ValidateSettings(settings string) witTypes.Result[witTypes.Unit, string] {
	return ValidateSettingsHook(settings)
}

// Reconcile implements `reconcile`.
func Reconcile(event kubewasm_plugin_types.Event) witTypes.Result[kubewasm_plugin_types.Outcome, kubewasm_plugin_types.ReconcileError] {
	return ReconcileHook(event)
}
