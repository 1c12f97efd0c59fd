package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/gen"
	"github.com/opencrm/crm/server"
	"github.com/opencrm/crm/store"
)

// The integration tests start the real server on the embedded engine and drive
// it over HTTP with the generated Go client. Every response, whatever the test,
// is validated against openapi.yaml (status listed for the operation, headers,
// body schema) and checked for leaked passwords and hashes by the client's
// transport.

// testSecret signs the test server's tokens.
var testSecret = []byte("test-secret-test-secret-test-secret-0123456789")

// testArgon2 keeps password hashing cheap under the race detector; the
// production parameters have their own test in api/auth.
var testArgon2 = auth.Argon2Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

// env is one running server with its database.
type env struct {
	t     *testing.T
	url   string
	store *store.Store
	// dbURI and dbName reach the test's database directly (see rawDB).
	dbURI, dbName string
	tokens        *auth.Tokens
	logs          *syncBuffer
	// client sends requests without a token.
	client *gen.ClientWithResponses
	http   *http.Client
	check  *responseChecker
	// handler is the server's, for a test that serves it another way.
	handler http.Handler
}

// envOption adjusts the configuration of a test server before it starts.
type envOption func(*api.Config, *server.Config)

// withCORS allows origins.
func withCORS(origins ...string) envOption {
	return func(_ *api.Config, s *server.Config) { s.CORSOrigins = origins }
}

// withThrottle sets the login throttling limits.
func withThrottle(limits api.ThrottleLimits) envOption {
	return func(a *api.Config, _ *server.Config) { a.Throttle = limits }
}

// newEnv starts a server on a fresh embedded database.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newWatchedEnv(t, nil, opts...)
}

// newWatchedEnv is newEnv whose store also reports every database command to
// watch, besides the metrics: for tests that count or inspect the queries a
// request makes (queries_test.go). A nil watch is exactly newEnv.
func newWatchedEnv(t *testing.T, watch *event.CommandMonitor, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		// On failure, show what the server logged as errors: the cause of a 500.
		if t.Failed() {
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
					t.Log("server: " + line)
				}
			}
		}
	})

	// Each test gets a fresh embedded engine — or, when CRM_TEST_MONGODB_URI
	// names a database server, a database of its own on that server (this is
	// how the suite runs a second time against the standalone engine on
	// PostgreSQL).
	dbURI, dbName := os.Getenv("CRM_TEST_MONGODB_URI"), "crm"
	if dbURI != "" {
		dbName = fmt.Sprintf("t%d_%s", time.Now().UnixNano()%1e9, strings.ToLower(rand.Text()[:6]))
	}
	metrics := server.NewMetrics()
	st, err := store.Open(ctx, store.Config{URI: dbURI, Database: dbName, DataDir: t.TempDir(), Logger: log, Monitor: teeMonitor(metrics.CommandMonitor(), watch)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	if dbURI == "" {
		dbURI = st.EngineURI()
	} else {
		t.Cleanup(func() { dropDatabase(dbURI, dbName) })
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })

	tokens, err := auth.NewTokens(auth.TokenConfig{Secret: testSecret, Issuer: "crm", Audience: "crm-api", TTL: 15 * time.Minute, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	passwords, err := auth.NewPasswords(testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	apiCfg := api.Config{Store: st, Tokens: tokens, Passwords: passwords, Secret: testSecret, Logger: log}
	serverCfg := server.Config{Store: st, Logger: log, Metrics: metrics}
	for _, o := range opts {
		o(&apiCfg, &serverCfg)
	}
	serverCfg.Handler = api.New(apiCfg)
	h, err := server.New(serverCfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	check := newResponseChecker(t)
	httpClient := &http.Client{Transport: check}
	client, err := gen.NewClientWithResponses(srv.URL, gen.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: srv.URL, store: st, dbURI: dbURI, dbName: dbName, tokens: tokens, logs: logs, client: client, http: httpClient, check: check, handler: h}
}

// teeMonitor sends every command event to m and, when it is not nil, to watch.
// Without watch it returns m itself: a monitor with a Started callback makes
// the driver copy every command, which other tests (the benchmarks) must not pay.
func teeMonitor(m, watch *event.CommandMonitor) *event.CommandMonitor {
	if watch == nil {
		return m
	}
	return &event.CommandMonitor{
		Started: func(ctx context.Context, e *event.CommandStartedEvent) {
			if m.Started != nil {
				m.Started(ctx, e)
			}
			if watch.Started != nil {
				watch.Started(ctx, e)
			}
		},
		Succeeded: func(ctx context.Context, e *event.CommandSucceededEvent) {
			if m.Succeeded != nil {
				m.Succeeded(ctx, e)
			}
			if watch.Succeeded != nil {
				watch.Succeeded(ctx, e)
			}
		},
		Failed: func(ctx context.Context, e *event.CommandFailedEvent) {
			if m.Failed != nil {
				m.Failed(ctx, e)
			}
			if watch.Failed != nil {
				watch.Failed(ctx, e)
			}
		},
	}
}

// as returns a client that sends token as its bearer token.
func (e *env) as(token string) *gen.ClientWithResponses {
	c, err := gen.NewClientWithResponses(e.url, gen.WithHTTPClient(e.http), gen.WithRequestEditorFn(bearer(token)))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func bearer(token string) gen.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// user is a signed-in test user.
type user struct {
	gen.User
	password string
	token    string
}

// bootstrap creates the first user (an admin) and signs in.
func (e *env) bootstrap() user {
	e.t.Helper()
	password := "first admin password"
	res, err := e.client.CreateUserWithResponse(context.Background(), nil, gen.CreateUserJSONRequestBody{
		Name: "Ada Admin", Email: "ada@example.com", Password: password,
	})
	mustStatus(e.t, res, err, http.StatusCreated)
	return user{User: *res.JSON201, password: password, token: e.login("ada@example.com", password)}
}

// addUser has admin create a user with role, and signs in as that user.
func (e *env) addUser(admin user, name string, role gen.UserRole) user {
	e.t.Helper()
	password := "password of " + name
	email := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.com"
	e.check.secret(password)
	res, err := e.as(admin.token).CreateUserWithResponse(context.Background(), nil, gen.CreateUserJSONRequestBody{
		Name: name, Email: email, Password: password, Role: &role,
	})
	mustStatus(e.t, res, err, http.StatusCreated)
	return user{User: *res.JSON201, password: password, token: e.login(email, password)}
}

// login signs in and returns the access token.
func (e *env) login(email, password string) string {
	e.t.Helper()
	e.check.secret(password)
	res, err := e.client.LoginUserWithResponse(context.Background(), gen.LoginUserJSONRequestBody{Email: email, Password: password})
	mustStatus(e.t, res, err, http.StatusOK)
	e.check.secret(res.JSON200.RefreshToken)
	return res.JSON200.AccessToken
}

// customer creates a customer as u.
func (e *env) customer(u user, name string) gen.Customer {
	e.t.Helper()
	email := strings.ToLower(strings.ReplaceAll(name, " ", ".")) + "@example.org"
	res, err := e.as(u.token).CreateCustomerWithResponse(context.Background(), nil, gen.CreateCustomerJSONRequestBody{Name: name, Email: email})
	mustStatus(e.t, res, err, http.StatusCreated)
	return *res.JSON201
}

// interaction records an interaction of u with customer c.
func (e *env) interaction(u user, c gen.Customer, typ gen.InteractionType) gen.Interaction {
	e.t.Helper()
	res, err := e.as(u.token).CreateInteractionWithResponse(context.Background(), nil, gen.CreateInteractionJSONRequestBody{
		CustomerId: c.Id, Type: typ, Description: ptr("about " + c.Name),
	})
	mustStatus(e.t, res, err, http.StatusCreated)
	return *res.JSON201
}

// raw sends a request the generated client cannot express (bad JSON, wrong
// content types, odd headers); the response is still checked against the spec.
func (e *env) raw(method, path, token, contentType, body string, headers ...string) (*http.Response, []byte) {
	e.t.Helper()
	return e.send(e.t, 0, method, path, token, contentType, body, headers...)
}

// send makes one request to the test server and reads the whole answer,
// failing t if there is none within timeout (0: no limit). Bodies can be
// large, so messages give only the method and the start of the path.
func (e *env) send(t testing.TB, timeout time.Duration, method, path, token, contentType, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	given := map[string]bool{} // a name given twice is sent as two lines
	for i := 0; i+1 < len(headers); i += 2 {
		if given[headers[i]] {
			req.Header.Add(headers[i], headers[i+1])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
		given[headers[i]] = true
	}
	start := time.Now()
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatalf("%s %.200s: no answer after %v: %v", method, path, time.Since(start).Round(time.Millisecond), err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %.200s: reading the answer: %v", method, path, err)
	}
	return res, data
}

// statusCoder is every generated response type.
type statusCoder interface{ StatusCode() int }

// mustStatus fails the test unless the request succeeded with status want.
func mustStatus(t testing.TB, res statusCoder, err error, want int) {
	t.Helper()
	if err != nil {
		t.Fatalf("request failed: %v", err)
	}
	if got := res.StatusCode(); got != want {
		t.Fatalf("status %d, want %d; body: %s", got, want, bodyOf(res))
	}
}

// bodyOf returns the raw body of a generated response (its Body field).
func bodyOf(res statusCoder) []byte {
	v := reflect.Indirect(reflect.ValueOf(res))
	if f := v.FieldByName("Body"); f.IsValid() {
		if b, ok := f.Interface().([]byte); ok {
			return b
		}
	}
	return []byte(fmt.Sprintf("%+v", res))
}

// problem decodes a problem document.
func problemOf(t testing.TB, body []byte) gen.Problem {
	t.Helper()
	var p gen.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not a problem document: %v: %s", err, body)
	}
	return p
}

// wantProblem checks a problem response: status, type, and that errors[] names
// the given fields (JSON Pointers like "/email", or parameter names like "?limit").
func wantProblem(t testing.TB, status int, body []byte, gotStatus int, typ string, fields ...string) gen.Problem {
	t.Helper()
	if gotStatus != status {
		t.Fatalf("status %d, want %d; body: %s", gotStatus, status, body)
	}
	p := problemOf(t, body)
	if p.Type != "urn:crm:problem:"+typ {
		t.Errorf("problem type %q, want %q", p.Type, "urn:crm:problem:"+typ)
	}
	if p.Status != status {
		t.Errorf("problem status %d, want %d", p.Status, status)
	}
	if p.RequestId == nil || *p.RequestId == "" {
		t.Errorf("problem without request_id: %s", body)
	}
	named := map[string]bool{}
	if p.Errors != nil {
		for _, fe := range *p.Errors {
			if fe.Pointer != nil {
				named[*fe.Pointer] = true
			}
			if fe.Parameter != nil {
				named["?"+*fe.Parameter] = true
			}
		}
	}
	for _, f := range fields {
		if !named[f] {
			t.Errorf("problem does not name %s: %s", f, body)
		}
	}
	return p
}

func ptr[T any](v T) *T { return &v }

// responseChecker is the test client's transport: it validates every response
// against the spec and fails the test if a body or header leaks a secret.
type responseChecker struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	// secrets must never appear in a response: passwords, refresh tokens that
	// were handed out once, hashes.
	secrets []string
}

func newResponseChecker(t *testing.T) *responseChecker {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	return &responseChecker{t: t, router: router}
}

// secret registers a value that no response may contain.
func (c *responseChecker) secret(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s)
}

func (c *responseChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.validate(req, reqBody, res, body); err != nil {
		c.t.Errorf("%s %s → %d does not match openapi.yaml: %v\nbody: %s", req.Method, req.URL.RequestURI(), res.StatusCode, err, body)
	}
	c.leaks(req, res, body)
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
		problemsSeen.record(body)
	}
	return res, nil
}

func (c *responseChecker) validate(req *http.Request, reqBody []byte, res *http.Response, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		// Outside the spec's operations (an unknown path, the spec itself):
		// errors must still be problem documents.
		if res.StatusCode >= 400 && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json") {
			return fmt.Errorf("error response to a route outside the spec is not a problem document")
		}
		return nil
	}
	if res.StatusCode == http.StatusMethodNotAllowed {
		return nil // the router answers before any operation is chosen
	}
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return err
	}
	// A declared response, as the spec describes it: it counts as reached.
	observed.record(req.Method, route.Path, res.StatusCode)
	return nil
}

func (c *responseChecker) leaks(req *http.Request, res *http.Response, body []byte) {
	if strings.HasPrefix(req.URL.Path, "/openapi.") || req.URL.Path == "/docs/openapi.json" {
		return // the spec names the password field, and holds no secret
	}
	c.mu.Lock()
	secrets := append([]string{"$argon2id$", "$2a$", "$2b$", "\"password\""}, c.secrets...)
	c.mu.Unlock()
	var headers strings.Builder
	_ = res.Header.Write(&headers)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		// A refresh token is returned by the response that issues it, once.
		if strings.Contains(string(body), s) && !strings.Contains(string(body), `"refresh_token":"`+s+`"`) {
			c.t.Errorf("%s %s: the response body contains a secret (%.12q…)", req.Method, req.URL.Path, s)
		}
		if strings.Contains(headers.String(), s) {
			c.t.Errorf("%s %s: a response header contains a secret", req.Method, req.URL.Path)
		}
	}
}

// observed records every (method, spec path, status) that the response checker
// saw, across all the tests of the package: TestMain compares it with what the
// spec declares (see checkReachability).
var observed = &responseCoverage{seen: map[specResponse]bool{}}

// specResponse is one response the spec declares: an operation's method and
// path template, and a status code.
type specResponse struct {
	method, path string
	status       int
}

func (r specResponse) String() string { return fmt.Sprintf("%s %s → %d", r.method, r.path, r.status) }

// responseCoverage is the set of responses observed.
type responseCoverage struct {
	mu   sync.Mutex
	seen map[specResponse]bool
}

func (c *responseCoverage) record(method, path string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[specResponse{method, path, status}] = true
}

func (c *responseCoverage) has(r specResponse) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[r]
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// dropDatabase removes a test's database from a shared database server.
func dropDatabase(uri, name string) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return
	}
	defer client.Disconnect(context.Background())
	_ = client.Database(name).Drop(context.Background())
}
