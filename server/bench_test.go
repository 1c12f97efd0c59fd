package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/api"
	"github.com/opencrm/crm/api/auth"
	"github.com/opencrm/crm/server"
	"github.com/opencrm/crm/store"
	"github.com/opencrm/crm/store/seed"
)

// Benchmarks of the API against the database's own limit. Each operation runs
// three ways in one process on one embedded database: at the store (the query
// the operation needs, no HTTP), through the API in-process (the handler
// served a request directly: routing, token check, validation, handler,
// encoding, logging, metrics) and through the API over loopback HTTP (the
// same plus the network stack and an HTTP client). `make bench` prints them as
// a table with their ratios; CRM_BENCH_SIZES=1000,10000,100000 adds the
// largest size (the default is 1000,10000), and CRM_BENCH_MONGODB_URI runs
// them on another database.

// fixture is a seeded database with a server in front of it.
type fixture struct {
	st        *store.Store
	handler   http.Handler
	srv       *httptest.Server
	client    *http.Client
	token     string
	passwords *auth.Passwords
	admin     *store.User
	customer  bson.ObjectID // a customer with a timeline of its own
	email     string        // the login user's email
	password  string
	seq       atomic.Int64
}

var (
	fixturesMu sync.Mutex
	fixtures   = map[int]*fixture{}
)

func benchSizes() []int {
	list := os.Getenv("CRM_BENCH_SIZES")
	if list == "" {
		list = "1000,10000"
	}
	var sizes []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	return sizes
}

// fixtureFor seeds a database with n customers (once per process) and starts
// a server on it.
func fixtureFor(b *testing.B, n int) *fixture {
	b.Helper()
	fixturesMu.Lock()
	defer fixturesMu.Unlock()
	if f, ok := fixtures[n]; ok {
		return f
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "crm-bench-")
	if err != nil {
		b.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	// CRM_BENCH_MONGODB_URI measures another database instead of the embedded
	// engine: a MongoDB, or `crm engine` on PostgreSQL.
	uri, dbName := os.Getenv("CRM_BENCH_MONGODB_URI"), ""
	if uri != "" {
		dbName = fmt.Sprintf("crm_bench_%d", n)
		dropDatabase(uri, dbName) // a fresh start: creates grow the database
	}
	st, err := store.Open(ctx, store.Config{URI: uri, Database: dbName, DataDir: dir, Logger: quiet, Timeout: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	passwords, err := auth.NewPasswords(auth.OWASPArgon2)
	if err != nil {
		b.Fatal(err)
	}
	password := "benchmark password"
	hash, _ := passwords.Hash(context.Background(), password)
	if _, err := seed.Run(ctx, st, seed.Config{Users: 20, Customers: n, Interactions: 2 * n, PasswordHash: hash}); err != nil {
		b.Fatal(err)
	}
	admin, err := st.GetUserByEmail(ctx, firstSeededEmail(b, st))
	if err != nil {
		b.Fatal(err)
	}
	timeline := &store.Customer{Name: "Timeline Customer", Email: "timeline@bench.example", Status: store.StatusActive, OwnerID: &admin.ID}
	if err := st.CreateCustomer(ctx, timeline); err != nil {
		b.Fatal(err)
	}
	for i := range 60 {
		if err := st.CreateInteraction(ctx, &store.Interaction{UserID: admin.ID, CustomerID: timeline.ID, Type: "Call", Status: "Open", Description: fmt.Sprint("call ", i)}); err != nil {
			b.Fatal(err)
		}
	}
	diskMu.Lock()
	diskBytes[n] = dirSize(dir)
	diskMu.Unlock()
	tokens, _ := auth.NewTokens(auth.TokenConfig{Secret: testSecret, Issuer: "crm", Audience: "crm-api", TTL: time.Hour, Leeway: time.Minute})
	// The access log is written, as in production, to a sink that costs
	// nothing beyond encoding.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	handler, err := server.New(server.Config{
		Handler: api.New(api.Config{Store: st, Tokens: tokens, Passwords: passwords, Secret: testSecret, Logger: log,
			// Benchmarks sign in and fail to, over and over, from one address.
			Throttle: api.ThrottleLimits{Window: time.Second, PerAccountAndIP: 1 << 30, PerIP: 1 << 30, PerAccount: 1 << 30}}),
		Store:  st,
		Logger: log,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	token, _ := tokens.Issue(admin.ID.Hex(), admin.TokenVersion)
	f := &fixture{
		st: st, handler: handler, srv: srv, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}},
		token: token, passwords: passwords, admin: admin, customer: timeline.ID, email: admin.Email, password: password,
	}
	fixtures[n] = f
	return f
}

var (
	diskMu    sync.Mutex
	diskBytes = map[int]int64{} // size → bytes the seeded database takes on disk
)

// dirSize adds up the sizes of the files under dir.
func dirSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total
}

func firstSeededEmail(b *testing.B, st *store.Store) string {
	page, err := st.ListUsers(context.Background(), store.UserFilter{Role: store.RoleAdmin, Status: store.StatusActive},
		store.ListOptions{Sort: store.Sort{Field: "name"}, Limit: 1})
	if err != nil || len(page.Items) == 0 {
		b.Fatalf("no seeded admin: %v", err)
	}
	return page.Items[0].Email
}

// caller sends one request through the API and checks its status.
type caller func(b *testing.B, method, path, body string, want int)

// overHTTP sends the request over loopback HTTP, as a client on the same host.
func (f *fixture) overHTTP(b *testing.B, method, path, body string, want int) {
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := f.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
	}
}

// inProcess hands the request to the server's handler directly: every layer
// of the API (routing, token check, validation, handler, encoding, logging,
// metrics) without the network stack and the HTTP client. The request is
// built as a value, as net/http's server hands it over after reading it
// (httptest.NewRequest would parse it from text: microseconds that are the
// HTTP server's, measured in the over-HTTP column).
func (f *fixture) inProcess(b *testing.B, method, path, body string, want int) {
	var content io.Reader = http.NoBody // as net/http's server gives a request without a body
	if body != "" {
		content = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, path, content)
	req.RemoteAddr = "127.0.0.1:50000"
	req.Header.Set("Authorization", "Bearer "+f.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	w := &responseSink{header: http.Header{}}
	f.handler.ServeHTTP(w, req)
	if w.code != want {
		b.Fatalf("%s %s: %d, want %d: %s", method, path, w.code, want, w.body)
	}
}

// responseSink is the response writer of in-process requests: it keeps the
// status and the body, as a test needs, and does no more work than net/http's
// own writer would. (httptest.ResponseRecorder also copies the headers when
// the status is written, a cost of the recorder that was measured as the
// API's.)
type responseSink struct {
	header http.Header
	code   int
	body   []byte
}

func (w *responseSink) Header() http.Header { return w.header }
func (w *responseSink) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *responseSink) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// layers are the three ways each operation is measured, in the table's order.
var layers = []string{"store", "api", "http"}

// pair runs one operation at the store, through the API in-process and
// through the API over loopback HTTP, for each size, and records the results
// for the table. The three take turns within one loop, in a rotating order,
// so that all are measured under the same conditions on a machine whose load
// drifts. Each layer's figure is its median round: a write that happens to
// trigger the database's checkpoint, or a collection pause, costs
// milliseconds, lands on one layer at random and would swing a mean by more
// than the API's whole share.
func pair(b *testing.B, storeOp func(b *testing.B, f *fixture), apiOp func(b *testing.B, f *fixture, call caller)) {
	op := strings.TrimPrefix(b.Name(), "Benchmark")
	for _, n := range benchSizes() {
		f := fixtureFor(b, n)
		b.Run(fmt.Sprintf("customers=%d", n), func(b *testing.B) {
			ops := []func(){
				func() { storeOp(b, f) },
				func() { apiOp(b, f, f.inProcess) },
				func() { apiOp(b, f, f.overHTTP) },
			}
			allocs := make([]float64, len(ops))
			for i, fn := range ops {
				allocs[i] = testing.AllocsPerRun(1, fn)
			}
			took := make([][]time.Duration, len(ops))
			round := 0
			rotation := func() {
				for k := range ops {
					i := (round + k) % len(ops)
					start := time.Now()
					ops[i]()
					took[i] = append(took[i], time.Since(start))
				}
				round++
			}
			for b.Loop() {
				rotation()
			}
			// A page at 10,000 customers takes most of a second: within the
			// bench time it ran once or twice, and its "median" was one
			// sample of a noisy machine. Enough rounds make it a median.
			for round < minRounds {
				rotation()
			}
			for i, layer := range layers {
				ns := float64(median(took[i]))
				b.ReportMetric(ns, layer+"-median-ns/op")
				record(op, n, layer, result{nsPerOp: ns, allocsPerOp: allocs[i]})
			}
		})
	}
}

// minRounds is the fewest rounds each operation of pair is measured in.
const minRounds = 15

// median is the middle of the durations (of the upper two when even).
func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}

// result is one measured benchmark.
type result struct {
	nsPerOp, allocsPerOp float64
}

var (
	resultsMu sync.Mutex
	results   = map[string]map[int]map[string]result{} // operation → size → layer
)

// record keeps a result for the table.
func record(op string, size int, layer string, r result) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if results[op] == nil {
		results[op] = map[int]map[string]result{}
	}
	if results[op][size] == nil {
		results[op][size] = map[string]result{}
	}
	results[op][size][layer] = r
}

// TestMain prints the table of the benchmarks that ran, for `make bench`, and,
// when the whole package ran, fails the run if a response that the spec
// declares was never observed (see checkReachability) or if an example of a
// problem in the spec holds a detail the server never wrote
// (checkProblemExamples), or if the spec's table of problem types is not the
// set the server answered (checkProblemTypes).
func TestMain(m *testing.M) {
	code := m.Run()
	printBenchTable(os.Stdout)
	if wholePackageRan() {
		reached, real, listed := checkReachability(os.Stdout), checkProblemExamples(os.Stdout), checkProblemTypes(os.Stdout)
		if (!reached || !real || !listed) && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// printBenchTable writes the store-versus-API table in Markdown: median
// times per operation (see pair).
func printBenchTable(w io.Writer) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if len(results) == 0 {
		return
	}
	ops := make([]string, 0, len(results))
	for op := range results {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	fmt.Fprintf(w, "\n| operation | customers | store (bare driver) | API in-process | ratio | API layer | API over loopback HTTP | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, op := range ops {
		for _, size := range slices.Sorted(maps.Keys(results[op])) {
			st, okS := results[op][size]["store"]
			ap, okA := results[op][size]["api"]
			if !okS || !okA {
				continue
			}
			line := fmt.Sprintf("| %s | %d | %s | %s | %.2f | %s, %.0f allocs |", op, size, dur(st.nsPerOp), dur(ap.nsPerOp),
				ap.nsPerOp/st.nsPerOp, dur(ap.nsPerOp-st.nsPerOp), ap.allocsPerOp-st.allocsPerOp)
			if ht, ok := results[op][size]["http"]; ok {
				line += fmt.Sprintf(" %s | %.2f |", dur(ht.nsPerOp), ht.nsPerOp/st.nsPerOp)
			} else {
				line += " | |"
			}
			fmt.Fprintln(w, line)
		}
	}
	diskMu.Lock()
	for _, n := range slices.Sorted(maps.Keys(diskBytes)) {
		fmt.Fprintf(w, "\ndatabase on disk with %d customers and %d interactions: %.1f MiB", n, 2*n, float64(diskBytes[n])/(1<<20))
	}
	diskMu.Unlock()
	fmt.Fprintf(w, "\nmachine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
}

// dur formats nanoseconds for the table.
func dur(ns float64) string {
	return time.Duration(ns).Round(time.Microsecond).String()
}

func BenchmarkGetCustomer(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		if _, err := f.st.GetCustomer(context.Background(), f.customer); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodGet, "/customers/"+f.customer.Hex(), "", http.StatusOK)
	})
}

func BenchmarkListCustomers(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		if _, err := f.st.ListCustomers(context.Background(), store.CustomerFilter{},
			store.ListOptions{Sort: store.Sort{Field: "created_at", Desc: true}, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodGet, "/customers", "", http.StatusOK)
	})
}

func BenchmarkListCustomerInteractions(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		ctx := context.Background()
		if _, err := f.st.GetCustomer(ctx, f.customer); err != nil {
			b.Fatal(err)
		}
		if _, err := f.st.ListInteractions(ctx, store.InteractionFilter{CustomerID: &f.customer},
			store.ListOptions{Sort: store.Sort{Field: "created_at", Desc: true}, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodGet, "/customers/"+f.customer.Hex()+"/interactions", "", http.StatusOK)
	})
}

func BenchmarkSearchCustomers(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		if _, err := f.st.ListCustomers(context.Background(), store.CustomerFilter{Status: store.StatusActive, Tags: []string{"vip"}, Search: "an"},
			store.ListOptions{Sort: store.Sort{Field: "name"}, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodGet, "/customers?status=active&tag=vip&q=an&sort=name", "", http.StatusOK)
	})
}

// BenchmarkLogin compares a sign-in through the API with its unavoidable part:
// finding the user and verifying the password (argon2id, OWASP parameters).
func BenchmarkLogin(b *testing.B) {
	b.Logf("password hashing: %s", auth.OWASPArgon2)
	pair(b, func(b *testing.B, f *fixture) {
		u, err := f.st.GetUserByEmail(context.Background(), f.email)
		if err != nil {
			b.Fatal(err)
		}
		if ok, _, err := f.passwords.Verify(context.Background(), f.password, u.PasswordHash); !ok || err != nil {
			b.Fatalf("password refused: %v", err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodPost, "/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, f.email, f.password), http.StatusOK)
	})
}

// BenchmarkLoginFailures shows that the three ways a sign-in fails cost the
// same: an unknown email verifies a dummy hash, a deactivated account's
// password is verified before its status is looked at.
func BenchmarkLoginFailures(b *testing.B) {
	f := fixtureFor(b, benchSizes()[0])
	ctx := context.Background()
	inactive := &store.User{Name: "Inactive", Email: "inactive@bench.example", PasswordHash: f.admin.PasswordHash, Status: store.StatusInactive, Role: store.RoleMember}
	if err := f.st.CreateUser(ctx, inactive); err != nil && !errors.Is(err, store.ErrDuplicate) {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, email, password string }{
		{"unknown email", "nobody@bench.example", f.password},
		{"wrong password", f.email, "not the password"},
		{"deactivated account", inactive.Email, f.password},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				f.overHTTP(b, http.MethodPost, "/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, tc.email, tc.password), http.StatusUnauthorized)
			}
		})
	}
}

// The creates come after the reads: they grow the fixtures the reads use.

func BenchmarkCreateCustomer(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		c := &store.Customer{Name: "Bench", Email: fmt.Sprintf("s%d@bench.example", f.seq.Add(1)), Status: store.StatusActive, OwnerID: &f.admin.ID}
		if err := f.st.CreateCustomer(context.Background(), c); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodPost, "/customers", fmt.Sprintf(`{"name":"Bench","email":"a%d@bench.example"}`, f.seq.Add(1)), http.StatusCreated)
	})
}

func BenchmarkCreateInteraction(b *testing.B) {
	pair(b, func(b *testing.B, f *fixture) {
		it := &store.Interaction{UserID: f.admin.ID, CustomerID: f.customer, Type: "Note", Status: "Open", Description: "bench"}
		if err := f.st.CreateInteraction(context.Background(), it); err != nil {
			b.Fatal(err)
		}
	}, func(b *testing.B, f *fixture, call caller) {
		call(b, http.MethodPost, "/interactions", `{"customer_id":"`+f.customer.Hex()+`","type":"Note","description":"bench"}`, http.StatusCreated)
	})
}

// BenchmarkAPILayerAlone measures the API's own work on authenticated GETs
// whose store work is nil, served in-process (no network, no client): routing,
// token check, validation, handler, encoding, logging, metrics.
func BenchmarkAPILayerAlone(b *testing.B) {
	f := fixtureFor(b, benchSizes()[0])
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		// The handler refuses the cursor before asking the store anything.
		{"authenticated GET, refused before the store", "/customers?cursor=not-a-cursor", http.StatusBadRequest},
		{"GET /healthz", "/healthz", http.StatusOK},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.inProcess(b, http.MethodGet, tc.path, "", tc.want)
			}
		})
	}
	// The same refused GET timed right after a lookup by id at the store, and
	// after a lookup followed by 300 µs of spinning: the first shows what the
	// API's code costs between the database's work, the second that it is not
	// the database's leftover work competing for the CPU (the cost stays)
	// but its memory traffic, which leaves the API's code and data out of
	// the CPU's caches.
	for _, spin := range []time.Duration{0, 300 * time.Microsecond} {
		name := "authenticated GET, refused before the store, right after a lookup by id"
		if spin > 0 {
			name += fmt.Sprintf(" and %v of spinning", spin)
		}
		b.Run(name, func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				if _, err := f.st.GetCustomer(context.Background(), f.customer); err != nil {
					b.Fatal(err)
				}
				for start := time.Now(); time.Since(start) < spin; {
				}
				start := time.Now()
				f.inProcess(b, http.MethodGet, "/customers?cursor=not-a-cursor", "", http.StatusBadRequest)
				took = append(took, time.Since(start))
			}
			b.ReportMetric(float64(median(took)), "api-median-ns/op")
		})
	}
	// What loopback HTTP alone adds, for reading the table's last columns.
	b.Run("GET /healthz over loopback HTTP", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.overHTTP(b, http.MethodGet, "/healthz", "", http.StatusOK)
		}
	})
}

// BenchmarkConcurrentLoad drives the API over loopback HTTP with more and
// more concurrent clients, each making four reads of a customer for each
// interaction it creates: where requests per second stop growing, the
// machine is saturated and more clients only wait longer.
func BenchmarkConcurrentLoad(b *testing.B) {
	f := fixtureFor(b, benchSizes()[0])
	for _, perCPU := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", perCPU*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			underLoad(b, perCPU, func(i int) {
				if i%5 == 0 {
					f.overHTTP(b, http.MethodPost, "/interactions", `{"customer_id":"`+f.customer.Hex()+`","type":"Note"}`, http.StatusCreated)
				} else {
					f.overHTTP(b, http.MethodGet, "/customers/"+f.customer.Hex(), "", http.StatusOK)
				}
			})
		})
	}
}

// BenchmarkConcurrentCreates is a script loading data through the API with
// 128 parallel requests: every request a write.
func BenchmarkConcurrentCreates(b *testing.B) {
	f := fixtureFor(b, benchSizes()[0])
	b.Run(fmt.Sprintf("clients=%d", 128), func(b *testing.B) {
		underLoad(b, max(1, 128/runtime.GOMAXPROCS(0)), func(int) {
			f.overHTTP(b, http.MethodPost, "/interactions", `{"customer_id":"`+f.customer.Hex()+`","type":"Note"}`, http.StatusCreated)
		})
	})
}

// BenchmarkConcurrentLogins is 64 clients signing in at once: each sign-in
// hashes with 19 MiB, so this is where memory peaks.
func BenchmarkConcurrentLogins(b *testing.B) {
	f := fixtureFor(b, benchSizes()[0])
	b.Run(fmt.Sprintf("clients=%d", 64), func(b *testing.B) {
		underLoad(b, max(1, 64/runtime.GOMAXPROCS(0)), func(int) {
			f.overHTTP(b, http.MethodPost, "/users/login", fmt.Sprintf(`{"email":%q,"password":%q}`, f.email, f.password), http.StatusOK)
		})
	})
}

// underLoad runs request (given each client's request count) from perCPU ×
// GOMAXPROCS concurrent clients and reports requests per second, latency
// percentiles and the process's peak resident memory during the run.
func underLoad(b *testing.B, perCPU int, request func(i int)) {
	resetPeakRSS()
	var (
		mu        sync.Mutex
		latencies []time.Duration
	)
	b.SetParallelism(perCPU)
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for i := 1; pb.Next(); i++ {
			start := time.Now()
			request(i)
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	slices.Sort(latencies)
	percentile := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(percentile(0.50), "p50-ms")
	b.ReportMetric(percentile(0.99), "p99-ms")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// resetPeakRSS starts the process's high-water mark of resident memory anew
// from what it holds now (Linux; elsewhere the mark covers the whole run).
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSSMiB reads the process's high-water mark of resident memory (Linux).
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.Sys) / (1 << 20)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if fields := strings.Fields(string(line)); len(fields) >= 2 && fields[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(fields[1], 64)
			return kb / 1024
		}
	}
	return 0
}
