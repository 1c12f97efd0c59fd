package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
)

// On the embedded engine, writes reach the database one at a time, however
// many callers write at once; reads are not held up by them.
func TestEmbeddedEngineWritesOneAtATime(t *testing.T) {
	t.Parallel()
	var inFlight, most atomic.Int32
	writes := map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true}
	var mu sync.Mutex
	started := map[int64]bool{} // request ids of the writes in flight
	end := func(id int64) {
		mu.Lock()
		defer mu.Unlock()
		if started[id] {
			delete(started, id)
			inFlight.Add(-1)
		}
	}
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: testTimeout, Logger: quietLogger,
		Monitor: &event.CommandMonitor{
			Started: func(_ context.Context, e *event.CommandStartedEvent) {
				if !writes[e.CommandName] {
					return
				}
				mu.Lock()
				started[e.RequestID] = true
				mu.Unlock()
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
			},
			Succeeded: func(_ context.Context, e *event.CommandSucceededEvent) { end(e.RequestID) },
			Failed:    func(_ context.Context, e *event.CommandFailedEvent) { end(e.RequestID) },
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
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
	if got := most.Load(); got != 1 {
		t.Errorf("%d writes reached the embedded engine at once, want 1", got)
	}
	if n := countDocs(t, s.customers.Collection, nil); n != 32 {
		t.Errorf("%d customers, want 32", n)
	}
}

// A write waiting at the gate gives up when its context ends, with an error
// the store reports as the database being unavailable (503), and leaves the
// gate as it was.
func TestWriteGateHonoursTheDeadline(t *testing.T) {
	t.Parallel()
	g := make(writeGate, 1)
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

	// No gate (MongoDB, a shared engine): every write passes at once.
	var open writeGate
	for range 3 {
		if _, err := open.enter(ctx); err != nil {
			t.Errorf("enter without a gate = %v", err)
		}
	}
}

// Only the embedded engine that this process runs gets the gate: MongoDB and
// an engine shared with other processes order concurrent writes themselves.
func TestWriteGateOnlyOnTheEmbeddedEngine(t *testing.T) {
	t.Parallel()
	embedded := openTestStore(t)
	if embedded.customers.gate == nil {
		t.Error("the embedded engine's collections have no write gate")
	}
	shared, err := Open(context.Background(), Config{URI: runTestEngine(t, EngineConfig{DataDir: t.TempDir()}), Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close(context.Background()) })
	if shared.customers.gate != nil {
		t.Error("a store opened by URI has a write gate")
	}
}
