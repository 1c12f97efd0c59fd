package server

import (
	"testing"
)

// TestRoutesAreTheSpecsOperations proves that the server registers exactly the
// operations of openapi.yaml plus the documented routes outside the API proper
// (the spec, Swagger UI, metrics): no undocumented route (OWASP API9), and no
// documented operation without a route.
func TestRoutesAreTheSpecsOperations(t *testing.T) {
	e, err := newEcho(Config{})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"GET /openapi.yaml": true, "GET /openapi.json": true, "GET /docs/openapi.json": true,
		"GET /docs": true, "GET /docs/*": true, "GET /metrics": true, "GET /": true, // / leads to /docs
	}
	for route := range indexOperations(spec) {
		want[route.String()] = true
	}
	got := map[string]bool{}
	for _, r := range e.Routes() {
		got[r.Method+" "+r.Path] = true
	}
	for route := range got {
		if !want[route] {
			t.Errorf("the server registers %s, which the spec does not document", route)
		}
	}
	for route := range want {
		if !got[route] {
			t.Errorf("%s is documented but not registered", route)
		}
	}
	// The probes are operations of the spec, documented like the rest.
	ops := indexOperations(spec)
	for _, probe := range []route{{"GET", "/healthz"}, {"GET", "/readyz"}} {
		if ops[probe] == nil {
			t.Errorf("%s is not an operation of the spec", probe)
		}
	}
}
