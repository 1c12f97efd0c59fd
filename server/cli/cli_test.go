// Tests for the command's configuration and start-up: parseConfig's defaults
// and precedence (flags over environment over defaults) and its errors; run's
// quick, one-line failures (JWT secret, database, listen address, data
// directory, logging); and a real start on the embedded engine in a temporary
// data directory: the generated JWT secret file, /healthz, graceful shutdown,
// and a restart that reuses the secret. No test reads the real environment.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencrm/crm/store"
	"github.com/opencrm/crm/store/seed"
	"github.com/opencrm/crm/store/testtool"
)

// envOf is a getenv that reads only m.
func envOf(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// validSecret is a CRM_JWT_SECRET long enough to be accepted.
const validSecret = "0123456789abcdef0123456789abcdef0123456789abcdef"

// syncBuffer collects run's log output while run is still writing to it.
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

// coreConfig is the part of config that these tests pin down, compared as a
// whole so that a setting read from the wrong place cannot go unnoticed.
type coreConfig struct {
	addr, mongoURI, dbName, dataDir, jwtSecret, logLevel, logFormat string
	accessTTL, refreshTTL, dbTimeout, shutdownTimeout               time.Duration
}

func core(c config) coreConfig {
	return coreConfig{
		addr: c.addr, mongoURI: c.mongoURI, dbName: c.dbName, dataDir: c.dataDir, jwtSecret: c.jwtSecret,
		logLevel: c.logLevel, logFormat: c.logFormat,
		accessTTL: c.accessTTL, refreshTTL: c.refreshTTL, dbTimeout: c.dbTimeout, shutdownTimeout: c.shutdownTimeout,
	}
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(nil), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	want := coreConfig{
		addr:            ":8080",
		dbName:          "crm",
		dataDir:         "data",
		logLevel:        "info",
		logFormat:       "json",
		accessTTL:       15 * time.Minute,
		refreshTTL:      720 * time.Hour,
		dbTimeout:       5 * time.Second,
		shutdownTimeout: 20 * time.Second,
	}
	if got := core(cfg); got != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}
}

// fullEnv sets every variable parseConfig reads.
var fullEnv = map[string]string{
	"CRM_ADDR":              "127.0.0.1:9000",
	"MONGODB_URI":           "mongodb://db.example:27017/",
	"CRM_DB_NAME":           "crm_env",
	"CRM_DATA_DIR":          "/var/lib/crm-env",
	"CRM_JWT_SECRET":        "env-secret-env-secret-env-secret-env",
	"CRM_LOG_LEVEL":         "debug",
	"CRM_LOG_FORMAT":        "text",
	"CRM_ACCESS_TOKEN_TTL":  "5m",
	"CRM_REFRESH_TOKEN_TTL": "48h",
	"CRM_DB_TIMEOUT":        "2s",
	"CRM_SHUTDOWN_TIMEOUT":  "7s",
}

func TestParseConfigEnvironment(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(fullEnv), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	want := coreConfig{
		addr:            "127.0.0.1:9000",
		mongoURI:        "mongodb://db.example:27017/",
		dbName:          "crm_env",
		dataDir:         "/var/lib/crm-env",
		jwtSecret:       "env-secret-env-secret-env-secret-env",
		logLevel:        "debug",
		logFormat:       "text",
		accessTTL:       5 * time.Minute,
		refreshTTL:      48 * time.Hour,
		dbTimeout:       2 * time.Second,
		shutdownTimeout: 7 * time.Second,
	}
	if got := core(cfg); got != want {
		t.Errorf("from the environment:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseConfigFlagsOverrideEnvironment(t *testing.T) {
	args := []string{
		"-addr", "localhost:9100",
		"-mongodb-uri", "mongodb://flag.example/",
		"-db-name", "crm_flag",
		"-data-dir", "/tmp/crm-flag",
		"-jwt-secret", "flag-secret-flag-secret-flag-secret-flag",
		"-log-level", "warn",
		"-log-format", "json",
		"-access-token-ttl", "1m",
		"-refresh-token-ttl", "24h",
		"-db-timeout", "3s",
		"-shutdown-timeout", "9s",
	}
	cfg, err := parseConfig(args, envOf(fullEnv), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	want := coreConfig{
		addr:            "localhost:9100",
		mongoURI:        "mongodb://flag.example/",
		dbName:          "crm_flag",
		dataDir:         "/tmp/crm-flag",
		jwtSecret:       "flag-secret-flag-secret-flag-secret-flag",
		logLevel:        "warn",
		logFormat:       "json",
		accessTTL:       time.Minute,
		refreshTTL:      24 * time.Hour,
		dbTimeout:       3 * time.Second,
		shutdownTimeout: 9 * time.Second,
	}
	if got := core(cfg); got != want {
		t.Errorf("flags over the environment:\n got %+v\nwant %+v", got, want)
	}

	// A flag for one setting leaves the others to the environment.
	cfg, err = parseConfig([]string{"-db-name", "only"}, envOf(fullEnv), io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if cfg.dbName != "only" || cfg.addr != fullEnv["CRM_ADDR"] || cfg.accessTTL != 5*time.Minute {
		t.Errorf("one flag: got %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"invalid access TTL in env", nil, map[string]string{"CRM_ACCESS_TOKEN_TTL": "soon"}, []string{"CRM_ACCESS_TOKEN_TTL", "soon"}},
		{"invalid refresh TTL in env", nil, map[string]string{"CRM_REFRESH_TOKEN_TTL": "30d"}, []string{"CRM_REFRESH_TOKEN_TTL", "30d"}},
		{"invalid db timeout in env", nil, map[string]string{"CRM_DB_TIMEOUT": "5"}, []string{"CRM_DB_TIMEOUT"}},
		{"invalid shutdown timeout in env", nil, map[string]string{"CRM_SHUTDOWN_TIMEOUT": "forever"}, []string{"CRM_SHUTDOWN_TIMEOUT"}},
		{"invalid duration flag", []string{"-access-token-ttl", "soon"}, nil, []string{"access-token-ttl"}},
		{"zero access TTL in env", nil, map[string]string{"CRM_ACCESS_TOKEN_TTL": "0s"}, []string{"access token lifetime", "positive"}},
		{"negative refresh TTL in env", nil, map[string]string{"CRM_REFRESH_TOKEN_TTL": "-1h"}, []string{"refresh token lifetime", "positive"}},
		{"zero db timeout flag", []string{"-db-timeout", "0"}, nil, []string{"database timeout", "positive"}},
		{"negative shutdown timeout flag", []string{"-shutdown-timeout=-5s"}, nil, []string{"shutdown timeout", "positive"}},
		{"address without port (flag)", []string{"-addr", "8080"}, nil, []string{"listen address", "8080"}},
		{"address without port (env)", nil, map[string]string{"CRM_ADDR": "localhost"}, []string{"listen address", "localhost"}},
		{"address with unbalanced bracket", []string{"-addr", "[::1:8080"}, nil, []string{"listen address"}},
		{"address with too many colons", []string{"-addr", "a:b:c"}, nil, []string{"listen address"}},
		{"unexpected positional argument", []string{"serve"}, nil, []string{"unexpected argument", "serve"}},
		{"positional argument after flags", []string{"-addr", ":9000", "extra"}, nil, []string{"unexpected argument", "extra"}},
		{"unknown flag", []string{"-port", "9000"}, nil, []string{"port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseConfig(tt.args, envOf(tt.env), io.Discard, &stderr)
			if err == nil {
				t.Fatal("parseConfig succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}
}

// TestParseOrigins: allowed origins are kept as browsers send them, so that
// one written with capitals or a default port still matches.
func TestParseOrigins(t *testing.T) {
	got, err := parseOrigins(" HTTPS://App.Example.com/ ,http://localhost:3000, https://crm.example.com:443,http://intra.example:80,*")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://app.example.com", "http://localhost:3000", "https://crm.example.com", "http://intra.example", "*"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"app.example.com", "ftp://app.example.com", "https://app.example.com/path", "https://user@app.example.com", "https://app.example.com/#x", "https://app.example.com?q=1"} {
		if _, err := parseOrigins(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

// Help that was asked for goes to stdout, whatever the environment holds: a
// bad variable does not stop it, and the usage shows the defaults, never the
// environment's values (a secret among them).
func TestParseConfigHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := map[string]string{"CRM_DB_TIMEOUT": "garbage", "CRM_JWT_SECRET": validSecret}
	_, err := parseConfig([]string{"-help"}, envOf(env), &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-help: err = %v, want flag.ErrHelp (main exits without printing an error)", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("-help wrote to stderr:\n%s", stderr.String())
	}
	// The usage names each flag's environment variable.
	for _, name := range []string{"CRM_ADDR", "MONGODB_URI", "CRM_JWT_SECRET", "CRM_DATA_DIR", "CRM_ACCESS_TOKEN_TTL"} {
		if !strings.Contains(stdout.String(), name) {
			t.Errorf("usage does not mention %s:\n%s", name, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), validSecret) {
		t.Errorf("the usage shows CRM_JWT_SECRET's value:\n%s", stdout.String())
	}
}

// A flag wins over its variable: a bad value in the variable is not even read
// when the flag is given, and is an error naming the variable when it is used.
func TestParseConfigFlagReplacesBadEnvironment(t *testing.T) {
	env := map[string]string{"CRM_DB_TIMEOUT": "garbage", "CRM_ACCESS_TOKEN_TTL": "soon"}
	cfg, err := parseConfig([]string{"-db-timeout", "7s", "-access-token-ttl", "2m"}, envOf(env), io.Discard, io.Discard)
	if err != nil || cfg.dbTimeout != 7*time.Second || cfg.accessTTL != 2*time.Minute {
		t.Fatalf("flags over bad variables: %v, timeout %s, access TTL %s", err, cfg.dbTimeout, cfg.accessTTL)
	}
	_, err = parseConfig([]string{"-db-timeout", "7s"}, envOf(env), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `CRM_ACCESS_TOKEN_TTL="soon"`) {
		t.Errorf("the bad variable without its flag: %v", err)
	}
}

// Exit statuses and streams, as Main gives them: help asked for (-help, -h,
// crm help, crm help <command>) on stdout with 0; a wrong command line on
// stderr with 2, said once; any other failure one line on stderr with 1.
func TestExitStatusAndStreams(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		env            map[string]string
		code           int
		stdout, stderr string // substrings; "" for an empty stream
	}{
		{[]string{"-help"}, nil, 0, "-access-token-ttl", ""},
		{[]string{"--help"}, map[string]string{"CRM_DB_TIMEOUT": "garbage"}, 0, "-access-token-ttl", ""},
		{[]string{"help"}, nil, 0, "crm seed [flags]", ""},
		{[]string{"help", "seed"}, nil, 0, "-customers", ""},
		{[]string{"help", "engine"}, nil, 0, "-postgresql-url", ""},
		{[]string{"seed", "-h"}, nil, 0, "-interactions", ""},
		{[]string{"-no-such-flag"}, nil, 2, "", "flag provided but not defined: -no-such-flag"},
		{[]string{"seed", "-users", "many"}, nil, 2, "", `invalid value "many" for flag -users`},
		{[]string{"engine", "extra"}, nil, 2, "", `unexpected argument "extra"`},
		{[]string{"version", "extra"}, nil, 2, "", `unexpected argument "extra"`},
		{[]string{"-addr", "127.0.0.1:0"}, map[string]string{"CRM_DB_TIMEOUT": "garbage"}, 1, "", `crm: CRM_DB_TIMEOUT="garbage" is not a duration`},
	} {
		var stdout, stderr bytes.Buffer
		code := exitStatus(run(context.Background(), tc.args, envOf(tc.env), &stdout, &stderr), &stderr)
		name := strings.Join(tc.args, " ")
		if code != tc.code {
			t.Errorf("crm %s: exit status %d, want %d", name, code, tc.code)
		}
		for _, stream := range []struct {
			name, got, want string
		}{{"stdout", stdout.String(), tc.stdout}, {"stderr", stderr.String(), tc.stderr}} {
			if stream.want == "" && stream.got != "" || !strings.Contains(stream.got, stream.want) {
				t.Errorf("crm %s: %s is not as expected (want %q):\n%s", name, stream.name, stream.want, stream.got)
			}
			if stream.name == "stderr" && stream.want != "" && strings.Count(stream.got, stream.want) != 1 {
				t.Errorf("crm %s: %s says %q %d times", name, stream.name, stream.want, strings.Count(stream.got, stream.want))
			}
		}
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{nil, false, "crm, version unknown (built without module information)"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			"crm development build, revision unknown, go1.26.8"},
		{&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2025-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
		}}, true, "crm v1.4.0, revision 0123abcd of 2025-01-02T03:04:05Z, with uncommitted changes, go1.26.8"},
	} {
		if got := version(tc.info, tc.ok); got != tc.want {
			t.Errorf("version:\n got %q\nwant %q", got, tc.want)
		}
	}
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := exitStatus(run(context.Background(), args, envOf(nil), &stdout, &stderr), &stderr); code != 0 ||
			!strings.HasPrefix(stdout.String(), "crm ") || !strings.Contains(stdout.String(), runtime.Version()) || stderr.Len() != 0 {
			t.Errorf("crm %s: %d, stdout %q, stderr %q", args[0], code, stdout.String(), stderr.String())
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// runFails runs run, which must fail within limit, and returns its error and
// what it logged.
func runFails(t *testing.T, args []string, env map[string]string, limit time.Duration) (error, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logs := &syncBuffer{}
	start := time.Now()
	err := run(ctx, args, envOf(env), io.Discard, logs)
	elapsed := time.Since(start)
	if err == nil {
		t.Fatalf("run succeeded after %v, want an error", elapsed)
	}
	t.Logf("run failed after %v: %v", elapsed.Round(time.Millisecond), err)
	if elapsed > limit {
		t.Errorf("run took %v to fail, want under %v (error: %v)", elapsed, limit, err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q spans several lines", err)
	}
	return err, logs.String()
}

func TestRunFailsFast(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	underFile := filepath.Join(file, "data")

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	const limit = 5 * time.Second
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string // substrings of the error, case-insensitive
	}{
		{
			"secret shorter than 32 bytes",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"CRM_JWT_SECRET": "too-short", "CRM_DATA_DIR": filepath.Join(tmp, "d1")},
			[]string{"CRM_JWT_SECRET", "32"},
		},
		{
			"secret of 31 bytes with MongoDB",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"CRM_JWT_SECRET": strings.Repeat("s", 31), "MONGODB_URI": "mongodb://127.0.0.1:1/"},
			[]string{"CRM_JWT_SECRET"},
		},
		{
			"MONGODB_URI without a secret",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:1/"},
			[]string{"CRM_JWT_SECRET", "MONGODB_URI"},
		},
		{
			"MongoDB on a closed port",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:1/", "CRM_DB_TIMEOUT": "1s", "CRM_JWT_SECRET": validSecret},
			[]string{"database", "127.0.0.1:1"},
		},
		{
			"invalid MONGODB_URI",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"MONGODB_URI": "not-a-uri", "CRM_DB_TIMEOUT": "1s", "CRM_JWT_SECRET": validSecret},
			[]string{"MongoDB URI"},
		},
		{
			"port already in use",
			[]string{"-addr", busy.Addr().String()},
			map[string]string{"CRM_JWT_SECRET": validSecret, "CRM_DATA_DIR": filepath.Join(tmp, "d2")},
			[]string{"listen", busy.Addr().String()},
		},
		{
			"port out of range",
			[]string{"-addr", "127.0.0.1:99999"},
			map[string]string{"CRM_JWT_SECRET": validSecret, "CRM_DATA_DIR": filepath.Join(tmp, "d3")},
			[]string{"listen", "99999"},
		},
		{
			"data directory under a regular file, generated secret",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"CRM_DATA_DIR": underFile},
			[]string{"data directory", underFile},
		},
		{
			"data directory under a regular file, configured secret",
			[]string{"-addr", "127.0.0.1:0", "-data-dir", underFile},
			map[string]string{"CRM_JWT_SECRET": validSecret},
			[]string{"data directory", underFile},
		},
		{
			"invalid log level",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"CRM_LOG_LEVEL": "loud", "CRM_DATA_DIR": filepath.Join(tmp, "d4")},
			[]string{"log level", "loud"},
		},
		{
			"invalid log format",
			[]string{"-addr", "127.0.0.1:0", "-log-format", "xml"},
			map[string]string{"CRM_DATA_DIR": filepath.Join(tmp, "d5")},
			[]string{"log format", "xml"},
		},
		{
			"invalid duration in the environment",
			[]string{"-addr", "127.0.0.1:0"},
			map[string]string{"CRM_ACCESS_TOKEN_TTL": "soon", "CRM_DATA_DIR": filepath.Join(tmp, "d6")},
			[]string{"CRM_ACCESS_TOKEN_TTL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, _ := runFails(t, tt.args, tt.env, limit)
			for _, w := range tt.want {
				if !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(w)) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// A start that fails after claiming the port must give the port back.
func TestRunReleasesPortOnFailure(t *testing.T) {
	addr := freeAddr(t)
	err, _ := runFails(t, []string{"-addr", addr},
		map[string]string{"MONGODB_URI": "mongodb://127.0.0.1:1/", "CRM_DB_TIMEOUT": "1s", "CRM_JWT_SECRET": validSecret}, 5*time.Second)
	if !strings.Contains(err.Error(), "database") {
		t.Fatalf("error %q does not mention the database", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is still taken after run failed: %v", err)
	}
	ln.Close()
}

// running is one run started in the background.
type running struct {
	url    string
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// startRun starts run on a free port with env and waits until /healthz answers 200.
func startRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	s := &running{url: "http://" + addr, logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, []string{"-addr", addr}, envOf(env), io.Discard, s.logs) }()
	t.Cleanup(func() {
		// Stops the server if the test failed before stopping it.
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
		}
		if t.Failed() {
			t.Logf("run's log:\n%s", s.logs.String())
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case err := <-s.done:
			s.done <- err // for the cleanup
			t.Fatalf("run returned before serving: %v", err)
		default:
		}
		res, err := client.Get(s.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz did not answer 200 within 20s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop cancels run's context and checks that it shuts down gracefully and quickly.
func (s *running) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("run returned %v on shutdown, want nil", err)
		}
		d := time.Since(start)
		t.Logf("run returned %v after the cancellation", d.Round(time.Millisecond))
		if d > 5*time.Second {
			t.Errorf("shutdown took %v, want under 5s", d)
		}
		s.done <- err // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return within 15s of the context's cancellation")
	}
	if res, err := http.Get(s.url + "/healthz"); err == nil {
		res.Body.Close()
		t.Error("the server still answers after run returned")
	}
}

// postJSON sends body to url and decodes the JSON answer into out.
func postJSON(t *testing.T, url, token string, body any, wantStatus int, out any) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != wantStatus {
		t.Fatalf("POST %s: %d %s, want %d", url, res.StatusCode, raw, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("POST %s: %v in %s", url, err, raw)
		}
	}
}

func getStatus(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestRunEmbeddedGeneratesAndReusesSecret(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data") // does not exist yet
	env := map[string]string{"CRM_DATA_DIR": dataDir}
	secretPath := filepath.Join(dataDir, "jwt-secret")

	// First start: no secret anywhere, so run generates one.
	s1 := startRun(t, env)
	info, err := os.Stat(secretPath)
	if err != nil {
		t.Fatalf("no generated secret: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %v, want 0600", secretPath, perm)
	}
	if dirInfo, err := os.Stat(dataDir); err != nil {
		t.Fatal(err)
	} else if perm := dirInfo.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("data directory has mode %v, want no access for group and others", perm)
	}
	first, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.TrimSpace(string(first))); n < 32 {
		t.Errorf("generated secret is %d bytes, want at least 32", n)
	}
	if !strings.Contains(s1.logs.String(), "generated a JWT secret") || !strings.Contains(s1.logs.String(), secretPath) {
		t.Errorf("the first start does not log that it generated %s:\n%s", secretPath, s1.logs.String())
	}
	if !strings.Contains(s1.logs.String(), s1.url) {
		t.Errorf("the start-up log does not show the URL %s:\n%s", s1.url, s1.logs.String())
	}
	// Until the first admin exists, anyone who reaches the port can become it.
	const noUserYet = "no user yet: the first POST /users"
	if !strings.Contains(s1.logs.String(), noUserYet) {
		t.Errorf("a start with no user does not warn that anyone can become the first admin:\n%s", s1.logs.String())
	}

	// Sign in, so that the second start can show that tokens survive a restart.
	user := map[string]string{"name": "Ada Lovelace", "email": "ada@example.com", "password": "correct horse battery staple"}
	postJSON(t, s1.url+"/users", "", user, http.StatusCreated, nil)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	postJSON(t, s1.url+"/users/login", "", map[string]string{"email": user["email"], "password": user["password"]}, http.StatusOK, &login)
	if login.AccessToken == "" {
		t.Fatal("login returned no access token")
	}
	if code := getStatus(t, s1.url+"/users/me", login.AccessToken); code != http.StatusOK {
		t.Fatalf("GET /users/me with the new token: %d", code)
	}

	// While it runs, a second process on the same data directory is refused.
	err, _ = runFails(t, []string{"-addr", "127.0.0.1:0"}, env, 5*time.Second)
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second run on the same data directory: %v, want an \"in use\" error", err)
	}

	s1.stop(t)

	// Second start: the file is reused, not regenerated.
	s2 := startRun(t, env)
	second, err := os.ReadFile(secretPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("the secret file changed across restarts:\n%q\n%q", first, second)
	}
	if strings.Contains(s2.logs.String(), "generated a JWT secret") {
		t.Errorf("the second start generated a new secret:\n%s", s2.logs.String())
	}
	if strings.Contains(s2.logs.String(), noUserYet) {
		t.Errorf("a start with a user warns that there is none:\n%s", s2.logs.String())
	}
	if code := getStatus(t, s2.url+"/users/me", login.AccessToken); code != http.StatusOK {
		t.Errorf("GET /users/me after a restart with the token from before: %d, want 200", code)
	}
	s2.stop(t)
}

// A configured CRM_JWT_SECRET wins: nothing is generated in the data directory.
func TestRunEmbeddedWithConfiguredSecret(t *testing.T) {
	dataDir := t.TempDir()
	s := startRun(t, map[string]string{"CRM_DATA_DIR": dataDir, "CRM_JWT_SECRET": validSecret, "CRM_LOG_FORMAT": "text"})
	if _, err := os.Stat(filepath.Join(dataDir, "jwt-secret")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a jwt-secret file was written although CRM_JWT_SECRET is set (stat: %v)", err)
	}
	if strings.Contains(s.logs.String(), "generated a JWT secret") {
		t.Errorf("logged a generated secret although CRM_JWT_SECRET is set:\n%s", s.logs.String())
	}
	if logs := s.logs.String(); !strings.Contains(logs, "level=INFO") || strings.Contains(logs, `"level"`) {
		t.Errorf("CRM_LOG_FORMAT=text, but the log is not text:\n%s", logs)
	}
	s.stop(t)
}

// A secret file that is too short (say, truncated by hand) stops the start
// rather than signing tokens with a weak key.
func TestRunRefusesShortSecretFile(t *testing.T) {
	dataDir := t.TempDir()
	path := filepath.Join(dataDir, "jwt-secret")
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err, _ := runFails(t, []string{"-addr", "127.0.0.1:0"}, map[string]string{"CRM_DATA_DIR": dataDir}, 5*time.Second)
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "short\n" {
		t.Errorf("the file was overwritten: %q", b)
	}
}

// A secret file that others could read or write is refused: whoever knows
// it signs tokens for any user.
func TestRunRefusesExposedSecretFile(t *testing.T) {
	secret := strings.Repeat("k", 48) + "\n"
	for _, tc := range []struct {
		name  string
		setup func(path string) error
		want  string
	}{
		{"readable by others", func(path string) error { return os.Chmod(path, 0o644) }, "is open to other users"},
		{"another user's", func(path string) error { return os.Chown(path, 65534, 65534) }, "belongs to another user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "belongs to another user" && os.Getuid() != 0 {
				testtool.Missing(t, "root, to give a file to another user")
			}
			dataDir := t.TempDir()
			path := filepath.Join(dataDir, "jwt-secret")
			if err := os.WriteFile(path, []byte(secret), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := tc.setup(path); err != nil {
				t.Fatal(err)
			}
			err, _ := runFails(t, []string{"-addr", "127.0.0.1:0"}, map[string]string{"CRM_DATA_DIR": dataDir}, 5*time.Second)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name %s and say it %s", err, path, tc.want)
			}
		})
	}
}

// seedRun runs `crm seed args...` on the embedded database in dir, logging
// JSON, and returns its error and the lines it wrote, each decoded.
func seedRun(t *testing.T, dir string, args ...string) (error, []map[string]any) {
	t.Helper()
	// Private, as crm makes a data directory it creates: otherwise the first
	// line would warn that crm narrowed t.TempDir's 0755.
	if err := os.Chmod(dir, 0o700); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := map[string]string{"CRM_DATA_DIR": dir, "CRM_LOG_FORMAT": "json"}
	err := run(context.Background(), append([]string{"seed"}, args...), envOf(env), &stdout, &stderr)
	if stdout.Len() != 0 {
		t.Errorf("crm seed wrote to stdout: %s", stdout.String())
	}
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("crm seed -log-format json wrote a line that is not JSON: %q", line)
		}
		lines = append(lines, m)
	}
	return err, lines
}

// messages joins the msg of each line.
func messages(lines []map[string]any) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintln(&b, l["msg"])
	}
	return b.String()
}

// What crm seed reports: JSON lines off a terminal, what was new and what
// existed, which users have which password, and never a password the operator
// chose.
func TestSeedCommandReport(t *testing.T) {
	dir := t.TempDir()
	err, lines := seedRun(t, dir, "-users", "2", "-customers", "3", "-interactions", "4")
	if err != nil {
		t.Fatal(err)
	}
	out := messages(lines)
	for _, want := range []string{"2 new users, 3 new customers, 4 new interactions\n", `the password of the 2 new users is "demo password"`, "sign in as " + seed.AdminEmail()} {
		if !strings.Contains(out, want) {
			t.Errorf("the first seed does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "existed") {
		t.Errorf("the first seed says something existed:\n%s", out)
	}
	if progress := lines[0]; progress["done"] != 9.0 || progress["total"] != 9.0 {
		t.Errorf("the first line is not the progress record of 9 records: %v", progress)
	}

	const chosen = "other password"
	err, lines = seedRun(t, dir, "-users", "3", "-customers", "3", "-interactions", "4", "-password", chosen)
	if err != nil {
		t.Fatal(err)
	}
	out = messages(lines)
	for _, want := range []string{"1 new user, 0 new customers, 0 new interactions (2 users, 3 customers and 4 interactions existed already)",
		"the password of the 1 new user is the one given with -password; the 2 users that existed keep theirs"} {
		if !strings.Contains(out, want) {
			t.Errorf("the second seed does not say %q:\n%s", want, out)
		}
	}
	if summary := lines[len(lines)-3]; summary["new_users"] != 1.0 || summary["existing_users"] != 2.0 {
		t.Errorf("the summary's numbers: %v", summary)
	}
	err, lines = seedRun(t, dir, "-users", "3", "-customers", "3", "-interactions", "4", "-password", chosen)
	if out := messages(lines); err != nil || !strings.Contains(out, "no new users: those that existed keep their passwords") {
		t.Errorf("a third seed: %v\n%s", err, out)
	}
	for _, l := range lines {
		if b, _ := json.Marshal(l); strings.Contains(string(b), chosen) {
			t.Errorf("the chosen password is in the output: %s", b)
		}
	}
}

// Bad input is refused before the database is opened, naming the problem and
// without repeating the password.
func TestSeedCommandRefusesBadInput(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-password", "seven c"}, "8 to 256 characters"},
		{[]string{"-password", ""}, "8 to 256 characters"},
		{[]string{"-password", strings.Repeat("p", 257)}, "maximum string length is 256"},
		{[]string{"-password", "\xff\xfe not UTF-8 text"}, "not UTF-8 text"},
		{[]string{"-users", "0", "-customers", "3100"}, "seeded customers belong to seeded users"},
		{[]string{"-customers", "0", "-interactions", "5"}, "seeded interactions are between seeded users and seeded customers"},
		{[]string{"-interactions", "9223372036854775807"}, "from 0 to 10000000"},
		{[]string{"-users", "-1"}, "from 0 to 10000000"},
	} {
		err, _ := seedRun(t, dir, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("crm seed %s: %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		} else if tc.args[0] == "-password" && tc.args[1] != "" && strings.Contains(err.Error(), tc.args[1]) {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused seed created the data directory: %v", err)
	}
}

// A database with users that seeding did not create is not seeded, unless
// forced: a seed adds admins with a known password.
func TestSeedCommandRefusesRealUsers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	real := &store.User{Name: "Real Admin", Email: "admin@company.example", PasswordHash: "x", Role: store.RoleAdmin, Status: store.StatusActive}
	if err := st.CreateUser(ctx, real); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(ctx); err != nil {
		t.Fatal(err)
	}
	users := func() int {
		st, err := store.Open(ctx, store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close(ctx)
		page, err := st.ListUsers(ctx, store.UserFilter{}, store.ListOptions{Sort: store.Sort{Field: "created_at"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Items)
	}

	var stderr bytes.Buffer
	code := exitStatus(run(ctx, []string{"seed", "-data-dir", dir, "-users", "2", "-customers", "2", "-interactions", "2"}, envOf(nil), io.Discard, &stderr), &stderr)
	if msg := stderr.String(); code != 1 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, "users that crm seed did not create") ||
		!strings.Contains(msg, "-data-dir") || !strings.Contains(msg, "-force") {
		t.Errorf("seeding a database with a real user: exit status %d, %q", code, msg)
	}
	if n := users(); n != 1 {
		t.Fatalf("the refused seed left %d users, want the 1 there was", n)
	}
	if err, _ := seedRun(t, dir, "-users", "2", "-customers", "2", "-interactions", "2", "-force"); err != nil {
		t.Fatalf("-force: %v", err)
	}
	if n := users(); n != 3 {
		t.Errorf("after -force: %d users, want 3", n)
	}
}

// The engine has no authentication: an address beyond loopback needs
// -allow-remote, which warns.
func TestEngineListenBeyondLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:27017": false, "127.0.0.2:1": false, "[::1]:1": false, "localhost:1": false,
		"0.0.0.0:18190": true, ":18190": true, "[::]:18190": true, "10.1.2.3:1": true, "db.example.com:1": true,
	} {
		if got, err := beyondLoopback(addr); err != nil || got != want {
			t.Errorf("beyondLoopback(%q) = %v, %v; want %v", addr, got, err, want)
		}
	}

	// The commands below name an address of a documentation network, which no
	// interface has: were the check gone, the engine could not expose itself.
	const remote = "192.0.2.1:18190"
	dir := filepath.Join(t.TempDir(), "engine")
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"-listen", remote}, nil},
		{nil, map[string]string{"CRM_ENGINE_LISTEN": remote}},
	} {
		err, _ := runFails(t, append([]string{"engine", "-data-dir", dir}, tc.args...), tc.env, 5*time.Second)
		if !strings.Contains(err.Error(), "no authentication") || !strings.Contains(err.Error(), "-allow-remote") {
			t.Errorf("crm engine %v %v: %v", tc.args, tc.env, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused engine created its data directory: %v", err)
	}

	// With -allow-remote, a warning; the PostgreSQL that does not answer stops
	// the engine before it binds the address.
	err, logs := runFails(t, []string{"engine", "-listen", remote, "-allow-remote", "-postgresql-url", "postgres://crm:pw@" + freeAddr(t) + "/crm"}, nil, 15*time.Second)
	if !strings.Contains(err.Error(), "does not answer") || !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "no authentication") {
		t.Errorf("-allow-remote: %v\n%s", err, logs)
	}
}

// A PostgreSQL that does not answer stops the engine at start with one line,
// which does not show the URL's password.
func TestEngineChecksPostgreSQL(t *testing.T) {
	const password = "s3cret-pass"
	pg := freeAddr(t)
	err, logs := runFails(t, []string{"engine", "-listen", freeAddr(t)}, map[string]string{"CRM_ENGINE_POSTGRESQL_URL": "postgres://crm:" + password + "@" + pg + "/crmdb"}, 15*time.Second)
	if msg := err.Error(); !strings.Contains(msg, "PostgreSQL at "+pg) || !strings.Contains(msg, "crmdb") || !strings.Contains(msg, "does not answer") {
		t.Errorf("error %q does not say which PostgreSQL does not answer", msg)
	}
	if strings.Contains(err.Error()+logs, password) {
		t.Errorf("the password is shown: %v\n%s", err, logs)
	}
	if strings.Contains(logs, "engine listening") {
		t.Errorf("the engine said it listens:\n%s", logs)
	}
	for _, bad := range []string{
		"postgres://crm:" + password + "@127.0.0.1:notaport/crm",
		// pgx itself leaves out only a password before the host.
		"postgres://127.0.0.1:5432/crm?sslmode=bogus&password=" + password,
	} {
		err, _ = runFails(t, []string{"engine", "-listen", freeAddr(t), "-postgresql-url", bad}, nil, 5*time.Second)
		if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "-postgresql-url") {
			t.Errorf("an unparsable URL: %v", err)
		}
	}
}
