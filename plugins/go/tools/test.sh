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

unformatted="$(gofmt -l "$sdk" "$here" "$repo/templates/go")"
[[ -z "$unformatted" ]] || { log "not gofmt-formatted: $unformatted"; exit 1; }

# The SDK natively: its wasip1 glue and the bindings are not compiled here.
(cd "$sdk" && go vet . ./kubewasmtest && go test . ./kubewasmtest)
# Its wasip1 side (export_wasip1.go and the bindings) compiles and vets.
# The generated bindings turn canonical-ABI addresses (integers) into
# pointers by design, which vet's unsafeptr check reports (Go 1.26 reports
# it through every package that imports them): off for the wasip1 vets.
(cd "$sdk" && GOWORK="$("$here/tools/env.sh" .)" GOOS=wasip1 GOARCH=wasm go vet -unsafeptr=false . ./internal/...)
# Each plugin: natively, then its wasip1 build vetted (the workspace
# supplies the wit-bindgen runtime package).
for plugin_dir in "$here"/*/; do
    [[ -f "$plugin_dir/go.mod" ]] || continue
    name="$(basename "$plugin_dir")"
    log "testing $name"
    (cd "$plugin_dir" && go vet ./... && go test ./...)
    (cd "$plugin_dir" && GOWORK="$("$here/tools/env.sh" .)" GOOS=wasip1 GOARCH=wasm go vet -unsafeptr=false ./...)
done

# The `kubewasm new --lang go` template, instantiated as `kubewasm new`
# does (placeholders replaced): its tests pass natively, and with a kubewasm
# binary ($KUBEWASM_BIN) it builds and passes `kubewasm test`.
template="$(mktemp -d)"
trap 'rm -rf "$template"' EXIT
(cd "$repo/templates/go" && find . -type f) | while IFS= read -r file; do
    mkdir -p "$template/hello-go/$(dirname "$file")"
    sed -e 's|{{name}}|hello-go|g' -e "s|{{sdk}}|$repo|g" "$repo/templates/go/$file" >"$template/hello-go/$file"
done
chmod +x "$template/hello-go/build.sh"
log "testing the Go template"
(cd "$template/hello-go" && go vet ./... && go test ./...)
if [[ -n "${KUBEWASM_BIN:-}" ]]; then
    "$template/hello-go/build.sh"
    "$KUBEWASM_BIN" --log warn test "$template/hello-go" --plugin "$template/hello-go/dist/hello-go.wasm"
fi

if [[ "${KUBEWASM_GO_SKIP_BINDINGS_CHECK:-}" != "1" ]]; then
    "$sdk/tools/generate.sh" --check
fi
