module kubewasm.dev/sdk/go

go 1.26

// The generated bindings (internal/wit) import the wit-bindgen Go runtime
// package. The Go module proxy does not serve it; it ships inside the
// wit-bindgen-go crate, and plugins/go/build.sh points a go.work `replace`
// at it (see plugins/tools/go-env.sh). Only wasip1 builds import it.
require go.bytecodealliance.org/pkg v0.4.0
