module kubewasm.dev/plugins/conformance-go

go 1.26

require kubewasm.dev/sdk/go v0.0.0

replace kubewasm.dev/sdk/go => ../../../guest-sdk/go
