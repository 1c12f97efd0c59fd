package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
)

// concurrency counts the commands of the given names in flight at once.
type concurrency struct {
	names    map[string]bool
	mu       sync.Mutex
	inFlight map[int64]bool // request ids
	most     int
}

func countConcurrent(names ...string) *concurrency {
	c := &concurrency{names: map[string]bool{}, inFlight: map[int64]bool{}}
	for _, n := range names {
		c.names[n] = true
	}
	return c
}

func (c *concurrency) monitor() *event.CommandMonitor {
	end := func(id int64) {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.inFlight, id)
	}
	return &event.CommandMonitor{
		Started: func(_ context.Context, e *event.CommandStartedEvent) {
			if !c.names[e.CommandName] {
				return
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			c.inFlight[e.RequestID] = true
			c.most = max(c.most, len(c.inFlight))
		},
		Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID) },
		Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID) },
	}
}

func (c *concurrency) max() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.most
}

// openCounted opens a store on the embedded engine whose commands c counts.
func openCounted(t *testing.T, c *concurrency) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: testTimeout, Logger: quietLogger, Monitor: c.monitor()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// On the embedded engine, writes reach the database one at a time, however
// many callers write at once.
func TestEmbeddedEngineWritesOneAtATime(t *testing.T) {
	t.Parallel()
	writes := countConcurrent("insert", "update", "delete", "findAndModify")
	s := openCounted(t, writes)
	owner := mustCreateUser(t, s, "Owner", "owner@example.com", RoleMember)

	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			c := &Customer{Name: "C", Email: fmt.Sprintf("c%d@example.com", i), Status: StatusActive, OwnerID: &owner.ID}
			if err := s.CreateCustomer(t.Context(), c); err != nil {
				t.Error(err)
				return
			}
			if _, err := s.UpdateCustomer(t.Context(), c.ID, c.Revision, CustomerChanges{Name: ptr("D")}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := writes.max(); got != 1 {
		t.Errorf("%d writes reached the embedded engine at once, want 1", got)
	}
	if n := countDocs(t, s.customers.Collection, nil); n != 32 {
		t.Errorf("%d customers, want 32", n)
	}
}

// On the embedded engine, at most one list per CPU reads the database at once.
func TestEmbeddedEngineListsOnePerCPU(t *testing.T) {
	t.Parallel()
	reads := countConcurrent("find", "getMore", "aggregate", "count")
	s := openCounted(t, reads)
	for i := range 300 {
		mustCreateCustomer(t, s, &Customer{Name: fmt.Sprint("C", i), Email: fmt.Sprintf("c%d@example.com", i)})
	}
	var wg sync.WaitGroup
	var served atomic.Int32
	for range 16 {
		wg.Go(func() {
			opts := ListOptions{Sort: Sort{Field: "name"}, Limit: 200, Count: true}
			_, err := s.ListCustomers(t.Context(), CustomerFilter{}, opts)
			switch {
			case err == nil:
				served.Add(1)
			case !errors.Is(err, ErrUnavailable):
				// Giving up after waiting half its time is the gate's
				// answer on a slow machine (503); anything else is not.
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, want := reads.max(), runtime.GOMAXPROCS(0); got > want || got == 0 {
		t.Errorf("%d list commands reached the embedded engine at once, want 1 to %d", got, want)
	}
	if n := served.Load(); int(n) < runtime.GOMAXPROCS(0) {
		t.Errorf("%d of 16 lists served", n)
	}
}

// An operation waiting at a gate gives up when its context ends, with an error
// the store reports as the database being unavailable (503), and leaves the
// gate as it was.
func TestGateHonoursTheDeadline(t *testing.T) {
	t.Parallel()
	g := make(gate, 1)
	leave, err := g.enter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := g.enter(ctx); !errors.Is(translate(err), ErrUnavailable) {
		t.Errorf("enter while held, past the deadline = %v, want one that translates to ErrUnavailable", err)
	}
	leave()
	leave2, err := g.enter(context.Background())
	if err != nil {
		t.Fatalf("enter after leave = %v", err)
	}
	leave2()

	// A list waits at most the given share of the time it has left, so that
	// it keeps the rest for its work.
	start := time.Now()
	leave, _ = g.enter(context.Background())
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := g.enterWithin(ctx, 0.25); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 150*time.Millisecond {
		t.Errorf("enterWithin(¼ of 200 ms) while held = %v after %v, want a deadline error after about 50 ms", err, time.Since(start))
	}
	leave()

	// No gate (MongoDB, a shared engine): every write passes at once.
	var open gate
	for range 3 {
		if _, err := open.enter(ctx); err != nil {
			t.Errorf("enter without a gate = %v", err)
		}
	}
}

// Only the embedded engine that this process runs gets the gates: MongoDB and
// an engine shared with other processes order concurrent work themselves.
func TestGatesOnlyOnTheEmbeddedEngine(t *testing.T) {
	t.Parallel()
	embedded := openTestStore(t)
	if embedded.customers.writes == nil || embedded.lists == nil {
		t.Error("the embedded engine has no write or list gate")
	}
	shared, err := Open(context.Background(), Config{URI: runTestEngine(t, EngineConfig{DataDir: t.TempDir()}), Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close(context.Background()) })
	if shared.customers.writes != nil || shared.lists != nil {
		t.Error("a store opened by URI has a write or list gate")
	}
}
