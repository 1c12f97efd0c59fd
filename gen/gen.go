// Package gen is generated from ../openapi.yaml by `make generate`: the API's models,
// the Echo server interface and its strict (typed) variant, the Go client, and the
// spec itself, both as kin-openapi's model (GetSwagger) and verbatim (SpecYAML).
//
// Only this file and the codegen-*.yaml configurations are written by hand; every
// other file here is overwritten by `make generate`, and CI fails when they differ
// from what the spec produces.
package gen

import _ "embed"

//go:generate cp ../openapi.yaml openapi.yaml
//go:generate go tool oapi-codegen -config codegen-types.yaml -o types.gen.go openapi.yaml
//go:generate go tool oapi-codegen -config codegen-server.yaml -o server.gen.go openapi.yaml
//go:generate go tool oapi-codegen -config codegen-client.yaml -o client.gen.go openapi.yaml

// SpecYAML is openapi.yaml exactly as written, comments included; it is what
// GET /openapi.yaml serves.
//
//go:embed openapi.yaml
var SpecYAML []byte
