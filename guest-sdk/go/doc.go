// Package kubewasm writes kubewasm reconcile plugins in Go.
//
// A plugin is a WebAssembly component of the `plugin` world in the
// repository's wit/plugin.wit (kubewasm:plugin@0.2.0). With this package it
// is ordinary Go: a reconcile function and a description, registered from
// an init function of package main.
//
//	package main
//
//	import "kubewasm.dev/sdk/go"
//
//	func init() {
//		kubewasm.Register(kubewasm.Plugin{
//			Info: kubewasm.PluginInfo{
//				Name: "stamp", Version: "0.1.0",
//				Subscriptions: []kubewasm.Subscription{{Version: "v1", Kind: "ConfigMap"}},
//				Writes:        []kubewasm.WriteScope{{Kind: "ConfigMap"}},
//			},
//			Reconcile: Reconcile,
//		})
//	}
//
//	func Reconcile(ev kubewasm.Event) (kubewasm.Outcome, error) {
//		if ev.IsDeleted() {
//			return kubewasm.Outcome{}, nil
//		}
//		if v, _ := ev.Object.Label("stamped"); v == "yes" {
//			return kubewasm.Outcome{}, nil
//		}
//		labels := map[string]any{"metadata": map[string]any{"labels": map[string]any{"stamped": "yes"}}}
//		return kubewasm.NewOutcome(kubewasm.ApplyFields(ev.Object.Ref(), labels)), nil
//	}
//
//	func main() {}
//
// What the package offers:
//
//   - reading the object: Object accessors (Name, Namespace, UID, Labels,
//     Annotations, Generation, Get by dotted path, Decode into a struct);
//   - intents: Apply (ApplyFields, ApplyStatus), Patch (MergePatch,
//     JSONPatch with Ops), Create, Delete, RecordEvent, collected in an
//     Outcome with an optional RequeueAfter;
//   - children: PluginInfo.Owns, ControllerOf for owner references,
//     ListOwned to read them;
//   - mapped watches (PluginInfo.Watches) and a host-managed finalizer
//     (PluginInfo.Finalizer, then Event.IsFinalizing);
//   - status: StatusUpdate with Conditions;
//   - the host: Info/Warn/... logging, Settings/ParseSettings into a struct
//     with errors naming the field, cache reads Get and List (with a label
//     selector), and the clock Now;
//   - native tests: package kubewasmtest is a fake host for `go test`.
//
// Build with plugins/go/build.sh (GOOS=wasip1 GOARCH=wasm, c-shared, then
// `kubewasm componentize`). A plugin has no files, network, environment or
// system clock: read the time with Now.
package kubewasm
