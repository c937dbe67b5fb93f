#!/usr/bin/env bash
# Runs the Go SDK's unit tests and every Go plugin's native tests (go test,
# with the fake host of kubewasm.dev/sdk/go/kubewasmtest: no component, no
# cluster), checks gofmt and go vet, and checks that the committed bindings
# (guest-sdk/go/internal/wit) are what wit-bindgen generates from wit/
# today (that needs the wit-bindgen CLI, which plugins/tools/wit-bindgen.sh
# installs once; KUBEWASM_GO_SKIP_BINDINGS_CHECK=1 skips it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/go"
export GOTOOLCHAIN=local

log() { echo "go-plugins: $*" >&2; }

unformatted="$(gofmt -l "$sdk" "$here")"
[[ -z "$unformatted" ]] || { log "not gofmt-formatted: $unformatted"; exit 1; }

# The SDK natively: its wasip1 glue and the bindings are not compiled here.
(cd "$sdk" && go vet . ./kubewasmtest && go test . ./kubewasmtest)
# The wasip1 side compiles and vets too (the workspace supplies the
# wit-bindgen runtime package).
for plugin_dir in "$here"/*/; do
    [[ -f "$plugin_dir/go.mod" ]] || continue
    name="$(basename "$plugin_dir")"
    log "testing $name"
    (cd "$plugin_dir" && go vet ./... && go test ./...)
    (cd "$plugin_dir" && GOWORK="$("$here/tools/env.sh" .)" GOOS=wasip1 GOARCH=wasm go vet ./...)
done

if [[ "${KUBEWASM_GO_SKIP_BINDINGS_CHECK:-}" != "1" ]]; then
    "$sdk/tools/generate.sh" --check
fi
