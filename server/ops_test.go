package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencrm/crm/gen"
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
	if us, ok := entry["duration_us"].(float64); !ok || us != float64(int64(us)) || us < 0 {
		t.Errorf("access log without a duration_us in whole microseconds: %v", entry)
	}
	if strings.Contains(e.logs.String(), "private-search-text") {
		t.Error("the access log holds the query string")
	}
}

// TestPasswordHashesOnlyWhenAllowed counts, through /metrics, the password
// hashes that requests cost: argon2id takes tens of milliseconds and 19 MiB,
// so a request refused for who sent it or for what it names must cost none.
func TestPasswordHashesOnlyWhenAllowed(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	member := e.addUser(admin, "Hashed Member", gen.Member)
	hashes := func() int {
		t.Helper()
		_, body := e.raw(http.MethodGet, "/metrics", "", "", "")
		m := regexp.MustCompile(`(?m)^crm_password_hashes_total (\d+)$`).FindSubmatch(body)
		if m == nil {
			t.Fatal("/metrics lacks crm_password_hashes_total")
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	patch := func(token, id, body string, want int) {
		t.Helper()
		res, got := e.raw(http.MethodPatch, "/users/"+id, token, "application/merge-patch+json", body)
		if res.StatusCode != want {
			t.Fatalf("PATCH /users/%s %s: %d, want %d: %s", id, body, res.StatusCode, want, got)
		}
	}
	newPassword := `{"password": "a brand new password"}`
	for _, tc := range []struct {
		name       string
		do         func()
		wantHashes int
	}{
		{"a member sets another user's password", func() { patch(member.token, admin.Id, newPassword, http.StatusForbidden) }, 0},
		{"a member sets their own password without the current one", func() { patch(member.token, member.Id, newPassword, http.StatusBadRequest) }, 0},
		{"an admin sets the password of nobody", func() { patch(admin.token, "0123456789abcdef01234567", newPassword, http.StatusNotFound) }, 0},
		{"a member sets their own password with a wrong current one", func() {
			patch(member.token, member.Id, `{"password": "a brand new password", "current_password": "not the current one"}`, http.StatusBadRequest)
		}, 1},
		{"a member sets their own password", func() {
			patch(member.token, member.Id, `{"password": "a brand new password", "current_password": "`+member.password+`"}`, http.StatusOK)
		}, 2},
		{"an admin resets a member's password", func() { patch(admin.token, member.Id, `{"password": "another new password"}`, http.StatusOK) }, 1},
		{"a sign-in", func() { e.login(admin.Email, "first admin password") }, 1},
	} {
		before := hashes()
		tc.do()
		if got := hashes() - before; got != tc.wantHashes {
			t.Errorf("%s: %d password hashes, want %d", tc.name, got, tc.wantHashes)
		}
	}
}

// TestStalledBodyIsCutOff: a request whose body stops coming is cut off when
// the server's read timeout passes. Nothing is sent back (it was a 499, a
// status no client knows, sent to a client that had not hung up), the
// connection is closed, nothing is created, and the access log records 499.
func TestStalledBodyIsCutOff(t *testing.T) {
	e := newEnv(t)
	admin := e.bootstrap()
	srv := httptest.NewUnstartedServer(e.handler)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /customers HTTP/1.1\r\nHost: crm\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":", admin.token)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(conn)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the connection stayed open after the server's read timeout")
	case len(answer) > 0:
		t.Errorf("a stalled request was answered: %q", answer)
	}
	if !strings.Contains(e.logs.String(), `"route":"/customers","status":499`) {
		t.Errorf("no access-log line with status 499 for the stalled request:\n%s", e.logs.String())
	}
	res, err := e.as(admin.token).ListCustomersWithResponse(t.Context(), &gen.ListCustomersParams{})
	mustStatus(t, res, err, http.StatusOK)
	if n := len(res.JSON200.Data); n != 0 {
		t.Errorf("%d customers created by a stalled request", n)
	}
}
