package server_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The operations endpoints: probes, metrics and the access log.

func TestProbes(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		res, body := e.raw(http.MethodGet, path, "", "", "")
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":"ok"`) {
			t.Errorf("%s: %d %s", path, res.StatusCode, body)
		}
	}
	// Closing the database makes the readiness probe fail, not the liveness one.
	if err := e.store.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	res, body := e.raw(http.MethodGet, "/readyz", "", "", "")
	wantProblem(t, http.StatusServiceUnavailable, body, res.StatusCode, "unavailable")
	if res, _ := e.raw(http.MethodGet, "/healthz", "", "", ""); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz with the database closed: %d", res.StatusCode)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	c := e.customer(admin, "Metered Customer")
	e.raw(http.MethodGet, "/customers/"+c.Id, admin.token, "", "")
	e.raw(http.MethodGet, "/customers/0123456789abcdef01234567", admin.token, "", "")
	e.raw(http.MethodGet, "/no/such/path/"+c.Id+"?q=secret-ish", admin.token, "", "")

	res, body := e.raw(http.MethodGet, "/metrics", "", "", "")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	text := string(body)
	for _, want := range []string{
		`crm_http_requests_total{method="GET",route="/customers/:id",status="200"} 1`,
		`crm_http_requests_total{method="GET",route="/customers/:id",status="404"} 1`,
		`crm_http_requests_total{method="POST",route="/customers",status="201"} 1`,
		`crm_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`crm_http_request_duration_seconds_bucket{method="GET",route="/customers/:id",status="200",le="+Inf"} 1`,
		`crm_db_operation_duration_seconds_count{command="find",outcome="ok"}`,
		`crm_db_operation_duration_seconds_count{command="insert",outcome="ok"}`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Labels never hold ids or anything a client typed.
	ids := regexp.MustCompile(`[0-9a-f]{24}`)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "crm_") && (ids.MatchString(line) || strings.Contains(line, "secret-ish") || strings.Contains(line, "/no/such")) {
			t.Errorf("a metric label holds request data: %s", line)
		}
	}
}

func TestAccessLog(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	e.raw(http.MethodGet, "/customers?q=private-search-text", admin.token, "", "", "X-Request-ID", "access-log-test")
	var entry map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"request_id":"access-log-test"`) {
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatal(err)
			}
		}
	}
	if entry == nil {
		t.Fatal("no access-log line for the request")
	}
	for key, want := range map[string]any{"msg": "request", "method": "GET", "route": "/customers", "status": float64(200), "user_id": admin.Id} {
		if entry[key] != want {
			t.Errorf("access log %s = %v, want %v", key, entry[key], want)
		}
	}
	if _, ok := entry["duration_ms"].(float64); !ok {
		t.Errorf("access log without duration_ms: %v", entry)
	}
	if strings.Contains(e.logs.String(), "private-search-text") {
		t.Error("the access log holds the query string")
	}
}
