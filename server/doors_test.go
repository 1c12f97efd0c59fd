package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencrm/crm/store/testtool"
)

// The three doors through which people meet the API besides the Go client —
// Swagger UI (browser_test.go), the TypeScript SDK and Postman — and the lint
// of the spec they are all made from. Each is tested with the real tool: the
// pinned Node tools of gen/tools (npm ci --prefix gen/tools), and Chromium.
//
// Without a tool a test is skipped with a line saying what is missing and how
// to install it, so `make test` passes on a machine with only Go. Under
// CI=true a missing tool fails the test instead: CI installs everything
// (.ci/run), and a door that silently stopped being tested would look green.

// repoRoot is the repository's top directory (tests run in server/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// nodeTools returns the node executable and the repository root, after
// checking that the pinned tools are installed (gen/tools/node_modules).
func nodeTools(t *testing.T) (node, root string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testtool.Missing(t, "node is not installed; install Node.js 20 or newer (Debian: apt-get install -y nodejs npm), then run make tools")
	}
	root = repoRoot(t)
	for _, tool := range []string{"@redocly/cli", "newman", "openapi-to-postmanv2", "openapi-typescript", "openapi-fetch", "typescript"} {
		if _, err := os.Stat(filepath.Join(root, "gen/tools/node_modules", tool, "package.json")); err != nil {
			testtool.Missing(t, "the pinned Node tools are not installed (no gen/tools/node_modules/%s); run make tools (npm ci --prefix gen/tools)", tool)
		}
	}
	return node, root
}

// run runs a command in dir and returns its combined output; it fails the
// test, showing the output, when the command fails.
func run(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		// Nothing phones home: no telemetry, no update checks.
		"REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v (after %s)\n%s", filepath.Base(name), strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), out)
	}
	return out
}

// checkedURL puts a reverse proxy in front of the test server whose transport
// is the harness's response checker: every response that a Node tool or the
// browser receives is validated against openapi.yaml (a status the operation
// lists, its headers and body schema) and searched for leaked secrets, exactly
// like those the Go client receives.
func (e *env) checkedURL() string {
	target, err := url.Parse(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = e.check
	srv := httptest.NewServer(proxy)
	e.t.Cleanup(srv.Close)
	return srv.URL
}

// TestSpecLint: @redocly/cli lint (pinned) with gen/tools/redocly.yaml — the
// recommended rules in strict form plus a few more — finds no problem at all.
func TestSpecLint(t *testing.T) {
	node, root := nodeTools(t)
	cli := filepath.Join(root, "gen/tools/node_modules/@redocly/cli/bin/cli.js")
	cmd := exec.CommandContext(t.Context(), node, cli, "lint", "--config", "gen/tools/redocly.yaml", "--format", "json", "openapi.yaml")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var report struct {
		Totals struct {
			Errors, Warnings, Ignored int
		}
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string
			Message  string
			Location []struct {
				Pointer string
			}
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatalf("redocly lint: %v; no JSON report (%v)\nstdout: %s\nstderr: %s", runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = p.Location[0].Pointer
		}
		t.Errorf("redocly %s %s at %s: %s", p.Severity, p.RuleID, where, p.Message)
	}
	if report.Totals.Errors+report.Totals.Warnings > 0 || runErr != nil {
		t.Fatalf("redocly lint: %d errors, %d warnings (%v); run make lint", report.Totals.Errors, report.Totals.Warnings, runErr)
	}
	t.Logf("redocly lint openapi.yaml: 0 errors, 0 warnings, %d ignored", report.Totals.Ignored)
}

// TestTypeScriptSDK: gen/typescript is what `make sdk` makes from the spec
// now, its types compile in a strict TypeScript project (tsc, pinned), and a
// Node test written against it (server/testdata/typescript) passes against a
// live server: bootstrap, sign in, create and list customers, a typed problem
// on a 409.
func TestTypeScriptSDK(t *testing.T) {
	node, root := nodeTools(t)
	tools := filepath.Join(root, "gen/tools/node_modules")

	fresh := filepath.Join(t.TempDir(), "typescript")
	run(t, root, nil, node, "gen/tools/sdk.mjs", "openapi.yaml", fresh)
	sameDir(t, filepath.Join(root, "gen/typescript"), fresh, "make sdk")

	// A consumer's project, with the SDK installed as its README says (its
	// dependency comes from npm's cache, filled by make tools), and Node's
	// types for the test itself.
	project := t.TempDir()
	if err := os.CopyFS(project, os.DirFS("testdata/typescript")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(project, "package.json"), []byte(`{"type":"module","private":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		testtool.Missing(t, "npm is not installed; install Node.js 20 or newer with npm")
	}
	// As the README says: pack the SDK into the project, install the tarball;
	// then install again from the lockfile alone, as a teammate or CI would.
	quiet := []string{"--prefer-offline", "--no-audit", "--no-fund"}
	run(t, project, nil, npm, "pack", filepath.Join(root, "gen/typescript"))
	run(t, project, nil, npm, append([]string{"install", "./opencrm-crm-sdk-1.0.0.tgz"}, quiet...)...)
	if err := os.RemoveAll(filepath.Join(project, "node_modules")); err != nil {
		t.Fatal(err)
	}
	run(t, project, nil, npm, append([]string{"ci"}, quiet...)...)
	for _, dep := range []string{"@types/node", "undici-types"} {
		link := filepath.Join(project, "node_modules", dep)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(tools, dep), link); err != nil {
			t.Fatal(err)
		}
	}
	// The README's example compiles too (it is not run: it needs a user).
	readme, err := os.ReadFile(filepath.Join(root, "gen/typescript/README.md"))
	if err != nil {
		t.Fatal(err)
	}
	example := regexp.MustCompile("(?s)```ts\n(.*?)```").FindSubmatch(readme)
	if example == nil {
		t.Fatal("gen/typescript/README.md has no ```ts example")
	}
	if err := os.WriteFile(filepath.Join(project, "readme.ts"), append(example[1], "export {};\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, project, nil, node, filepath.Join(tools, "typescript/bin/tsc"), "-p", ".")

	e := newEnv(t)
	out := run(t, project, []string{"CRM_URL=" + e.checkedURL()}, node, "--test", "--test-reporter=spec", "out/sdk.test.js")
	t.Logf("node --test (TypeScript SDK against the server):\n%s", lastLines(out, 14))
}

// TestPostmanCollection: gen/postman is what `make postman` makes from the
// spec now, and newman (pinned) runs the collection against a live server on
// a fresh database with no failure: every request is answered, with a status
// that openapi.yaml lists for it (the collection's own tests, and the response
// checker in front of the server, which also validates each body) and the one
// the run expects. Then it runs again on the same server, after the README's
// first curl session took its emails, signed in as that session's admin.
func TestPostmanCollection(t *testing.T) {
	node, root := nodeTools(t)

	fresh := filepath.Join(t.TempDir(), "postman")
	run(t, root, nil, node, "gen/tools/postman.mjs", "openapi.yaml", fresh)
	sameDir(t, filepath.Join(root, "gen/postman"), fresh, "make postman")
	noKnownPasswords(t, filepath.Join(root, "gen/postman/crm.postman_collection.json"))

	e := newEnv(t)
	// Without adminPassword (none ships), the bootstrap and the sign-in are
	// not sent: no admin with a published password on a new server. The run
	// fails and says what to set; nor is any request that needs the token
	// (without one, "Create a user" would make the first admin), or whose id
	// is not set yet ("/customers/" would be the list).
	unset := runNewman(t, node, root, "baseUrl="+e.checkedURL())
	for _, want := range []string{"adminPassword is set: adminPassword is empty: set it", "accessToken is set: sign in first",
		"path variable :id is set: :id is empty"} {
		if !slices.ContainsFunc(unset.failures, func(f string) bool { return strings.HasPrefix(f, want) }) {
			t.Errorf("a run without adminPassword did not fail with %q; failures:\n%s", want, strings.Join(unset.failures, "\n"))
		}
	}
	for _, x := range unset.executions {
		if x.code != http.StatusOK || (x.name != "Liveness probe" && x.name != "Readiness probe") {
			t.Errorf("a run without adminPassword sent %q (answered %d); only the probes need no token", x.name, x.code)
		}
	}

	// The bootstrap of this run answers 201 (every request must succeed):
	// the run before made no user.
	password := "a password for this run only"
	codes := newman(t, node, root, "baseUrl="+e.checkedURL(), "adminPassword="+password)
	// Every operation ran (createUser twice: the bootstrap and a second user).
	spec := loadedSpec(t)
	if want := len(operationsOf(spec)) + 1; len(codes) != want {
		t.Errorf("newman ran %d requests, want %d (each operation of openapi.yaml, and the bootstrap)", len(codes), want)
	}
	for _, x := range codes {
		if x.code < 200 || x.code > 299 {
			t.Errorf("%q answered %d on a fresh database; the run expects every request to succeed", x.name, x.code)
		}
	}

	// The README's first session: Ada signs up (the collection's admin was the
	// first user here, so that admin makes her one) and creates Grace Hopper.
	admin := e.loginFull("admin@example.com", password).AccessToken
	ada := "correct horse battery staple"
	res, body := e.raw(http.MethodPost, "/users", admin, "application/json",
		`{"name":"Ada Lovelace","email":"ada@example.com","password":"`+ada+`","role":"admin"}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create Ada: %d %s", res.StatusCode, body)
	}
	res, body = e.raw(http.MethodPost, "/customers", admin, "application/json", `{"name":"Grace Hopper","email":"grace@example.com"}`)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create Grace Hopper: %d %s", res.StatusCode, body)
	}
	for _, x := range newman(t, node, root, "baseUrl="+e.checkedURL(), "adminEmail=ada@example.com", "adminPassword="+ada) {
		bootstrap := x.name == "Create the first admin (bootstrap)"
		if ok := x.code >= 200 && x.code <= 299; ok == bootstrap || (bootstrap && x.code != http.StatusUnauthorized) {
			t.Errorf("second run: %q answered %d", x.name, x.code)
		}
	}
}

// TestPostmanConditionalHeaders: with every optional If-Match, If-None-Match
// and Idempotency-Key header of the collection turned on, as a user trying
// them out would, the run still passes on a fresh server: each request sends
// the ETag of the record it names, a GET may answer 304, and a retried create
// is replayed.
func TestPostmanConditionalHeaders(t *testing.T) {
	node, root := nodeTools(t)
	data, err := os.ReadFile(filepath.Join(root, "gen/postman/crm.postman_collection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var collection map[string]any
	if err := json.Unmarshal(data, &collection); err != nil {
		t.Fatal(err)
	}
	turnedOn := 0
	var walk func(items []any)
	walk = func(items []any) {
		for _, raw := range items {
			item := raw.(map[string]any)
			if sub, ok := item["item"].([]any); ok {
				walk(sub)
				continue
			}
			headers, _ := item["request"].(map[string]any)["header"].([]any)
			for _, h := range headers {
				header := h.(map[string]any)
				if slices.Contains([]string{"If-Match", "If-None-Match", "Idempotency-Key"}, header["key"].(string)) {
					delete(header, "disabled")
					turnedOn++
				}
			}
		}
	}
	walk(collection["item"].([]any))
	if turnedOn < 10 {
		t.Fatalf("only %d conditional headers to turn on", turnedOn)
	}
	edited, _ := json.Marshal(collection)
	path := filepath.Join(t.TempDir(), "conditional.postman_collection.json")
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	codes := newmanWith(t, node, root, path, "baseUrl="+e.checkedURL(), "adminPassword=a password for this run only")
	sent := map[int]int{}
	for _, x := range codes {
		sent[x.code]++
	}
	if sent[http.StatusNotModified] == 0 {
		t.Errorf("no GET answered 304 with If-None-Match on: %v", sent)
	}
}

// noKnownPasswords checks that no request of the collection sends a password
// written in it, nor makes an admin: a run stopped before "Clean up" leaves
// what it created, which must not be an account anyone could sign in to.
func noKnownPasswords(t *testing.T, collection string) {
	t.Helper()
	data, err := os.ReadFile(collection)
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Item []postmanItem }
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	var walk func(items []postmanItem)
	walk = func(items []postmanItem) {
		for _, it := range items {
			walk(it.Item)
			var body map[string]any
			if json.Unmarshal([]byte(it.Request.Body.Raw), &body) != nil {
				continue
			}
			if pw, ok := body["password"].(string); ok && !strings.HasPrefix(pw, "{{") {
				t.Errorf("%q sends the password %q, written in the collection", it.Name, pw)
			}
			if body["role"] == "admin" {
				t.Errorf("%q makes an admin", it.Name)
			}
		}
	}
	walk(c.Item)
}

type postmanItem struct {
	Name    string
	Item    []postmanItem
	Request struct{ Body struct{ Raw string } }
}

type execution struct {
	name string
	code int
}

// newman runs the collection with the pinned newman and the given variables,
// fails the test on any failed request, assertion or script, and returns what
// each request was answered.
func newman(t *testing.T, node, root string, vars ...string) []execution {
	t.Helper()
	r := runNewman(t, node, root, vars...)
	if len(r.failures) > 0 {
		t.Fatalf("%s\n%s", r.summary, r.output)
	}
	return r.executions
}

// newmanRun is what newman reported of a run.
type newmanRun struct {
	summary    string
	failures   []string // "test: message", of each failed assertion or script
	executions []execution
	output     []byte
}

// runNewman runs the collection with the pinned newman and the given
// variables, and returns its report, whatever failed.
func runNewman(t *testing.T, node, root string, vars ...string) newmanRun {
	return runNewmanOn(t, node, root, "gen/postman/crm.postman_collection.json", vars...)
}

// newmanWith is newman on another collection.
func newmanWith(t *testing.T, node, root, collection string, vars ...string) []execution {
	t.Helper()
	r := runNewmanOn(t, node, root, collection, vars...)
	if len(r.failures) > 0 {
		t.Fatalf("%s\n%s", r.summary, r.output)
	}
	return r.executions
}

// runNewmanOn runs a collection with the pinned newman, the project's
// environment and the given variables, and returns its report.
func runNewmanOn(t *testing.T, node, root, collection string, vars ...string) newmanRun {
	t.Helper()
	report := filepath.Join(t.TempDir(), "newman.json")
	args := []string{filepath.Join(root, "gen/tools/node_modules/newman/bin/newman.js"), "run",
		collection,
		"--environment", "gen/postman/crm.postman_environment.json",
		"--reporters", "cli,json", "--reporter-json-export", report,
		"--color", "off", "--disable-unicode", "--timeout-request", "30000", "--suppress-exit-code"}
	for _, v := range vars {
		args = append(args, "--env-var", v)
	}
	out := run(t, root, nil, node, args...)

	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Run struct {
			Stats struct {
				Requests, Assertions, TestScripts struct{ Total, Failed int }
			}
			Failures []struct {
				Error struct{ Test, Message string }
			}
			Executions []struct {
				Item     struct{ Name string }
				Response struct{ Code int }
			}
		}
	}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("newman's JSON report: %v", err)
	}
	s := r.Run.Stats
	result := newmanRun{output: out, summary: fmt.Sprintf("newman: %d requests (%d failed), %d assertions (%d failed), %d test scripts (%d failed)",
		s.Requests.Total, s.Requests.Failed, s.Assertions.Total, s.Assertions.Failed, s.TestScripts.Total, s.TestScripts.Failed)}
	t.Log(result.summary)
	for _, f := range r.Run.Failures {
		result.failures = append(result.failures, f.Error.Test+": "+f.Error.Message)
	}
	if len(result.failures) == 0 && (s.Requests.Failed > 0 || s.Assertions.Failed > 0 || s.TestScripts.Failed > 0) {
		result.failures = []string{"(counted, not listed)"}
	}
	for _, x := range r.Run.Executions {
		// A request that a script skipped is in the report, unanswered.
		if x.Response.Code != 0 {
			result.executions = append(result.executions, execution{x.Item.Name, x.Response.Code})
		}
	}
	return result
}

// sameDir fails the test unless the directories hold the same files with the
// same contents: the committed output of a generator is stale otherwise.
func sameDir(t *testing.T, committed, fresh, regenerate string) {
	t.Helper()
	files := func(dir string) map[string][]byte {
		m := map[string][]byte{}
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "node_modules" {
					return filepath.SkipDir
				}
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m[rel] = data
			return nil
		})
		return m
	}
	have, want := files(committed), files(fresh)
	rel, _ := filepath.Rel(repoRoot(t), committed)
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, ok := have[name]
		switch {
		case !ok:
			t.Errorf("%s/%s is missing: run %s and commit %s/", rel, name, regenerate, rel)
		case !bytes.Equal(got, want[name]):
			t.Errorf("%s/%s is stale (it is not what openapi.yaml generates now): run %s and commit %s/", rel, name, regenerate, rel)
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			t.Errorf("%s/%s is not generated any more: run %s and remove it", rel, name, regenerate)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// lastLines returns the last n lines of out.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
