module {{name}}

go 1.26

require kubewasm.dev/sdk/go v0.0.0

// The SDK is not published to the Go module proxy yet: it is used from the
// kubewasm checkout this project was scaffolded from.
replace kubewasm.dev/sdk/go => {{sdk}}/guest-sdk/go
