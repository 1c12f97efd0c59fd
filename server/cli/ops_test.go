// Failure modes, each caused for real: the database process dies and comes
// back, the server gets SIGTERM with a request in flight, the server is killed
// with -9 while clients write, more clients arrive than the database pool
// allows — and the whole integration suite runs a second time against the
// standalone engine on PostgreSQL.
//
// The test binary doubles as the crm command: run with CRM_TEST_EXEC=1 it is
// `crm <args>`, so the tests can start real server and engine processes.
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencrm/crm/store/testtool"
)

func TestMain(m *testing.M) {
	if os.Getenv("CRM_TEST_EXEC") == "1" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// process is a crm command running in a process of its own.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	output *syncBuffer
	done   chan struct{}
	err    error
}

// start runs `crm args...` with env added to the environment.
func start(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(append(os.Environ(), "CRM_TEST_EXEC=1", "CRM_LOG_LEVEL=warn"), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, output: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of crm %s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	return p
}

func (p *process) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// wait waits for the process to exit and returns its exit code.
func (p *process) wait(limit time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		p.t.Fatalf("the process did not exit within %s", limit)
		return -1
	}
}

// waitFor polls fn until it returns true or the limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, fn func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !fn() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startEngine runs `crm engine` on addr with its data in dir.
func startEngine(t *testing.T, addr, dir string, extra ...string) *process {
	t.Helper()
	p := start(t, nil, append([]string{"engine", "-listen", addr, "-data-dir", dir}, extra...)...)
	waitFor(t, 20*time.Second, "the engine to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return p
}

// apiClient is a client of a running API.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (a *apiClient) do(method, path, body string) (int, http.Header, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, data
}

// waitReady waits until the API answers /healthz.
func (a *apiClient) waitReady(limit time.Duration) {
	a.t.Helper()
	waitFor(a.t, limit, "the API to answer /healthz", func() bool {
		res, err := http.Get(a.base + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == http.StatusOK
	})
}

// signIn bootstraps the first admin if needed and signs in.
func (a *apiClient) signIn() {
	a.t.Helper()
	a.do(http.MethodPost, "/users", `{"name":"Ops Admin","email":"ops@example.com","password":"operations password"}`)
	status, _, body := a.do(http.MethodPost, "/users/login", `{"email":"ops@example.com","password":"operations password"}`)
	if status != http.StatusOK {
		a.t.Fatalf("login: %d %s", status, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		a.t.Fatal(err)
	}
	a.token = tok.AccessToken
}

// serveInProcess runs the API in this process against uri until the test ends.
func serveInProcess(t *testing.T, uri string, extraEnv map[string]string) *apiClient {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"MONGODB_URI": uri, "CRM_JWT_SECRET": validSecret, "CRM_DB_TIMEOUT": "1s", "CRM_LOG_LEVEL": "error"}
	for k, v := range extraEnv {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{} // errors only (CRM_LOG_LEVEL), shown if the test fails
	go func() { done <- run(ctx, []string{"-addr", addr}, envOf(env), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the API stopped with %v", err)
		}
		if t.Failed() {
			t.Logf("the API's log:\n%s", logs.String())
		}
	})
	a := &apiClient{t: t, base: "http://" + addr}
	a.waitReady(20 * time.Second)
	return a
}

// The usage, asked for, is not a failure; a wrong flag is. Each command's
// usage lists its own flags only, and the server's names the other commands.
func TestHelpExitsZero(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		code         int
		want, unwant []string
	}{
		{[]string{"-h"}, 0, []string{"-data-dir", "-jwt-secret", "crm seed", "crm engine"}, nil},
		{[]string{"-help"}, 0, []string{"-addr"}, nil},
		{[]string{"seed", "-h"}, 0, []string{"-data-dir", "-customers"}, []string{"-addr", "-jwt-secret", "-cors-origins"}},
		{[]string{"engine", "-help"}, 0, []string{"-data-dir", "-listen"}, []string{"-addr", "-customers"}},
		{[]string{"-no-such-flag"}, 2, []string{"-data-dir"}, nil},
		{[]string{"seed", "-addr", ":1"}, 2, []string{"-customers"}, nil},
	} {
		p := start(t, nil, tc.args...)
		if code := p.wait(30 * time.Second); code != tc.code {
			t.Errorf("crm %s: exit status %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, p.output.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(p.output.String(), w) {
				t.Errorf("crm %s: the usage lacks %s:\n%s", strings.Join(tc.args, " "), w, p.output.String())
			}
		}
		for _, w := range tc.unwant {
			if strings.Contains(p.output.String(), w) {
				t.Errorf("crm %s: the usage lists %s, not this command's:\n%s", strings.Join(tc.args, " "), w, p.output.String())
			}
		}
	}
}

// A port in use is one line and exit status 1, before the data directory is
// touched.
func TestPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := filepath.Join(t.TempDir(), "data")
	p := start(t, []string{"CRM_LOG_LEVEL=info", "CRM_ADDR=" + taken.Addr().String(), "CRM_DATA_DIR=" + dir})
	if code := p.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit status %d, want 1", code)
	}
	if out := strings.TrimSpace(p.output.String()); strings.Count(out, "\n") != 0 || !strings.HasPrefix(out, "crm: cannot listen on") {
		t.Errorf("output is not one line saying the port is taken:\n%s", out)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory was created: %v", err)
	}
}

func TestDatabaseOutageAndRecovery(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	engine := startEngine(t, addr, dir)
	a := serveInProcess(t, "mongodb://"+addr+"/", nil)
	a.signIn()
	status, _, body := a.do(http.MethodPost, "/customers", `{"name":"Survivor","email":"survivor@example.org"}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var c struct{ ID string }
	_ = json.Unmarshal(body, &c)

	engine.kill()

	// Requests fail fast with 503 — the configured timeout is 1 s — and the
	// readiness probe says so; the liveness probe does not.
	for _, path := range []string{"/customers/" + c.ID, "/customers", "/readyz"} {
		start := time.Now()
		status, header, body := a.do(http.MethodGet, path, "")
		if took := time.Since(start); status != http.StatusServiceUnavailable || took > 3*time.Second {
			t.Errorf("GET %s with the database down: %d after %s: %s", path, status, took, body)
		}
		if !strings.Contains(string(body), "urn:crm:problem:unavailable") || header.Get("Retry-After") == "" {
			t.Errorf("GET %s: not the unavailable problem: %s", path, body)
		}
	}
	if status, _, _ := a.do(http.MethodGet, "/healthz", ""); status != http.StatusOK {
		t.Errorf("/healthz with the database down: %d", status)
	}

	// The database comes back; the API recovers without a restart.
	startEngine(t, addr, dir)
	waitFor(t, 30*time.Second, "the API to recover", func() bool {
		status, _, _ := a.do(http.MethodGet, "/customers/"+c.ID, "")
		return status == http.StatusOK
	})
	if status, _, _ := a.do(http.MethodGet, "/readyz", ""); status != http.StatusOK {
		t.Errorf("/readyz after recovery: %d", status)
	}
}

func TestGracefulShutdown(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	server := start(t, nil, "-addr", addr, "-data-dir", dir, "-shutdown-timeout", "10s")
	a := &apiClient{t: t, base: "http://" + addr}
	a.waitReady(30 * time.Second)
	a.signIn()

	// A request whose body is still arriving when SIGTERM does.
	body := `{"name":"Slow Upload","email":"slow@example.org","notes":"` + strings.Repeat("n", 2000) + `"}`
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/customers", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.ContentLength = int64(len(body))
	type result struct {
		status int
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- result{err: err}
			return
		}
		res.Body.Close()
		answered <- result{status: res.StatusCode}
	}()
	if _, err := pw.Write([]byte(body[:100])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is now reading the body

	if err := server.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused while the in-flight request is finishing.
	waitFor(t, 5*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if _, err := pw.Write([]byte(body[100:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-answered
	if r.err != nil || r.status != http.StatusCreated {
		t.Errorf("the in-flight request got %d, %v; want 201", r.status, r.err)
	}
	if code := server.wait(15 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}

	// The request that was in flight was written, and the database was closed
	// cleanly: it opens again with the customer in it.
	start(t, nil, "-addr", addr, "-data-dir", dir)
	a.waitReady(30 * time.Second)
	a.signIn()
	if status, _, body := a.do(http.MethodGet, "/customers?q=slow", ""); status != http.StatusOK || !strings.Contains(string(body), "slow@example.org") {
		t.Errorf("after restart: %d %s", status, body)
	}
}

// CRM_SHUTDOWN_TIMEOUT bounds the wait for requests in flight: when it runs
// out, their connections are closed and the process exits at once, with 0.
func TestShutdownGracePeriodRunsOut(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	server := start(t, nil, "-addr", addr, "-data-dir", dir, "-shutdown-timeout", "300ms")
	a := &apiClient{t: t, base: "http://" + addr}
	a.waitReady(30 * time.Second)
	a.signIn()

	// A request whose body never finishes arriving.
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, a.base+"/customers", pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.ContentLength = 1000
	go func() {
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte(`{"name":"Never Done",`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server is now reading the body

	signalled := time.Now()
	if err := server.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := server.wait(10 * time.Second); code != 0 {
		t.Errorf("exit status %d after the grace period ran out, want 0", code)
	}
	// The grace period, then closing the database (well under a second here).
	if took := time.Since(signalled); took > 5*time.Second {
		t.Errorf("the process exited %s after SIGTERM, with a grace period of 300ms", took.Round(time.Millisecond))
	}
	if !strings.Contains(server.output.String(), "the grace period ended with requests in flight") {
		t.Errorf("cutting requests short was not logged:\n%s", server.output.String())
	}
}

func TestKillDuringWritesLosesNothing(t *testing.T) {
	addr, dir := freeAddr(t), t.TempDir()
	server := start(t, nil, "-addr", addr, "-data-dir", dir)
	a := &apiClient{t: t, base: "http://" + addr}
	a.waitReady(30 * time.Second)
	a.signIn()

	var (
		mu       sync.Mutex
		answered = map[string]string{} // id → email of every 201
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	const writers = 8
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d.n%d@example.org", w, i)
				status, _, body := a.do(http.MethodPost, "/customers", fmt.Sprintf(`{"name":"Writer %d","email":%q}`, w, email))
				if status == http.StatusCreated {
					var c struct{ ID string }
					_ = json.Unmarshal(body, &c)
					mu.Lock()
					answered[c.ID] = email
					mu.Unlock()
				}
				if status == 0 {
					return // the server is gone
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	server.kill() // SIGKILL: no shutdown, no flush, nothing
	close(stop)
	wg.Wait()
	if len(answered) < 10 {
		t.Fatalf("only %d creates were answered before the kill; the test proves little", len(answered))
	}

	start(t, nil, "-addr", addr, "-data-dir", dir)
	a.waitReady(30 * time.Second)
	a.signIn()
	stored := map[string]string{}
	cursor := ""
	for {
		path := "/customers?limit=200"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		status, _, body := a.do(http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("list after restart: %d %s", status, body)
		}
		var page struct {
			Data []struct {
				ID    string `json:"id"`
				Email string `json:"email"`
			} `json:"data"`
			Next *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Data {
			if _, dup := stored[c.ID]; dup {
				t.Errorf("customer %s listed twice", c.ID)
			}
			stored[c.ID] = c.Email
		}
		if page.Next == nil {
			break
		}
		cursor = *page.Next
	}
	emails := map[string]bool{}
	for _, e := range stored {
		if emails[e] {
			t.Errorf("email %s stored twice", e)
		}
		emails[e] = true
	}
	lost := 0
	for id, email := range answered {
		if stored[id] != email {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d creates answered 201 are missing after kill -9", lost, len(answered))
	}
	t.Logf("%d creates answered before kill -9, %d stored after restart, none lost", len(answered), len(stored))
}

func TestOverloadQueuesOrFailsFast(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	startEngine(t, addr, dir)
	// Two connections for sixty clients.
	a := serveInProcess(t, "mongodb://"+addr+"/?maxPoolSize=2", nil)
	a.signIn()
	const customers = 150
	for i := range customers {
		if status, _, body := a.do(http.MethodPost, "/customers", fmt.Sprintf(`{"name":"Load %d","email":"load%d@example.org"}`, i, i)); status != http.StatusCreated {
			t.Fatalf("seed: %d %s", status, body)
		}
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const clients = 60
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		slowest  time.Duration
		wg       sync.WaitGroup
	)
	deadline := time.Now().Add(3 * time.Second)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				start := time.Now()
				status, _, _ := a.do(http.MethodGet, "/customers?limit=100", "")
				took := time.Since(start)
				mu.Lock()
				statuses[status]++
				slowest = max(slowest, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	for status, n := range statuses {
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			t.Errorf("%d responses with status %d under overload", n, status)
		}
	}
	if statuses[http.StatusOK] == 0 {
		t.Error("no request succeeded under overload")
	}
	// Waiting for a connection is bounded by the 1 s database timeout.
	if slowest > 5*time.Second {
		t.Errorf("the slowest request took %s", slowest)
	}
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 256<<20 {
		t.Errorf("the heap grew by %d MiB under load", grew>>20)
	}
	t.Logf("under overload: %v, slowest %s", statuses, slowest)

	// Nothing was corrupted: every customer is still there.
	status, _, body := a.do(http.MethodGet, "/customers?limit=1&include_total=true", "")
	if status != http.StatusOK || !strings.Contains(string(body), fmt.Sprintf(`"total":%d`, customers)) {
		t.Errorf("after the load: %d %s", status, body)
	}
}

// TestIntegrationSuiteOnPostgreSQL runs the server package's integration tests
// again, against `crm engine` storing its data in PostgreSQL.
func TestIntegrationSuiteOnPostgreSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: -short: the PostgreSQL run of the integration suite is long")
	}
	pgURL := testtool.PostgreSQL(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		testtool.Missing(t, "the go command is not on PATH: %v", err)
	}

	addr := freeAddr(t)
	startEngine(t, addr, t.TempDir(), "-postgresql-url", pgURL)
	cmd := exec.Command(goTool, "test", "-count=1", "./server")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "CRM_TEST_MONGODB_URI=mongodb://"+addr+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the integration suite failed on PostgreSQL: %v\n%s", err, tail(out.String(), 200))
	}
	t.Logf("integration suite on PostgreSQL: %s", strings.TrimSpace(tail(out.String(), 1)))
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Ctrl-C during a seed is not a database failure: the command says how far
// it got and how to go on, and exits as shells expect of SIGINT.
func TestSeedInterrupted(t *testing.T) {
	p := start(t, []string{"CRM_LOG_LEVEL=info", "CRM_LOG_FORMAT=text"},
		"seed", "-data-dir", t.TempDir(), "-users", "20", "-customers", "1000000", "-interactions", "0")
	waitFor(t, 60*time.Second, "a progress line", func() bool { return strings.Contains(p.output.String(), "records/s") })
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(30 * time.Second); code != 130 {
		t.Errorf("exit status %d after SIGINT, want 130", code)
	}
	out := p.output.String()
	last := tail(out, 1)
	if !regexp.MustCompile(`^crm: seed interrupted after at least [1-9][0-9]* new records; run the same command again to continue$`).MatchString(last) {
		t.Errorf("the last line after SIGINT: %q", last)
	}
	if strings.Contains(out, "context canceled") || strings.Contains(out, "unavailable") {
		t.Errorf("SIGINT is reported as a failure:\n%s", out)
	}
}

// The engine, like the server, logs that it shuts down and that it stopped.
func TestEngineLogsShutdown(t *testing.T) {
	// JSON whatever the caller's environment says (make test sets text).
	p := start(t, []string{"CRM_LOG_LEVEL=info", "CRM_LOG_FORMAT=json"}, "engine", "-listen", freeAddr(t), "-data-dir", t.TempDir())
	waitFor(t, 20*time.Second, "the engine to listen", func() bool { return strings.Contains(p.output.String(), "engine listening") })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	out := p.output.String()
	down, stopped := strings.Index(out, `"msg":"shutting down"`), strings.Index(out, `"msg":"stopped"`)
	if down < 0 || stopped < down {
		t.Errorf("the engine's log does not end with shutting down, then stopped:\n%s", out)
	}
}
